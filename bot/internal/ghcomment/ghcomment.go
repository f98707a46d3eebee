// Package ghcomment posts the dbusers plan on a pull request as one sticky
// comment: the bot finds its earlier comment again on every push by a
// hidden marker and edits it in place, instead of adding a comment per
// push. A plan longer than one GitHub comment is packed into several parts
// (the summary whole in the first), each with its own marker.
//
// The package also reads the pull request from the GitHub Actions
// environment, builds a go-github client that retries rate limits and
// server errors, explains the errors that reviewers of a fork's pull
// request run into, and writes the plan to the job's step summary.
package ghcomment

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v60/github"
)

// DefaultAPIURL is the REST API of github.com, used when GITHUB_API_URL is
// not set.
const DefaultAPIURL = "https://api.github.com/"

// Target is the pull request to comment on, and whose comments there are
// the bot's own.
type Target struct {
	Owner, Repo string
	PR          int
	// Author is the login that posts the comment when the token is not a
	// bot's (a personal access token: its user's login). Empty means any
	// bot account: GitHub Actions' github-actions[bot] or a GitHub App.
	// Comments by anyone else are never taken for the bot's, even with
	// its marker, so a person cannot plant a "plan" for reviewers to
	// trust or have the bot edit theirs.
	Author string
}

func (t Target) String() string { return fmt.Sprintf("%s/%s#%d", t.Owner, t.Repo, t.PR) }

// TargetFromEnv reads the pull request and the API's base URL from the
// environment GitHub Actions gives a step: GITHUB_REPOSITORY ("owner/repo"),
// GITHUB_EVENT_PATH (the event's JSON payload, which carries the number for
// pull_request, pull_request_target, issue_comment on a pull request, and
// workflow_run events of pull requests from the same repository) and
// GITHUB_API_URL (set on GitHub Enterprise Server; DefaultAPIURL when
// empty). getenv and readFile are os.Getenv and os.ReadFile outside tests.
func TargetFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (Target, string, error) {
	repo := getenv("GITHUB_REPOSITORY")
	if repo == "" {
		return Target{}, "", errors.New("GITHUB_REPOSITORY is not set: it names the repository as owner/repo (GitHub Actions sets it)")
	}
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return Target{}, "", fmt.Errorf("GITHUB_REPOSITORY is %q, not owner/repo", repo)
	}
	path := getenv("GITHUB_EVENT_PATH")
	if path == "" {
		return Target{}, "", errors.New("GITHUB_EVENT_PATH is not set: it names the event payload that carries the pull request number (GitHub Actions sets it)")
	}
	data, err := readFile(path)
	if err != nil {
		return Target{}, "", fmt.Errorf("read GITHUB_EVENT_PATH: %w", err)
	}
	pr, err := prNumber(data, getenv("GITHUB_EVENT_NAME"))
	if err != nil {
		return Target{}, "", fmt.Errorf("GITHUB_EVENT_PATH %s: %w", path, err)
	}
	api := getenv("GITHUB_API_URL")
	if api == "" {
		api = DefaultAPIURL
	}
	return Target{Owner: owner, Repo: name, PR: pr}, api, nil
}

// prNumber finds the pull request number in an event payload.
func prNumber(data []byte, eventName string) (int, error) {
	var ev struct {
		Number      int `json:"number"`
		PullRequest *struct {
			Number int `json:"number"`
		} `json:"pull_request"`
		Issue *struct {
			Number      int             `json:"number"`
			PullRequest json.RawMessage `json:"pull_request"`
		} `json:"issue"`
		WorkflowRun *struct {
			PullRequests []struct {
				Number int `json:"number"`
			} `json:"pull_requests"`
		} `json:"workflow_run"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return 0, fmt.Errorf("not a JSON event payload: %w", err)
	}
	switch {
	case ev.PullRequest != nil && ev.PullRequest.Number > 0:
		return ev.PullRequest.Number, nil
	case ev.Issue != nil:
		if len(ev.Issue.PullRequest) == 0 || string(ev.Issue.PullRequest) == "null" {
			return 0, fmt.Errorf("the event is about issue #%d, which is not a pull request", ev.Issue.Number)
		}
		if ev.Issue.Number <= 0 {
			return 0, errors.New("the event's issue has no number")
		}
		return ev.Issue.Number, nil
	case ev.Number > 0:
		return ev.Number, nil
	case ev.WorkflowRun != nil:
		switch n := len(ev.WorkflowRun.PullRequests); n {
		case 1:
			return ev.WorkflowRun.PullRequests[0].Number, nil
		case 0:
			return 0, errors.New("the workflow_run event names no pull request (GitHub leaves workflow_run.pull_requests empty for pull requests from forks): pass the number on from the triggering run")
		default:
			return 0, fmt.Errorf("the workflow_run event names %d pull requests: pass the number on from the triggering run", n)
		}
	}
	if eventName == "" {
		eventName = "this"
	}
	return 0, fmt.Errorf("the %s event carries no pull request number: run the comment step on pull_request, pull_request_target or issue_comment events", eventName)
}

// NewClient returns a go-github client that authenticates with token and
// retries rate limits and server errors (see RetryTransport). httpClient
// may be nil; its transport is wrapped in a RetryTransport with the
// defaults unless it already is one, which is how tests make the waits
// instant.
//
// apiBaseURL "" or https://api.github.com/ means github.com. Any other URL
// goes through go-github's WithEnterpriseURLs, which appends "/api/v3/"
// unless the path already ends with it or the host starts with "api."
// (GitHub Enterprise Cloud with data residency). GITHUB_API_URL on GitHub
// Enterprise Server already ends with /api/v3. An httptest server's URL is
// not special-cased: the tests' fake GitHub serves under /api/v3/, exactly
// as Enterprise Server does, so production code has no test-only branch.
//
// An http.Client Timeout bounds each request including its retries; bound
// the whole Upsert with the context instead.
func NewClient(httpClient *http.Client, token, apiBaseURL string) (*github.Client, error) {
	if token == "" {
		return nil, errors.New("no GitHub token: set GITHUB_TOKEN (in a workflow: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }})")
	}
	var hc http.Client
	if httpClient != nil {
		hc = *httpClient
	}
	if _, ok := hc.Transport.(*RetryTransport); !ok {
		hc.Transport = &RetryTransport{Base: hc.Transport}
	}
	c := github.NewClient(&hc).WithAuthToken(token)
	c.UserAgent = "dbusers"
	if apiBaseURL == "" || strings.TrimSuffix(apiBaseURL, "/") == strings.TrimSuffix(DefaultAPIURL, "/") {
		return c, nil
	}
	u, err := url.Parse(apiBaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("GitHub API URL %q is not an http(s) URL such as https://github.example.com/api/v3", apiBaseURL)
	}
	// Uploads live next to the API on Enterprise Server: /api/uploads/.
	upload := *u
	if p := strings.TrimSuffix(upload.Path, "/"); strings.HasSuffix(p, "/api/v3") {
		upload.Path = strings.TrimSuffix(p, "v3") + "uploads/"
	}
	c, err = c.WithEnterpriseURLs(u.String(), upload.String())
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL %q: %w", apiBaseURL, err)
	}
	return c, nil
}
