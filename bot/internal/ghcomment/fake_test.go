package ghcomment

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

// fakeGitHub is ghcommenttest's fake GitHub, which also checks that every
// request carries the User-Agent that NewClient sets, with the helpers
// that need this package: scripted failures whose bodies are recorded
// GitHub answers in testdata/responses, and a client with a recording
// RetryTransport.
type fakeGitHub struct {
	*ghcommenttest.Server
	t *testing.T
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{Server: ghcommenttest.NewServer(t), t: t}
	f.WantUserAgent("dbusers")
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
	f.FailNext(method, n, status, header, body)
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
	c, err := NewClient(&http.Client{Transport: rt}, ghcommenttest.Token, f.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, &waits
}

// TestFakeEnforcesGitHubsLimit keeps the fake's limit on a comment's
// length equal to the one this package splits at.
func TestFakeEnforcesGitHubsLimit(t *testing.T) {
	if ghcommenttest.MaxBody != GitHubMaxBody {
		t.Errorf("ghcommenttest.MaxBody = %d, GitHubMaxBody = %d", ghcommenttest.MaxBody, GitHubMaxBody)
	}
}
