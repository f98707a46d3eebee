// Package fleet is the reconciling Lambda's logic, free of the Lambda
// runtime: it decodes the event, reads the published bundle from SSM (and
// refuses one that is corrupt or not signed by the publish key before
// touching anything), and reconciles every
// cluster concurrently with a bound. Per cluster it assumes the management
// role in the cluster's account, reads the admin secret and the password
// secrets of the users granted there, connects with TLS and timeouts, and
// runs the engine. One cluster's failure is collected, never fatal to the
// others. The outcome is written as JSON logs with one audit line per
// statement, CloudWatch metrics in Embedded Metric Format on stdout, an SNS
// message when a cluster failed or a safety limit tripped, the version's
// rollout record in SSM (record.go), which the publish workflow reports on
// GitHub, and an error so the Lambda's Errors alarm fires.
package fleet

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/errgroup"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/redact"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// AssumeRoleAPI is the STS call the Lambda makes; *sts.Client satisfies it.
type AssumeRoleAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// SecretsAPI is the Secrets Manager call the Lambda makes in a cluster's
// account; *secretsmanager.Client satisfies it.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// PublishAPI is the SNS call the Lambda makes; *sns.Client satisfies it.
type PublishAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Deps are the Lambda's connections to the world; tests replace them.
type Deps struct {
	// SSM reads the bundle (the Lambda's own account).
	SSM ssmbundle.API
	// Keys fetches and keeps the signing key's public half; one per
	// container, so a run costs no KMS call after the first. nil: the
	// bundle cannot be verified, and only DBUSERS_ALLOW_UNSIGNED reads one.
	Keys *ssmbundle.Keys
	// Seen remembers, for the container's life, the newest signed bundle
	// accepted, and refuses an older one (a rollback); nil remembers
	// nothing.
	Seen *ssmbundle.Seen
	// STS assumes each cluster's management role.
	STS AssumeRoleAPI
	// Secrets returns a Secrets Manager client acting with the assumed
	// credentials in region.
	Secrets func(creds aws.Credentials, region string) SecretsAPI
	// SNS publishes alerts; nil (or an empty topic) sends none.
	SNS PublishAPI
	// Stdout receives the JSON logs and the EMF metrics.
	Stdout io.Writer
	// Connect opens a pool to a cluster; nil means dbconn.Pool.
	Connect dbconn.OpenFunc
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Records writes the rollout records; nil means SSM, the same client
	// (tests make it fail on purpose).
	Records rollout.WriteAPI
}

// NewDeps wires the AWS SDK clients of the Lambda's own account (awsCfg)
// and a factory of Secrets Manager clients that act with a cluster
// account's assumed credentials in the cluster's region. The Lambda and the
// demo both run with it.
func NewDeps(awsCfg aws.Config, stdout io.Writer) Deps {
	return Deps{
		SSM:  ssm.NewFromConfig(awsCfg),
		Keys: &ssmbundle.Keys{API: kms.NewFromConfig(awsCfg)},
		Seen: &ssmbundle.Seen{},
		STS:  sts.NewFromConfig(awsCfg),
		Secrets: func(creds aws.Credentials, region string) SecretsAPI {
			return secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
				o.Region = region
				o.Credentials = credentials.StaticCredentialsProvider{Value: creds}
			})
		},
		SNS:    sns.NewFromConfig(awsCfg),
		Stdout: stdout,
		Now:    time.Now,
	}
}

// ClusterReport is one cluster's outcome.
type ClusterReport struct {
	Cluster   string        `json:"cluster"`
	AccountID string        `json:"account_id"`
	Region    string        `json:"region"`
	Status    engine.Status `json:"status"`
	// Stage is where a failed cluster stopped: account (refused before any
	// call to AWS), assume-role, admin-secret, tls, connect or reconcile.
	Stage string `json:"stage,omitempty"`
	Error string `json:"error,omitempty"`
	// Server is what the server said it is, e.g. "MariaDB 10.11.19".
	Server string `json:"server,omitempty"`
	// Changes is the number of changes planned; Statements the number of
	// statements that took effect.
	Changes      int `json:"changes"`
	Statements   int `json:"statements"`
	UsersCreated int `json:"users_created"`
	UsersDropped int `json:"users_dropped"`
	// LimitTripped explains why Held drops were withheld.
	LimitTripped string `json:"limit_tripped,omitempty"`
	Held         int    `json:"held,omitempty"`
	// Skipped lists declared users left alone (a missing password secret,
	// a protected name), at most MaxListed of them; SkippedCount is all.
	Skipped      []plan.Skip `json:"skipped,omitempty"`
	SkippedCount int         `json:"skipped_count,omitempty"`
	// Notes are things an operator should know: secrets that could not be
	// read, locked accounts left alone.
	Notes []string `json:"notes,omitempty"`
	// FailedAccounts are the accounts whose changes the server refused
	// (at most MaxListed; FailedAccountCount is all), on a partial or
	// failed cluster.
	FailedAccounts     []engine.Failure `json:"failed_accounts,omitempty"`
	FailedAccountCount int              `json:"failed_account_count,omitempty"`
	// Unmanaged are accounts outside the prefix that no declaration
	// covers (at most MaxListed; UnmanagedCount is all): never touched.
	Unmanaged      []mysqlstate.Unmanaged `json:"unmanaged,omitempty"`
	UnmanagedCount int                    `json:"unmanaged_count,omitempty"`
	Queries        int                    `json:"queries"`
	Writes         int                    `json:"writes"`
	DurationMS     float64                `json:"duration_ms"`
}

// MaxListed bounds the per-cluster lists in a report, which is also the
// Lambda's response (6 MB at most): the logs carry the rest.
const MaxListed = 50

// Failed reports whether the cluster failed.
func (c *ClusterReport) Failed() bool { return c.Status == engine.Failed }

// Partial reports whether some accounts of the cluster failed while the
// others converged.
func (c *ClusterReport) Partial() bool { return c.Status == engine.Partial }

// Report is one invocation's outcome; the Lambda returns it.
type Report struct {
	Trigger       Trigger `json:"trigger"`
	DryRun        bool    `json:"dry_run"`
	ConfigVersion string  `json:"config_version,omitempty"`
	Commit        string  `json:"commit,omitempty"`
	// SignedBy is the KMS key whose signature of the bundle verified.
	SignedBy string `json:"signed_by,omitempty"`
	// Unsigned is true when the bundle was used without a verified
	// signature, which only DBUSERS_ALLOW_UNSIGNED allows.
	Unsigned bool `json:"unsigned,omitempty"`
	// BundleError is set when the bundle could not be read or used:
	// nothing was changed anywhere.
	BundleError string `json:"bundle_error,omitempty"`
	// Clusters are sorted by name.
	Clusters []ClusterReport `json:"clusters"`
	// Failed, Partial and LimitsTripped name clusters, sorted.
	Failed        []string `json:"failed,omitempty"`
	Partial       []string `json:"partial,omitempty"`
	LimitsTripped []string `json:"limits_tripped,omitempty"`
	// Alerted is true when the SNS message went out.
	Alerted    bool    `json:"alerted"`
	DurationMS float64 `json:"duration_ms"`
	// Record is the head parameter of the rollout record the run wrote
	// (package rollout); RecordError says why it was not written. The
	// run's outcome and error are the same either way.
	Record      string `json:"rollout_record,omitempty"`
	RecordError string `json:"rollout_record_error,omitempty"`
}

// reportMargin is kept free before the Lambda's deadline so that metrics
// and the alert still go out when clusters run long.
const reportMargin = 10 * time.Second

// Handle runs one invocation. It returns (nil, nil) for an event that needs
// no run, and an error when the event is refused, the bundle is unusable or
// any cluster failed; the report is returned whenever clusters ran.
func Handle(ctx context.Context, deps Deps, cfg Config, raw json.RawMessage) (*Report, error) {
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	out := &lockedWriter{w: deps.Stdout}
	if deps.Stdout == nil {
		out.w = io.Discard
	}
	inv := InvocationFrom(ctx)
	var h slog.Handler = slog.NewJSONHandler(out, nil)
	if inv.RequestID != "" {
		// Every line of the run, audit lines included, names it: the
		// rollout record gives it to find them.
		h = h.WithAttrs([]slog.Attr{slog.String("request_id", inv.RequestID)})
	}
	log := slog.New(h)

	req, err := DecodeEvent(raw, cfg.Pointer)
	if err != nil {
		log.Error("event refused", "error", err.Error())
		return nil, err
	}
	if req.Ignore != "" {
		log.Info("event ignored", "trigger", req.Trigger, "reason", req.Ignore)
		return nil, nil
	}
	r := &run{deps: deps, cfg: cfg, log: log, handler: h, out: out, now: now, inv: inv}
	return r.run(ctx, req, start)
}

type run struct {
	deps    Deps
	cfg     Config
	log     *slog.Logger
	handler slog.Handler
	out     io.Writer
	now     func() time.Time
	creds   credsCache
	secrets secretCache
	// session is the role session name roles are assumed with
	// (SessionName when empty).
	session string
	// For the rollout record (record.go): the invocation, the bundle and
	// its desired state once read, the version of a refused bundle, and
	// the account events of each cluster (by the cluster's index in the
	// report).
	inv     Invocation
	bundle  *ssmbundle.Bundle
	state   *desired.State
	refused string
	events  [][]rollout.Account
}

func (r *run) run(ctx context.Context, req Request, start time.Time) (*Report, error) {
	rep := &Report{Trigger: req.Trigger, DryRun: req.DryRun || r.cfg.ForceDryRun, Clusters: []ClusterReport{}}
	log := r.log.With("trigger", req.Trigger, "dry_run", rep.DryRun)
	log.Info("run started", "pointer", r.cfg.Pointer, "clusters_requested", req.Clusters,
		"forced_dry_run", r.cfg.ForceDryRun, "ca_bundle", r.cfg.RootsSource,
		"signing_key", r.cfg.SigningKeyARN, "allow_unsigned", r.cfg.AllowUnsigned)

	// Keep time to report in: clusters still running near the deadline are
	// cancelled (and reported failed) rather than cut off with the metrics.
	work := ctx
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) > 2*reportMargin {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-reportMargin))
		defer cancel()
	}

	bundle, err := r.readBundle(work, log, rep)
	var st *desired.State
	if err == nil {
		r.bundle = bundle
		log = log.With("config_version", rep.ConfigVersion, "commit", rep.Commit)
		st, err = config.Desired(bundle.Config(), r.now())
		if err != nil {
			err = fmt.Errorf("bundle %s: build desired state: %w", rep.ConfigVersion, err)
		}
	}
	if err != nil {
		rep.BundleError = err.Error()
		log.Error("configuration bundle unusable; nothing was changed", "error", rep.BundleError)
		r.finish(ctx, log, rep, start)
		return rep, fmt.Errorf("configuration bundle from %s: %w; nothing was changed", r.cfg.Pointer, err)
	}

	clusters, err := selectClusters(st, bundle.Config(), req.Clusters)
	if err != nil {
		log.Error("event refused", "error", err.Error())
		return nil, err
	}
	limit := r.cfg.Concurrency
	if limit <= 0 {
		limit = bundle.Content.Settings.Concurrency
	}
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	log.Info("reconciling", "clusters", len(clusters), "concurrency", limit)

	r.state = st
	results := make([]ClusterReport, len(clusters))
	events := make([][]rollout.Account, len(clusters))
	var g errgroup.Group
	g.SetLimit(limit)
	for i, t := range clusters {
		g.Go(func() error {
			results[i], events[i] = r.cluster(work, log, st, t, bundle.Content.Settings.AWS, rep.DryRun, bundle.Meta)
			return nil // collected, never fatal to the others
		})
	}
	_ = g.Wait()
	order := make([]int, len(results))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(results[a].Cluster, results[b].Cluster) })
	for _, i := range order {
		rep.Clusters = append(rep.Clusters, results[i])
		r.events = append(r.events, events[i])
	}
	for _, c := range results {
		switch {
		case c.Failed():
			rep.Failed = append(rep.Failed, c.Cluster)
		case c.Partial():
			rep.Partial = append(rep.Partial, c.Cluster)
		}
		if c.LimitTripped != "" {
			rep.LimitsTripped = append(rep.LimitsTripped, c.Cluster)
		}
	}
	r.finish(ctx, log, rep, start)
	switch {
	case len(rep.Failed) > 0:
		return rep, fmt.Errorf("%d of %d cluster(s) failed: %s", len(rep.Failed), len(rep.Clusters), strings.Join(rep.Failed, ", "))
	case len(rep.Partial) > 0:
		return rep, fmt.Errorf("%d of %d cluster(s) partial (some accounts failed, the others applied): %s",
			len(rep.Partial), len(rep.Clusters), strings.Join(rep.Partial, ", "))
	}
	return rep, nil
}

// target is one cluster to run: what it must hold (the desired state) and
// where it is and how to reach it (its cluster file).
type target struct {
	want desired.Cluster
	at   config.Cluster
}

// selectClusters returns the clusters to run: all, or the named ones. An
// unknown name refuses the whole invocation, before anything runs.
func selectClusters(st *desired.State, cfg *config.Config, names []string) ([]target, error) {
	files := make(map[string]config.Cluster, len(cfg.Clusters))
	for _, c := range cfg.Clusters {
		files[c.Name] = c
	}
	var out []target
	var unknown []string
	add := func(c desired.Cluster) {
		out = append(out, target{want: c, at: files[c.Name]})
	}
	if len(names) == 0 {
		for _, c := range st.Clusters {
			add(c)
		}
		return out, nil
	}
	for _, n := range names {
		c, ok := st.Find(n)
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		add(*c)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("direct invoke names unknown cluster(s) %s; the bundle has %d cluster(s); nothing was changed",
			strings.Join(quoteAll(unknown), ", "), len(st.Clusters))
	}
	return out, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// Stages of one cluster's run, named in reports.
const (
	StageAccount     = "account"
	StageAssumeRole  = "assume-role"
	StageAdminSecret = "admin-secret"
	StageTLS         = dbconn.StageTLS
	StageConnect     = dbconn.StageConnect
	StageReconcile   = "reconcile"
	// StagePlanSecret and StagePlan are plan mode's: reading the cluster
	// file's plan_secret, and reading the server and planning.
	StagePlanSecret = "plan-secret"
	StagePlan       = "plan"
)

// stageError is a failure of one cluster before the engine ran.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func atStage(stage string, err error) error { return &stageError{stage, err} }

// cluster runs one cluster from credentials to verification and reports
// it, with what happened to each account (for the rollout record).
func (r *run) cluster(ctx context.Context, log *slog.Logger, st *desired.State, t target, settings config.AWS, dryRun bool, meta ssmbundle.Meta) (ClusterReport, []rollout.Account) {
	t0 := r.now()
	cr := ClusterReport{Cluster: t.at.Name, AccountID: t.at.AccountID, Region: t.at.Region}
	res, notes, err := r.reconcile(ctx, st, t, settings, dryRun, meta)
	cr = reportFrom(cr, res, notes, err)
	cr.DurationMS = float64(r.now().Sub(t0).Microseconds()) / 1000
	logCluster(log.With("cluster", cr.Cluster, "account_id", cr.AccountID, "region", cr.Region), cr)
	return cr, accountEvents(cr.Cluster, res)
}

// reconcile logs in to one cluster with its admin secret, reads the
// password secrets of its users and runs the engine. A failure before the
// engine carries its stage; notes are things said on the way (a password
// secret that could not be read).
func (r *run) reconcile(ctx context.Context, st *desired.State, t target, settings config.AWS, dryRun bool, meta ssmbundle.Meta) (*engine.Result, []string, error) {
	l, err := r.login(ctx, t.at, settings, t.at.AdminSecret, StageAdminSecret)
	if err != nil {
		return nil, nil, err
	}
	defer l.db.Close()
	passwords, notes := readPasswords(ctx, l.secrets, t.want)
	db, admin := l.db, l.admin

	res := engine.Reconcile(ctx, db, engine.Options{
		State: st, Cluster: t.want, Passwords: passwords, Apply: !dryRun,
		LockTimeout: r.cfg.LockTimeout, Audit: &auditSink{h: r.handler},
		ConfigVersion: meta.Version, Commit: meta.Commit, Now: r.now,
	})
	if res.Err != nil {
		res.Err = redact.Error(res.Err, admin.Password)
		res.Error = res.Err.Error()
	}
	return res, notes, nil
}

// session is a cluster's open pool, the login it was opened with and the
// Secrets Manager reader of the cluster's account.
type session struct {
	db      *sql.DB
	admin   AdminSecret
	secrets SecretsAPI
}

// login does a cluster's I/O up to an open pool: it refuses an account
// the deployment does not manage, assumes the cluster's role, reads the
// login secret (secretRef; stage names it in a failure) and connects. A
// failure carries its stage.
func (r *run) login(ctx context.Context, c config.Cluster, settings config.AWS, secretRef, stage string) (*session, error) {
	if !r.cfg.Manages(c.AccountID) {
		return nil, atStage(StageAccount, fmt.Errorf("cluster %s is in account %s, which this deployment does not manage (%s): nothing was asked of that account",
			c.Name, c.AccountID, EnvManagedAccounts))
	}
	roleARN, extID, err := roleFor(c, settings.ManagementRole, settings.ExternalID)
	if err != nil {
		return nil, atStage(StageAccount, err)
	}
	creds, err := r.assume(ctx, c, roleARN, extID)
	if err != nil {
		return nil, atStage(StageAssumeRole, err)
	}
	// Clusters of one account and region share their secrets' reads:
	// a service user granted on 100 clusters costs one GetSecretValue.
	sm := &cachedSecrets{api: r.deps.Secrets(creds, c.Region), cache: &r.secrets, scope: roleARN + "\x00" + extID + "\x00" + c.Region}
	admin, err := readAdmin(ctx, sm, secretRef)
	if err != nil {
		return nil, atStage(stage, fmt.Errorf("cluster %s: %w", c.Name, err))
	}
	host, port := cmp.Or(c.Endpoint, admin.Host), cmp.Or(c.Port, admin.Port, 3306)
	db, err := dbconn.Connect(ctx, dbconn.Target{Cluster: c.Name, Host: host, Port: port, User: admin.Username, Password: admin.Password,
		TLSMode: c.TLS, Roots: r.cfg.Roots}, r.deps.Connect)
	if err != nil {
		var de *dbconn.Error
		if errors.As(err, &de) {
			return nil, atStage(de.Stage, err)
		}
		return nil, atStage(StageConnect, err)
	}
	return &session{db: db, admin: admin, secrets: sm}, nil
}

// assume returns credentials of the cluster's management role, refusing
// any that STS issued in another account.
func (r *run) assume(ctx context.Context, c config.Cluster, roleARN, extID string) (aws.Credentials, error) {
	creds, err := r.creds.get(ctx, r.deps.STS, roleARN, extID, cmp.Or(r.session, SessionName))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("cluster %s: assume %s: %w", c.Name, roleARN, err)
	}
	// STS names the account it issued the credentials in; they must be
	// the cluster's, whatever the ARN asked for.
	if creds.AccountID != c.AccountID {
		return aws.Credentials{}, fmt.Errorf("cluster %s: assuming %s gave credentials in account %q, not the cluster's account %s: refusing to use them",
			c.Name, roleARN, creds.AccountID, c.AccountID)
	}
	return creds, nil
}

// reportFrom turns what happened on one cluster into its report: the
// stage and error of a failure before the engine ran, or the engine's
// result in counts, lists and notes. It is pure.
func reportFrom(cr ClusterReport, res *engine.Result, notes []string, err error) ClusterReport {
	cr.Notes = append(cr.Notes, notes...)
	if err != nil {
		cr.Status, cr.Stage, cr.Error = engine.Failed, StageConnect, err.Error()
		var se *stageError
		if errors.As(err, &se) {
			cr.Stage = se.stage
		}
		return cr
	}
	cr.Status, cr.Server, cr.Queries, cr.Writes = res.Status, res.Server, res.Queries, res.Writes
	if res.Plan != nil {
		cr.Changes = len(res.Plan.Changes)
		cr.LimitTripped, cr.Held = res.Plan.LimitTripped, len(res.Plan.Held)
		cr.SkippedCount = len(res.Plan.Skipped)
		cr.Skipped = res.Plan.Skipped[:min(len(res.Plan.Skipped), MaxListed)]
		cr.Notes = append(cr.Notes, res.Plan.Notes...)
	}
	if len(cr.Notes) > MaxListed {
		cr.Notes = append(cr.Notes[:MaxListed], fmt.Sprintf("… and %d more", len(cr.Notes)-MaxListed))
	}
	cr.Statements = len(res.Applied)
	created, dropped := map[string]bool{}, map[string]bool{}
	for _, s := range res.Applied {
		switch s.Change.Action() {
		case plan.CreateUser:
			created[s.Change.Account.String()] = true
		case plan.DropUser:
			dropped[s.Change.Account.String()] = true
		}
	}
	cr.UsersCreated, cr.UsersDropped = len(created), len(dropped)
	cr.UnmanagedCount = len(res.Unmanaged)
	cr.Unmanaged = res.Unmanaged[:min(len(res.Unmanaged), MaxListed)]
	cr.FailedAccountCount = len(res.Failures)
	cr.FailedAccounts = res.Failures[:min(len(res.Failures), MaxListed)]
	if res.Err != nil {
		cr.Stage, cr.Error = StageReconcile, res.Error
	}
	return cr
}

// logCluster writes one cluster's outcome as one log line.
func logCluster(log *slog.Logger, cr ClusterReport) {
	attrs := []any{"status", cr.Status, "changes", cr.Changes, "statements", cr.Statements,
		"users_created", cr.UsersCreated, "users_dropped", cr.UsersDropped, "duration_ms", cr.DurationMS}
	if cr.Server != "" {
		attrs = append(attrs, "server", cr.Server)
	}
	if cr.LimitTripped != "" {
		attrs = append(attrs, "limit_tripped", cr.LimitTripped, "held", cr.Held)
	}
	if cr.SkippedCount > 0 {
		attrs = append(attrs, "skipped", cr.Skipped, "skipped_count", cr.SkippedCount)
	}
	if len(cr.Notes) > 0 {
		attrs = append(attrs, "notes", cr.Notes)
	}
	if cr.UnmanagedCount > 0 {
		attrs = append(attrs, "unmanaged_accounts", cr.UnmanagedCount, "unmanaged", cr.Unmanaged)
	}
	switch {
	case cr.Failed():
		log.Error("cluster failed", append(attrs, "stage", cr.Stage, "error", cr.Error)...)
	case cr.Partial():
		log.Error("cluster partial", append(attrs, "failed_accounts", cr.FailedAccounts, "error", cr.Error)...)
	default:
		log.Info("cluster done", attrs...)
	}
}

// roleFor returns the role to assume for c and its external ID: the
// cluster's role_arn, else the settings' role name in the cluster's
// account; the cluster's external ID, else the settings'.
func roleFor(c config.Cluster, role, externalID string) (string, string, error) {
	roleARN := c.RoleARN
	if roleARN == "" {
		if role == "" {
			return "", "", fmt.Errorf("cluster %s: no role to assume: dbusers.json has no aws.management_role and the cluster no role_arn", c.Name)
		}
		if c.AccountID == "" {
			return "", "", fmt.Errorf("cluster %s: no account_id to assume %s in", c.Name, role)
		}
		roleARN = fmt.Sprintf("arn:aws:iam::%s:role/%s", c.AccountID, role)
	}
	// Validation refuses a role_arn in another account; a bundle is
	// checked again here because it is what the Lambda acts on.
	if acct, ok := config.RoleAccount(roleARN); !ok || acct != c.AccountID {
		return "", "", fmt.Errorf("cluster %s: role %s is not a role in the cluster's account %s", c.Name, roleARN, c.AccountID)
	}
	ext := c.ExternalID
	if ext == "" {
		ext = externalID
	}
	return roleARN, ext, nil
}

// stsAccount returns the account of an assumed-role ARN
// (arn:aws:sts::123456789012:assumed-role/name/session).
func stsAccount(assumedRoleARN string) string {
	a, err := arn.Parse(assumedRoleARN)
	if err != nil || a.Service != "sts" {
		return ""
	}
	return a.AccountID
}

// memo computes each key's value once per invocation, however many
// clusters ask for it at once; errors are remembered too.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]*memoEntry[V]
}

type memoEntry[V any] struct {
	once sync.Once
	v    V
	err  error
}

func (m *memo[V]) get(key string, compute func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[string]*memoEntry[V]{}
	}
	e, ok := m.m[key]
	if !ok {
		e = &memoEntry[V]{}
		m.m[key] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.v, e.err = compute() })
	return e.v, e.err
}

// credsCache assumes each role once per invocation: clusters of one account
// share the management role.
type credsCache struct{ memo[aws.Credentials] }

// SessionName is the role session name the Lambda assumes roles with, so
// CloudTrail in the cluster's account shows who acted.
const SessionName = "dbusers-reconcile"

func (c *credsCache) get(ctx context.Context, api AssumeRoleAPI, roleARN, externalID, session string) (aws.Credentials, error) {
	return c.memo.get(roleARN+"\x00"+externalID, func() (aws.Credentials, error) {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String(session), DurationSeconds: aws.Int32(3600)}
		if externalID != "" {
			in.ExternalId = aws.String(externalID)
		}
		out, err := api.AssumeRole(ctx, in)
		switch {
		case err != nil:
			return aws.Credentials{}, err
		case out.Credentials == nil || out.Credentials.AccessKeyId == nil || out.Credentials.SecretAccessKey == nil:
			return aws.Credentials{}, errors.New("STS returned no credentials")
		}
		creds := aws.Credentials{
			AccessKeyID: aws.ToString(out.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
			SessionToken: aws.ToString(out.Credentials.SessionToken), Source: "dbusers AssumeRole " + roleARN,
		}
		if out.AssumedRoleUser != nil {
			creds.AccountID = stsAccount(aws.ToString(out.AssumedRoleUser.Arn))
		}
		if out.Credentials.Expiration != nil {
			creds.CanExpire, creds.Expires = true, *out.Credentials.Expiration
		}
		return creds, nil
	})
}

// secretCache keeps each secret read once per invocation and scope (the
// assumed role and the region it was read with).
type secretCache = memo[*secretsmanager.GetSecretValueOutput]

// cachedSecrets is a SecretsAPI that answers repeated reads of the current
// version of a secret from the invocation's cache.
type cachedSecrets struct {
	api   SecretsAPI
	cache *secretCache
	scope string
}

func (c *cachedSecrets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if in.VersionId != nil || in.VersionStage != nil {
		return c.api.GetSecretValue(ctx, in, optFns...)
	}
	return c.cache.get(c.scope+"\x00"+aws.ToString(in.SecretId), func() (*secretsmanager.GetSecretValueOutput, error) {
		out, err := c.api.GetSecretValue(ctx, in, optFns...)
		if out != nil {
			// Keep the secret, not the response: the SDK's result metadata
			// holds the HTTP response, 4 KB a secret, 18 MB for 1,000
			// users over 4 accounts, live until the invocation ends.
			out = &secretsmanager.GetSecretValueOutput{
				ARN: out.ARN, Name: out.Name, VersionId: out.VersionId, VersionStages: out.VersionStages,
				CreatedDate: out.CreatedDate, SecretString: out.SecretString, SecretBinary: out.SecretBinary,
			}
		}
		return out, err
	})
}

// lockedWriter serializes writes from the log handler and the metrics.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
