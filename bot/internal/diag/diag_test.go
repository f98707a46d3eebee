package diag

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sample() List {
	return List{
		{File: "users/bob.json", Line: 6, Col: 89, Severity: Warning, Message: "access expired on 2026-02-28"},
		{File: "dbusers.json", Severity: Error, Message: "dbusers.json is missing"},
		{File: "users/alice.json", Line: 6, Col: 67, Severity: Error, Message: `unknown role "reader"`},
		{File: "users/alice.json", Line: 6, Col: 19, Severity: Error, Message: `unknown cluster "prod-order"`},
		{File: "users/alice.json", Line: 10, Col: 1, Severity: Error, Message: "b"},
		{File: "users/alice.json", Line: 6, Col: 19, Severity: Error, Message: "a second problem at the same place"},
		{File: "users/alice.json", Severity: Error, Message: "z: a whole-file problem"},
	}
}

func TestString(t *testing.T) {
	for _, tt := range []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{File: "users/a.json", Line: 3, Col: 7, Severity: Error, Message: "boom"}, "users/a.json:3:7: error: boom"},
		{Diagnostic{File: "users/a.json", Line: 1, Col: 1, Severity: Warning, Message: "hm"}, "users/a.json:1:1: warning: hm"},
		{Diagnostic{File: "users/a.json", Severity: Error, Message: "too big"}, "users/a.json: error: too big"},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// TestSort: by file, line, column, then message; a whole-file problem
// (line 0) comes first in its file; line 10 after line 6 (numeric).
func TestSort(t *testing.T) {
	l := sample()
	l.Sort()
	var got []string
	for _, d := range l {
		got = append(got, d.String())
	}
	want := []string{
		"dbusers.json: error: dbusers.json is missing",
		"users/alice.json: error: z: a whole-file problem",
		"users/alice.json:6:19: error: a second problem at the same place",
		`users/alice.json:6:19: error: unknown cluster "prod-order"`,
		`users/alice.json:6:67: error: unknown role "reader"`,
		"users/alice.json:10:1: error: b",
		"users/bob.json:6:89: warning: access expired on 2026-02-28",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sorted (-want +got):\n%s", diff)
	}
}

func TestCounts(t *testing.T) {
	l := sample()
	if e, w := l.Count(); e != 6 || w != 1 {
		t.Errorf("Count() = %d, %d; want 6, 1", e, w)
	}
	if got := len(l.Errors()); got != 6 {
		t.Errorf("len(Errors()) = %d, want 6", got)
	}
	for _, d := range l.Errors() {
		if d.Severity != Error {
			t.Errorf("Errors() holds %v", d)
		}
	}
	warnings := List{{File: "a", Severity: Warning, Message: "w"}}
	for _, tt := range []struct {
		l                  List
		normal, strictFail bool
	}{
		{nil, false, false},
		{warnings, false, true},
		{l, true, true},
	} {
		if got := tt.l.Failed(false); got != tt.normal {
			t.Errorf("%v.Failed(false) = %v", tt.l, got)
		}
		if got := tt.l.Failed(true); got != tt.strictFail {
			t.Errorf("%v.Failed(true) = %v", tt.l, got)
		}
	}
	if got := warnings.Errors(); got != nil {
		t.Errorf("Errors() of warnings = %v, want nil", got)
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"text", "json", "github"} {
		f, err := ParseFormat(s)
		if err != nil || string(f) != s {
			t.Errorf("ParseFormat(%q) = %q, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "JSON", "sarif", "text "} {
		if _, err := ParseFormat(s); err == nil {
			t.Errorf("ParseFormat(%q) accepted", s)
		}
	}
	_, err := ParseFormat("xml")
	if want := `unknown format "xml" (want text, json or github)`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func write(t *testing.T, l List, f Format) string {
	t.Helper()
	var b bytes.Buffer
	if err := l.Write(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteText(t *testing.T) {
	l := sample()[:3]
	want := "users/bob.json:6:89: warning: access expired on 2026-02-28\n" +
		"dbusers.json: error: dbusers.json is missing\n" +
		"users/alice.json:6:67: error: unknown role \"reader\"\n"
	if diff := cmp.Diff(want, write(t, l, Text)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := write(t, nil, Text); got != "" {
		t.Errorf("empty list wrote %q", got)
	}
}

func TestWriteJSON(t *testing.T) {
	l := sample()
	out := write(t, l, JSON)
	var back List
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if diff := cmp.Diff(l, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	want := `[
  {
    "file": "users/bob.json",
    "line": 6,
    "col": 89,
    "severity": "warning",
    "message": "access expired on 2026-02-28"
  }
]
`
	if diff := cmp.Diff(want, write(t, l[:1], JSON)); diff != "" {
		t.Errorf("field names (-want +got):\n%s", diff)
	}
	// No problems is an empty array, not null, so tools can iterate.
	if got := write(t, nil, JSON); got != "[]\n" {
		t.Errorf("empty list wrote %q, want []", got)
	}
}

func TestWriteGitHub(t *testing.T) {
	l := List{
		{File: "users/alice.json", Line: 6, Col: 67, Severity: Error, Message: `unknown role "reader"`},
		{File: "users/bob.json", Line: 2, Col: 3, Severity: Warning, Message: "expired"},
		{File: "users/big.json", Severity: Error, Message: "file is larger than 1048576 bytes"},
	}
	want := "::error file=users/alice.json,line=6,col=67::unknown role \"reader\"\n" +
		"::warning file=users/bob.json,line=2,col=3::expired\n" +
		"::error file=users/big.json::file is larger than 1048576 bytes\n"
	if diff := cmp.Diff(want, write(t, l, GitHub)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAnnotationEscaping follows @actions/core: in the message %, CR and LF
// are escaped; in properties also ":" and ",", so that a crafted file name
// or message can neither end the command early nor add properties.
func TestAnnotationEscaping(t *testing.T) {
	for _, tt := range []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{File: "users/a.json", Line: 1, Col: 2, Severity: Error, Message: "100% sure\r\nline two: a, b"},
			"::error file=users/a.json,line=1,col=2::100%25 sure%0D%0Aline two: a, b"},
		{Diagnostic{File: "users/a,line=99:x%.json", Line: 1, Col: 2, Severity: Warning, Message: "m"},
			"::warning file=users/a%2Cline=99%3Ax%25.json,line=1,col=2::m"},
		{Diagnostic{File: "users/\nx.json", Severity: Error, Message: "::error::forged"},
			"::error file=users/%0Ax.json::::error::forged"},
		// Already-escaped text is escaped again, not passed through.
		{Diagnostic{File: "a%2C.json", Severity: Error, Message: "%0A"},
			"::error file=a%252C.json::%250A"},
	} {
		got := tt.d.Annotation()
		if got != tt.want {
			t.Errorf("Annotation() = %q, want %q", got, tt.want)
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Errorf("annotation %q spans lines", got)
		}
	}
}

type failingWriter struct{}

var errWrite = errors.New("pipe closed")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteErrors(t *testing.T) {
	for _, f := range []Format{Text, JSON, GitHub} {
		if err := sample().Write(failingWriter{}, f); !errors.Is(err, errWrite) {
			t.Errorf("%s: Write = %v, want %v", f, err, errWrite)
		}
	}
}
