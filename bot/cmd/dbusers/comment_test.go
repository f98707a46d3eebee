package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

// actionsEnv is the environment GitHub Actions gives the comment step.
func actionsEnv(t *testing.T, f *ghcommenttest.Server) map[string]string {
	t.Helper()
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	payload := fmt.Sprintf(`{"action": "synchronize", "number": %d, "pull_request": {"number": %d, "head": {"ref": "feature"}, "base": {"ref": "main"}}}`, ghcommenttest.PR, ghcommenttest.PR)
	if err := os.WriteFile(event, []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"GITHUB_TOKEN":        ghcommenttest.Token,
		"GITHUB_REPOSITORY":   ghcommenttest.Owner + "/" + ghcommenttest.Repo,
		"GITHUB_EVENT_NAME":   "pull_request",
		"GITHUB_EVENT_PATH":   event,
		"GITHUB_API_URL":      f.URL,
		"GITHUB_STEP_SUMMARY": filepath.Join(dir, "step_summary.md"),
	}
}

func readSummary(t *testing.T, environ map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(environ["GITHUB_STEP_SUMMARY"])
	if err != nil {
		t.Fatalf("step summary: %v", err)
	}
	return string(data)
}

func TestCommentCreatesThenEdits(t *testing.T) {
	r := prRepo(t)
	f := ghcommenttest.NewServer(t)
	human := f.Seed("octocat", "LGTM once the plan is green. dbusers:plan part 1/1")
	environ := actionsEnv(t, f)

	code, stdout, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitOK {
		t.Fatalf("first run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := f.Take().Methods(); got != "GET POST" {
		t.Errorf("first run sent %s, want GET POST", got)
	}
	if !strings.Contains(stderr, "1 created, 0 updated") || !strings.Contains(stderr, "#issuecomment-") {
		t.Errorf("first run stderr: %s", stderr)
	}
	bot := f.BotComments()
	if len(bot) != 1 {
		t.Fatalf("%d bot comments after the first run, want 1", len(bot))
	}
	first := bot[0]
	for _, want := range []string{
		"<!-- dbusers:plan part 1/1 -->",
		"### dbusers plan: 🔴 1 high risk · 3 users change",
		"**Who:** `+henry −frank ~alice`",
		"🔴 ALTER and CREATE ROUTINE on production for alice on prod-orders/orders (role admin)",
		"<summary><b>henry</b>",
		"➖ **frank** (human, frank@acme.example): drop `acme_frank` on ",
	} {
		if !strings.Contains(first.Body, want) {
			t.Errorf("comment lacks %q:\n%s", want, first.Body)
		}
	}
	summary := readSummary(t, environ)
	if !strings.Contains(summary, "### dbusers plan: 🔴 1 high risk · 3 users change") {
		t.Errorf("step summary:\n%s", summary)
	}

	// Another push: the same comment is edited, none is added.
	r.Write(map[string]string{"users/henry.json": ""})
	r.Commit("drop henry again")
	code, _, stderr = planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	if got := f.Take().Methods(); got != "GET PATCH" {
		t.Errorf("second run sent %s, want GET PATCH", got)
	}
	bot = f.BotComments()
	if len(bot) != 1 || bot[0].ID != first.ID {
		t.Fatalf("after the second run: %d bot comments (ids %v), want the first one edited", len(bot), bot)
	}
	if strings.Contains(bot[0].Body, "henry") || !strings.Contains(bot[0].Body, "**Who:** `−frank ~alice`") {
		t.Errorf("edited comment:\n%s", bot[0].Body)
	}
	if n := strings.Count(readSummary(t, environ), "### dbusers plan:"); n != 2 {
		t.Errorf("step summary has %d plans after two runs, want 2 (appended)", n)
	}

	// The same plan again: nothing is sent but the listing.
	if code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir); code != exitOK || !strings.Contains(stderr, "1 unchanged") {
		t.Errorf("third run: exit %d, %s", code, stderr)
	}
	if got := f.Take().Methods(); got != "GET" {
		t.Errorf("an unchanged plan sent %s, want GET", got)
	}

	// The human's comment, which mentions the marker text, is untouched.
	all := f.Comments()
	i := slices.IndexFunc(all, func(c ghcommenttest.Comment) bool { return c.ID == human.ID })
	if i < 0 || all[i].Body != human.Body {
		t.Errorf("the human's comment was changed or deleted")
	}
}

func TestCommentInvalidDeclarations(t *testing.T) {
	r := prRepo(t)
	bob := r.Read("users/bob.json")
	r.Write(map[string]string{"users/bob.json": strings.Replace(bob, `"role": "write"`, `"role": "writer"`, 1)})
	r.Commit("typo")
	f := ghcommenttest.NewServer(t)
	environ := actionsEnv(t, f)

	code, stdout, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitChanges {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitChanges, stdout, stderr)
	}
	if !strings.Contains(stdout, "::error file=users/bob.json,line=8,") || !strings.Contains(stdout, "writer") {
		t.Errorf("no annotation for bob's file on stdout:\n%s", stdout)
	}
	bot := f.BotComments()
	if len(bot) != 1 {
		t.Fatalf("%d bot comments, want 1", len(bot))
	}
	for _, want := range []string{"❌ the declarations do not validate", "| `users/bob.json` | 8 | ❌", "writer"} {
		if !strings.Contains(bot[0].Body, want) {
			t.Errorf("comment lacks %q:\n%s", want, bot[0].Body)
		}
	}
	if !strings.Contains(readSummary(t, environ), "the declarations do not validate") {
		t.Errorf("step summary lacks the errors")
	}

	// Fixed: the same comment now shows the plan.
	r.Write(map[string]string{"users/bob.json": bob})
	r.Commit("fix typo")
	if code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir); code != exitOK {
		t.Fatalf("after the fix: exit %d: %s", code, stderr)
	}
	if bot2 := f.BotComments(); len(bot2) != 1 || bot2[0].ID != bot[0].ID || !strings.Contains(bot2[0].Body, "### dbusers plan: 🔴 1 high risk") {
		t.Errorf("after the fix: %+v", bot2)
	}
}

// TestCommentReadOnlyToken: a fork's pull request gets a read-only token.
// The plan stays in the step summary, a warning says why, and the exit
// status depends on validation alone.
func TestCommentReadOnlyToken(t *testing.T) {
	r := prRepo(t)
	f := ghcommenttest.NewServer(t)
	f.RefuseWrites()
	environ := actionsEnv(t, f)

	code, stdout, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "::warning::") || !strings.Contains(stdout, "read-only") || !strings.Contains(stdout, "step summary") ||
		strings.Count(stdout, "\n") != 1 {
		t.Errorf("want one ::warning:: line on stdout, got:\n%s", stdout)
	}
	if !strings.Contains(readSummary(t, environ), "🔴 ALTER and CREATE ROUTINE on production for alice") {
		t.Errorf("the plan is not in the step summary")
	}
	if len(f.BotComments()) != 0 {
		t.Errorf("a comment was stored despite the 403")
	}

	// Invalid declarations with a read-only token: exit 1, and both the
	// annotations and the warning.
	r.Write(map[string]string{"users/bob.json": strings.Replace(r.Read("users/bob.json"), `"role": "write"`, `"role": "writer"`, 1)})
	code, stdout, _ = planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitChanges || !strings.Contains(stdout, "::error file=users/bob.json") || !strings.Contains(stdout, "::warning::") {
		t.Errorf("invalid + read-only: exit %d, stdout:\n%s", code, stdout)
	}
}

func TestCommentLargePlanSplits(t *testing.T) {
	r := prRepo(t)
	files := map[string]string{}
	for i := range 1500 {
		files[fmt.Sprintf("users/svc%04d.json", i)] = fmt.Sprintf(`{"name": "svc%04d", "owner": "team-data", "kind": "service",
  "auth": {"type": "password", "secret": "dbusers/svc%04d"},
  "access": [{"clusters": ["staging-main", "local"], "databases": ["orders"], "role": "write"}]}
`, i, i)
	}
	r.Write(files)
	r.Commit("1,500 services")
	f := ghcommenttest.NewServer(t)
	environ := actionsEnv(t, f)

	if code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	bot := f.BotComments()
	if len(bot) < 2 {
		t.Fatalf("%d comments for 1,500 new users, want several parts", len(bot))
	}
	for i, c := range bot {
		if n := utf8.RuneCountInString(c.Body); n > ghcomment.GitHubMaxBody {
			t.Errorf("part %d has %d characters", i+1, n)
		}
		if want := fmt.Sprintf("<!-- dbusers:plan part %d/%d -->", i+1, len(bot)); !strings.HasPrefix(c.Body, want) {
			t.Errorf("part %d starts with %.60q, want %s", i+1, c.Body, want)
		}
		if err := ghcommenttest.CheckRenders(c.Body); err != nil {
			t.Errorf("part %d does not render on its own: %v", i+1, err)
		}
	}
	if !strings.Contains(bot[0].Body, "#### Needs a careful review") || !strings.Contains(bot[0].Body, "1503 users change") {
		t.Errorf("the first part lacks the summary and risks")
	}

	// The plan shrinks back to one part: the others are deleted.
	for p := range files {
		files[p] = ""
	}
	r.Write(files)
	r.Commit("no services after all")
	if code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if after := f.BotComments(); len(after) != 1 || after[0].ID != bot[0].ID || !strings.HasPrefix(after[0].Body, "<!-- dbusers:plan part 1/1 -->") {
		t.Errorf("after shrinking: %d comments", len(after))
	}
}

func TestCommentErrors(t *testing.T) {
	r := prRepo(t)
	f := ghcommenttest.NewServer(t)
	full := actionsEnv(t, f)
	without := func(keys ...string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			if !slices.Contains(keys, k) {
				m[k] = v
			}
		}
		return m
	}
	badToken := without()
	badToken["GITHUB_TOKEN"] = "ghs_wrong"

	for _, tc := range []struct {
		name    string
		environ map[string]string
		args    []string
		want    string // in stderr
	}{
		{"no token", without("GITHUB_TOKEN"), nil, "GITHUB_TOKEN is not set"},
		{"no repository", without("GITHUB_REPOSITORY"), nil, "GITHUB_REPOSITORY is not set"},
		{"no event", without("GITHUB_EVENT_PATH"), nil, "GITHUB_EVENT_PATH"},
		{"bad --repo", full, []string{"--repo", "acme"}, "want owner/repo"},
		{"no base", full, []string{"--base", ""}, "--base is required"},
		{"unknown base", full, []string{"--base", "origin/main"}, "unknown revision"},
		{"rejected token", badToken, nil, "rejected the token"},
		{"wrong pull request", full, []string{"--pr", "7"}, "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"comment", "--base", "main", "--root", r.Dir}, tc.args...)
			code, _, stderr := planCLI(t, tc.environ, args...)
			if code != exitError || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitError, tc.want)
			}
		})
	}
	if n := len(f.BotComments()); n != 0 {
		t.Errorf("%d comments posted by failing runs", n)
	}

	// Flags name the pull request when the environment does not.
	environ := without("GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_API_URL")
	code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir,
		"--repo", ghcommenttest.Owner+"/"+ghcommenttest.Repo, "--pr", strconv.Itoa(ghcommenttest.PR), "--api-url", f.URL)
	if code != exitOK || len(f.BotComments()) != 1 {
		t.Errorf("with flags: exit %d, %d comments, stderr %s", code, len(f.BotComments()), stderr)
	}
}

// --author names whose comments are the bot's when the token is a person's:
// that login's marked comment is edited; a forged one by someone else is
// left alone.
func TestCommentAuthor(t *testing.T) {
	r := prRepo(t)
	f := ghcommenttest.NewServer(t)
	own := f.Seed("platform-bot", ghcomment.Marker(ghcomment.DefaultKey, 1, 1)+"\nan older plan")
	forged := f.Seed("mallory", ghcomment.Marker(ghcomment.DefaultKey, 1, 1)+"\nnothing to do")
	environ := actionsEnv(t, f)

	code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir, "--author", "platform-bot")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := f.Take().Methods(); got != "GET PATCH" {
		t.Errorf("sent %s, want GET PATCH (platform-bot's comment edited)", got)
	}
	for _, c := range f.Comments() {
		switch c.ID {
		case own.ID:
			if !strings.Contains(c.Body, "### dbusers plan:") {
				t.Errorf("platform-bot's comment was not edited:\n%s", c.Body)
			}
		case forged.ID:
			if c.Body != forged.Body {
				t.Errorf("mallory's comment was edited:\n%s", c.Body)
			}
		default:
			t.Errorf("unexpected comment %d by %s", c.ID, c.Login)
		}
	}
}
