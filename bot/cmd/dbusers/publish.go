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
	"github.com/aws/aws-sdk-go-v2/service/kms"
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
	signingKey := fs.String("signing-key", getenv(envSigningKey), "ARN of the KMS key that signs the pointer: the control-plane stack's output SigningKeyArn (default $"+envSigningKey+")")
	placeholders := fs.Bool("allow-placeholder-accounts", false, "publish clusters whose account_id is a placeholder (111111111111, 123456789012): for emulators and tests only")
	unsigned := fs.Bool("unsigned", false, "publish without a signature, which only a Lambda with DBUSERS_ALLOW_UNSIGNED=true accepts (the move to signed bundles)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers publish [--root DIR] [--dry-run] [--format text|json] [--commit SHA] [--pull-request N] [--merged-by WHO] [--signing-key ARN | --unsigned] [--timeout D] [--allow-placeholder-accounts]")
		fmt.Fprintln(fs.Output(), "\nValidates the declarations and writes them to SSM Parameter Store as one bundle: gzipped")
		fmt.Fprintln(fs.Output(), "chunks under <ssm.parameter>/v/<version>/, then the pointer parameter, signed with the KMS")
		fmt.Fprintln(fs.Output(), "key, then prunes old versions. An unchanged configuration writes nothing. AWS credentials")
		fmt.Fprintln(fs.Output(), "and region come from the environment. In GitHub Actions it also writes the step outputs")
		fmt.Fprintln(fs.Output(), "version and changed to $GITHUB_OUTPUT, for `dbusers rollout --version`.")
		fmt.Fprintln(fs.Output(), "Exit status: 0 published or unchanged, 1 the declarations are invalid (nothing written),")
		fmt.Fprintln(fs.Output(), "2 usage, I/O or AWS error.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
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
	case *unsigned && *signingKey != "":
		return fail(exitError, "--unsigned and a signing key (--signing-key or $%s) contradict each other", envSigningKey)
	case !*unsigned && *signingKey == "":
		return fail(exitError, "no signing key: pass --signing-key or set $%s to the ARN of the control-plane stack's signing key "+
			"(output SigningKeyArn); --unsigned publishes a bundle that only a Lambda with DBUSERS_ALLOW_UNSIGNED=true accepts", envSigningKey)
	case *signingKey != "" && !ssmbundle.ValidKeyARN(*signingKey):
		return fail(exitError, "--signing-key %q is not the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>; not an alias)", *signingKey)
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
	// A fork that still holds the example clusters would publish fake
	// accounts, and the Lambda would fail (and alarm) on each of them.
	var fake []string
	for _, c := range loaded.Config.Clusters {
		if config.PlaceholderAccount(c.AccountID) {
			fake = append(fake, c.Name+" ("+c.AccountID+")")
		}
	}
	if len(fake) > 0 && !*placeholders {
		return fail(exitChanges, "cluster(s) %s are in a placeholder account: these are the example declarations dbusers ships; "+
			"replace them with your clusters (README, \"Forking\"); nothing was published", strings.Join(fake, ", "))
	}
	target := ssmbundle.TargetOf(loaded.Config.Settings.SSM)
	if target.Pointer == "" {
		return fail(exitChanges, "dbusers.json names no ssm.parameter; nothing was published")
	}
	limit, err := target.Limit()
	if err != nil {
		return fail(exitChanges, "dbusers.json: %v; nothing was published", err)
	}

	if e.newSSM == nil || e.newKMS == nil {
		return fail(exitError, "no AWS clients")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	api, err := e.newSSM(ctx)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	if *signingKey != "" {
		keys, err := e.newKMS(ctx)
		if err != nil {
			return fail(exitError, "%v", err)
		}
		target.Signer = &ssmbundle.Signer{API: keys, KeyARN: *signingKey}
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
	if !*dryRun {
		if werr := writeStepOutputs(getenv, res); werr != nil {
			return fail(exitError, "published version %s, but %v", res.Version, werr)
		}
	}
	if err != nil {
		// Published, but pruning failed: the new version is live.
		return fail(exitError, "%v", err)
	}
	return exitOK
}

// writeStepOutputs gives the next steps of a GitHub Actions job the
// version that is now published (version, changed), through the file that
// GITHUB_OUTPUT names; outside Actions it does nothing. The publish
// workflow's rollout job waits for that version's rollout record.
func writeStepOutputs(getenv func(string) string, r *ssmbundle.Result) error {
	path := getenv("GITHUB_OUTPUT")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("step outputs: %w", err)
	}
	_, err = fmt.Fprintf(f, "version=%s\nchanged=%t\n", r.Version, r.Changed)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("step outputs %s: %w", path, err)
	}
	return nil
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
		fmt.Fprintf(w, "the published configuration has not changed, but %s: publishing it again\n", r.Repaired)
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
		if r.KeyARN != "" {
			fmt.Fprintf(w, "  signed with KMS key %s\n", r.KeyARN)
		} else {
			fmt.Fprintln(w, "  UNSIGNED: only a Lambda with DBUSERS_ALLOW_UNSIGNED=true applies it")
		}
	}
}

// envSigningKey names the signing key's ARN in the environment of the
// publish workflow (the repository variable of the same name).
const envSigningKey = "DBUSERS_SIGNING_KEY_ARN"

// awsConfig is the production AWS configuration: credentials, region and
// endpoint come from the environment (AWS_REGION, the web identity that
// aws-actions/configure-aws-credentials sets up, AWS_ENDPOINT_URL or
// AWS_ENDPOINT_URL_SSM and _KMS). A large bundle is a burst of
// PutParameter calls against a shared, throttled quota, so retries are
// adaptive and patient.
func awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRetryMode(aws.RetryModeAdaptive),
		awsconfig.WithRetryMaxAttempts(10),
	)
	if err != nil {
		return cfg, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS region: set AWS_REGION")
	}
	return cfg, nil
}

// newSSMClient is the production SSM client.
func newSSMClient(ctx context.Context) (ssmbundle.API, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return ssm.NewFromConfig(cfg), nil
}

// newKMSClient is the production KMS client, which signs the pointer.
func newKMSClient(ctx context.Context) (ssmbundle.KMSAPI, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg), nil
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
