package ghcomment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
)

// The states a commit status may have.
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	// StateError means the result is not known (a timeout, a failure to
	// read it), as opposed to known to be bad.
	StateError = "error"
)

// MaxStatusDescription is how many characters of a commit status's
// description GitHub keeps.
const MaxStatusDescription = 140

// Status is a commit status: what the merge commit shows next to its
// checks. Context names it ("dbusers/rollout"); a newer status of the
// same context replaces the older one on the commit.
type Status struct {
	State       string
	Description string
	TargetURL   string
	Context     string
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$|^[0-9a-f]{64}$`)

// SetStatus sets the commit status s on commit sha of owner/repo. The
// description is cut to GitHub's 140 characters; a token without
// "permissions: statuses: write" gets an error that says so.
func SetStatus(ctx context.Context, client *github.Client, owner, repo, sha string, s Status) error {
	switch {
	case !slices.Contains([]string{StatePending, StateSuccess, StateFailure, StateError}, s.State):
		return fmt.Errorf("commit status state %q: want pending, success, failure or error", s.State)
	case !shaRE.MatchString(sha):
		return fmt.Errorf("commit status: %q is not a full commit id", sha)
	case s.Context == "":
		return fmt.Errorf("commit status: no context")
	}
	if utf8.RuneCountInString(s.Description) > MaxStatusDescription {
		s.Description = string([]rune(s.Description)[:MaxStatusDescription-1]) + "…"
	}
	st := &github.RepoStatus{State: github.String(s.State), Description: github.String(s.Description), Context: github.String(s.Context)}
	if s.TargetURL != "" {
		st.TargetURL = github.String(s.TargetURL)
	}
	if _, _, err := client.Repositories.CreateStatus(ctx, owner, repo, sha, st); err != nil {
		return explainRepo(owner, repo, fmt.Sprintf("set the commit status %s on %.12s", s.Context, sha), "statuses: write", err)
	}
	return nil
}

// MergedPullRequest returns the number of the pull request whose merge
// made commit sha: the one GitHub names with that merge commit, else the
// first merged one that contains it (a rebase or squash merge), or 0 when
// there is none (a direct push).
func MergedPullRequest(ctx context.Context, client *github.Client, owner, repo, sha string) (int, error) {
	if !shaRE.MatchString(sha) {
		return 0, fmt.Errorf("pull request of %q: not a full commit id", sha)
	}
	pulls, _, err := client.PullRequests.ListPullRequestsWithCommit(ctx, owner, repo, sha, &github.ListOptions{PerPage: 100})
	if err != nil {
		return 0, explainRepo(owner, repo, fmt.Sprintf("find the pull request of %.12s", sha), "pull-requests: read", err)
	}
	for _, p := range pulls {
		if p.GetMergeCommitSHA() == sha && p.MergedAt != nil {
			return p.GetNumber(), nil
		}
	}
	for _, p := range pulls {
		if p.MergedAt != nil {
			return p.GetNumber(), nil
		}
	}
	return 0, nil
}

// explainRepo explains an error of a call about a repository rather than
// a pull request's comments; permission names what the workflow must
// grant for it.
func explainRepo(owner, repo, op, permission string, err error) error {
	prefix := fmt.Sprintf("%s/%s: %s: ", owner, repo, op)
	var er *github.ErrorResponse
	var re *RetryError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%sgithub %s: %w", prefix, re.Error(), err)
	case errors.As(err, &er) && er.Response != nil:
		status := fmt.Sprintf("%d %s", er.Response.StatusCode, er.Message)
		switch er.Response.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%sgithub rejected the token (%s): GITHUB_TOKEN is missing, expired or not a GitHub token: %w", prefix, status, err)
		case http.StatusForbidden, http.StatusNotFound:
			return fmt.Errorf("%sgithub refused (%s): the token may not do this; the workflow needs \"permissions: %s\": %w",
				prefix, status, permission, errors.Join(ErrReadOnlyToken, err))
		case http.StatusUnprocessableEntity:
			return fmt.Errorf("%sgithub refused (%s): %v: %w", prefix, status, er.Errors, err)
		}
	}
	return fmt.Errorf("%sgithub: %w", prefix, err)
}
