package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

var (
	commitRE      = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	pullRequestRE = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
)

func runPublish(ctx context.Context, e env, args []string) int {
	getenv := e.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root holding dbusers.json, clusters/ and users/")
	dryRun := fs.Bool("dry-run", false, "read the published version and say what would be written; write nothing")
	format := fs.String("format", "text", "output format: text or json")
	commit := fs.String("commit", getenv("GITHUB_SHA"), "commit the declarations come from (default $GITHUB_SHA)")
	pullRequest := fs.String("pull-request", getenv("DBUSERS_PULL_REQUEST"), "number of the pull request that was merged (default $DBUSERS_PULL_REQUEST)")
	mergedBy := fs.String("merged-by", firstNonEmpty(getenv("DBUSERS_MERGED_BY"), getenv("GITHUB_ACTOR")),
		"who merged it (default $DBUSERS_MERGED_BY, else $GITHUB_ACTOR)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on AWS after this long (the pointer is written last, so an interrupted publish leaves the previous version current)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: dbusers publish [--root DIR] [--dry-run] [--format text|json] [--commit SHA] [--pull-request N] [--merged-by WHO]")
		fmt.Fprintln(e.stderr, "\nValidates the declarations and writes them to SSM Parameter Store as one bundle: gzipped")
		fmt.Fprintln(e.stderr, "chunks under <ssm.parameter>/v/<version>/, then the pointer parameter, then prunes old versions.")
		fmt.Fprintln(e.stderr, "An unchanged configuration writes nothing. AWS credentials and region come from the environment.")
		fmt.Fprintln(e.stderr, "Exit status: 0 published or unchanged, 1 the declarations are invalid (nothing written),")
		fmt.Fprintln(e.stderr, "2 usage, I/O or AWS error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers publish: "+format+"\n", args...)
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(exitError, "unexpected argument %q", fs.Arg(0))
	case *format != "text" && *format != "json":
		return fail(exitError, "unknown format %q (want text or json)", *format)
	case *commit != "" && !commitRE.MatchString(*commit):
		return fail(exitError, "--commit %q is not a commit SHA (7 to 64 lowercase hex digits)", *commit)
	case *pullRequest != "" && !pullRequestRE.MatchString(*pullRequest):
		return fail(exitError, "--pull-request %q is not a pull request number", *pullRequest)
	case !printable(*mergedBy, 100):
		return fail(exitError, "--merged-by must be at most 100 printable characters")
	case *timeout <= 0:
		return fail(exitError, "--timeout must be positive")
	}
	if fi, err := os.Stat(*root); err != nil {
		return fail(exitError, "%v", err)
	} else if !fi.IsDir() {
		return fail(exitError, "--root %s is not a directory", *root)
	}

	// Validate everything before touching AWS: an invalid configuration
	// writes nothing.
	now := e.now()
	loaded, diags, err := config.LoadDir(*root, now)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	if len(diags) > 0 {
		_ = diags.Write(e.stderr, diag.Text)
	}
	if errs, _ := diags.Count(); errs > 0 {
		return fail(exitChanges, "the declarations have %d error(s); nothing was published", errs)
	}
	target := ssmbundle.TargetOf(loaded.Config.Settings.SSM)
	if target.Pointer == "" {
		return fail(exitChanges, "dbusers.json names no ssm.parameter; nothing was published")
	}
	limit, err := target.Limit()
	if err != nil {
		return fail(exitChanges, "dbusers.json: %v; nothing was published", err)
	}

	if e.newSSM == nil {
		return fail(exitError, "no SSM client")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	api, err := e.newSSM(ctx)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	origin := ssmbundle.Origin{Commit: *commit, PullRequest: *pullRequest, MergedBy: *mergedBy, Time: now}
	res, err := ssmbundle.Publish(ctx, api, target, ssmbundle.ContentOf(&loaded.Config), origin, *dryRun)
	if res == nil {
		return fail(exitError, "%v", err)
	}

	out := publishOutput{
		DryRun: *dryRun, Pointer: target.Pointer, Tier: target.Tier, Keep: target.Keep, Result: res,
		Commit: origin.Commit, PullRequest: origin.PullRequest, MergedBy: origin.MergedBy,
		Users: len(loaded.Config.Users), Clusters: len(loaded.Config.Clusters),
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(exitError, "%v", err)
		}
	} else {
		out.text(e, limit)
	}
	if err != nil {
		// Published, but pruning failed: the new version is live.
		return fail(exitError, "%v", err)
	}
	return exitOK
}

// publishOutput is what publish reports, in JSON as written here.
type publishOutput struct {
	DryRun  bool   `json:"dry_run"`
	Pointer string `json:"pointer"`
	Tier    string `json:"tier"`
	Keep    int    `json:"keep_versions"`
	*ssmbundle.Result
	Commit      string `json:"commit,omitempty"`
	PullRequest string `json:"pull_request,omitempty"`
	MergedBy    string `json:"merged_by,omitempty"`
	Users       int    `json:"users"`
	Clusters    int    `json:"clusters"`
}

func (o publishOutput) text(e env, limit int) {
	w := e.stdout
	r := o.Result
	if r.Repaired != "" {
		fmt.Fprintf(w, "the published version %s does not read back (%s): writing it again\n", r.Version, r.Repaired)
	}
	switch {
	case !r.Changed && o.DryRun:
		fmt.Fprintf(w, "dry run: unchanged: version %s already published at %s; nothing would be written\n", r.Version, o.Pointer)
	case !r.Changed:
		fmt.Fprintf(w, "unchanged: version %s already published at %s (sha256 %s)\n", r.Version, o.Pointer, r.SHA256)
	case o.DryRun:
		fmt.Fprintf(w, "dry run: would publish version %s at %s (%d chunk(s) of at most %d bytes, %d bytes, sha256 %s) and keep the newest %d version(s); nothing was written\n",
			r.Version, o.Pointer, r.Chunks, limit, r.Bytes, r.SHA256, o.Keep)
	default:
		pruned := "none"
		if len(r.Pruned) > 0 {
			pruned = strings.Join(r.Pruned, ", ")
		}
		fmt.Fprintf(w, "published version %s at %s (%d chunk(s), %d bytes, sha256 %s); pruned: %s\n",
			r.Version, o.Pointer, r.Chunks, r.Bytes, r.SHA256, pruned)
	}
	if r.Changed {
		fmt.Fprintf(w, "  %d user(s), %d cluster(s); commit %s, pull request %s, merged by %s\n",
			o.Users, o.Clusters, orNone(o.Commit), orNone(prefixed("#", o.PullRequest)), orNone(o.MergedBy))
	}
}

// newSSMClient is the production SSM client: credentials, region and
// endpoint come from the environment (AWS_REGION, the web identity that
// aws-actions/configure-aws-credentials sets up, AWS_ENDPOINT_URL or
// AWS_ENDPOINT_URL_SSM). A large bundle is a burst of PutParameter calls
// against a shared, throttled quota, so retries are adaptive and patient.
func newSSMClient(ctx context.Context) (ssmbundle.API, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRetryMode(aws.RetryModeAdaptive),
		awsconfig.WithRetryMaxAttempts(10),
	)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set AWS_REGION")
	}
	return ssm.NewFromConfig(cfg), nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// printable reports whether s is at most n runes with no control
// character: it ends up in a parameter value and in logs.
func printable(s string, n int) bool {
	if len([]rune(s)) > n {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
