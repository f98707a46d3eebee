package jsonpos

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPositions(t *testing.T) {
	src := `{
  "name": "alice",
  "access": [
    {"clusters": ["a", "b"], "role": "read"},
    {
      "role": "write",
      "expires": null
    }
  ],
  "nested": {"deep": {"x": [1, -2.5e3, true, false, {}]}},
  "a/b": 1, "c~d": 2, "": 3
}`
	idx, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]Position{
		"":                      {1, 1},
		"/name":                 {2, 11},
		"/access":               {3, 13},
		"/access/0":             {4, 5},
		"/access/0/clusters":    {4, 18},
		"/access/0/clusters/0":  {4, 19},
		"/access/0/clusters/1":  {4, 24},
		"/access/0/role":        {4, 38},
		"/access/1":             {5, 5},
		"/access/1/role":        {6, 15},
		"/access/1/expires":     {7, 18},
		"/nested/deep/x/1":      {10, 32},
		"/nested/deep/x/2":      {10, 40},
		"/nested/deep/x/4":      {10, 53},
		"/a~1b":                 {11, 10},
		"/c~0d":                 {11, 20},
		"/":                     {11, 27},
		"/access/0/clusters/2":  {4, 18}, // missing: the nearest ancestor
		"/access/1/reason":      {5, 5},
		"/missing/and/deeper/0": {1, 1},
	}
	for ptr, want := range values {
		if got := idx.Value(ptr); got != want {
			t.Errorf("Value(%q) = %v, want %v", ptr, got, want)
		}
	}
	keys := map[string]Position{
		"/name":             {2, 3},
		"/access/0/role":    {4, 30},
		"/access/1/expires": {7, 7},
		"/a~1b":             {11, 3},
		"/":                 {11, 23},
		// Array elements and the root have no key: their value's position.
		"/access/0/clusters/1": {4, 24},
		"":                     {1, 1},
		// A missing key falls back to the nearest existing value.
		"/access/1/reason": {5, 5},
	}
	for ptr, want := range keys {
		if got := idx.Key(ptr); got != want {
			t.Errorf("Key(%q) = %v, want %v", ptr, got, want)
		}
	}
}

// TestUnicodeColumns: columns count characters, not bytes, so that an editor
// lands on the right character after non-ASCII text; keys with escapes are
// indexed by their decoded value.
func TestUnicodeColumns(t *testing.T) {
	src := "{\"descr\u00efption\": \"Zoë 🚀 ünïcode\", \"x\": 1,\n \"\\u00e9t\\u00e9\": \"\u65e5\u672c\", \"y\": [\"\U0001F600\", 2]}"
	idx, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for ptr, want := range map[string]Position{
		"/descrïption": {1, 17},
		"/x":           {1, 39},
		"/été":         {2, 19},
		"/y/1":         {2, 36},
	} {
		if got := idx.Value(ptr); got != want {
			t.Errorf("Value(%q) = %v, want %v", ptr, got, want)
		}
	}
	if got, want := idx.Key("/été"), (Position{2, 2}); got != want {
		t.Errorf("Key(/été) = %v, want %v", got, want)
	}
}

func TestPositionAt(t *testing.T) {
	src := []byte("ab\r\nç\tx\n\xffz")
	for off, want := range map[int]Position{
		0: {1, 1}, 2: {1, 3}, 3: {1, 4}, 4: {2, 1},
		6:  {2, 2}, // after the two bytes of ç
		7:  {2, 3}, // after the tab: one column
		9:  {3, 1},
		10: {3, 2}, // an invalid byte counts as one column
		11: {3, 3},
		99: {3, 3}, // past the end: the end
	} {
		if got := PositionAt(src, off); got != want {
			t.Errorf("PositionAt(%d) = %v, want %v", off, got, want)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name, src string
		want      SyntaxError
	}{
		{"empty", "", SyntaxError{Position{1, 1}, "unexpected end of file, expected a value"}},
		{"spaces only", " \n\t", SyntaxError{Position{2, 2}, "unexpected end of file, expected a value"}},
		{"missing comma", "{\n  \"a\": 1\n  \"b\": 2\n}", SyntaxError{Position{3, 3}, `unexpected '"', expected ',' or '}'`}},
		{"trailing comma in object", `{"a": 1,}`, SyntaxError{Position{1, 9}, `unexpected '}', expected a quoted key`}},
		{"trailing comma in array", "[1,\n]", SyntaxError{Position{2, 1}, `unexpected ']', expected a value`}},
		{"missing colon", `{"a" 1}`, SyntaxError{Position{1, 6}, `unexpected '1', expected ':' after key "a"`}},
		{"unquoted key", `{a: 1}`, SyntaxError{Position{1, 2}, `unexpected 'a', expected a quoted key`}},
		{"single quotes", `{'a': 1}`, SyntaxError{Position{1, 2}, `unexpected '\'', expected a quoted key`}},
		{"unclosed object", `{"a": 1`, SyntaxError{Position{1, 8}, "unexpected end of file, expected ',' or '}'"}},
		{"unclosed array", `[1, 2`, SyntaxError{Position{1, 6}, "unexpected end of file, expected ',' or ']'"}},
		{"unclosed string", `{"a": "b`, SyntaxError{Position{1, 9}, "unexpected end of file in a string"}},
		{"trailing data", "{}\n{}", SyntaxError{Position{2, 1}, "unexpected '{' after the top-level value"}},
		{"comment", "{} // c", SyntaxError{Position{1, 4}, "unexpected '/' after the top-level value"}},
		{"bad literal", `[tru]`, SyntaxError{Position{1, 2}, "unexpected 't', expected a value"}},
		{"capital literal", `[True]`, SyntaxError{Position{1, 2}, "unexpected 'T', expected a value"}},
		{"leading zero", `[01]`, SyntaxError{Position{1, 3}, "unexpected '1', expected ',' or ']'"}},
		{"lone minus", `[-]`, SyntaxError{Position{1, 3}, "invalid number"}},
		{"bare fraction", `[1.]`, SyntaxError{Position{1, 4}, "invalid number: digits expected after '.'"}},
		{"empty exponent", `[1e+]`, SyntaxError{Position{1, 5}, "invalid number: digits expected in the exponent"}},
		{"leading dot", `[.5]`, SyntaxError{Position{1, 2}, "unexpected '.', expected a value"}},
		{"bad escape", `["a\x"]`, SyntaxError{Position{1, 4}, `invalid escape \x in a string`}},
		{"short unicode escape", `["\u12"]`, SyntaxError{Position{1, 3}, `invalid \u escape in a string`}},
		{"control character", "[\"a\tb\"]", SyntaxError{Position{1, 4}, "control character U+0009 in a string (escape it)"}},
		{"newline in string", "{\"a\":\n \"b\nc\"}", SyntaxError{Position{2, 4}, "control character U+000A in a string (escape it)"}},
		{"invalid UTF-8 in string", "[\"\xff\"]", SyntaxError{Position{1, 3}, "invalid UTF-8 in a string"}},
		{"byte order mark", "\ufeff{}", SyntaxError{Position{1, 1}, `unexpected '\ufeff', expected a value`}},
		{"NUL", "[\x00]", SyntaxError{Position{1, 2}, "unexpected character U+0000, expected a value"}},
		{"column after unicode", `{"é": 1 "ü": 2}`, SyntaxError{Position{1, 9}, `unexpected '"', expected ',' or '}'`}},
		{"duplicate key", "{\n  \"a\": 1,\n  \"b\": {\"a\": 1},\n  \"a\": 2\n}", SyntaxError{Position{4, 3}, `key "a" appears twice in one object`}},
		{"duplicate key by escape", `{"é": 1, "\u00e9": 2}`, SyntaxError{Position{1, 10}, `key "é" appears twice in one object`}},
		{"duplicate surrogate pair", `{"😀": 1, "\ud83d\ude00": 2}`, SyntaxError{Position{1, 10}, `key "😀" appears twice in one object`}},
		{"33 levels", deep(33), SyntaxError{Position{1, 33}, "nesting deeper than 32 levels"}},
		{"33 levels of objects", strings.Repeat(`{"a":`, 32) + "{}" + strings.Repeat("}", 32),
			SyntaxError{Position{1, 161}, "nesting deeper than 32 levels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError", tt.src, err)
			}
			if diff := cmp.Diff(tt.want, *se); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

func TestSyntaxErrorString(t *testing.T) {
	err := &SyntaxError{Position{3, 7}, "boom"}
	if got := err.Error(); got != "3:7: boom" {
		t.Errorf("Error() = %q", got)
	}
}

// TestAccepts: valid JSON that must stay valid, including the edges of the
// limits.
func TestAccepts(t *testing.T) {
	for _, src := range []string{
		`0`, `-0`, `-0.0e-0`, `1E+10`, `"x"`, `true`, `false`, `null`, `[]`, `{}`, ` [ ] `,
		"\r\n{\t}\r\n",
		strings.Repeat("[", 32) + strings.Repeat("]", 32),            // exactly 32 levels
		strings.Repeat("[", 32) + "1" + strings.Repeat("]", 32),      // scalars add no level
		strings.Repeat(`{"a":`, 31) + "[]" + strings.Repeat("}", 31), // 32 with objects
		`{"a": {"a": {"a": 1}}}`,                                     // the same key in different objects
		`{"\ud83d\ude00": 1, "\ud83d\ude01": 2}`,                     // different surrogate pairs
		`{"\/": 1, "/x": 2, "\"": 3, "\u0000": 4, "\b\f\n\r\t": 5}`,
		`["\ud800"]`, // a lone surrogate is valid JSON (decoded as U+FFFD)
	} {
		if _, err := Parse([]byte(src)); err != nil {
			t.Errorf("Parse(%q) = %v", src, err)
		}
		if !json.Valid([]byte(src)) {
			t.Errorf("test bug: %q is not valid JSON", src)
		}
	}
}

func TestPointer(t *testing.T) {
	for _, tt := range []struct {
		segs []string
		want string
	}{
		{nil, ""},
		{[]string{"access", "0", "role"}, "/access/0/role"},
		{[]string{"a/b", "c~d", "~1"}, "/a~1b/c~0d/~01"},
		{[]string{""}, "/"},
	} {
		if got := Pointer(tt.segs...); got != tt.want {
			t.Errorf("Pointer(%q) = %q, want %q", tt.segs, got, tt.want)
		}
	}
}

func TestBefore(t *testing.T) {
	src := `{"a": {"b": [10, 2.50]}, "c": {}}`
	idx, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for offset, want := range map[int]string{
		0:  "",
		1:  "",
		7:  "/a",     // just after the inner '{'
		16: "/a/b/0", // just after 10
		22: "/a/b/1", // just after 2.50
		33: "/c",     // just after the last '{'
		99: "/c",
	} {
		if got := idx.Before(offset); got != want {
			t.Errorf("Before(%d) = %q, want %q", offset, got, want)
		}
	}
}

// TestConcurrentLookups: the index is built on first use; lookups from
// several goroutines share one build (run with -race).
func TestConcurrentLookups(t *testing.T) {
	idx, err := Parse([]byte(`{"a": [1, {"b": 2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := idx.Value("/a/1/b"); got != (Position{1, 17}) {
				t.Errorf("Value = %v", got)
			}
			if got := idx.Key("/a"); got != (Position{1, 2}) {
				t.Errorf("Key = %v", got)
			}
		})
	}
	wg.Wait()
}
