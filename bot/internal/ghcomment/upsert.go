package ghcomment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
)

// DefaultKey names the sticky comment when the caller gives no key. Two
// workflows that post different things on the same pull request use
// different keys, and each keeps its own comment.
const DefaultKey = "plan"

// ErrReadOnlyToken reports that GitHub refused the token access to the pull
// request's comments (a 403 that is not a rate limit). The GITHUB_TOKEN of
// a pull request from a fork is read-only, and a workflow without
// "permissions: pull-requests: write" cannot comment either. Callers may
// degrade to the step summary when errors.Is(err, ErrReadOnlyToken).
var ErrReadOnlyToken = errors.New("the GitHub token may not write pull request comments")

// Result says what Upsert did.
type Result struct {
	Created, Updated, Deleted, Unchanged int
	// URL is the web address of part 1, "" when there are no parts.
	URL string
}

var (
	keyRE    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	markerRE = regexp.MustCompile(`^<!-- dbusers:([A-Za-z0-9._-]{1,64}) part ([0-9]{1,4})/([0-9]{1,4}) -->`)
)

// Marker is the hidden first line of part i of n of the comment named key.
// A comment is taken for one of the bot's parts only when its body starts
// with a marker and the bot posted it (Target.Author): a reply that quotes
// it, or someone else's comment that mentions dbusers or copies the marker,
// is never touched.
func Marker(key string, i, n int) string {
	return fmt.Sprintf("<!-- dbusers:%s part %d/%d -->", key, i, n)
}

// frame is the body posted for part i of n: the marker and, when the plan
// takes several comments, a visible header.
func frame(key string, i, n int, body string) string {
	var b strings.Builder
	b.WriteString(Marker(key, i, n))
	b.WriteByte('\n')
	if n > 1 {
		fmt.Fprintf(&b, "**Part %d of %d**\n\n", i, n)
	}
	b.WriteString(body)
	return b.String()
}

// parseMarker returns the key and part number of a bot comment.
func parseMarker(body string) (key string, part int, ok bool) {
	m := markerRE.FindStringSubmatch(body)
	if m == nil {
		return "", 0, false
	}
	part, err := strconv.Atoi(m[2])
	if err != nil || part < 1 {
		return "", 0, false
	}
	return m[1], part, true
}

// Upsert makes the pull request show bodies (usually from Pack) as the
// parts of the sticky comment named key ("" means DefaultKey). It lists
// every comment of the pull request, finds the earlier parts by their
// marker, edits a part only when its text changed, creates missing parts
// in order, and then deletes parts beyond len(bodies) (the plan shrank) and
// duplicates of a part (left by two runs racing; the newest is kept). No
// bodies deletes every part. Comments without the marker, or posted by
// anyone but the bot (see Target.Author), are never touched. Edits and creations come before deletions, so the pull request
// always shows a plan.
//
// Errors explain themselves; a refused write wraps ErrReadOnlyToken. Two
// runs at once can still leave a duplicate part, which the next run
// removes; workflows avoid it with a concurrency group per pull request.
func Upsert(ctx context.Context, client *github.Client, t Target, key string, bodies []string) (Result, error) {
	if key == "" {
		key = DefaultKey
	}
	if !keyRE.MatchString(key) {
		return Result{}, fmt.Errorf("comment key %q: use 1 to 64 letters, digits, '.', '_' or '-'", key)
	}
	if t.Owner == "" || t.Repo == "" || t.PR <= 0 {
		return Result{}, fmt.Errorf("pull request %s: owner, repository and a positive number are required", t)
	}
	n := len(bodies)
	want := make([]string, n)
	for i, b := range bodies {
		want[i] = frame(key, i+1, n, b)
		if c := utf8.RuneCountInString(want[i]); c > GitHubMaxBody {
			return Result{}, fmt.Errorf("pull request %s: part %d of %d has %d characters, more than GitHub's %d (use Pack)", t, i+1, n, c, GitHubMaxBody)
		}
	}

	existing, err := listAll(ctx, client, t)
	if err != nil {
		return Result{}, err
	}
	// Group the bot's comments by part; keep the newest of each part that
	// is still wanted and remove the rest.
	claims := map[int][]*github.IssueComment{}
	for _, c := range existing {
		if !t.postedBy(c) {
			continue
		}
		if k, part, ok := parseMarker(c.GetBody()); ok && k == key {
			claims[part] = append(claims[part], c)
		}
	}
	parts := map[int]*github.IssueComment{}
	var remove []*github.IssueComment
	for part, cs := range claims {
		slices.SortFunc(cs, newestFirst)
		if part <= n {
			parts[part], cs = cs[0], cs[1:]
		}
		remove = append(remove, cs...)
	}

	var res Result
	for i, body := range want {
		part := i + 1
		c := parts[part]
		switch {
		case c != nil && sameBody(c.GetBody(), body):
			res.Unchanged++
		case c != nil:
			edited, _, err := client.Issues.EditComment(ctx, t.Owner, t.Repo, c.GetID(), &github.IssueComment{Body: github.String(body)})
			if isStatus(err, http.StatusNotFound) {
				// Deleted since we listed it: post it again.
				c = nil
				break
			}
			if err != nil {
				return res, explain(t, fmt.Sprintf("edit part %d (comment %d)", part, c.GetID()), true, err)
			}
			c = edited
			res.Updated++
		}
		if c == nil {
			created, _, err := client.Issues.CreateComment(ctx, t.Owner, t.Repo, t.PR, &github.IssueComment{Body: github.String(body)})
			if err != nil {
				return res, explain(t, fmt.Sprintf("create part %d", part), true, err)
			}
			c = created
			res.Created++
		}
		if part == 1 {
			res.URL = c.GetHTMLURL()
		}
	}

	slices.SortFunc(remove, func(a, b *github.IssueComment) int { return cmp.Compare(a.GetID(), b.GetID()) })
	for _, c := range remove {
		_, err := client.Issues.DeleteComment(ctx, t.Owner, t.Repo, c.GetID())
		if err != nil && !isStatus(err, http.StatusNotFound) {
			return res, explain(t, fmt.Sprintf("delete stale comment %d", c.GetID()), true, err)
		}
		res.Deleted++
	}
	return res, nil
}

// postedBy reports whether c was posted by the account that runs as the
// bot: the Author login when set, else any account of type Bot (people's
// accounts are of type User).
func (t Target) postedBy(c *github.IssueComment) bool {
	if t.Author != "" {
		return strings.EqualFold(c.GetUser().GetLogin(), t.Author)
	}
	return c.GetUser().GetType() == "Bot"
}

// maxPages bounds the listing (100 comments a page) against a server that
// never stops paginating.
const maxPages = 1000

// listAll lists every comment of the pull request, oldest first.
func listAll(ctx context.Context, client *github.Client, t Target) ([]*github.IssueComment, error) {
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100, Page: 1}}
	var all []*github.IssueComment
	for range maxPages {
		page, resp, err := client.Issues.ListComments(ctx, t.Owner, t.Repo, t.PR, opts)
		if err != nil {
			return nil, explain(t, "list comments", false, err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 || resp.NextPage <= opts.Page {
			return all, nil
		}
		opts.Page = resp.NextPage
	}
	return nil, fmt.Errorf("pull request %s: list comments: more than %d pages", t, maxPages)
}

// newestFirst orders comments by creation time, newest first; ids, which
// grow with time, break ties.
func newestFirst(a, b *github.IssueComment) int {
	if c := b.GetCreatedAt().Time.Compare(a.GetCreatedAt().Time); c != 0 {
		return c
	}
	return cmp.Compare(b.GetID(), a.GetID())
}

// sameBody compares bodies as GitHub may store them (with CRLF line ends
// after an edit in the browser).
func sameBody(have, want string) bool {
	return strings.ReplaceAll(have, "\r\n", "\n") == want
}

func isStatus(err error, status int) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == status
}

// apiError is an error from GitHub with an explanation of what to do.
type apiError struct {
	msg  string
	errs []error
}

func (e *apiError) Error() string   { return e.msg }
func (e *apiError) Unwrap() []error { return e.errs }

// explain turns a go-github error into one that says what went wrong and
// what to do. write says whether the request would change a comment.
func explain(t Target, op string, write bool, err error) error {
	prefix := fmt.Sprintf("pull request %s: %s: ", t, op)
	var (
		er  *github.ErrorResponse
		rl  *github.RateLimitError
		arl *github.AbuseRateLimitError
		re  *RetryError
	)
	switch {
	case errors.As(err, &re):
		return &apiError{prefix + "github " + re.Error(), []error{err}}
	case errors.As(err, &rl):
		return &apiError{fmt.Sprintf("%sgithub API rate limit of %d requests exhausted until %s: try again later",
			prefix, rl.Rate.Limit, rl.Rate.Reset.Time.UTC().Format(time.RFC3339)), []error{err}}
	case errors.As(err, &arl):
		return &apiError{prefix + "github secondary rate limit: " + arl.Message + ": try again later", []error{err}}
	case errors.As(err, &er) && er.Response != nil:
		status := fmt.Sprintf("%d %s", er.Response.StatusCode, er.Message)
		switch er.Response.StatusCode {
		case http.StatusUnauthorized:
			return &apiError{prefix + "github rejected the token (" + status + "): GITHUB_TOKEN is missing, expired or not a GitHub token", []error{err}}
		case http.StatusForbidden:
			switch {
			case strings.Contains(strings.ToLower(er.Message), "locked"):
				return &apiError{prefix + "github refused the comment (" + status + "): the pull request's conversation is locked", []error{err}}
			case !write:
				return &apiError{prefix + "github refused to read the comments (" + status + "): the token may not read the pull request; " +
					`grant "permissions: pull-requests: write" to the workflow`, []error{ErrReadOnlyToken, err}}
			}
			return &apiError{prefix + "github refused to write the comment (" + status + "): the token is read-only — " +
				"pull requests from forks get a read-only GITHUB_TOKEN; run the comment step from a workflow_run or " +
				`pull_request_target workflow, or grant "permissions: pull-requests: write"`, []error{ErrReadOnlyToken, err}}
		case http.StatusNotFound:
			return &apiError{prefix + "github answered " + status + ": the repository or pull request number is wrong, or the token cannot see it", []error{err}}
		case http.StatusUnprocessableEntity:
			return &apiError{prefix + "github refused the comment (" + status + "): " + fmt.Sprint(er.Errors), []error{err}}
		}
	}
	return fmt.Errorf("%sgithub: %w", prefix, err)
}
