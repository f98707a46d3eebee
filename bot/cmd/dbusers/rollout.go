package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/dbusers/dbusers/bot/internal/announce"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/rollout"
)

// maxWait bounds --wait: a workflow job that waits longer should not.
const maxWait = time.Hour

func runRollout(ctx context.Context, e env, args []string) int {
	getenv := e.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fs := flag.NewFlagSet("rollout", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	version := fs.String("version", "", "the published version (dbusers publish prints it, and writes it to $GITHUB_OUTPUT as version)")
	wait := fs.Duration("wait", 0, "wait this long for the record (at most 1h); 0 reads it once")
	poll := fs.Duration("poll", 5*time.Second, "how often to look while waiting")
	format := fs.String("format", "text", "output format: text, markdown or json")
	root := fs.String("root", ".", "repository root holding dbusers.json (for ssm.parameter)")
	pointer := fs.String("pointer", "", "the SSM pointer parameter (default: ssm.parameter of dbusers.json in --root)")
	comment := fs.Bool("comment", false, "post the rollout as one sticky comment on the merged pull request (GITHUB_TOKEN)")
	status := fs.Bool("status", false, "set the commit status "+announce.StatusContext+" on the commit: pending while waiting, then the result (GITHUB_TOKEN)")
	repo := fs.String("repo", getenv("GITHUB_REPOSITORY"), "owner/repo to post to (default $GITHUB_REPOSITORY)")
	commit := fs.String("commit", getenv("GITHUB_SHA"), "the merge commit: the status goes on it, and the pull request is found from it (default $GITHUB_SHA)")
	pr := fs.Int("pr", 0, "the pull request to comment on (default: the one GitHub says merged --commit, else the one the bundle records)")
	apiURL := fs.String("api-url", "", "GitHub API base URL (default $GITHUB_API_URL, else https://api.github.com/)")
	author := fs.String("author", "", "login that posts the comment when GITHUB_TOKEN is a person's token (default: any bot account)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers rollout --version V [--wait DURATION] [--poll DURATION] [--format text|markdown|json] [--root DIR | --pointer NAME] [--comment] [--status] [--repo OWNER/REPO] [--commit SHA] [--pr N] [--api-url URL] [--author LOGIN]")
		fmt.Fprintln(fs.Output(), "\nReads the rollout record that the Lambda writes at the end of every run of a published")
		fmt.Fprintln(fs.Output(), "version (<pointer>/status/<version>), waiting for it with --wait (progress on a terminal), and")
		fmt.Fprintln(fs.Output(), "prints it. With --comment and --status it tells the merged pull request and the merge commit.")
		fmt.Fprintln(fs.Output(), "AWS credentials and region come from the environment (the publish role may read the records).")
		fmt.Fprintln(fs.Output(), "Exit status: 0 every cluster applied or had nothing to do (or a dry run, which it says),")
		fmt.Fprintln(fs.Output(), "1 a cluster failed, was partial or had drops held back, 2 an error or no record in time.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers rollout: "+format+"\n", args...)
		return exitError
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *version == "":
		return fail("--version is required (dbusers publish prints the version it published)")
	case !rollout.ValidVersion(*version):
		return fail("--version %q is not a version name such as 20260301T090000Z-ad6aa65e5287", *version)
	case *format != "text" && *format != "markdown" && *format != "json":
		return fail("unknown format %q (want text, markdown or json)", *format)
	case *wait < 0 || *wait > maxWait:
		return fail("--wait %s: want 0 to %s", *wait, maxWait)
	case *poll <= 0:
		return fail("--poll must be positive")
	case (*comment || *status) && !commitRE.MatchString(*commit):
		return fail("--commit %q: --comment and --status need the merge commit's full id (default $GITHUB_SHA)", *commit)
	case *pr < 0:
		return fail("--pr %d: want a pull request number", *pr)
	}
	if *pointer == "" {
		loaded, _, err := config.LoadDir(*root, e.now())
		if err != nil {
			return fail("%v (or pass --pointer)", err)
		}
		if *pointer = loaded.Config.Settings.SSM.Parameter; *pointer == "" {
			return fail("dbusers.json in %s names no ssm.parameter (pass --pointer)", *root)
		}
	}

	// GitHub first: a missing token is better said before the wait.
	var gh *github.Client
	target := announce.Target{Commit: *commit, PR: *pr, Author: *author, Comment: *comment, Status: *status}
	if *comment || *status {
		owner, name, ok := strings.Cut(*repo, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			return fail("--repo %q: want owner/repo (default $GITHUB_REPOSITORY)", *repo)
		}
		target.Owner, target.Repo = owner, name
		if len(*commit) != 40 && len(*commit) != 64 {
			return fail("--commit %q: want the full commit id", *commit)
		}
		base := firstNonEmpty(*apiURL, getenv("GITHUB_API_URL"), ghcomment.DefaultAPIURL)
		var err error
		if gh, err = ghcomment.NewClient(&http.Client{}, getenv("GITHUB_TOKEN"), base); err != nil {
			return fail("%v", err)
		}
	}
	if e.newSSM == nil {
		return fail("no AWS clients")
	}
	ctx, cancel := context.WithTimeout(ctx, *wait+2*time.Minute)
	defer cancel()
	api, err := e.newSSM(ctx)
	if err != nil {
		return fail("%v", err)
	}
	runURL := workflowRunURL(getenv)
	c := announce.Context{RepoURL: repoURL(getenv, target), Ref: *commit, RunURL: runURL, Asked: *version}
	ghErr := func(err error) {
		fmt.Fprintf(e.stderr, "dbusers rollout: GitHub: %v\n", err)
	}
	if gh != nil {
		if err := announce.Pending(ctx, gh, target, *version, runURL); err != nil {
			ghErr(err) // said, and the wait goes on: the result matters more
		}
	}

	found, err := fetch(ctx, e, api, *pointer, *version, *wait, *poll)
	if err != nil {
		out := rolloutJSON{versioned: newVersioned(), Version: *version, Pointer: *pointer, Outcome: "unknown", Error: err.Error()}
		if errors.Is(err, rollout.ErrTimeout) {
			out.Outcome = "timeout"
		}
		if *format == "json" {
			_ = writeJSON(e, out)
		}
		fmt.Fprintf(e.stderr, "dbusers rollout: %v\n", err)
		if gh != nil {
			if err := announce.Unknown(ctx, gh, target, *version, err, runURL); err != nil {
				ghErr(err)
			}
			if *comment {
				if _, err := announce.PostUnknown(ctx, gh, target, *version, err, c); err != nil {
					ghErr(err)
				}
			}
		}
		return exitError
	}
	rec := found.Record
	c.Found = found
	switch *format {
	case "json":
		_ = writeJSON(e, rolloutJSON{versioned: newVersioned(), Version: *version, Pointer: *pointer, RecordVersion: found.Version, SupersededBy: found.SupersededBy,
			Outcome: string(rec.Outcome()), Headline: rec.Headline(), State: rec.CommitState(), Record: rec})
	case "markdown":
		fmt.Fprint(e.stdout, announce.Markdown(rec, c))
	default:
		rollout.Text(e.stdout, rec, found)
	}
	code := exitOK
	if rec.Outcome() == rollout.NotOK {
		code = exitChanges
	}
	if gh != nil {
		if err := ghcomment.WriteStepSummary(getenv, announce.Sections(rec, c)); err != nil {
			fmt.Fprintf(e.stderr, "dbusers rollout: step summary: %v\n", err)
		}
		posted, err := announce.Post(ctx, gh, target, rec, c, runURL)
		for _, n := range posted.Notes {
			fmt.Fprintf(e.stderr, "dbusers rollout: %s\n", n)
		}
		if posted.PR > 0 && posted.CommentURL != "" {
			fmt.Fprintf(e.stderr, "comment on %s/%s#%d: %d created, %d updated, %d unchanged: %s\n", target.Owner, target.Repo, posted.PR,
				posted.Comment.Created, posted.Comment.Updated, posted.Comment.Unchanged, posted.CommentURL)
		}
		if *status && posted.Status.State != "" {
			fmt.Fprintf(e.stderr, "status %s on %.12s: %s: %s\n", announce.StatusContext, *commit, posted.Status.State, posted.Status.Description)
		}
		if err != nil {
			ghErr(err)
			return exitError
		}
	}
	return code
}

// rolloutJSON is what --format json prints.
type rolloutJSON struct {
	versioned
	Version       string          `json:"version"`
	Pointer       string          `json:"pointer"`
	RecordVersion string          `json:"record_version,omitempty"`
	SupersededBy  string          `json:"superseded_by,omitempty"`
	Outcome       string          `json:"outcome"`
	Headline      string          `json:"headline,omitempty"`
	State         string          `json:"commit_state,omitempty"`
	Error         string          `json:"error,omitempty"`
	Record        *rollout.Record `json:"record,omitempty"`
}

// fetch reads the record once, or waits for it, with progress on stderr:
// on a terminal one line kept up to date, elsewhere (a workflow's log) a
// line a minute.
func fetch(ctx context.Context, e env, api rollout.ReadAPI, pointer, version string, wait, poll time.Duration) (*rollout.Found, error) {
	if wait == 0 {
		r, h, err := rollout.Read(ctx, api, pointer, version)
		if err != nil {
			if errors.Is(err, rollout.ErrNoRecord) {
				return nil, fmt.Errorf("%w: no run of it has finished yet (wait for one with --wait 10m)", err)
			}
			return nil, err
		}
		return &rollout.Found{Record: r, Head: h, Version: version}, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tty := isTerminal(e.stderr)
	fmt.Fprintf(e.stderr, "waiting up to %s for the rollout record of %s (%s)\n", wait, version, rollout.HeadName(pointer, version))
	lastLine := time.Duration(0)
	progress := func(p rollout.Progress) {
		state := "no run of it has finished yet"
		if p.Current != "" && p.Current != version {
			state = "the pointer names " + p.Current
		}
		switch {
		case tty:
			fmt.Fprintf(e.stderr, "\r\033[K  %s: %s", p.Elapsed.Round(time.Second), state)
		case p.Elapsed-lastLine >= time.Minute:
			lastLine = p.Elapsed
			fmt.Fprintf(e.stderr, "  %s: %s\n", p.Elapsed.Round(time.Second), state)
		}
	}
	found, err := rollout.Wait(wctx, api, pointer, version, poll, progress)
	if tty {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if err == nil && found.SupersededBy != "" {
		fmt.Fprintf(e.stderr, "version %s was superseded by %s before a run read it: reporting the rollout of %s, which carries its declarations\n",
			version, found.SupersededBy, found.SupersededBy)
	}
	return found, err
}

// workflowRunURL is the page of the workflow run this runs in, from the
// Actions environment ("" outside it).
func workflowRunURL(getenv func(string) string) string {
	server, repo, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID")
	if server == "" || repo == "" || id == "" {
		return ""
	}
	u := strings.TrimSuffix(server, "/") + "/" + repo + "/actions/runs/" + id
	if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" && a != "1" {
		u += "/attempts/" + a
	}
	return u
}

// repoURL is the repository's web address, for the README link.
func repoURL(getenv func(string) string, t announce.Target) string {
	server := firstNonEmpty(getenv("GITHUB_SERVER_URL"), "https://github.com")
	repo := getenv("GITHUB_REPOSITORY")
	if t.Owner != "" {
		repo = t.Owner + "/" + t.Repo
	}
	if repo == "" {
		return ""
	}
	return strings.TrimSuffix(server, "/") + "/" + repo
}
