package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dbusers/dbusers/bot/internal/announce"
	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
	"github.com/dbusers/dbusers/bot/internal/rollout"
)

// demoRepoURL is the declarations repository the demo's GitHub stands for.
const demoRepoURL = "https://github.com/acme/dbaccess"

// reportRollout does what the publish workflow's rollout job does after
// the merge (`dbusers rollout --version V --wait 10m --comment --status`):
// it sets the commit status pending, reads the record the Lambda's run
// wrote, comments it on the merged pull request and sets the status, here
// against the fake GitHub of the tests; then it prints what the fake
// received: the requests, the status and the comment.
func reportRollout(ctx context.Context, out io.Writer, api rollout.ReadAPI, pointer, version string) error {
	tb := &demoTB{}
	defer tb.cleanup()
	gh := ghcommenttest.NewServer(tb)
	client, err := ghcomment.NewClient(&http.Client{}, ghcommenttest.Token, gh.URL)
	if err != nil {
		return err
	}
	target := announce.Target{Owner: ghcommenttest.Owner, Repo: ghcommenttest.Repo, Commit: ghcommenttest.MergeCommit, Comment: true, Status: true}
	runURL := demoRepoURL + "/actions/runs/3"
	if err := announce.Pending(ctx, client, target, version, runURL); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	found, err := rollout.Wait(wctx, api, pointer, version, 100*time.Millisecond, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "the Lambda's run wrote the rollout record %s (generation %d, %d chunk(s), %d bytes of gzip): %s\n",
		rollout.HeadName(pointer, version), found.Head.Generation, found.Head.Chunks, found.Head.Bytes, found.Record.Headline())
	c := announce.Context{RepoURL: demoRepoURL, Ref: ghcommenttest.MergeCommit, RunURL: runURL, Asked: version, Found: found}
	posted, err := announce.Post(ctx, client, target, found.Record, c, runURL)
	if err != nil {
		return err
	}
	if err := tb.err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nthe fake GitHub received:")
	for _, r := range gh.Take() {
		fmt.Fprintf(out, "  %-6s %s\n", r.Method, r.Path)
	}
	for _, s := range gh.Statuses() {
		fmt.Fprintf(out, "commit status %s on %.12s: %s: %s\n", s.Context, s.SHA, s.State, s.Description)
	}
	comments := gh.BotComments()
	if len(comments) != 1 || posted.PR != ghcommenttest.PR {
		return fmt.Errorf("%d comment(s) on pull request #%d", len(comments), posted.PR)
	}
	fmt.Fprintf(out, "\nthe comment on pull request #%d (%s):\n\n", posted.PR, posted.CommentURL)
	fmt.Fprintln(out, comments[0].Body)
	return nil
}

// demoTB is what the fake GitHub needs of a test, for the demo: what it
// reports is collected and fails the demo.
type demoTB struct {
	mu       sync.Mutex
	problems []string
	cleanups []func()
}

func (d *demoTB) Helper() {}

func (d *demoTB) Errorf(format string, args ...any) { d.add(fmt.Sprintf(format, args...)) }

func (d *demoTB) Error(args ...any) { d.add(fmt.Sprint(args...)) }

// Fatal records the problem; the demo stops when it checks err.
func (d *demoTB) Fatal(args ...any) { d.add(fmt.Sprint(args...)) }

func (d *demoTB) Cleanup(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cleanups = append(d.cleanups, f)
}

func (d *demoTB) add(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.problems = append(d.problems, p)
}

func (d *demoTB) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.problems) == 0 {
		return nil
	}
	return fmt.Errorf("the fake GitHub: %s", strings.Join(d.problems, "; "))
}

func (d *demoTB) cleanup() {
	d.mu.Lock()
	fs := d.cleanups
	d.cleanups = nil
	d.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
