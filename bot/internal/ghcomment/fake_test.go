package ghcomment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

// The fake GitHub serves one repository and one pull request under
// /api/v3/, as GitHub Enterprise Server does, with the REST shapes that
// go-github v60 sends and reads: list (paginated with a Link header),
// create, edit and delete issue comments. It stores comments in memory,
// records every request, and answers scripted failures on demand.

const (
	fakeOwner = "acme"
	fakeRepo  = "dbaccess"
	fakePR    = 42
	botToken  = "ghs_faketoken"
	botLogin  = "github-actions[bot]"
)

type fakeComment struct {
	ID      int64
	Body    string
	Login   string
	Created time.Time
	Updated time.Time
}

type request struct {
	Method string
	Path   string // without the /api/v3 prefix
	Query  url.Values
	Body   string
}

type scripted struct {
	method string
	status int
	header http.Header
	body   string
}

type fakeGitHub struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	comments []*fakeComment
	nextID   int64
	clock    time.Time
	requests []request
	script   []scripted
	template map[string]any
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{t: t, nextID: 1_979_000_000, clock: time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)}
	if err := json.Unmarshal(readTestdata(t, "responses/comment.json"), &f.template); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	prefix := "/api/v3/repos/{owner}/{repo}/issues/"
	mux.HandleFunc("GET "+prefix+"{number}/comments", f.list)
	mux.HandleFunc("POST "+prefix+"{number}/comments", f.create)
	mux.HandleFunc("PATCH "+prefix+"comments/{id}", f.edit)
	mux.HandleFunc("DELETE "+prefix+"comments/{id}", f.delete)
	f.srv = httptest.NewServer(f.middleware(mux))
	t.Cleanup(f.srv.Close)
	return f
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// failNext makes the next n requests with method answer status with the
// given headers and the JSON body from testdata/responses/<bodyFile>.
func (f *fakeGitHub) failNext(method string, n, status int, header http.Header, bodyFile string) {
	body := ""
	if bodyFile != "" {
		body = string(readTestdata(f.t, "responses/"+bodyFile))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, scripted{method, status, header, body})
	}
}

// seed adds a comment as if login had posted it, and returns its id.
func (f *fakeGitHub) seed(login, body string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.add(login, body).ID
}

func (f *fakeGitHub) add(login, body string) *fakeComment {
	f.nextID++
	f.clock = f.clock.Add(time.Minute)
	c := &fakeComment{ID: f.nextID, Body: body, Login: login, Created: f.clock, Updated: f.clock}
	f.comments = append(f.comments, c)
	return c
}

// snapshot returns copies of the stored comments, oldest first.
func (f *fakeGitHub) snapshot() []fakeComment {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fakeComment, len(f.comments))
	for i, c := range f.comments {
		out[i] = *c
	}
	return out
}

// take returns the requests recorded since the last take.
func (f *fakeGitHub) take() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

// methods lists the methods of requests, e.g. "GET GET PATCH".
func methods(rs []request) string {
	var m []string
	for _, r := range rs {
		m = append(m, r.Method)
	}
	return strings.Join(m, " ")
}

func (f *fakeGitHub) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		f.mu.Lock()
		f.requests = append(f.requests, request{r.Method, strings.TrimPrefix(r.URL.Path, "/api/v3"), r.URL.Query(), string(body)})
		var s *scripted
		if i := slices.IndexFunc(f.script, func(s scripted) bool { return s.method == r.Method }); i >= 0 {
			one := f.script[i]
			s = &one
			f.script = slices.Delete(f.script, i, i+1)
		}
		f.mu.Unlock()

		if got := r.Header.Get("User-Agent"); got != "dbusers" {
			f.t.Errorf("User-Agent = %q, want dbusers", got)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "990")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		w.Header().Set("X-RateLimit-Resource", "core")
		if s != nil {
			for k, v := range s.header {
				w.Header()[k] = v
			}
			w.WriteHeader(s.status)
			io.WriteString(w, s.body)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+botToken {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write(readTestdata(f.t, "responses/401.json"))
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/api/v3/") {
			f.notFound(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeGitHub) notFound(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNotFound)
	w.Write(readTestdata(f.t, "responses/404.json"))
}

// ours checks the repository and pull request named in the path.
func (f *fakeGitHub) ours(r *http.Request, withNumber bool) bool {
	if r.PathValue("owner") != fakeOwner || r.PathValue("repo") != fakeRepo {
		return false
	}
	return !withNumber || r.PathValue("number") == strconv.Itoa(fakePR)
}

func (f *fakeGitHub) render(c *fakeComment) map[string]any {
	m := map[string]any{}
	for k, v := range f.template {
		m[k] = v
	}
	user := map[string]any{}
	for k, v := range f.template["user"].(map[string]any) {
		user[k] = v
	}
	user["login"] = c.Login
	if c.Login != botLogin {
		user["type"] = "User"
		user["id"] = 1000 + len(c.Login)
	}
	api := fmt.Sprintf("%s/api/v3/repos/%s/%s", f.srv.URL, fakeOwner, fakeRepo)
	m["id"] = c.ID
	m["node_id"] = fmt.Sprintf("IC_kwDO%d", c.ID)
	m["body"] = c.Body
	m["user"] = user
	m["url"] = fmt.Sprintf("%s/issues/comments/%d", api, c.ID)
	m["html_url"] = fmt.Sprintf("https://github.example.com/%s/%s/pull/%d#issuecomment-%d", fakeOwner, fakeRepo, fakePR, c.ID)
	m["issue_url"] = fmt.Sprintf("%s/issues/%d", api, fakePR)
	m["created_at"] = c.Created.Format(time.RFC3339)
	m["updated_at"] = c.Updated.Format(time.RFC3339)
	return m
}

func (f *fakeGitHub) writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		f.t.Error(err)
	}
}

func (f *fakeGitHub) list(w http.ResponseWriter, r *http.Request) {
	if !f.ours(r, true) {
		f.notFound(w)
		return
	}
	q := r.URL.Query()
	perPage, page := 30, 1
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	f.mu.Lock()
	all := slices.Clone(f.comments)
	f.mu.Unlock()
	last := max(1, (len(all)+perPage-1)/perPage)
	lo, hi := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
	out := []map[string]any{}
	for _, c := range all[lo:hi] {
		out = append(out, f.render(c))
	}
	link := func(p int, rel string) string {
		return fmt.Sprintf(`<%s/api/v3/repositories/758722013/issues/%d/comments?per_page=%d&page=%d>; rel="%s"`, f.srv.URL, fakePR, perPage, p, rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	f.writeJSON(w, http.StatusOK, out)
}

// commentBody decodes the JSON that go-github sends to create or edit a
// comment: exactly {"body": "..."}.
func (f *fakeGitHub) commentBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.t.Errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		w.WriteHeader(http.StatusBadRequest)
		return "", false
	}
	body, ok := in["body"].(string)
	if !ok || len(in) != 1 {
		f.t.Errorf("%s %s: body %v, want {\"body\": string}", r.Method, r.URL.Path, in)
		w.WriteHeader(http.StatusUnprocessableEntity)
		return "", false
	}
	if n := len([]rune(body)); n > GitHubMaxBody {
		f.t.Errorf("%s %s: comment of %d characters, over GitHub's limit", r.Method, r.URL.Path, n)
		f.writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
			"errors": []map[string]string{{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}}})
		return "", false
	}
	return body, true
}

func (f *fakeGitHub) create(w http.ResponseWriter, r *http.Request) {
	if !f.ours(r, true) {
		f.notFound(w)
		return
	}
	body, ok := f.commentBody(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	c := f.add(botLogin, body)
	f.mu.Unlock()
	w.Header().Set("Location", f.render(c)["url"].(string))
	f.writeJSON(w, http.StatusCreated, f.render(c))
}

func (f *fakeGitHub) find(r *http.Request) (*fakeComment, int) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || !f.ours(r, false) {
		return nil, -1
	}
	for i, c := range f.comments {
		if c.ID == id {
			return c, i
		}
	}
	return nil, -1
}

func (f *fakeGitHub) edit(w http.ResponseWriter, r *http.Request) {
	body, ok := f.commentBody(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	c, _ := f.find(r)
	if c != nil {
		f.clock = f.clock.Add(time.Minute)
		c.Body, c.Updated = body, f.clock
	}
	f.mu.Unlock()
	if c == nil {
		f.notFound(w)
		return
	}
	f.writeJSON(w, http.StatusOK, f.render(c))
}

func (f *fakeGitHub) delete(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	c, i := f.find(r)
	if c != nil {
		f.comments = slices.Delete(f.comments, i, i+1)
	}
	f.mu.Unlock()
	if c == nil {
		f.notFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// client returns a go-github client for the fake whose retries record
// their waits instead of sleeping.
func (f *fakeGitHub) client(t *testing.T, now func() time.Time) (*github.Client, *[]time.Duration) {
	t.Helper()
	var waits []time.Duration
	rt := &RetryTransport{
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			return ctx.Err()
		},
		Now: now,
	}
	c, err := NewClient(&http.Client{Transport: rt}, botToken, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, &waits
}
