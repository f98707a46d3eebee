package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/diag"
)

// validateNow is the clock of every validate test.
var validateNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// runValidateArgs runs the CLI in-process and returns its exit code and
// output.
func runValidateArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: func() time.Time { return validateNow },
		getenv: func(string) string { return "" }}
	code = run(context.Background(), e, args)
	return code, out.String(), errOut.String()
}

// validRepo is a small valid repository; tests change files of it.
func validRepo() map[string]string {
	return map[string]string{
		"dbusers.json": `{
  "prefix": "acme",
  "removal_limit": {"count": 5, "fraction": 0.2},
  "ssm": {"parameter": "/dbusers/config"},
  "aws": {"management_role": "dbusers-management"}
}
`,
		"clusters/prod-orders.json": `{
  "name": "prod-orders",
  "environment": "prod",
  "account_id": "210987654321",
  "region": "eu-west-1",
  "endpoint": "prod-orders.cluster-abc.eu-west-1.rds.amazonaws.com",
  "engine": "aurora-mysql-3",
  "admin_secret": "dbusers/prod-orders/admin",
  "databases": ["orders", "payments"]
}
`,
		"users/alice.json": `{
  "name": "alice",
  "owner": "alice@acme.example",
  "kind": "human",
  "access": [
    {"clusters": ["prod-orders"], "databases": ["orders"], "role": "read"}
  ]
}
`,
	}
}

// writeRepo writes files into a new temporary directory and returns it.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, s := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// brokenRepo has two errors in two files and a warning.
func brokenRepo(t *testing.T) string {
	files := validRepo()
	files["users/alice.json"] = `{
  "name": "alice",
  "owner": "alice@acme.example",
  "kind": "human",
  "access": [
    {"clusters": ["prod-orders"], "databases": ["orders"], "role": "reader"},
    {"clusters": ["prod-orders"], "databases": ["payments"], "role": "read", "expires": "2026-02-01"}
  ]
}
`
	files["users/bob.json"] = "{\n  \"name\": \"bob\",\n  \"owner\": \"bob@acme.example\"\n  \"kind\": \"human\"\n}\n"
	return writeRepo(t, files)
}

// warningRepo has only a warning: a trusted_admin grant.
func warningRepo(t *testing.T) string {
	files := validRepo()
	files["users/alice.json"] = strings.Replace(files["users/alice.json"], `"role": "read"`, `"role": "trusted_admin"`, 1)
	return writeRepo(t, files)
}

func TestValidateExitCodes(t *testing.T) {
	valid := writeRepo(t, validRepo())
	broken := brokenRepo(t)
	warnings := warningRepo(t)
	notDir := filepath.Join(valid, "dbusers.json")
	settingsDir := validRepo()
	delete(settingsDir, "dbusers.json")
	settingsDir["dbusers.json/README"] = "a directory where a file belongs"
	settingsIsDir := writeRepo(t, settingsDir)

	tests := []struct {
		name       string
		args       []string
		want       int
		wantStderr string // a substring of stderr
	}{
		{"valid", []string{"--root", valid}, exitOK, "0 error(s), 0 warning(s) in 1 cluster(s) and 1 user(s)\n"},
		{"errors", []string{"--root", broken}, exitChanges, "2 error(s), 1 warning(s) in 1 cluster(s) and 1 user(s)\n"},
		{"warnings only", []string{"--root", warnings}, exitOK, "0 error(s), 1 warning(s)"},
		{"warnings only, strict", []string{"--root", warnings, "--strict"}, exitChanges, "0 error(s), 1 warning(s)"},
		{"valid, strict", []string{"--strict", "--root", valid}, exitOK, "0 error(s), 0 warning(s)"},
		{"errors, json", []string{"--root", broken, "--format", "json"}, exitChanges, ""},
		{"errors, github", []string{"--root", broken, "--format=github"}, exitChanges, "2 error(s)"},
		{"bad flag", []string{"--rot", valid}, exitError, "flag provided but not defined: -rot"},
		{"bad flag value", []string{"--strict=maybe", "--root", valid}, exitError, "invalid boolean value"},
		{"unknown format", []string{"--root", valid, "--format", "sarif"}, exitError, `unknown format "sarif" (want text, json or github)`},
		{"extra argument", []string{"--root", valid, "users/alice.json"}, exitError, `unexpected argument "users/alice.json"`},
		{"missing root", []string{"--root", filepath.Join(valid, "nope")}, exitError, "no such file or directory"},
		{"root is a file", []string{"--root", notDir}, exitError, "is not a directory"},
		// A problem in the declarations, reported with the others, not an
		// I/O error that stops the run.
		{"dbusers.json is a directory", []string{"--root", settingsIsDir}, exitChanges, "1 error(s), 0 warning(s) in 1 cluster(s) and 1 user(s)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runValidateArgs(t, append([]string{"validate"}, tt.args...)...)
			if code != tt.want {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.want, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantStderr, stderr)
			}
			if tt.want == exitError && stdout != "" {
				t.Errorf("a failed command wrote to stdout:\n%s", stdout)
			}
		})
	}
}

// TestValidateWarnsOfPlaceholderAccounts: a cluster copied from the
// examples, still in a placeholder account, is a warning on the pull
// request (an error under --strict) rather than a failed publish after the
// merge.
func TestValidateWarnsOfPlaceholderAccounts(t *testing.T) {
	for _, id := range []string{"111111111111", "999999999999", "123456789012"} {
		files := validRepo()
		files["clusters/prod-orders.json"] = strings.Replace(files["clusters/prod-orders.json"], "210987654321", id, 1)
		dir := writeRepo(t, files)
		code, stdout, stderr := runValidateArgs(t, "validate", "--root", dir)
		want := "clusters/prod-orders.json:4:17: warning: account_id " + id + " is a placeholder, as in the example declarations: " +
			"publish refuses to publish this cluster; put the cluster's own account id here\n"
		if code != exitOK || stdout != want || !strings.Contains(stderr, "0 error(s), 1 warning(s)") {
			t.Errorf("%s: exit %d\nstdout: %q\nwant:   %q\nstderr: %s", id, code, stdout, want, stderr)
		}
		if code, _, _ := runValidateArgs(t, "validate", "--strict", "--root", dir); code != exitChanges {
			t.Errorf("%s: --strict exit %d, want %d", id, code, exitChanges)
		}
	}
	// The examples the demo and the tests run on are in placeholder
	// accounts, and say so.
	code, stdout, _ := runValidateArgs(t, "validate", "--root", filepath.Join("..", "..", "..", "examples", "acme"))
	if code != exitOK || strings.Count(stdout, "is a placeholder") == 0 {
		t.Errorf("examples/acme: exit %d, no placeholder warning:\n%s", code, stdout)
	}
}

func TestValidateText(t *testing.T) {
	code, stdout, stderr := runValidateArgs(t, "validate", "--root", brokenRepo(t))
	if code != exitChanges {
		t.Errorf("exit code = %d, want %d", code, exitChanges)
	}
	want := `users/alice.json:6:68: error: unknown role "reader" (known: admin, read, trusted_admin, write)
users/alice.json:7:89: warning: access expired on 2026-02-01: it grants nothing and will be revoked; remove the entry
users/bob.json:4:3: error: invalid JSON: unexpected '"', expected ',' or '}'
`
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if want := "2 error(s), 1 warning(s) in 1 cluster(s) and 1 user(s)\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

// TestValidateRefusesLinks: a declaration that is a symbolic link (here to
// a file outside the repository, which holds invalid JSON) is one error at
// its path, printed with every other problem, and fails validation; the
// file it points at is never read.
func TestValidateRefusesLinks(t *testing.T) {
	root := brokenRepo(t)
	outside := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(outside, []byte("{\"name\": \"zed\",\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "users", "zed.json")); err != nil {
		t.Fatal(err)
	}
	const notFollowed = "zed.json is a symbolic link and was not followed: declarations are read only from regular files " +
		"in the repository, whose content a reviewer sees in the pull request; put the file itself here"

	code, stdout, stderr := runValidateArgs(t, "validate", "--root", root)
	if code != exitChanges {
		t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, exitChanges, stderr)
	}
	want := `users/alice.json:6:68: error: unknown role "reader" (known: admin, read, trusted_admin, write)
users/alice.json:7:89: warning: access expired on 2026-02-01: it grants nothing and will be revoked; remove the entry
users/bob.json:4:3: error: invalid JSON: unexpected '"', expected ',' or '}'
users/zed.json: error: ` + notFollowed + "\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if want := "3 error(s), 1 warning(s) in 1 cluster(s) and 1 user(s)\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}

	// In a pull request the error is an annotation on the link's path.
	_, stdout, _ = runValidateArgs(t, "validate", "--root", root, "--format", "github")
	if want := "::error file=users/zed.json::" + notFollowed + "\n"; !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
}

func TestValidateGitHub(t *testing.T) {
	_, stdout, _ := runValidateArgs(t, "validate", "--root", brokenRepo(t), "--format", "github")
	want := `::error file=users/alice.json,line=6,col=68::unknown role "reader" (known: admin, read, trusted_admin, write)
::warning file=users/alice.json,line=7,col=89::access expired on 2026-02-01: it grants nothing and will be revoked; remove the entry
::error file=users/bob.json,line=4,col=3::invalid JSON: unexpected '"', expected ',' or '}'
`
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
}

func TestValidateJSON(t *testing.T) {
	code, stdout, stderr := runValidateArgs(t, "validate", "--root", brokenRepo(t), "--format", "json")
	if code != exitChanges {
		t.Errorf("exit code = %d, want %d", code, exitChanges)
	}
	var out struct {
		Version  string    `json:"dbusers_version"`
		Valid    bool      `json:"valid"`
		Errors   int       `json:"errors"`
		Warnings int       `json:"warnings"`
		Diags    diag.List `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if out.Version == "" || out.Valid || out.Errors != 2 || out.Warnings != 1 {
		t.Errorf("version %q, valid %v, %d error(s), %d warning(s)", out.Version, out.Valid, out.Errors, out.Warnings)
	}
	got := out.Diags
	want := diag.List{
		{File: "users/alice.json", Line: 6, Col: 68, Severity: diag.Error, Message: `unknown role "reader" (known: admin, read, trusted_admin, write)`},
		{File: "users/alice.json", Line: 7, Col: 89, Severity: diag.Warning, Message: "access expired on 2026-02-01: it grants nothing and will be revoked; remove the entry"},
		{File: "users/bob.json", Line: 4, Col: 3, Severity: diag.Error, Message: `invalid JSON: unexpected '"', expected ',' or '}'`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	// stdout is for machines: the summary stays off both streams.
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing", stderr)
	}
	// A valid repository has an empty list, not null.
	_, stdout, _ = runValidateArgs(t, "validate", "--root", writeRepo(t, validRepo()), "--format", "json")
	if !strings.Contains(stdout, `"valid": true`) || !strings.Contains(stdout, `"diagnostics": []`) {
		t.Errorf("valid repository, json: stdout = %q", stdout)
	}
}

// TestValidateRepository: the repository's own declarations (whatever a
// fork has put there: upstream ships none, only dbusers.json) and the
// examples must stay valid.
func TestValidateRepository(t *testing.T) {
	for _, root := range []string{"../../..", "../../../examples/acme"} {
		code, stdout, stderr := runValidateArgs(t, "validate", "--root", root)
		if code != exitOK {
			t.Fatalf("%s: exit code = %d, want 0\nstdout:\n%s\nstderr:\n%s", root, code, stdout, stderr)
		}
		if strings.Contains(stdout, ": error: ") || !strings.HasPrefix(stderr, "0 error(s), ") {
			t.Errorf("%s has errors:\n%s%s", root, stdout, stderr)
		}
	}
}

func TestRunDispatch(t *testing.T) {
	for _, tt := range []struct {
		args       []string
		want       int
		wantStderr string
	}{
		{nil, exitError, "usage: dbusers <command>"},
		{[]string{"frobnicate"}, exitError, `unknown command "frobnicate"`},
		{[]string{"valdate"}, exitError, `unknown command "valdate" (did you mean "validate"?)`},
	} {
		code, _, stderr := runValidateArgs(t, tt.args...)
		if code != tt.want || !strings.Contains(stderr, tt.wantStderr) {
			t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.want, tt.wantStderr)
		}
	}
}
