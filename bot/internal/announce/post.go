package announce

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/go-github/v60/github"

	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/rollout"
)

// StatusContext names the commit status.
const StatusContext = "dbusers/rollout"

// CommentKey names the sticky rollout comment, apart from the plan's.
const CommentKey = "rollout"

// Target is where to post: the repository, the commit the status goes on,
// and the pull request, which Post finds from the commit when PR is 0.
type Target struct {
	Owner, Repo string
	// Commit is the full id of the merge commit.
	Commit string
	// PR is the pull request to comment on; 0 finds it from Commit (the
	// pull request GitHub says merged it), else from the record.
	PR int
	// Author is the login whose comments are the bot's (see
	// ghcomment.Target); "" means any bot account.
	Author string
	// Comment and Status say what to post.
	Comment, Status bool
}

// Posted says what Post did.
type Posted struct {
	// PR is the pull request commented on (0: none found).
	PR         int
	CommentURL string
	Comment    ghcomment.Result
	Status     ghcomment.Status
	// Notes are things said on the way (no pull request found).
	Notes []string
}

// Pending sets the pending status while the rollout is awaited.
func Pending(ctx context.Context, client *github.Client, t Target, version, targetURL string) error {
	if !t.Status {
		return nil
	}
	return ghcomment.SetStatus(ctx, client, t.Owner, t.Repo, t.Commit, ghcomment.Status{
		State: ghcomment.StatePending, Context: StatusContext, TargetURL: targetURL,
		Description: "waiting for the Lambda's run of " + version,
	})
}

// Unknown sets the error status when the rollout's result is not known:
// no record came in time, or it could not be read.
func Unknown(ctx context.Context, client *github.Client, t Target, version string, why error, targetURL string) error {
	if !t.Status {
		return nil
	}
	desc := "no rollout record of " + version + " came in time: see the workflow run"
	if !errors.Is(why, rollout.ErrTimeout) {
		desc = "the rollout record of " + version + " could not be read: see the workflow run"
	}
	return ghcomment.SetStatus(ctx, client, t.Owner, t.Repo, t.Commit, ghcomment.Status{
		State: ghcomment.StateError, Context: StatusContext, TargetURL: targetURL, Description: desc,
	})
}

// Post comments the record on the pull request (one sticky comment,
// edited in place by a later post) and then sets the commit status, which
// links to the comment (or, without one, to targetURL). A failure of one
// does not stop the other; the errors are joined.
func Post(ctx context.Context, client *github.Client, t Target, r *rollout.Record, c Context, targetURL string) (*Posted, error) {
	out := &Posted{}
	var errs []error
	if t.Comment {
		pr, notes, err := findPR(ctx, client, t, r.PullRequest)
		out.Notes = append(out.Notes, notes...)
		if err != nil {
			errs = append(errs, err)
		}
		if pr > 0 {
			out.PR = pr
			target := ghcomment.Target{Owner: t.Owner, Repo: t.Repo, PR: pr, Author: t.Author}
			res, err := ghcomment.Upsert(ctx, client, target, CommentKey, ghcomment.Pack(Sections(r, c), ghcomment.MaxBody))
			out.Comment = res
			if err != nil {
				errs = append(errs, err)
			} else {
				out.CommentURL = res.URL
			}
		}
	}
	if t.Status {
		link := targetURL
		if out.CommentURL != "" {
			link = out.CommentURL
		}
		out.Status = ghcomment.Status{State: r.CommitState(), Context: StatusContext, TargetURL: link, Description: r.StatusDescription()}
		if r.Outcome() == rollout.DryRunOnly {
			out.Status.State = ghcomment.StateSuccess
		}
		if err := ghcomment.SetStatus(ctx, client, t.Owner, t.Repo, t.Commit, out.Status); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// PostUnknown comments, when no record came (or it could not be read),
// that the rollout's result is not known yet, and what to do.
func PostUnknown(ctx context.Context, client *github.Client, t Target, version string, why error, c Context) (*Posted, error) {
	out := &Posted{}
	pr, notes, err := findPR(ctx, client, t, "")
	out.Notes = notes
	if pr == 0 {
		return out, err
	}
	out.PR = pr
	res, uerr := ghcomment.Upsert(ctx, client, ghcomment.Target{Owner: t.Owner, Repo: t.Repo, PR: pr, Author: t.Author}, CommentKey,
		ghcomment.Pack(UnknownSections(version, why, c), ghcomment.MaxBody))
	out.Comment, out.CommentURL = res, res.URL
	return out, errors.Join(err, uerr)
}

// findPR is the pull request to comment on: t.PR, else the one GitHub
// says merged t.Commit, else recorded (the bundle's provenance).
func findPR(ctx context.Context, client *github.Client, t Target, recorded string) (int, []string, error) {
	if t.PR > 0 {
		return t.PR, nil, nil
	}
	var notes []string
	n, err := ghcomment.MergedPullRequest(ctx, client, t.Owner, t.Repo, t.Commit)
	if n > 0 {
		return n, nil, nil
	}
	if m, aerr := strconv.Atoi(recorded); aerr == nil && m > 0 {
		notes = append(notes, fmt.Sprintf("GitHub names no merged pull request for %.12s; commenting on #%d, the one the bundle records", t.Commit, m))
		return m, notes, err
	}
	notes = append(notes, fmt.Sprintf("no merged pull request for commit %.12s (a direct push?): no comment", t.Commit))
	return 0, notes, err
}
