package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/gitfs"
	"github.com/dbusers/dbusers/bot/internal/review"
)

// reviewFlags are the flags plan and comment share.
type reviewFlags struct {
	root, base, head string
	live             liveFlags
}

func (f *reviewFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.root, "root", ".", "repository root (a git working copy)")
	fs.StringVar(&f.base, "base", "", "base revision, e.g. origin/main; the plan compares the merge base with it (required)")
	fs.StringVar(&f.head, "head", "", "head revision (default: the working tree)")
	f.live.register(fs)
}

// reviewOutcome is a computed review, or the validation problems of the
// head that stop one.
type reviewOutcome struct {
	// baseSHA is the merge base the review compares against.
	baseSHA string
	review  *review.Review
	invalid diag.List // head's diagnostics when it has errors
	diags   diag.List // head's diagnostics (warnings included)
	// context is where and when the review is made; changed, set with
	// invalid, the files the pull request changes (nil: not known).
	context review.Context
	changed []string
}

// computeReview loads both sides and compares them.
func computeReview(ctx context.Context, e env, f reviewFlags) (*reviewOutcome, error) {
	if f.base == "" {
		return nil, errors.New("--base is required")
	}
	repo := gitfs.Repo{Dir: f.root}
	if err := repo.Check(ctx); err != nil {
		return nil, err
	}
	today := e.now()
	headRev := "HEAD"
	if f.head != "" {
		headRev = f.head
	}
	headID, err := repo.Resolve(ctx, headRev)
	if err != nil {
		return nil, err
	}
	baseTip, err := repo.Resolve(ctx, f.base)
	if err != nil {
		return nil, err
	}
	baseID, err := repo.MergeBase(ctx, baseTip, headID)
	if err != nil {
		return nil, err
	}

	var headFS fs.FS
	headLabel := "working tree"
	if f.head == "" {
		// Through an os.Root, as config.LoadDir reads: no read of the
		// working tree can leave it.
		root, err := os.OpenRoot(f.root)
		if err != nil {
			return nil, fmt.Errorf("open repository: %w", err)
		}
		defer root.Close()
		headFS = root.FS()
	} else {
		if headFS, err = repo.Tree(ctx, headID, declarationPaths...); err != nil {
			return nil, err
		}
		headLabel = f.head + " (" + short(headID) + ")"
	}
	head, headDiags, err := loadSide(headFS, headLabel, today)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	out := &reviewOutcome{diags: headDiags, context: reviewContext(e, headID, f.head == "")}
	if errs := headDiags.Errors(); len(errs) > 0 {
		out.invalid = headDiags
		out.changed = changedFiles(ctx, e, repo, baseID, f.head)
		return out, nil
	}

	out.baseSHA = baseID
	baseFS, err := repo.Tree(ctx, baseID, declarationPaths...)
	if err != nil {
		return nil, err
	}
	// The base merged through this same check: its schema need not be
	// checked again, which halves the time of a large plan.
	base, baseDiags, err := loadSide(baseFS, "merge base "+short(baseID)+" of "+f.base, today, config.SkipSchema())
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	var note string
	if errs := baseDiags.Errors(); len(errs) > 0 {
		// A base without dbusers.json predates dbusers; a base that does
		// not validate cannot be expanded. Either way compare with nothing,
		// so that the pull request that repairs the base can go green.
		if _, statErr := fs.Lstat(baseFS, config.SettingsFile); statErr == nil {
			note = fmt.Sprintf("the base revision %s does not validate (%d error(s), first: %s); "+
				"this review compares against an empty configuration", short(baseID), len(errs), errs[0])
		}
		base = review.Side{Label: base.Label, Config: &config.Config{}, State: &desired.State{Date: head.State.Date}}
	}
	out.review = review.Compare(base, head)
	out.review.Context = out.context
	if note != "" {
		out.review.Notes = append(out.review.Notes, note)
	}
	headTree := headID
	if f.head == "" {
		headTree = "" // the working tree
	}
	code, err := repo.Changed(ctx, baseID, headTree, codePaths...)
	if err != nil {
		return nil, err
	}
	if len(code) > 0 {
		out.review.Notes = append(out.review.Notes, codeChangeNote(code))
	}
	if f.live.live {
		liveBase := base
		if note != "" {
			liveBase = review.Side{} // drift is then told against the published configuration
		}
		out.review.Live, out.review.LiveNote = livePlan(ctx, e, f.live, head, liveBase, headID)
		if out.review.LiveNote != "" {
			fmt.Fprintln(e.stderr, "dbusers: "+out.review.LiveNote)
		}
	}
	return out, nil
}

// codePaths are what decides how a review is made and what the bot does:
// its code, its dependencies and the workflows that build and run it.
var codePaths = []string{"bot", "go.mod", "go.sum", ".github"}

// maxNamed bounds the files a note names.
const maxNamed = 5

// codeChangeNote tells the reviewer that the pull request changes dbusers
// itself, which the review cannot vouch for: the pull-request workflow
// builds dbusers from the base branch, so the plan shows what the current
// code makes of the declarations, not what the changed code would do.
func codeChangeNote(files []string) string {
	named := files[:min(len(files), maxNamed)]
	list := strings.Join(named, ", ")
	if n := len(files) - len(named); n > 0 {
		list += fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("This pull request changes dbusers itself (%s). The pull-request workflow reviews with the dbusers and the workflow "+
		"of the base branch, never the pull request's own: this plan does not show what the changed code would do. "+
		"The code change needs its own review (CI and CODEOWNERS).", list)
}

// declarationPaths are what a revision's tree is read for.
var declarationPaths = []string{config.SettingsFile, config.ClustersDir, config.UsersDir}

func loadSide(fsys fs.FS, label string, today time.Time, opts ...config.Option) (review.Side, diag.List, error) {
	loaded, diags, err := config.Load(fsys, today, append(opts, config.WithState())...)
	if err != nil {
		return review.Side{}, nil, err
	}
	side := review.Side{Label: label, Config: &loaded.Config}
	if len(diags.Errors()) > 0 {
		return side, diags, nil
	}
	// No error in the diagnostics: the state means what the files say.
	side.State = loaded.Desired
	return side, diags, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func runPlan(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var rf reviewFlags
	rf.register(fs)
	format := fs.String("format", "text", "output format: markdown, text or json")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers plan --base REF [--head REF] [--format markdown|text|json] [--root DIR] [--live [--function NAME] [--live-timeout D]]")
		fmt.Fprintln(fs.Output(), "\nShows what merging the working tree (or --head) into the merge base with REF changes,")
		fmt.Fprintln(fs.Output(), "user by user, with risky changes first. Exit status: 0 no change, 1 changes, 2 error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers plan: "+format+"\n", args...)
		return exitError
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if *format != "markdown" && *format != "text" && *format != "json" {
		return fail("unknown format %q (want markdown, text or json)", *format)
	}
	out, err := computeReview(ctx, e, rf)
	if err != nil {
		return fail("%v", err)
	}
	if out.invalid != nil {
		switch *format {
		case "markdown":
			fmt.Fprint(e.stdout, review.InvalidMarkdown(out.invalid, out.changed, out.context))
		case "json":
			_ = writeJSON(e, struct {
				versioned
				Valid       bool      `json:"valid"`
				Diagnostics diag.List `json:"diagnostics"`
			}{newVersioned(), false, out.invalid})
		default:
			_ = out.invalid.Write(e.stdout, diag.Text)
		}
		return fail("the declarations do not validate")
	}
	r := out.review
	switch *format {
	case "markdown":
		fmt.Fprint(e.stdout, r.Markdown())
	case "json":
		if err := writeJSON(e, struct {
			versioned
			Valid   bool   `json:"valid"`
			BaseSHA string `json:"base_sha"`
			*review.Review
		}{newVersioned(), true, out.baseSHA, r}); err != nil {
			return fail("%v", err)
		}
	default:
		fmt.Fprint(e.stdout, r.Text())
	}
	if r.Empty() {
		return exitOK
	}
	return exitChanges
}

func writeJSON(e env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
