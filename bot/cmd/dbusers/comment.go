package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/review"
)

func runComment(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("comment", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var rf reviewFlags
	rf.register(fs)
	repo := fs.String("repo", "", "owner/repo (default: GITHUB_REPOSITORY)")
	pr := fs.Int("pr", 0, "pull request number (default: from the event in GITHUB_EVENT_PATH)")
	apiURL := fs.String("api-url", "", "GitHub API base URL (default: GITHUB_API_URL, for GitHub Enterprise, else https://api.github.com/)")
	key := fs.String("key", ghcomment.DefaultKey, "names the sticky comment, so two workflows can keep one each")
	author := fs.String("author", "", "login that posts the comment when GITHUB_TOKEN is a person's token (default: any bot account, e.g. github-actions[bot]); comments by others are never edited")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers comment --base REF [--head REF] [--root DIR] [--repo OWNER/REPO] [--pr N] [--api-url URL] [--key KEY] [--author LOGIN] [--live [--function NAME] [--live-timeout D]]")
		fmt.Fprintln(fs.Output(), "\nPosts the plan (or the validation errors) as one sticky pull-request comment, edited in")
		fmt.Fprintln(fs.Output(), "place on every push, and writes it to the step summary. The token comes from GITHUB_TOKEN.")
		fmt.Fprintln(fs.Output(), "Exit status: 0 posted, 1 the declarations do not validate (the comment lists why), 2 error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers comment: "+format+"\n", args...)
		return exitError
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	token := e.getenv("GITHUB_TOKEN")
	if token == "" {
		return fail("GITHUB_TOKEN is not set (in a workflow: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }})")
	}
	target, base, err := resolveTarget(e, *repo, *pr, *apiURL)
	if err != nil {
		return fail("%v", err)
	}
	target.Author = *author

	out, err := computeReview(ctx, e, rf)
	if err != nil {
		return fail("%v", err)
	}
	var sections []ghcomment.Section
	if out.invalid != nil {
		// Annotations put each problem on the diff; the comment lists them.
		_ = out.invalid.Write(e.stdout, diag.GitHub)
		sections = commentSections(review.InvalidSections(out.invalid, out.changed, out.context))
	} else {
		sections = commentSections(out.review.Sections())
	}
	if err := ghcomment.WriteStepSummary(e.getenv, sections); err != nil {
		fmt.Fprintf(e.stderr, "dbusers comment: step summary: %v\n", err)
	}

	client, err := ghcomment.NewClient(&http.Client{}, token, base)
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	res, err := ghcomment.Upsert(ctx, client, target, *key, ghcomment.Pack(sections, ghcomment.MaxBody))
	switch {
	case errors.Is(err, ghcomment.ErrReadOnlyToken):
		// A fork's pull request: say so where the author looks, and let
		// the check's result depend on validation alone.
		fmt.Fprintf(e.stdout, "::warning::%s (the plan is in this run's step summary)\n", strings.ReplaceAll(err.Error(), "\n", " "))
	case err != nil:
		return fail("%v", err)
	default:
		fmt.Fprintf(e.stderr, "comment on %s: %d created, %d updated, %d deleted, %d unchanged: %s\n",
			target, res.Created, res.Updated, res.Deleted, res.Unchanged, res.URL)
	}
	if out.invalid != nil {
		return exitChanges
	}
	return exitOK
}

// commentSections converts the review's sections to ghcomment's, a struct
// of the same fields (neither package imports the other).
func commentSections(in []review.Section) []ghcomment.Section {
	out := make([]ghcomment.Section, len(in))
	for i, s := range in {
		out[i] = ghcomment.Section(s)
	}
	return out
}

// resolveTarget takes the pull request from flags, falling back to the
// Actions environment for what they leave out.
func resolveTarget(e env, repo string, pr int, apiURL string) (ghcomment.Target, string, error) {
	t, base, envErr := ghcomment.TargetFromEnv(e.getenv, os.ReadFile)
	if repo != "" {
		owner, name, ok := strings.Cut(repo, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			return t, "", fmt.Errorf("--repo %q: want owner/repo", repo)
		}
		t.Owner, t.Repo = owner, name
	}
	if pr != 0 {
		t.PR = pr
	}
	if apiURL != "" {
		base = apiURL
	}
	if base == "" {
		base = ghcomment.DefaultAPIURL
	}
	if t.Owner == "" || t.Repo == "" || t.PR <= 0 {
		if envErr != nil {
			return t, "", fmt.Errorf("which pull request? %w (or pass --repo and --pr)", envErr)
		}
		return t, "", errors.New("which pull request? pass --repo and --pr")
	}
	return t, base, nil
}
