// Package ghcommenttest is a fake GitHub for the tests of pull-request
// comments and commit statuses. It is an httptest server that speaks the
// issue-comment endpoints of one repository and pull request (list,
// paginated with a Link header; create; edit; delete), the commit-status
// endpoint (create) and the pull requests of a commit (MergeCommit is
// pull request PR's merge) under /api/v3/, as GitHub Enterprise Server
// does and as ghcomment expects for any API URL other than github.com's,
// with the JSON shapes that go-github v60 sends and reads.
//
// It exists so that ghcomment's own tests and the tests of the `dbusers
// comment` command check the same client against the same GitHub: it keeps
// the comments in memory, records every request, refuses a wrong token,
// a wrong repository or pull request and a body over GitHub's size limit,
// and answers scripted failures on demand. CheckRenders tells whether a
// body it holds renders on its own: fences and <details> closed, every
// table row under its header.
//
// Like net/http/httptest it is an ordinary package that tests import, and
// the demo, which shows what a merge posts (it passes its own TB). It does
// not import ghcomment, so that ghcomment's in-package tests can use it.
package ghcommenttest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The repository, pull request and credentials the fake serves.
const (
	Owner = "acme"
	Repo  = "dbaccess"
	PR    = 42
	// Token is the only token the fake accepts; any other gets a 401.
	Token = "ghs_faketoken"
	// BotLogin is the author of the comments that clients create.
	BotLogin = "github-actions[bot]"
	// MaxBody is GitHub's limit on a comment's length, in characters; a
	// longer body is refused with a 422 and fails the test.
	MaxBody = 65536
	// MergeCommit is the commit that merged pull request PR; the pull
	// requests of any other commit are none.
	MergeCommit = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
	// MaxStatusDescription is GitHub's limit on a commit status's
	// description; a longer one fails the test.
	MaxStatusDescription = 140
)

// TB is what the fake needs of a test: testing.TB satisfies it, and the
// demo passes its own.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Error(args ...any)
	Fatal(args ...any)
	Cleanup(func())
}

// Status is a commit status the fake received.
type Status struct {
	SHA         string
	State       string
	Description string
	TargetURL   string
	Context     string
}

// commentJSON is a comment as GitHub returns it; every comment the fake
// serves is this document with its own id, author, body and times.
//
//go:embed comment.json
var commentJSON []byte

// Bodies of GitHub's error answers.
const (
	unauthorizedBody = `{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}`
	notFoundBody     = `{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}`
	readOnlyBody     = `{"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment"}`
)

// Comment is a stored comment.
type Comment struct {
	ID      int64
	Body    string
	Login   string
	Created time.Time
	Updated time.Time
}

// Request is a request the fake received.
type Request struct {
	Method string
	Path   string // without the /api/v3 prefix
	Query  url.Values
	Body   string
}

// Requests are requests in the order they arrived.
type Requests []Request

// Methods lists the methods of the requests, e.g. "GET GET PATCH": what a
// test usually asserts about a client's conversation.
func (rs Requests) Methods() string {
	var m []string
	for _, r := range rs {
		m = append(m, r.Method)
	}
	return strings.Join(m, " ")
}

type scripted struct {
	method string
	status int
	header http.Header
	body   string
}

// Server is the fake GitHub. Its URL is the API URL to give a client.
type Server struct {
	URL string

	tb       TB
	srv      *httptest.Server
	template map[string]any

	mu           sync.Mutex
	comments     []*Comment
	nextID       int64
	clock        time.Time
	requests     Requests
	script       []scripted
	userAgent    string
	refuseWrites bool
	statuses     []Status
}

// NewServer starts a fake GitHub with no comments; it stops when the test
// ends.
func NewServer(tb TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, nextID: 1_979_000_000, clock: time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)}
	if err := json.Unmarshal(commentJSON, &s.template); err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	prefix := "/api/v3/repos/{owner}/{repo}/issues/"
	mux.HandleFunc("GET "+prefix+"{number}/comments", s.list)
	mux.HandleFunc("POST "+prefix+"{number}/comments", s.create)
	mux.HandleFunc("PATCH "+prefix+"comments/{id}", s.edit)
	mux.HandleFunc("DELETE "+prefix+"comments/{id}", s.delete)
	mux.HandleFunc("POST /api/v3/repos/{owner}/{repo}/statuses/{sha}", s.createStatus)
	mux.HandleFunc("GET /api/v3/repos/{owner}/{repo}/commits/{sha}/pulls", s.pullsOfCommit)
	s.srv = httptest.NewServer(s.middleware(mux))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// WantUserAgent makes every request that does not carry ua as its
// User-Agent fail the test.
func (s *Server) WantUserAgent(ua string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userAgent = ua
}

// RefuseWrites answers every create, edit and delete with the 403 that
// the read-only GITHUB_TOKEN of a pull request from a fork gets.
func (s *Server) RefuseWrites() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseWrites = true
}

// FailNext makes the next n requests with method answer status with the
// given headers and body, before any other check.
func (s *Server) FailNext(method string, n, status int, header http.Header, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.script = append(s.script, scripted{method, status, header, body})
	}
}

// Seed adds a comment as if login had posted it, and returns it.
func (s *Server) Seed(login, body string) Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.add(login, body)
}

func (s *Server) add(login, body string) *Comment {
	s.nextID++
	s.clock = s.clock.Add(time.Minute)
	c := &Comment{ID: s.nextID, Body: body, Login: login, Created: s.clock, Updated: s.clock}
	s.comments = append(s.comments, c)
	return c
}

// Comments returns copies of the stored comments, oldest first.
func (s *Server) Comments() []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Comment, len(s.comments))
	for i, c := range s.comments {
		out[i] = *c
	}
	return out
}

// BotComments returns copies of the comments by BotLogin, oldest first.
func (s *Server) BotComments() []Comment {
	var out []Comment
	for _, c := range s.Comments() {
		if c.Login == BotLogin {
			out = append(out, c)
		}
	}
	return out
}

// Statuses returns the commit statuses received, oldest first.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

// Take returns the requests received since the last Take.
func (s *Server) Take() Requests {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests
	s.requests = nil
	return r
}

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		s.mu.Lock()
		s.requests = append(s.requests, Request{r.Method, strings.TrimPrefix(r.URL.Path, "/api/v3"), r.URL.Query(), string(body)})
		var sc *scripted
		if i := slices.IndexFunc(s.script, func(sc scripted) bool { return sc.method == r.Method }); i >= 0 {
			one := s.script[i]
			sc = &one
			s.script = slices.Delete(s.script, i, i+1)
		}
		wantUA, refuse := s.userAgent, s.refuseWrites && r.Method != http.MethodGet
		s.mu.Unlock()

		if got := r.Header.Get("User-Agent"); wantUA != "" && got != wantUA {
			s.tb.Errorf("User-Agent = %q, want %s", got, wantUA)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "990")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		w.Header().Set("X-RateLimit-Resource", "core")
		switch {
		case sc != nil:
			for k, v := range sc.header {
				w.Header()[k] = v
			}
			w.WriteHeader(sc.status)
			io.WriteString(w, sc.body)
		case r.Header.Get("Authorization") != "Bearer "+Token:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, unauthorizedBody)
		case refuse:
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, readOnlyBody)
		case !strings.HasPrefix(r.URL.Path, "/api/v3/"):
			s.notFound(w)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) notFound(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, notFoundBody)
}

// ours checks the repository and pull request named in the path.
func (s *Server) ours(r *http.Request, withNumber bool) bool {
	if r.PathValue("owner") != Owner || r.PathValue("repo") != Repo {
		return false
	}
	return !withNumber || r.PathValue("number") == strconv.Itoa(PR)
}

func (s *Server) render(c *Comment) map[string]any {
	m := map[string]any{}
	for k, v := range s.template {
		m[k] = v
	}
	user := map[string]any{}
	for k, v := range s.template["user"].(map[string]any) {
		user[k] = v
	}
	user["login"] = c.Login
	if c.Login != BotLogin {
		user["type"] = "User"
		user["id"] = 1000 + len(c.Login)
	}
	api := fmt.Sprintf("%s/api/v3/repos/%s/%s", s.URL, Owner, Repo)
	m["id"] = c.ID
	m["node_id"] = fmt.Sprintf("IC_kwDO%d", c.ID)
	m["body"] = c.Body
	m["user"] = user
	m["url"] = fmt.Sprintf("%s/issues/comments/%d", api, c.ID)
	m["html_url"] = fmt.Sprintf("https://github.example.com/%s/%s/pull/%d#issuecomment-%d", Owner, Repo, PR, c.ID)
	m["issue_url"] = fmt.Sprintf("%s/issues/%d", api, PR)
	m["created_at"] = c.Created.Format(time.RFC3339)
	m["updated_at"] = c.Updated.Format(time.RFC3339)
	return m
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.tb.Error(err)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if !s.ours(r, true) {
		s.notFound(w)
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
	s.mu.Lock()
	all := slices.Clone(s.comments)
	s.mu.Unlock()
	last := max(1, (len(all)+perPage-1)/perPage)
	lo, hi := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
	out := []map[string]any{}
	for _, c := range all[lo:hi] {
		out = append(out, s.render(c))
	}
	link := func(p int, rel string) string {
		return fmt.Sprintf(`<%s/api/v3/repositories/758722013/issues/%d/comments?per_page=%d&page=%d>; rel="%s"`, s.URL, PR, perPage, p, rel)
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
	s.writeJSON(w, http.StatusOK, out)
}

// commentBody decodes the JSON that go-github sends to create or edit a
// comment: exactly {"body": "..."}.
func (s *Server) commentBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.tb.Errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		w.WriteHeader(http.StatusBadRequest)
		return "", false
	}
	body, ok := in["body"].(string)
	if !ok || len(in) != 1 {
		s.tb.Errorf("%s %s: body %v, want {\"body\": string}", r.Method, r.URL.Path, in)
		w.WriteHeader(http.StatusUnprocessableEntity)
		return "", false
	}
	if n := len([]rune(body)); n > MaxBody {
		s.tb.Errorf("%s %s: comment of %d characters, over GitHub's limit", r.Method, r.URL.Path, n)
		s.writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
			"errors": []map[string]string{{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}}})
		return "", false
	}
	return body, true
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if !s.ours(r, true) {
		s.notFound(w)
		return
	}
	body, ok := s.commentBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	c := s.add(BotLogin, body)
	s.mu.Unlock()
	w.Header().Set("Location", s.render(c)["url"].(string))
	s.writeJSON(w, http.StatusCreated, s.render(c))
}

func (s *Server) find(r *http.Request) (*Comment, int) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || !s.ours(r, false) {
		return nil, -1
	}
	for i, c := range s.comments {
		if c.ID == id {
			return c, i
		}
	}
	return nil, -1
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request) {
	body, ok := s.commentBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	c, _ := s.find(r)
	if c != nil {
		s.clock = s.clock.Add(time.Minute)
		c.Body, c.Updated = body, s.clock
	}
	s.mu.Unlock()
	if c == nil {
		s.notFound(w)
		return
	}
	s.writeJSON(w, http.StatusOK, s.render(c))
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c, i := s.find(r)
	if c != nil {
		s.comments = slices.Delete(s.comments, i, i+1)
	}
	s.mu.Unlock()
	if c == nil {
		s.notFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createStatus stores a commit status from exactly the JSON go-github
// sends: state, context, description and an optional target_url.
func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("owner") != Owner || r.PathValue("repo") != Repo {
		s.notFound(w)
		return
	}
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.tb.Errorf("POST %s: body is not JSON: %v", r.URL.Path, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	str := func(k string) string { v, _ := in[k].(string); return v }
	for k := range in {
		if k != "state" && k != "context" && k != "description" && k != "target_url" {
			s.tb.Errorf("POST %s: unexpected field %q", r.URL.Path, k)
		}
	}
	st := Status{SHA: r.PathValue("sha"), State: str("state"), Description: str("description"), TargetURL: str("target_url"), Context: str("context")}
	switch {
	case !slices.Contains([]string{"pending", "success", "failure", "error"}, st.State):
		s.tb.Errorf("POST %s: state %q", r.URL.Path, st.State)
		s.writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	case len([]rune(st.Description)) > MaxStatusDescription:
		s.tb.Errorf("POST %s: description of %d characters, over GitHub's %d", r.URL.Path, len([]rune(st.Description)), MaxStatusDescription)
		s.writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	case len(st.SHA) != 40:
		s.writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "No commit found for SHA: " + st.SHA})
		return
	}
	s.mu.Lock()
	s.statuses = append(s.statuses, st)
	id := len(s.statuses)
	s.mu.Unlock()
	s.writeJSON(w, http.StatusCreated, map[string]any{
		"url": fmt.Sprintf("%s/api/v3/repos/%s/%s/statuses/%s", s.URL, Owner, Repo, st.SHA), "id": 20_000_000 + id,
		"node_id": fmt.Sprintf("SC_kwDO%d", id), "state": st.State, "description": st.Description, "target_url": st.TargetURL,
		"context": st.Context, "created_at": "2024-03-05T10:00:00Z", "updated_at": "2024-03-05T10:00:00Z",
		"creator": map[string]any{"login": BotLogin, "id": 41898282, "type": "Bot"},
	})
}

// pullsOfCommit answers the pull requests of a commit: PR, merged, for
// MergeCommit; none for any other.
func (s *Server) pullsOfCommit(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("owner") != Owner || r.PathValue("repo") != Repo {
		s.notFound(w)
		return
	}
	out := []map[string]any{}
	if r.PathValue("sha") == MergeCommit {
		out = append(out, map[string]any{
			"url": fmt.Sprintf("%s/api/v3/repos/%s/%s/pulls/%d", s.URL, Owner, Repo, PR), "id": 1_700_000_000, "number": PR,
			"state": "closed", "title": "Give hana read access", "merged_at": "2024-03-05T09:58:00Z",
			"merge_commit_sha": MergeCommit, "html_url": fmt.Sprintf("https://github.example.com/%s/%s/pull/%d", Owner, Repo, PR),
			"user": map[string]any{"login": "hana", "id": 1004, "type": "User"},
			"base": map[string]any{"ref": "main"}, "head": map[string]any{"ref": "hana-read"},
		})
	}
	s.writeJSON(w, http.StatusOK, out)
}
