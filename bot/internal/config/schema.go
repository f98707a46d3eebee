package config

import (
	"embed"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonschema"

	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/jsonpos"
	"github.com/dbusers/dbusers/bot/internal/quote"
)

// The schemas are embedded so the CLI and the Lambda check declarations
// against the rules they were built with, not whatever a pull request puts
// in schema/. They are copies of the repository's schema/ directory (what
// editors use); TestEmbeddedSchemasMatchRepository keeps the two equal.
//
//go:generate sh -c "cp ../../../schema/*.schema.json schema/"
//go:embed schema/*.schema.json
var schemaFS embed.FS

type kind int

// The kinds of declaration file.
const (
	kindSettings kind = iota
	kindCluster
	kindUser
)

var schemaFiles = map[kind]string{
	kindSettings: "schema/settings.schema.json",
	kindCluster:  "schema/cluster.schema.json",
	kindUser:     "schema/user.schema.json",
}

var compiled = sync.OnceValues(func() (map[kind]*gojsonschema.Schema, error) {
	out := map[kind]*gojsonschema.Schema{}
	for k, name := range schemaFiles {
		data, err := schemaFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(data))
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", name, err)
		}
		out[k] = s
	}
	return out, nil
})

// friendly replaces the schema library's generic pattern message for fields
// people get wrong most, keyed by the field's path with array indexes as *.
var friendly = map[kind]map[string]string{
	kindUser: {
		"/name":             "name must be 1 to 31 lowercase letters, digits or _, starting with a letter (it becomes part of a MySQL account name)",
		"/auth/secret":      "secret must be a Secrets Manager ARN or name (letters, digits and /_+=.@-)",
		"/access/*/expires": "expires must be a date written YYYY-MM-DD",
	},
	kindCluster: {
		"/name":         "name must be lowercase letters, digits and -, starting with a letter, at most 63 characters",
		"/account_id":   "account_id must be the 12-digit AWS account id, as a string",
		"/region":       "region must be an AWS region name such as eu-west-1",
		"/databases/*":  "database names may use letters, digits, _, $ and - (at most 64 characters)",
		"/admin_secret": "admin_secret must be a Secrets Manager ARN or name",
		"/plan_secret":  "plan_secret must be a Secrets Manager ARN or name",
		"/environment":  "environment must be lowercase letters, digits and -, starting with a letter",
	},
	kindSettings: {
		"/prefix": "prefix must be 2 to 10 lowercase letters and digits, starting with a letter",
	},
}

// validateSchema checks doc against the schema of kind k and places every
// violation at the value (or, for an unexpected property, the key) it
// concerns.
func validateSchema(src *Source, k kind, data []byte) diag.List {
	schemas, err := compiled()
	if err != nil {
		// The embedded schemas are checked by tests; reaching this is a
		// build defect, reported rather than hidden.
		return diag.List{src.at("", diag.Error, "internal error: %v", err)}
	}
	// The bytes loader decodes once; a Go loader would marshal a decoded
	// document back to JSON and decode it again.
	res, err := schemas[k].Validate(gojsonschema.NewBytesLoader(data))
	if err != nil {
		// jsonpos accepted what encoding/json refuses; report it rather
		// than guess where.
		return diag.List{src.at("", diag.Error, "invalid JSON: %v", err)}
	}
	var out diag.List
	for _, e := range res.Errors() {
		switch e.Type() {
		case "condition_then", "condition_else":
			// "Must validate "then" as "if" was valid" only restates the
			// errors of the branch, which are reported on their own.
			continue
		}
		out = append(out, schemaDiagnostic(src, k, e))
	}
	return out
}

func schemaDiagnostic(src *Source, k kind, e gojsonschema.ResultError) diag.Diagnostic {
	pointer := contextPointer(e.Context())
	field := displayField(pointer)
	msg := e.Description()
	pos := src.Index.Value(pointer)
	switch e.Type() {
	case "additional_property_not_allowed":
		prop, _ := e.Details()["property"].(string)
		pos = src.Index.Key(pointer + jsonpos.Pointer(prop))
		msg = "unknown field " + quote.ASCII(prop)
		if field != "" {
			msg += " in " + field
		}
	case "required":
		prop, _ := e.Details()["property"].(string)
		msg = "missing required field " + quote.ASCII(prop)
		if field != "" {
			msg += " in " + field
		}
	case "pattern":
		if f, ok := friendly[k][wildcardIndexes(pointer)]; ok {
			msg = f
		} else {
			msg = field + ": " + msg
		}
	default:
		if field != "" {
			msg = field + ": " + msg
		}
	}
	return diag.Diagnostic{File: src.Path, Line: pos.Line, Col: pos.Col, Severity: diag.Error, Message: msg}
}

// contextPointer turns the library's "(root).access.0.role" context into a
// JSON pointer. Joining with NUL, which no decoded key of ours can contain
// unescaped, keeps keys that themselves contain "." intact.
func contextPointer(c *gojsonschema.JsonContext) string {
	s := c.String("\x00")
	parts := strings.Split(s, "\x00")
	if len(parts) > 0 && parts[0] == "(root)" {
		parts = parts[1:]
	}
	return jsonpos.Pointer(parts...)
}

// displayField renders a pointer as a person reads it: access[0].role.
func displayField(pointer string) string {
	if pointer == "" {
		return ""
	}
	var b strings.Builder
	for _, seg := range strings.Split(pointer[1:], "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(seg); err == nil {
			b.WriteString("[" + seg + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

func wildcardIndexes(pointer string) string {
	segs := strings.Split(pointer, "/")
	for i, s := range segs {
		if _, err := strconv.Atoi(s); err == nil {
			segs[i] = "*"
		}
	}
	return strings.Join(segs, "/")
}
