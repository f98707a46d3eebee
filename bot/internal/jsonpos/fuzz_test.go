package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse compares Parse's accept/reject decision with encoding/json,
// which then decodes what Parse accepted. Parse must accept exactly the
// documents json.Valid accepts, except that it also rejects, on purpose,
// a key repeated in one object (compared after decoding, as encoding/json
// compares them), nesting deeper than MaxDepth, and invalid UTF-8 inside a
// string (encoding/json silently replaces it). Every rejection is a
// *SyntaxError at a position inside the document; every accepted document
// has each value and key indexed at a byte that can start it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		``, ` `, `0`, `-0.5e+3`, `"x"`, `true`, `nul`, `[]`, `{}`, `[1,2,]`, `{"a":1,}`,
		`{"a": {"b": [1, "two", null, true, false, {"c": -1.5e-3}]}}`,
		`{"a": 1, "a": 2}`, `{"a": 1, "\u0061": 2}`, `{"é": 1, "\u00e9": 2}`,
		`{"\ud83d\ude00": 1, "\ud83d\ude01": 2}`, `{"\ud800": 1, "\udfff": 2}`,
		`{"\/": 1, "/": 2}`, "[\"\xff\"]", "\xff", "\ufeff{}", "{\"a\":\n\"b\nc\"}",
		strings.Repeat("[", 32) + strings.Repeat("]", 32),
		strings.Repeat("[", 33) + strings.Repeat("]", 33),
		strings.Repeat(`{"a":`, 32) + "{}" + strings.Repeat("}", 32),
		`{"a": [1, 2] "b": 3}`, `[01]`, `[1.]`, `[.1]`, `[1e]`, `[-]`, `["\u12"]`, `["\x"]`,
	} {
		f.Add([]byte(s))
	}
	// The repository's own declarations are realistic inputs.
	for _, pattern := range []string{"../../../*.json", "../../../users/*.json", "../../../clusters/*.json"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := Parse(data)
		accept, why := wantAccept(data)
		if (err == nil) != accept {
			t.Fatalf("Parse(%q) = %v; encoding/json says accept=%v (%s)", data, err, accept, why)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %v is not a *SyntaxError", data, err)
			}
			end := PositionAt(data, len(data))
			if se.Line < 1 || se.Col < 1 || se.Line > end.Line || (se.Line == end.Line && se.Col > end.Col) {
				t.Fatalf("Parse(%q) error at %d:%d, outside the document (ends at %d:%d)", data, se.Line, se.Col, end.Line, end.Col)
			}
			if json.Valid(data) && !strings.Contains(se.Msg, "appears twice") &&
				!strings.Contains(se.Msg, "nesting deeper") && !strings.Contains(se.Msg, "invalid UTF-8") {
				t.Fatalf("Parse(%q) rejects valid JSON with %q", data, se.Msg)
			}
			return
		}
		idx.build()
		for ptr, off := range idx.values {
			if off >= len(data) || !strings.ContainsRune(`{["-0123456789tfn`, rune(data[off])) {
				t.Fatalf("value %q indexed at offset %d, which cannot start a value", ptr, off)
			}
		}
		for ptr, off := range idx.keys {
			if off >= len(data) || data[off] != '"' {
				t.Fatalf("key of %q indexed at offset %d, which is not a quote", ptr, off)
			}
			if _, ok := idx.values[ptr]; !ok {
				t.Fatalf("key of %q indexed without its value", ptr)
			}
		}
		if root := idx.values[""]; root != len(data)-len(bytes.TrimLeft(data, " \t\r\n")) {
			t.Fatalf("root indexed at %d", root)
		}
	})
}

// wantAccept decides, with encoding/json alone, whether Parse must accept
// data, and says why not.
func wantAccept(data []byte) (bool, string) {
	if !json.Valid(data) {
		return false, "not valid JSON"
	}
	// In valid JSON, bytes outside strings are ASCII: invalid UTF-8 can
	// only be inside a string.
	if !utf8.Valid(data) {
		return false, "invalid UTF-8 in a string"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object    bool
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true, ""
		}
		if err != nil {
			return false, "token: " + err.Error()
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key := tok.(string)
			if top.keys[key] {
				return false, "duplicate key"
			}
			top.keys[key] = true
			top.expectKey = false
			continue
		}
		if top != nil && top.object {
			top.expectKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			// The array was a value of its parent, already counted.
		}
		if len(stack) > MaxDepth {
			return false, "nesting too deep"
		}
	}
}
