package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/gitfs"
	"github.com/dbusers/dbusers/bot/internal/review"
)

// reviewContext says where and when a review is made, for the comment's
// footer: the head commit, the time, and the workflow run when in GitHub
// Actions. headID is the resolved head; workingTree is true when the
// review reads the working tree (no --head).
//
// In a pull_request workflow the checkout is GitHub's merge commit of the
// pull request into its base, so HEAD is not a commit the author pushed:
// the head commit then comes from the event (pull_request.head.sha), which
// is the one a reviewer sees on the pull request. With --head, or outside
// a pull request, it is headID.
func reviewContext(e env, headID string, workingTree bool) review.Context {
	c := review.Context{HeadSHA: headID, GeneratedAt: e.now().UTC().Truncate(time.Second), RunURL: runURL(e.getenv)}
	if sha := eventHeadSHA(e.getenv); workingTree && sha != "" {
		c.HeadSHA = sha
	}
	return c
}

// eventHeadSHA is the pull request's head commit named by the Actions
// event payload, "" when there is none.
func eventHeadSHA(getenv func(string) string) string {
	path := getenv("GITHUB_EVENT_PATH")
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var ev struct {
		PullRequest *struct {
			Head struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_request"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.PullRequest == nil || !isCommitID(ev.PullRequest.Head.SHA) {
		return ""
	}
	return ev.PullRequest.Head.SHA
}

func isCommitID(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0123456789abcdef") == ""
}

// runURL links the workflow run, built as GitHub does from
// GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID and, for a re-run,
// GITHUB_RUN_ATTEMPT; "" outside Actions or when a value looks wrong.
func runURL(getenv func(string) string) string {
	server, repo, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID")
	if server == "" || repo == "" || id == "" {
		return ""
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || !repoName(owner) || !repoName(name) {
		return ""
	}
	if n, err := strconv.ParseUint(id, 10, 64); err != nil || n == 0 {
		return ""
	}
	out := strings.TrimSuffix(u.String(), "/") + "/" + owner + "/" + name + "/actions/runs/" + id
	if a, err := strconv.Atoi(getenv("GITHUB_RUN_ATTEMPT")); err == nil && a > 1 {
		out += "/attempts/" + strconv.Itoa(a)
	}
	return out
}

// repoName reports whether s can be a GitHub owner or repository name.
func repoName(s string) bool {
	return s != "" && s != "." && s != ".." && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

// changedFiles lists the files the pull request changes, for the
// invalid-declarations comment: between the merge base and the head
// (head "" for the working tree). When git cannot tell, it says so and
// returns nil, and the comment shows every warning.
func changedFiles(ctx context.Context, e env, repo gitfs.Repo, baseID, head string) []string {
	files, err := repo.ChangedFiles(ctx, baseID, head)
	if err != nil {
		fmt.Fprintf(e.stderr, "dbusers: which files the pull request changes: %v (every warning is shown)\n", err)
		return nil
	}
	return files
}
