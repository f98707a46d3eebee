package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

// prHeadSHA is the pull request's head commit as the event names it: not
// the merge commit that actions/checkout leaves in the working tree.
const prHeadSHA = "0d15ea5e0d15ea5e0d15ea5e0d15ea5e0d15ea5e"

// runEnv is actionsEnv with the run's identity and an event that names
// the pull request's head commit.
func runEnv(t *testing.T, f *ghcommenttest.Server) map[string]string {
	t.Helper()
	environ := actionsEnv(t, f)
	payload := fmt.Sprintf(`{"action": "synchronize", "number": %d, "pull_request": {"number": %d, "head": {"ref": "feature", "sha": %q}, "base": {"ref": "main"}}}`,
		ghcommenttest.PR, ghcommenttest.PR, prHeadSHA)
	if err := os.WriteFile(environ["GITHUB_EVENT_PATH"], []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	environ["GITHUB_SERVER_URL"] = "https://github.com"
	environ["GITHUB_RUN_ID"] = "9876543210"
	environ["GITHUB_RUN_ATTEMPT"] = "2"
	return environ
}

const runLink = "[workflow run](https://github.com/acme/dbaccess/actions/runs/9876543210/attempts/2)"

// TestCommentFooter: the comment names the pull request's head commit,
// the time and the workflow run, in the footer, and the head commit in
// the line that compares the revisions.
func TestCommentFooter(t *testing.T) {
	r := prRepo(t)
	f := ghcommenttest.NewServer(t)
	if code, stdout, stderr := planCLI(t, runEnv(t, f), "comment", "--base", "main", "--root", r.Dir); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	body := f.BotComments()[0].Body
	for _, want := range []string{
		"→ `working tree` at `" + prHeadSHA[:12] + "`",
		"<sub>dbusers · head " + prHeadSHA + " · made 2026-03-01 09:00 UTC · " + runLink + "</sub>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	if err := ghcommenttest.CheckRenders(body); err != nil {
		t.Errorf("comment does not render: %v", err)
	}

	// With --head, the head is that revision, whatever the event says.
	_, md, _ := planCLI(t, runEnv(t, f), "plan", "--base", "main", "--head", "feature", "--root", r.Dir, "--format", "markdown")
	if want := "head " + r.Git("rev-parse", "feature") + " · "; !strings.Contains(md, want) {
		t.Errorf("plan --head does not name the head commit %q:\n%s", want, md)
	}
}

// expiredJSON is a user whose only access expired before planNow: a
// warning, not an error.
func expiredJSON(name string) string {
	return strings.ReplaceAll(`{
  "$schema": "../schema/user.schema.json",
  "name": "NAME",
  "owner": "NAME@acme.example",
  "kind": "human",
  "access": [
    {"clusters": ["staging-main"], "databases": ["orders"], "role": "read", "expires": "2026-01-31", "reason": "INC-7"}
  ]
}
`, "NAME", name)
}

// TestCommentInvalidShowsTheChangedFilesWarnings: the invalid comment
// lists the errors first, then only the warnings of the files the pull
// request changes, and says how many it leaves out; the workflow
// annotations still carry every problem.
func TestCommentInvalidShowsTheChangedFilesWarnings(t *testing.T) {
	r := prRepo(t)
	// On main before the branch point: olga's stale entry, not the pull
	// request's.
	r.Git("checkout", "-q", "main")
	r.Write(map[string]string{"users/olga.json": expiredJSON("olga")})
	r.Commit("olga, whose access expired")
	r.Git("checkout", "-q", "feature")
	r.Git("merge", "-q", "--no-edit", "main")
	// The pull request: a typo in bob's role, and pete, already expired.
	r.Write(map[string]string{
		"users/bob.json":  strings.Replace(r.Read("users/bob.json"), `"role": "write"`, `"role": "writer"`, 1),
		"users/pete.json": expiredJSON("pete"),
	})
	r.Commit("typo, and pete")
	f := ghcommenttest.NewServer(t)

	code, stdout, stderr := planCLI(t, runEnv(t, f), "comment", "--base", "main", "--root", r.Dir)
	if code != exitChanges {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitChanges, stdout, stderr)
	}
	body := f.BotComments()[0].Body
	for _, want := range []string{
		// bob's error; pete's two warnings and the one of alice's
		// elevation (prRepo's pull request), not olga's two nor those of
		// other files the pull request leaves alone (among them the
		// example clusters' placeholder accounts).
		"1 error(s) and 3 warning(s); fix them",
		"8 warning(s) in files this pull request does not change are not shown.",
		"| `users/pete.json` |",
		runLink,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "olga") {
		t.Errorf("the comment shows a warning of a file the pull request does not change:\n%s", body)
	}
	if i, j := strings.Index(body, "users/bob.json"), strings.Index(body, "users/pete.json"); i < 0 || j < 0 || i > j {
		t.Errorf("the error does not come first:\n%s", body)
	}
	for _, want := range []string{"::error file=users/bob.json", "::warning file=users/olga.json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("annotations lack %q:\n%s", want, stdout)
		}
	}

	// The working tree counts too: an untracked file's warning shows.
	r.Write(map[string]string{"users/quinn.json": expiredJSON("quinn")})
	_, md, _ := planCLI(t, nil, "plan", "--base", "main", "--root", r.Dir, "--format", "markdown")
	if !strings.Contains(md, "| `users/quinn.json` |") || strings.Contains(md, "olga") {
		t.Errorf("plan of the working tree:\n%s", md)
	}
}

func TestRunURL(t *testing.T) {
	base := map[string]string{"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/dbaccess", "GITHUB_RUN_ID": "42"}
	for _, tc := range []struct {
		name string
		set  map[string]string
		want string
	}{
		{"a run", nil, "https://github.com/acme/dbaccess/actions/runs/42"},
		{"a re-run", map[string]string{"GITHUB_RUN_ATTEMPT": "3"}, "https://github.com/acme/dbaccess/actions/runs/42/attempts/3"},
		{"the first attempt", map[string]string{"GITHUB_RUN_ATTEMPT": "1"}, "https://github.com/acme/dbaccess/actions/runs/42"},
		{"GitHub Enterprise", map[string]string{"GITHUB_SERVER_URL": "https://ghe.example/"}, "https://ghe.example/acme/dbaccess/actions/runs/42"},
		{"outside Actions", map[string]string{"GITHUB_RUN_ID": ""}, ""},
		{"not a run id", map[string]string{"GITHUB_RUN_ID": "42) [x](https://evil.example"}, ""},
		{"not a repository", map[string]string{"GITHUB_REPOSITORY": "acme/db access"}, ""},
		{"a path in the repository", map[string]string{"GITHUB_REPOSITORY": "acme/../x"}, ""},
		{"not a web address", map[string]string{"GITHUB_SERVER_URL": "javascript:alert(1)"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			environ := map[string]string{}
			for k, v := range base {
				environ[k] = v
			}
			for k, v := range tc.set {
				environ[k] = v
			}
			if got := runURL(func(k string) string { return environ[k] }); got != tc.want {
				t.Errorf("runURL = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEventHeadSHA: only a commit id from a pull request's event counts.
func TestEventHeadSHA(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ payload, want string }{
		{`{"pull_request": {"head": {"sha": "` + prHeadSHA + `"}}}`, prHeadSHA},
		{`{"pull_request": {"head": {"sha": "main; rm -rf /"}}}`, ""},
		{`{"push": {}}`, ""},
		{`not json`, ""},
	} {
		path := filepath.Join(dir, "event.json")
		if err := os.WriteFile(path, []byte(tc.payload), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := eventHeadSHA(func(k string) string { return map[string]string{"GITHUB_EVENT_PATH": path}[k] }); got != tc.want {
			t.Errorf("eventHeadSHA(%s) = %q, want %q", tc.payload, got, tc.want)
		}
	}
}
