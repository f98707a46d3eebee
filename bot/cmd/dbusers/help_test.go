package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

var updateHelp = flag.Bool("update-help", false, "rewrite testdata/help/*.txt")

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: time.Now, getenv: func(string) string { return "" }}
	return run(context.Background(), e, args), out.String(), errOut.String()
}

// TestHelpGoesToStdout: asked for, help is output (stdout, exit 0), so
// that "dbusers plan -h | less" shows it; every command's usage line and
// flags are golden, so a change to them is seen in review.
func TestHelpGoesToStdout(t *testing.T) {
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			code, stdout, stderr := cli(t, args...)
			if c.name == "version" {
				continue // takes no flags
			}
			if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "usage: dbusers "+c.name) {
				t.Errorf("%v: exit %d, stdout %.60q, stderr %q", args, code, stdout, stderr)
			}
		}
		if c.name == "version" {
			continue
		}
		_, stdout, _ := cli(t, c.name, "-h")
		path := filepath.Join("testdata", "help", c.name+".txt")
		if *updateHelp {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update-help)", err)
		}
		if stdout != string(want) {
			t.Errorf("dbusers %s -h changed (go test -update-help rewrites it):\n%s", c.name, stdout)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, stdout, stderr := cli(t, args...)
		if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "usage: dbusers <command>") {
			t.Errorf("%v: exit %d, stdout %.60q, stderr %q", args, code, stdout, stderr)
		}
	}
	// No command at all is a mistake: usage on stderr, exit 2.
	if code, stdout, stderr := cli(t); code != exitError || stdout != "" || !strings.HasPrefix(stderr, "usage: dbusers <command>") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %.60q", code, stdout, stderr)
	}
}

func TestDidYouMean(t *testing.T) {
	code, _, stderr := cli(t, "plan", "--bse", "main")
	if code != exitError || !strings.Contains(stderr, `--bse is not a flag (did you mean "base"?)`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, "reconcil")
	if code != exitError || !strings.Contains(stderr, `unknown command "reconcil" (did you mean "reconcile"?)`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, "plan", "--zzzzzzzzzz")
	if code != exitError || strings.Contains(stderr, "did you mean") {
		t.Errorf("a far-off flag got a suggestion: %q", stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := cli(t, args...)
		if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "dbusers ") || !strings.Contains(stdout, "go1.") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-04T03:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionString(info, true), "dbusers v1.4.0 (commit 0123456789ab, 2026-12-04T03:00:00Z, modified) go1.26.8"; got != want {
		t.Errorf("versionString = %q, want %q", got, want)
	}
	if got := versionString(nil, false); got != "dbusers (no build information)" {
		t.Errorf("without build info: %q", got)
	}
	if code, _, stderr := cli(t, "version", "extra"); code != exitError || !strings.Contains(stderr, "unexpected argument") {
		t.Errorf("version extra: exit %d, %q", code, stderr)
	}
}

// TestUsageLineNamesEveryFlag: the first line of each command's help names
// every flag it takes.
func TestUsageLineNamesEveryFlag(t *testing.T) {
	for _, c := range commands() {
		if c.name == "version" {
			continue
		}
		_, stdout, _ := cli(t, c.name, "-h")
		first, rest, _ := strings.Cut(stdout, "\n")
		for _, line := range strings.Split(rest, "\n") {
			name, ok := strings.CutPrefix(line, "  -")
			if !ok {
				continue
			}
			name, _, _ = strings.Cut(name, " ")
			if !strings.Contains(first, "--"+name) {
				t.Errorf("dbusers %s: the usage line does not name --%s: %s", c.name, name, first)
			}
		}
	}
}

// TestAdminSQLSecretFile: the password comes from the secret's JSON, never
// typed, escaped as a literal; a mismatched user and a bad file are
// refused without quoting the file.
func TestAdminSQLSecretFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "admin.json")
	if err := os.WriteFile(secret, []byte(`{"username": "dbusers_admin", "password": "it's \\ secret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "admin-sql", "--root", "../../../examples/acme", "--cluster", "prod-orders", "--secret-file", secret)
	if code != exitOK || !strings.Contains(stdout, `CREATE USER IF NOT EXISTS 'dbusers_admin'@'%' IDENTIFIED BY 'it''s \\ secret' REQUIRE SSL;`) ||
		strings.Contains(stdout, "<password from") {
		t.Errorf("exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	code, stdout, _ = cli(t, "admin-sql", "--root", "../../../examples/acme", "--cluster", "prod-orders", "--plan", "--secret-file", secret)
	if code != exitOK || !strings.Contains(stdout, `CREATE USER IF NOT EXISTS 'dbusers_admin'@'%' IDENTIFIED BY 'it''s \\ secret'`) {
		t.Errorf("--plan: exit %d\n%s", code, stdout)
	}
	if code, _, stderr = cli(t, "admin-sql", "--root", "../../../examples/acme", "--cluster", "prod-orders", "--secret-file", secret, "--user", "other"); code != exitError ||
		!strings.Contains(stderr, "the secret's username is dbusers_admin") {
		t.Errorf("mismatched user: exit %d, %q", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`{"password": "hunter2"`), 0o600)
	if code, _, stderr = cli(t, "admin-sql", "--root", "../../../examples/acme", "--cluster", "prod-orders", "--secret-file", bad); code != exitError || strings.Contains(stderr, "hunter2") {
		t.Errorf("bad file: exit %d, %q", code, stderr)
	}
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(`{"username": "dbusers_admin", "password": "from-stdin"}`), now: time.Now,
		getenv: func(string) string { return "" }}
	if code := run(context.Background(), e, []string{"admin-sql", "--root", "../../../examples/acme", "--cluster", "prod-orders", "--secret-file", "-"}); code != exitOK ||
		!strings.Contains(out.String(), "'from-stdin'") {
		t.Errorf("stdin: exit %d, %s", code, errOut.String())
	}
}

// TestJSONSaysWhichDbusers: every JSON output starts with the dbusers that
// made it.
func TestJSONSaysWhichDbusers(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "--root", "../../../examples/acme", "--format", "json"},
		{"access", "--root", "../../../examples/acme", "--user", "erin", "--format", "json"},
		{"access", "--root", "../../../examples/acme", "--cluster", "local", "--format", "json"},
	} {
		_, stdout, stderr := cli(t, args...)
		var head struct {
			Version string `json:"dbusers_version"`
		}
		if err := json.Unmarshal([]byte(stdout), &head); err != nil || head.Version == "" {
			t.Errorf("%v: %v, dbusers_version %q\n%s", args, err, head.Version, stderr)
		}
	}
}

// TestEveryFlagDocumented: docs/reference.md's section of each command
// (a "## " title that names "`dbusers NAME`") names every flag the command takes, so that a new
// flag cannot land undocumented. --root and --dsn, which several commands
// share, are documented once, among the conventions of every command.
func TestEveryFlagDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, part := range strings.Split(string(data), "\n## ")[1:] {
		title, body, _ := strings.Cut(part, "\n")
		if title == "Conventions of every command" {
			sections["conventions"] = body
		}
		for _, piece := range strings.Split(title, "`dbusers ")[1:] {
			name, _, _ := strings.Cut(piece, "`")
			sections[name] = body
		}
	}
	for _, c := range commands() {
		if c.name == "version" || c.name == "help" {
			continue
		}
		body, ok := sections[c.name]
		if !ok {
			t.Errorf("docs/reference.md has no section \"## `dbusers %s`\"", c.name)
			continue
		}
		_, help, _ := cli(t, c.name, "-h")
		for _, line := range strings.Split(help, "\n") {
			if !strings.HasPrefix(line, "  -") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "  -"), " ")
			if shared := sections["conventions"]; (name == "root" || name == "dsn") && strings.Contains(shared, "`--"+name+" ") {
				continue
			}
			if !strings.Contains(body, "--"+name) {
				t.Errorf("docs/reference.md, dbusers %s: flag --%s is not documented", c.name, name)
			}
		}
	}
}
