package ghcomment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

func TestTargetFromEnv(t *testing.T) {
	env := func(kv ...string) map[string]string {
		m := map[string]string{"GITHUB_REPOSITORY": "acme/dbaccess"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	event := func(name string) string { return filepath.Join("testdata", "events", name+".json") }
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Target
		wantAPI string
		wantErr string
	}{
		{name: "pull_request", env: env("GITHUB_EVENT_PATH", event("pull_request"), "GITHUB_EVENT_NAME", "pull_request"),
			want: Target{Owner: "acme", Repo: "dbaccess", PR: 42}, wantAPI: DefaultAPIURL},
		{name: "issue_comment on a pull request", env: env("GITHUB_EVENT_PATH", event("issue_comment")),
			want: Target{Owner: "acme", Repo: "dbaccess", PR: 42}, wantAPI: DefaultAPIURL},
		{name: "workflow_run of a pull request", env: env("GITHUB_EVENT_PATH", event("workflow_run")),
			want: Target{Owner: "acme", Repo: "dbaccess", PR: 42}, wantAPI: DefaultAPIURL},
		{name: "enterprise server", env: env("GITHUB_EVENT_PATH", event("pull_request"), "GITHUB_API_URL", "https://github.acme.internal/api/v3"),
			want: Target{Owner: "acme", Repo: "dbaccess", PR: 42}, wantAPI: "https://github.acme.internal/api/v3"},
		{name: "issue_comment on an issue", env: env("GITHUB_EVENT_PATH", event("issue_comment_on_issue")),
			wantErr: "the event is about issue #17, which is not a pull request"},
		{name: "workflow_run of a fork's pull request", env: env("GITHUB_EVENT_PATH", event("workflow_run_fork")),
			wantErr: "GitHub leaves workflow_run.pull_requests empty for pull requests from forks"},
		{name: "push", env: env("GITHUB_EVENT_PATH", event("push"), "GITHUB_EVENT_NAME", "push"),
			wantErr: "the push event carries no pull request number"},
		{name: "no GITHUB_REPOSITORY", env: map[string]string{"GITHUB_EVENT_PATH": event("pull_request")},
			wantErr: "GITHUB_REPOSITORY is not set"},
		{name: "bad GITHUB_REPOSITORY", env: map[string]string{"GITHUB_REPOSITORY": "dbaccess", "GITHUB_EVENT_PATH": event("pull_request")},
			wantErr: `GITHUB_REPOSITORY is "dbaccess", not owner/repo`},
		{name: "no GITHUB_EVENT_PATH", env: env(), wantErr: "GITHUB_EVENT_PATH is not set"},
		{name: "missing event file", env: env("GITHUB_EVENT_PATH", event("nonexistent")),
			wantErr: "read GITHUB_EVENT_PATH: open testdata/events/nonexistent.json"},
		{name: "not JSON", env: env("GITHUB_EVENT_PATH", filepath.Join("testdata", "pack.golden.md")),
			wantErr: "not a JSON event payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, api, err := TargetFromEnv(func(k string) string { return tc.env[k] }, os.ReadFile)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || api != tc.wantAPI {
				t.Errorf("got %v %q, want %v %q", got, api, tc.want, tc.wantAPI)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		url, base, upload string
	}{
		{"", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://api.github.com", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://api.github.com/", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://github.acme.internal/api/v3", "https://github.acme.internal/api/v3/", "https://github.acme.internal/api/uploads/"},
		{"https://github.acme.internal/api/v3/", "https://github.acme.internal/api/v3/", "https://github.acme.internal/api/uploads/"},
		{"https://github.acme.internal", "https://github.acme.internal/api/v3/", "https://github.acme.internal/api/uploads/"},
		{"https://api.acme.ghe.com", "https://api.acme.ghe.com/", "https://api.acme.ghe.com/"},
		{"http://127.0.0.1:38211", "http://127.0.0.1:38211/api/v3/", "http://127.0.0.1:38211/api/uploads/"},
	} {
		c, err := NewClient(nil, "tok", tc.url)
		if err != nil {
			t.Errorf("%q: %v", tc.url, err)
			continue
		}
		if c.BaseURL.String() != tc.base || c.UploadURL.String() != tc.upload {
			t.Errorf("%q: base %s upload %s, want %s %s", tc.url, c.BaseURL, c.UploadURL, tc.base, tc.upload)
		}
	}
	for _, tc := range []struct{ token, url, want string }{
		{"", "", "no GitHub token: set GITHUB_TOKEN"},
		{"tok", "github.acme.internal", "is not an http(s) URL"},
		{"tok", "ftp://github.acme.internal", "is not an http(s) URL"},
		{"tok", "https://user:secret@github.acme.internal", "is not an http(s) URL"},
	} {
		if _, err := NewClient(nil, tc.token, tc.url); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewClient(%q, %q): err %v, want %q", tc.token, tc.url, err, tc.want)
		}
	}
}

// The fake GitHub refuses requests outside /api/v3/, so this proves that
// NewClient sends an httptest server's bare URL where Enterprise Server
// would expect it.
func TestNewClientServesUnderAPIv3(t *testing.T) {
	f := newFakeGitHub(t)
	for _, url := range []string{f.URL, f.URL + "/", f.URL + "/api/v3"} {
		c, err := NewClient(nil, ghcommenttest.Token, url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Upsert(context.Background(), c, target, "", []string{"plan"}); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
	for _, r := range f.Take() {
		if !strings.HasPrefix(r.Path, "/repos/") {
			t.Errorf("%s %s", r.Method, r.Path)
		}
	}
}
