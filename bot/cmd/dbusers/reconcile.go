package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dbusers/dbusers/bot/internal/audit"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/report"
	"github.com/dbusers/dbusers/bot/internal/savedplan"
)

func runReconcile(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", ".", "repository root holding dbusers.json, clusters/ and users/")
	clusterName := fs.String("cluster", "", "cluster to reconcile (required)")
	dsn := fs.String("dsn", "", "go-sql-driver/mysql DSN of the cluster's admin login; prefer the DBUSERS_DSN environment variable, which keeps the password out of the process list")
	confirm := fs.Bool("confirm", false, "apply the plan; without it, only print it")
	format := fs.String("format", "text", "output format: text or json")
	secretsFile := fs.String("secrets", "", "JSON file mapping password secret references to their secret JSON, e.g. {\"dbusers/app\": {\"password\": \"...\"}}")
	lockTimeout := fs.Duration("lock-timeout", 30*time.Second, "how long to wait for another run's lock")
	planFile := fs.String("plan-file", "", "without --confirm, save the plan shown to this file; with --confirm, apply only that plan, refused if the server or the plan changed since")
	auditLog := fs.String("audit-log", "", "where the audit's JSON lines go: a file (appended), or - for stderr (default: stderr, or on a terminal a file under the user's cache directory, named at the end)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: dbusers reconcile --cluster NAME [--dsn DSN] [--confirm] [--format text|json] [--secrets FILE] [--plan-file FILE] [--lock-timeout D] [--audit-log FILE|-] [--root DIR]")
		fmt.Fprintln(fs.Output(), "\nPlans (and with --confirm applies) the changes that make one cluster match the declarations.")
		fmt.Fprintln(fs.Output(), "Exit status: dry run 0 no changes, 1 changes; with --confirm 0 success; 1 also when the removal")
		fmt.Fprintln(fs.Output(), "limit held drops back; 2 on any error, including a partial run (some accounts failed, the others applied)")
		fmt.Fprintln(fs.Output(), "and a saved plan (--confirm --plan-file) that is stale: then nothing was changed.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, e); !ok {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "dbusers reconcile: "+format+"\n", args...)
		return exitError
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if *clusterName == "" {
		return fail("--cluster is required")
	}
	if *format != "text" && *format != "json" {
		return fail("unknown format %q (want text or json)", *format)
	}
	if *dsn == "" {
		*dsn = e.getenv("DBUSERS_DSN")
	}
	if *dsn == "" {
		return fail("no database: pass --dsn or set DBUSERS_DSN (reading the admin secret from AWS is the Lambda's job)")
	}

	st, err := loadDesired(e, *root)
	if err != nil {
		return fail("%v", err)
	}
	cluster, ok := st.Find(*clusterName)
	if !ok {
		return fail("unknown cluster %q", *clusterName)
	}
	// The saved plan is read before anything connects: a file that is not
	// this cluster's plan stops the run here.
	var saved *savedplan.File
	if *confirm && *planFile != "" {
		f, err := savedplan.Read(*planFile, cluster.Name)
		if err != nil {
			return fail("%v", err)
		}
		saved = &f
	}
	passwords := map[string]string{}
	if *secretsFile != "" {
		if passwords, err = readSecretsFile(*secretsFile); err != nil {
			return fail("%v", err)
		}
	}
	sink, auditPath, closeAudit, err := openAudit(e, *auditLog, cluster.Name)
	if err != nil {
		return fail("%v", err)
	}
	defer closeAudit()
	progress := connectProgress(e, "reconcile")
	var res *engine.Result
	db, err := dbconn.OpenDSN(ctx, cluster.Name, *dsn, progress)
	var connErr *dbconn.Error
	switch {
	case errors.As(err, &connErr):
		// Reported like any failed run, so that --format json readers
		// see a result with its status.
		res = &engine.Result{Cluster: cluster.Name, Status: engine.Failed, Err: err, Error: err.Error()}
	case err != nil:
		return fail("%v", err)
	default:
		defer db.Close()
		opt := engine.Options{
			State: st, Cluster: *cluster, Passwords: passwords, Apply: *confirm,
			LockTimeout: *lockTimeout, Audit: sink, Now: e.now, Progress: progress,
		}
		if saved != nil {
			opt.Expect = &saved.Fingerprint
			fmt.Fprintf(e.stderr, "dbusers reconcile: applying the plan saved in %s at %s (%d change(s)) if the server is as it was then\n",
				*planFile, saved.MadeAt.Format(time.RFC3339), len(saved.Changes))
		}
		res = engine.Reconcile(ctx, db, opt)
	}
	if saved != nil && errors.Is(res.Err, engine.ErrStalePlan) {
		fmt.Fprintf(e.stderr, "dbusers reconcile: the plan saved in %s at %s is stale; what differs from it now:\n",
			*planFile, saved.MadeAt.Format(time.RFC3339))
		diff := savedplan.Difference(*saved, res.Plan, cluster.Flavor(), 40)
		if len(diff) == 0 {
			diff = []string{"(the same statements: the server's managed accounts changed in a way this plan does not show)"}
		}
		for _, l := range diff {
			fmt.Fprintln(e.stderr, "  "+l)
		}
	}
	if *format == "json" {
		// planned is the plan's changes with the redacted statement of
		// each, as the text output shows them.
		var planned []liveplan.Change
		if res.Plan != nil {
			for _, ch := range res.Plan.Changes {
				planned = append(planned, liveplan.NewChange(ch, cluster.Flavor(), false))
			}
		}
		if err := writeJSON(e, struct {
			versioned
			*engine.Result
			Planned     []liveplan.Change   `json:"planned,omitempty"`
			Fingerprint *engine.Fingerprint `json:"fingerprint,omitempty"`
		}{newVersioned(), res, planned, res.Fingerprint}); err != nil {
			return fail("%v", err)
		}
	} else {
		report.Text(e.stdout, res, cluster.Flavor(), true)
	}
	if *planFile != "" && !*confirm {
		if code := savePlan(e, *planFile, res, cluster); code != exitOK {
			return code
		}
	}
	if auditPath != "" && len(res.Applied)+len(res.Failures)+len(res.InDoubt) > 0 {
		fmt.Fprintf(e.stderr, "dbusers reconcile: audit log: %s\n", auditPath)
	}
	held := res.Plan != nil && len(res.Plan.Held) > 0
	switch {
	case res.Status == engine.Failed, res.Status == engine.Partial:
		// Partial: some accounts failed; the others converged.
		return exitError
	case res.Status == engine.Planned, held:
		// Drops held back by the removal limit are differences that need
		// a person, with or without --confirm.
		return exitChanges
	}
	return exitOK
}

// savePlan writes a dry run's plan to path and says how to apply it. A run
// that failed before it planned saves nothing (and says so): a file left
// from an earlier run is not overwritten with nothing, and applying that
// one is refused unless the server is as it was.
func savePlan(e env, path string, res *engine.Result, cluster *desired.Cluster) int {
	v, c := buildVersion()
	f, err := savedplan.New(res, cluster.Flavor(), e.now(), v, c)
	if errors.Is(err, savedplan.ErrNoPlan) {
		fmt.Fprintf(e.stderr, "dbusers reconcile: no plan saved to %s: the run failed before it planned\n", path)
		return exitError
	}
	if err == nil {
		err = savedplan.Write(path, f)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "dbusers reconcile: %v\n", err)
		return exitError
	}
	fmt.Fprintf(e.stderr, "dbusers reconcile: plan saved to %s; to apply exactly it, run again with --confirm --plan-file %s (and the same database and --secrets)\n",
		path, path)
	return exitOK
}

// loadDesired loads and validates the repository and builds today's
// desired state. Any validation error stops the command: reconciling a
// configuration that does not validate could drop accounts by mistake.
func loadDesired(e env, root string) (*desired.State, error) {
	loaded, diags, err := config.LoadDir(root, e.now(), config.WithState())
	if err != nil {
		return nil, err
	}
	if errs := diags.Errors(); len(errs) > 0 {
		_ = errs.Write(e.stderr, "text")
		return nil, fmt.Errorf("the declarations have %d error(s); run dbusers validate", len(errs))
	}
	return loaded.Desired, nil
}

// readSecretsFile reads {"ref": {"password": "..."}} and returns ref →
// password. The file stands in for Secrets Manager when reconciling a
// server directly.
func readSecretsFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secrets file: %w", err)
	}
	var raw map[string]struct {
		Password string `json:"password"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		// Never echo the file's content: it holds passwords.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("secrets file %s: invalid JSON at byte %d", path, se.Offset)
		}
		return nil, fmt.Errorf("secrets file %s: want an object of {\"password\": ...} objects", path)
	}
	out := make(map[string]string, len(raw))
	for ref, s := range raw {
		out[ref] = s.Password
	}
	return out, nil
}

// connectProgress is what OpenDSN tells a person at a terminal while it
// connects, or nil off a terminal (a log needs no "still connecting").
func connectProgress(e env, command string) func(string) {
	if !isTerminal(e.stderr) {
		return nil
	}
	return func(msg string) { fmt.Fprintln(e.stderr, "dbusers "+command+": "+msg) }
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// openAudit opens where the audit's JSON lines go: a file (appended, made
// private), stderr for "-", and by default stderr unless it is a terminal,
// where the lines would bury the summary: then a file of its own under the
// user's cache directory. path is set when the lines go to a file.
func openAudit(e env, where, cluster string) (sink audit.Sink, path string, closeFn func(), err error) {
	if where == "" && !isTerminal(e.stderr) || where == "-" {
		return audit.NewJSONLines(e.stderr), "", func() {}, nil
	}
	if where == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, "", nil, fmt.Errorf("no place for the audit log (%v): pass --audit-log FILE or -", err)
		}
		where = filepath.Join(dir, "dbusers", fmt.Sprintf("audit-%s-%s.jsonl", cluster, e.now().UTC().Format("20060102T150405Z")))
		if err := os.MkdirAll(filepath.Dir(where), 0o700); err != nil {
			return nil, "", nil, fmt.Errorf("audit log: %w", err)
		}
	}
	f, err := os.OpenFile(where, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", nil, fmt.Errorf("audit log: %w", err)
	}
	return audit.NewJSONLines(f), where, func() { _ = f.Close() }, nil
}
