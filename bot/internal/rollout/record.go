// Package rollout is the record of what the reconciling Lambda's runs of
// one published version did: per cluster its outcome (applied, unchanged,
// planned in a dry run, partial, failed at which stage), its counts, what
// the removal limit held back and the redacted error; per account what
// happened to it where; and per run its trigger, times and request id, so
// that a person can find the logs.
//
// The Lambda writes the record to SSM beside the bundle at the end of every
// run of a published version (see Write; plan mode never does), and the
// publish workflow reads it with `dbusers rollout` (Read, Wait) to tell the
// merged pull request and the merge commit how the rollout went (package
// announce renders and posts it). Nothing in a record is a secret: errors
// are redacted before they reach it, statements are left out, and
// password hashes never enter a report.
//
// Where and how big (see store.go for why): the head parameter
// <pointer>/status/<version>, written last, names a generation of gzipped
// JSON chunks <pointer>/status/<version>/<generation>/NNNN, each at most
// the Standard tier's 4,096 bytes; Fit keeps a record within MaxChunks of
// them by cutting detail, never a cluster's outcome, and says what it cut.
package rollout

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// FormatVersion is the record format; a reader refuses a newer one.
// Fields may be added without a new format (readers ignore unknown ones).
const FormatVersion = 1

// Status is a cluster's outcome, as the Lambda's report says it.
type Status string

// The outcomes of one cluster's run (engine.Status's values).
const (
	Unchanged Status = "unchanged"
	Planned   Status = "planned"
	Applied   Status = "applied"
	Partial   Status = "partial"
	Failed    Status = "failed"
)

// Event is what happened to one account on one cluster.
type Event string

// The events of an account. An account's strongest event in a run is
// recorded: created over dropped over locked over changed.
const (
	Created Event = "created"
	Dropped Event = "dropped"
	// Locked: the account would have been dropped but defines stored
	// objects; it can no longer log in.
	Locked Event = "locked"
	// Changed: privileges, authentication or account options changed.
	Changed Event = "changed"
	// Held: the removal limit held the account's drop (or lock) back.
	Held Event = "held"
	// FailedEvent: the server refused one of the account's statements.
	FailedEvent Event = "failed"
)

// Record is everything the runs of one published version did.
type Record struct {
	Format      int       `json:"format"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit,omitempty"`
	PullRequest string    `json:"pull_request,omitempty"`
	PublishedAt time.Time `json:"published_at,omitzero"`
	// UpdatedAt is when the latest run that wrote the record finished.
	UpdatedAt time.Time `json:"updated_at"`
	// Runs are the runs that wrote the record, oldest first: the last
	// MaxRuns of them; RunsLeftOut counts the older ones.
	Runs        []Run `json:"runs"`
	RunsLeftOut int   `json:"runs_left_out,omitempty"`
	// Clusters are sorted by name: each with the outcome of the latest
	// run that reached it (a dry run never replaces an applying run's).
	Clusters []Cluster `json:"clusters"`
	// ClustersLeftOut counts clusters that ended applied or unchanged and
	// were left out to fit (Fit's last resort; never a failed one).
	ClustersLeftOut int `json:"clusters_left_out,omitempty"`
	// Accounts are what happened to accounts, sorted by user, account and
	// cluster; AccountsLeftOut counts those left out.
	Accounts        []Account `json:"accounts,omitempty"`
	AccountsLeftOut int       `json:"accounts_left_out,omitempty"`
	// Users are the declared users that Accounts names, sorted by name.
	Users []User `json:"users,omitempty"`
	// Cut says what was left out to fit SSM, in the order it was cut.
	Cut []string `json:"cut,omitempty"`
}

// Run is one run of the version.
type Run struct {
	// Trigger is why it ran: publish, schedule or invoke.
	Trigger string `json:"trigger"`
	// DryRun: the run only planned. ForcedDryRun: because the function
	// runs with DBUSERS_DRY_RUN, whatever the event said.
	DryRun       bool `json:"dry_run"`
	ForcedDryRun bool `json:"forced_dry_run,omitempty"`
	// RequestID, Function, LogGroup and LogStream say where the run's
	// logs are: every log line of a run carries its request_id.
	RequestID  string    `json:"request_id,omitempty"`
	Function   string    `json:"function,omitempty"`
	LogGroup   string    `json:"log_group,omitempty"`
	LogStream  string    `json:"log_stream,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Clusters counts the clusters the run reached; Failed, Partial and
	// LimitsTripped name them (sorted).
	Clusters      int      `json:"clusters"`
	Failed        []string `json:"failed,omitempty"`
	Partial       []string `json:"partial,omitempty"`
	LimitsTripped []string `json:"limits_tripped,omitempty"`
	// SignedBy is the key whose signature of the bundle verified;
	// Unsigned means it was used without one (DBUSERS_ALLOW_UNSIGNED).
	SignedBy string `json:"signed_by,omitempty"`
	Unsigned bool   `json:"unsigned,omitempty"`
	// BundleError says why the run refused the bundle: it reached no
	// cluster and changed nothing.
	BundleError string `json:"bundle_error,omitempty"`
	// Alert says an SNS alert was due (a failure or a tripped limit).
	Alert bool `json:"alert,omitempty"`
}

// Cluster is one cluster's outcome in the latest run that reached it.
type Cluster struct {
	Name        string `json:"name"`
	Environment string `json:"environment,omitempty"`
	AccountID   string `json:"account_id,omitempty"`
	Region      string `json:"region,omitempty"`
	Status      Status `json:"status"`
	// DryRun: the run only planned here; nothing was applied.
	DryRun bool `json:"dry_run,omitempty"`
	// Stage is where a failed cluster stopped (account, assume-role,
	// admin-secret, tls, connect, reconcile); Error says why, redacted.
	Stage  string `json:"stage,omitempty"`
	Error  string `json:"error,omitempty"`
	Server string `json:"server,omitempty"`
	// Changes planned; Statements that took effect; accounts created and
	// dropped.
	Changes    int `json:"changes"`
	Statements int `json:"statements"`
	Created    int `json:"created"`
	Dropped    int `json:"dropped"`
	// Held drops (and locks) the removal limit withheld, and why.
	Held         int    `json:"held,omitempty"`
	LimitTripped string `json:"limit_tripped,omitempty"`
	// FailedAccounts lists (at most MaxListed) the accounts whose
	// statements the server refused; FailedAccountCount counts all.
	FailedAccounts     []FailedAccount `json:"failed_accounts,omitempty"`
	FailedAccountCount int             `json:"failed_account_count,omitempty"`
	// Skipped are declared users left alone (a missing password secret),
	// at most MaxListed; SkippedCount counts all.
	Skipped      []Skip `json:"skipped,omitempty"`
	SkippedCount int    `json:"skipped_count,omitempty"`
	// Notes are what an operator should know (at most MaxListed);
	// NoteCount counts all.
	Notes     []string `json:"notes,omitempty"`
	NoteCount int      `json:"note_count,omitempty"`
	// RequestID and At name the run that gave this outcome.
	RequestID  string    `json:"request_id,omitempty"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
}

// FailedAccount is an account whose statement the server refused.
type FailedAccount struct {
	Account string `json:"account"`
	User    string `json:"user,omitempty"`
	Summary string `json:"summary"`
	Error   string `json:"error"`
}

// Skip is a declared user a run left alone, and why.
type Skip struct {
	User   string `json:"user"`
	Reason string `json:"reason"`
}

// Account is what happened to one account on one cluster.
type Account struct {
	// User is the declared user; "" for an account no user file declares
	// (dropped as drift).
	User string `json:"user,omitempty"`
	// Account is the account name; Host its host when not '%'.
	Account string `json:"account"`
	Host    string `json:"host,omitempty"`
	Cluster string `json:"cluster"`
	Event   Event  `json:"event"`
	// DryRun: planned, not applied.
	DryRun bool `json:"dry_run,omitempty"`
	// Summary and Error say what failed (Event failed) or why a drop was
	// held back (Event held).
	Summary string `json:"summary,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Name is how people read the account: its name, or 'name'@'host' when
// the host is not '%'.
func (a Account) Name() string {
	if a.Host == "" || a.Host == "%" {
		return a.Account
	}
	return fmt.Sprintf("'%s'@'%s'", a.Account, a.Host)
}

// User is a declared user of the version that Accounts names.
type User struct {
	Name    string `json:"name"`
	Account string `json:"account"`
	Kind    string `json:"kind,omitempty"`
	// Auth is "iam" or "password".
	Auth string `json:"auth,omitempty"`
	// Clusters are where the version's declarations give the user an
	// account, sorted.
	Clusters []string `json:"clusters,omitempty"`
}

// Limits on what one record lists. The Lambda's report keeps more (50 a
// list); the logs keep everything.
const (
	// MaxRuns bounds the runs a record keeps.
	MaxRuns = 10
	// MaxListed bounds each per-cluster list.
	MaxListed = 10
	// MaxAccounts bounds the account events a record keeps.
	MaxAccounts = 2000
	// MaxText bounds an error, note or reason, in runes.
	MaxText = 1000
)

var versionRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$`)

// ValidVersion reports whether v is a version name as dbusers publish
// makes them (ssmbundle.VersionFor): it becomes part of a parameter name,
// so nothing else is accepted.
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

// Outcome is a record's verdict, what the exit status and the commit
// status say.
type Outcome string

// The verdicts.
const (
	// OK: every cluster applied or had nothing to do.
	OK Outcome = "ok"
	// DryRunOnly: nothing failed, but on some clusters the runs only
	// planned: nothing was applied there.
	DryRunOnly Outcome = "dry_run"
	// NotOK: a cluster failed, was partial or had drops held back, or
	// every run refused the bundle.
	NotOK Outcome = "failed"
)

// Outcome judges the record.
func (r *Record) Outcome() Outcome {
	if len(r.Problems()) > 0 {
		return NotOK
	}
	for _, c := range r.Clusters {
		if c.DryRun && c.Status == Planned {
			return DryRunOnly
		}
	}
	return OK
}

// Problem is one reason a record is not OK.
type Problem struct {
	// Cluster is "" for the bundle.
	Cluster string
	// What is failed, partial, held or bundle.
	What  string
	Stage string
	Error string
}

// Problems lists what is wrong, clusters by name: failed, partial and
// held-back clusters, and a refused bundle when no run reached a cluster.
func (r *Record) Problems() []Problem {
	var out []Problem
	for _, c := range r.Clusters {
		switch c.Status {
		case Failed:
			out = append(out, Problem{Cluster: c.Name, What: "failed", Stage: c.Stage, Error: c.Error})
		case Partial:
			out = append(out, Problem{Cluster: c.Name, What: "partial", Stage: c.Stage, Error: c.Error})
		}
		if c.Held > 0 {
			out = append(out, Problem{Cluster: c.Name, What: "held", Error: c.LimitTripped})
		}
	}
	if len(r.Clusters) == 0 && r.ClustersLeftOut == 0 {
		if run, ok := r.Latest(); ok && run.BundleError != "" {
			out = append(out, Problem{What: "bundle", Error: run.BundleError})
		}
	}
	return out
}

// Latest returns the latest run.
func (r *Record) Latest() (Run, bool) {
	if len(r.Runs) == 0 {
		return Run{}, false
	}
	return r.Runs[len(r.Runs)-1], true
}

// Count returns how many clusters have each status.
func (r *Record) Count() map[Status]int {
	m := map[Status]int{}
	for _, c := range r.Clusters {
		m[c.Status]++
	}
	return m
}

// FindUser returns the declared user of that name.
func (r *Record) FindUser(name string) (User, bool) {
	i := slices.IndexFunc(r.Users, func(u User) bool { return u.Name == name })
	if i < 0 {
		return User{}, false
	}
	return r.Users[i], true
}

// FindCluster returns the cluster of that name.
func (r *Record) FindCluster(name string) (Cluster, bool) {
	i := slices.IndexFunc(r.Clusters, func(c Cluster) bool { return c.Name == name })
	if i < 0 {
		return Cluster{}, false
	}
	return r.Clusters[i], true
}

// clip cuts s to n runes, marking the cut.
func clip(s string, n int) string {
	if n <= 0 {
		return ""
	}
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return strings.TrimSpace(string(rs[:n])) + "…"
}

// strength orders events: the one a run records for an account.
func strength(e Event) int {
	switch e {
	case FailedEvent:
		return 6
	case Created:
		return 5
	case Dropped:
		return 4
	case Locked:
		return 3
	case Held:
		return 2
	case Changed:
		return 1
	}
	return 0
}
