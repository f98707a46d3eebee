package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dbusers/dbusers/bot/internal/ghcomment"
)

// fakeGitHub serves the issue-comment endpoints of one pull request under
// /api/v3/, as GitHub Enterprise Server does and as ghcomment expects for
// any API URL other than github.com's, with the JSON shapes go-github v60
// reads. It is a trimmed copy of the fake in ghcomment's tests.
type fakeGitHub struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	comments []fakeComment
	nextID   int64
	clock    time.Time
	requests []string // "METHOD /path", without /api/v3
	// refuseWrites answers creates, edits and deletes with the 403 that a
	// fork's read-only GITHUB_TOKEN gets.
	refuseWrites bool
}

type fakeComment struct {
	ID      int64
	Login   string
	Body    string
	Created time.Time
	Updated time.Time
}

const (
	ghOwner = "acme"
	ghRepo  = "dbaccess"
	ghPR    = 42
	ghToken = "ghs_commenttesttoken"
	ghBot   = "github-actions[bot]"
)

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{t: t, nextID: 2_000_000_000, clock: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	mux := http.NewServeMux()
	prefix := "/api/v3/repos/{owner}/{repo}/issues/"
	mux.HandleFunc("GET "+prefix+"{number}/comments", f.list)
	mux.HandleFunc("POST "+prefix+"{number}/comments", f.create)
	mux.HandleFunc("PATCH "+prefix+"comments/{id}", f.edit)
	mux.HandleFunc("DELETE "+prefix+"comments/{id}", f.delete)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/api/v3"))
		refuse := f.refuseWrites && r.Method != http.MethodGet
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "999")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		switch {
		case r.Header.Get("Authorization") != "Bearer "+ghToken:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}`)
		case refuse:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment"}`)
		case r.PathValue("owner") != "" && (r.PathValue("owner") != ghOwner || r.PathValue("repo") != ghRepo):
			f.notFound(w)
		default:
			mux.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) notFound(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, `{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}`)
}

func (f *fakeGitHub) render(c fakeComment) map[string]any {
	api := fmt.Sprintf("%s/api/v3/repos/%s/%s", f.srv.URL, ghOwner, ghRepo)
	userType := "Bot"
	if c.Login != ghBot {
		userType = "User"
	}
	return map[string]any{
		"id":                 c.ID,
		"node_id":            fmt.Sprintf("IC_kwDO%d", c.ID),
		"url":                fmt.Sprintf("%s/issues/comments/%d", api, c.ID),
		"html_url":           fmt.Sprintf("https://github.example.com/%s/%s/pull/%d#issuecomment-%d", ghOwner, ghRepo, ghPR, c.ID),
		"issue_url":          fmt.Sprintf("%s/issues/%d", api, ghPR),
		"body":               c.Body,
		"user":               map[string]any{"login": c.Login, "id": 41898282, "type": userType},
		"created_at":         c.Created.Format(time.RFC3339),
		"updated_at":         c.Updated.Format(time.RFC3339),
		"author_association": "NONE",
	}
}

func (f *fakeGitHub) writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		f.t.Error(err)
	}
}

func (f *fakeGitHub) list(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("number") != strconv.Itoa(ghPR) {
		f.notFound(w)
		return
	}
	perPage, page := 30, 1
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	f.mu.Lock()
	all := slices.Clone(f.comments)
	f.mu.Unlock()
	lo, hi := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
	out := []map[string]any{}
	for _, c := range all[lo:hi] {
		out = append(out, f.render(c))
	}
	if hi < len(all) {
		w.Header().Set("Link", fmt.Sprintf(`<%s/api/v3/repositories/1/issues/%d/comments?per_page=%d&page=%d>; rel="next"`,
			f.srv.URL, ghPR, perPage, page+1))
	}
	f.writeJSON(w, http.StatusOK, out)
}

// body decodes {"body": "..."} and enforces GitHub's size limit.
func (f *fakeGitHub) body(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == nil {
		f.t.Errorf("%s %s: want {\"body\": string}: %v", r.Method, r.URL.Path, err)
		w.WriteHeader(http.StatusBadRequest)
		return "", false
	}
	if n := utf8.RuneCountInString(*in.Body); n > ghcomment.GitHubMaxBody {
		f.t.Errorf("%s %s: comment of %d characters, over GitHub's limit", r.Method, r.URL.Path, n)
		f.writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return "", false
	}
	return *in.Body, true
}

func (f *fakeGitHub) add(login, body string) fakeComment {
	f.nextID++
	f.clock = f.clock.Add(time.Minute)
	c := fakeComment{ID: f.nextID, Login: login, Body: body, Created: f.clock, Updated: f.clock}
	f.comments = append(f.comments, c)
	return c
}

func (f *fakeGitHub) create(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("number") != strconv.Itoa(ghPR) {
		f.notFound(w)
		return
	}
	body, ok := f.body(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	c := f.add(ghBot, body)
	f.mu.Unlock()
	f.writeJSON(w, http.StatusCreated, f.render(c))
}

func (f *fakeGitHub) index(r *http.Request) int {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return -1
	}
	return slices.IndexFunc(f.comments, func(c fakeComment) bool { return c.ID == id })
}

func (f *fakeGitHub) edit(w http.ResponseWriter, r *http.Request) {
	body, ok := f.body(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	i := f.index(r)
	var c fakeComment
	if i >= 0 {
		f.clock = f.clock.Add(time.Minute)
		f.comments[i].Body, f.comments[i].Updated = body, f.clock
		c = f.comments[i]
	}
	f.mu.Unlock()
	if i < 0 {
		f.notFound(w)
		return
	}
	f.writeJSON(w, http.StatusOK, f.render(c))
}

func (f *fakeGitHub) delete(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	i := f.index(r)
	if i >= 0 {
		f.comments = slices.Delete(f.comments, i, i+1)
	}
	f.mu.Unlock()
	if i < 0 {
		f.notFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bot returns the bodies of the bot's comments, oldest first.
func (f *fakeGitHub) bot() []fakeComment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeComment
	for _, c := range f.comments {
		if c.Login == ghBot {
			out = append(out, c)
		}
	}
	return out
}

// take returns the methods of the requests since the last take.
func (f *fakeGitHub) take() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m []string
	for _, r := range f.requests {
		m = append(m, strings.Fields(r)[0])
	}
	f.requests = nil
	return strings.Join(m, " ")
}

// actionsEnv is the environment GitHub Actions gives the comment step.
func actionsEnv(t *testing.T, f *fakeGitHub) map[string]string {
	t.Helper()
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	payload := fmt.Sprintf(`{"action": "synchronize", "number": %d, "pull_request": {"number": %d, "head": {"ref": "feature"}, "base": {"ref": "main"}}}`, ghPR, ghPR)
	if err := os.WriteFile(event, []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"GITHUB_TOKEN":        ghToken,
		"GITHUB_REPOSITORY":   ghOwner + "/" + ghRepo,
		"GITHUB_EVENT_NAME":   "pull_request",
		"GITHUB_EVENT_PATH":   event,
		"GITHUB_API_URL":      f.srv.URL,
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
	f := newFakeGitHub(t)
	f.mu.Lock()
	human := f.add("octocat", "LGTM once the plan is green. dbusers:plan part 1/1")
	f.mu.Unlock()
	environ := actionsEnv(t, f)

	code, stdout, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitOK {
		t.Fatalf("first run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := f.take(); got != "GET POST" {
		t.Errorf("first run sent %s, want GET POST", got)
	}
	if !strings.Contains(stderr, "1 created, 0 updated") || !strings.Contains(stderr, "#issuecomment-") {
		t.Errorf("first run stderr: %s", stderr)
	}
	bot := f.bot()
	if len(bot) != 1 {
		t.Fatalf("%d bot comments after the first run, want 1", len(bot))
	}
	first := bot[0]
	for _, want := range []string{
		"<!-- dbusers:plan part 1/1 -->",
		"### dbusers plan: users: 1 added, 1 removed, 1 changed",
		"🔴 admin on production for alice on prod-orders/orders",
		"<summary><b>henry</b>",
		"<summary><b>frank</b>",
	} {
		if !strings.Contains(first.Body, want) {
			t.Errorf("comment lacks %q:\n%s", want, first.Body)
		}
	}
	summary := readSummary(t, environ)
	if !strings.Contains(summary, "### dbusers plan: users: 1 added, 1 removed, 1 changed") {
		t.Errorf("step summary:\n%s", summary)
	}

	// Another push: the same comment is edited, none is added.
	r.Write(map[string]string{"users/henry.json": ""})
	r.Commit("drop henry again")
	code, _, stderr = planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	if got := f.take(); got != "GET PATCH" {
		t.Errorf("second run sent %s, want GET PATCH", got)
	}
	bot = f.bot()
	if len(bot) != 1 || bot[0].ID != first.ID {
		t.Fatalf("after the second run: %d bot comments (ids %v), want the first one edited", len(bot), bot)
	}
	if strings.Contains(bot[0].Body, "henry") || !strings.Contains(bot[0].Body, "users: 1 removed, 1 changed") {
		t.Errorf("edited comment:\n%s", bot[0].Body)
	}
	if n := strings.Count(readSummary(t, environ), "### dbusers plan:"); n != 2 {
		t.Errorf("step summary has %d plans after two runs, want 2 (appended)", n)
	}

	// The same plan again: nothing is sent but the listing.
	if code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir); code != exitOK || !strings.Contains(stderr, "1 unchanged") {
		t.Errorf("third run: exit %d, %s", code, stderr)
	}
	if got := f.take(); got != "GET" {
		t.Errorf("an unchanged plan sent %s, want GET", got)
	}

	// The human's comment, which mentions the marker text, is untouched.
	f.mu.Lock()
	i := slices.IndexFunc(f.comments, func(c fakeComment) bool { return c.ID == human.ID })
	f.mu.Unlock()
	if i < 0 || f.comments[i].Body != human.Body {
		t.Errorf("the human's comment was changed or deleted")
	}
}

func TestCommentInvalidDeclarations(t *testing.T) {
	r := prRepo(t)
	bob := r.Read("users/bob.json")
	r.Write(map[string]string{"users/bob.json": strings.Replace(bob, `"role": "write"`, `"role": "writer"`, 1)})
	r.Commit("typo")
	f := newFakeGitHub(t)
	environ := actionsEnv(t, f)

	code, stdout, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitChanges {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitChanges, stdout, stderr)
	}
	if !strings.Contains(stdout, "::error file=users/bob.json,line=8,") || !strings.Contains(stdout, "writer") {
		t.Errorf("no annotation for bob's file on stdout:\n%s", stdout)
	}
	bot := f.bot()
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
	if bot2 := f.bot(); len(bot2) != 1 || bot2[0].ID != bot[0].ID || !strings.Contains(bot2[0].Body, "### dbusers plan: users:") {
		t.Errorf("after the fix: %+v", bot2)
	}
}

// TestCommentReadOnlyToken: a fork's pull request gets a read-only token.
// The plan stays in the step summary, a warning says why, and the exit
// status depends on validation alone.
func TestCommentReadOnlyToken(t *testing.T) {
	r := prRepo(t)
	f := newFakeGitHub(t)
	f.refuseWrites = true
	environ := actionsEnv(t, f)

	code, stdout, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "::warning::") || !strings.Contains(stdout, "read-only") || !strings.Contains(stdout, "step summary") ||
		strings.Count(stdout, "\n") != 1 {
		t.Errorf("want one ::warning:: line on stdout, got:\n%s", stdout)
	}
	if !strings.Contains(readSummary(t, environ), "🔴 admin on production for alice") {
		t.Errorf("the plan is not in the step summary")
	}
	if len(f.bot()) != 0 {
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
	f := newFakeGitHub(t)
	environ := actionsEnv(t, f)

	if code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	bot := f.bot()
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
	}
	if !strings.Contains(bot[0].Body, "#### Needs a careful review") || !strings.Contains(bot[0].Body, "users: 1501 added") {
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
	if after := f.bot(); len(after) != 1 || after[0].ID != bot[0].ID || !strings.HasPrefix(after[0].Body, "<!-- dbusers:plan part 1/1 -->") {
		t.Errorf("after shrinking: %d comments", len(after))
	}
}

func TestCommentErrors(t *testing.T) {
	r := prRepo(t)
	f := newFakeGitHub(t)
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
	if n := len(f.bot()); n != 0 {
		t.Errorf("%d comments posted by failing runs", n)
	}

	// Flags name the pull request when the environment does not.
	environ := without("GITHUB_REPOSITORY", "GITHUB_EVENT_PATH", "GITHUB_API_URL")
	code, _, stderr := planCLI(t, environ, "comment", "--base", "main", "--root", r.Dir,
		"--repo", ghOwner+"/"+ghRepo, "--pr", strconv.Itoa(ghPR), "--api-url", f.srv.URL)
	if code != exitOK || len(f.bot()) != 1 {
		t.Errorf("with flags: exit %d, %d comments, stderr %s", code, len(f.bot()), stderr)
	}
}
