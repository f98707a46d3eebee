package ghcommenttest

import (
	"fmt"
	"regexp"
	"strings"
)

// delimiterCell is one cell of a table's delimiter row: dashes, with a
// colon on either side for the alignment.
var delimiterCell = regexp.MustCompile(`^\s*:?-+:?\s*$`)

// CheckRenders reports why a comment body would not render on its own,
// the way GitHub renders each comment separately, or returns nil: every
// code fence and <details> block it opens it closes, no </details> comes
// first, and every table row follows, within the body, a header row and
// a delimiter row of as many cells (a row cut off from its header shows
// as raw pipes). It knows the markdown that dbusers writes: ``` fences,
// <details> lines, and tables whose rows start with a pipe.
func CheckRenders(body string) error {
	lines := strings.Split(body, "\n")
	fence, depth, tableCells := false, 0, 0 // tableCells: 0 outside a table
	for i, line := range lines {
		l := strings.TrimSpace(line)
		switch {
		case fence:
			fence = l != "```"
		case strings.HasPrefix(l, "```"):
			fence = true
		case strings.HasPrefix(l, "<details"):
			depth++
		case l == "</details>":
			if depth--; depth < 0 {
				return fmt.Errorf("line %d: </details> without <details>", i+1)
			}
		}
		if fence || !strings.HasPrefix(l, "|") {
			tableCells = 0
			continue
		}
		if tableCells > 0 {
			continue // a row of the table above
		}
		n := len(cells(l))
		if i+1 >= len(lines) || !isDelimiterRow(strings.TrimSpace(lines[i+1]), n) {
			return fmt.Errorf("line %d: a table row without a header and delimiter row: %.80q", i+1, l)
		}
		tableCells = n
	}
	if fence || depth != 0 {
		return fmt.Errorf("ends inside a code fence (%v) or %d <details> block(s)", fence, depth)
	}
	return nil
}

// cells splits a table row at its unescaped pipes, without the outer ones.
func cells(row string) []string {
	var out []string
	start, backslashes := 0, 0
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\':
			backslashes++
			continue
		case row[i] == '|' && backslashes%2 == 0:
			out = append(out, row[start:i])
			start = i + 1
		}
		backslashes = 0
	}
	out = append(out, row[start:])
	if len(out) > 0 && strings.TrimSpace(out[0]) == "" {
		out = out[1:]
	}
	if len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	return out
}

func isDelimiterRow(line string, n int) bool {
	cs := cells(line)
	if !strings.HasPrefix(line, "|") || len(cs) != n {
		return false
	}
	for _, c := range cs {
		if !delimiterCell.MatchString(c) {
			return false
		}
	}
	return true
}
