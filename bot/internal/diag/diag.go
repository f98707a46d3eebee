// Package diag collects the problems found in declarations, each with the
// file, line and column to fix, and prints them for people (text), machines
// (JSON) and GitHub Actions (workflow annotations).
package diag

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Severity says whether a problem fails validation.
type Severity string

// Errors fail validation; warnings only fail it under --strict.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Diagnostic is one problem at one place.
type Diagnostic struct {
	File     string   `json:"file"` // relative to the repository root, slash-separated
	Line     int      `json:"line"` // 1-based; 0 when the problem concerns the whole file
	Col      int      `json:"col"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// String renders the diagnostic as path:line:col: severity: message, the form
// editors and terminals turn into links.
func (d Diagnostic) String() string {
	if d.Line == 0 {
		return fmt.Sprintf("%s: %s: %s", d.File, d.Severity, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", d.File, d.Line, d.Col, d.Severity, d.Message)
}

// List is every problem of one validation run.
type List []Diagnostic

// Sort orders the list by file, line, column and message, so output is
// deterministic however the files were read.
func (l List) Sort() {
	slices.SortStableFunc(l, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col), cmp.Compare(a.Message, b.Message))
	})
}

// Count returns the number of errors and warnings.
func (l List) Count() (errors, warnings int) {
	for _, d := range l {
		if d.Severity == Error {
			errors++
		} else {
			warnings++
		}
	}
	return errors, warnings
}

// Failed reports whether the list fails validation; strict counts warnings.
func (l List) Failed(strict bool) bool {
	e, w := l.Count()
	return e > 0 || (strict && w > 0)
}

// Errors returns only the errors.
func (l List) Errors() List {
	var out List
	for _, d := range l {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Format is an output format of Write.
type Format string

// The formats `dbusers validate --format` accepts.
const (
	Text   Format = "text"
	JSON   Format = "json"
	GitHub Format = "github"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Text, JSON, GitHub:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want text, json or github)", s)
}

// Write prints the list in format f.
func (l List) Write(w io.Writer, f Format) error {
	switch f {
	case JSON:
		out := l
		if out == nil {
			out = List{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case GitHub:
		for _, d := range l {
			if _, err := fmt.Fprintln(w, d.Annotation()); err != nil {
				return err
			}
		}
		return nil
	default:
		for _, d := range l {
			if _, err := fmt.Fprintln(w, d.String()); err != nil {
				return err
			}
		}
		return nil
	}
}

// Annotation renders the diagnostic as a GitHub Actions workflow command,
// which shows it on the pull request's diff at the right line.
func (d Diagnostic) Annotation() string {
	level := "error"
	if d.Severity == Warning {
		level = "warning"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "::%s file=%s", level, escapeProperty(d.File))
	if d.Line > 0 {
		fmt.Fprintf(&b, ",line=%d,col=%d", d.Line, d.Col)
	}
	b.WriteString("::")
	b.WriteString(escapeData(d.Message))
	return b.String()
}

// escapeData and escapeProperty follow the escaping of @actions/core, so a
// message with a newline or a colon cannot break or forge an annotation.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
