package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// This file writes the rollout record (package rollout) at the end of
// every run of a published version: the publish-triggered run, a retry, a
// scheduled run, a direct invoke. Plan mode (plan.go) never gets here: it
// does not call run.run or finish.
//
// The record is written after the database work, and writing it can
// neither fail nor hold up the run: it is bounded by RecordTimeout (and by
// the invocation's deadline), a panic in it is recovered, and a failure
// is logged, counted in MetricRolloutRecordErrors (alarmed) and said in
// the report's rollout_record_error, while the run's outcome and error
// stay what the clusters made them.

// RecordTimeout bounds writing one rollout record: reading the previous
// one, a few PutParameter calls, listing and pruning old records.
const RecordTimeout = 10 * time.Second

// Invocation is what the Lambda runtime says about one invocation. The
// bootstrap puts it in the context (WithInvocation); every log line of a
// run then carries its request_id, and the rollout record names it, so a
// person finds the run's logs from the pull request.
type Invocation struct {
	RequestID string
	// Function is the invoked function's ARN.
	Function  string
	LogGroup  string
	LogStream string
}

type invocationKey struct{}

// WithInvocation returns ctx carrying inv.
func WithInvocation(ctx context.Context, inv Invocation) context.Context {
	return context.WithValue(ctx, invocationKey{}, inv)
}

// InvocationFrom returns the invocation ctx carries (the zero value
// outside the Lambda runtime).
func InvocationFrom(ctx context.Context) Invocation {
	inv, _ := ctx.Value(invocationKey{}).(Invocation)
	return inv
}

// writeRecord writes the run's rollout record and says in rep what it
// wrote, or why it did not.
func (r *run) writeRecord(ctx context.Context, log *slog.Logger, rep *Report, start, end time.Time) {
	version := rep.ConfigVersion
	if version == "" {
		version = r.refused
	}
	if !rollout.ValidVersion(version) {
		// Nothing names a version (no pointer, KMS unreachable before the
		// pointer was read): there is no record to write it under.
		// BundleErrors already counts the run.
		log.Warn("no rollout record: the run read no published version", "error", rep.BundleError)
		return
	}
	api := r.deps.Records
	if api == nil {
		api = r.deps.SSM
	}
	if api == nil {
		rep.RecordError = "no SSM client"
		log.Error("rollout record not written", "error", rep.RecordError)
		return
	}
	timeout := RecordTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline)-time.Second)
	}
	if timeout <= 0 {
		rep.RecordError = "no time left before the invocation's deadline"
		log.Error("rollout record not written", "version", version, "error", rep.RecordError)
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	w, err := func() (w *rollout.Written, err error) {
		defer func() {
			if p := recover(); p != nil {
				w, err = nil, fmt.Errorf("panic: %v", p)
			}
		}()
		keep := 0 // a refused bundle's settings are not known: prune nothing
		if r.bundle != nil {
			keep = ssmbundle.TargetOf(r.bundle.Content.Settings.SSM).Keep
		}
		return rollout.Write(wctx, api, r.cfg.Pointer, r.update(rep, version, start, end), keep)
	}()
	if w != nil {
		rep.Record = w.Head
	}
	if err != nil {
		rep.RecordError = err.Error()
		msg := "rollout record not written"
		if w != nil {
			msg = "rollout record written, but old records were not pruned"
		}
		log.Error(msg, "version", version, "parameter", rollout.HeadName(r.cfg.Pointer, version), "error", rep.RecordError)
		return
	}
	log.Info("rollout record written", "parameter", w.Head, "generation", w.Generation, "chunks", w.Chunks, "bytes", w.Bytes,
		"cut", w.Cut, "pruned", w.Pruned)
}

// update is what this run adds to the version's record.
func (r *run) update(rep *Report, version string, start, end time.Time) rollout.Update {
	inv := r.inv
	run := rollout.Run{
		Trigger: string(rep.Trigger), DryRun: rep.DryRun, ForcedDryRun: r.cfg.ForceDryRun,
		RequestID: inv.RequestID, Function: inv.Function, LogGroup: inv.LogGroup, LogStream: inv.LogStream,
		StartedAt: start.UTC(), FinishedAt: end.UTC(), Clusters: len(rep.Clusters),
		Failed: rep.Failed, Partial: rep.Partial, LimitsTripped: rep.LimitsTripped,
		SignedBy: rep.SignedBy, Unsigned: rep.Unsigned, BundleError: rep.BundleError, Alert: rep.NeedsAlert(),
	}
	u := rollout.Update{Version: version, Run: run}
	if r.bundle != nil {
		u.Commit, u.PullRequest, u.PublishedAt = r.bundle.Meta.Commit, r.bundle.Meta.PullRequest, r.bundle.Meta.PublishedAt.UTC()
	}
	for i, c := range rep.Clusters {
		rc := rollout.Cluster{
			Name: c.Cluster, AccountID: c.AccountID, Region: c.Region, Status: rollout.Status(c.Status), DryRun: rep.DryRun,
			Stage: c.Stage, Error: c.Error, Server: c.Server, Changes: c.Changes, Statements: c.Statements,
			Created: c.UsersCreated, Dropped: c.UsersDropped, Held: c.Held, LimitTripped: c.LimitTripped,
			FailedAccountCount: c.FailedAccountCount, SkippedCount: c.SkippedCount, Notes: c.Notes,
			RequestID: inv.RequestID, At: end.UTC(), DurationMS: c.DurationMS,
		}
		if r.state != nil {
			if want, ok := r.state.Find(c.Cluster); ok {
				rc.Environment = want.Environment
			}
		}
		for _, f := range c.FailedAccounts {
			// The statement stays out: the summary says what it did.
			rc.FailedAccounts = append(rc.FailedAccounts, rollout.FailedAccount{Account: accountName(f.Account), User: f.User, Summary: f.Summary, Error: f.Error})
		}
		for _, s := range c.Skipped {
			rc.Skipped = append(rc.Skipped, rollout.Skip{User: s.User, Reason: s.Reason})
		}
		u.Clusters = append(u.Clusters, rc)
		if i < len(r.events) {
			u.Accounts = append(u.Accounts, r.events[i]...)
		}
	}
	u.Users = declaredUsers(r.state)
	return u
}

// declaredUsers are the users the state gives an account, with where.
func declaredUsers(st *desired.State) []rollout.User {
	if st == nil {
		return nil
	}
	byName := map[string]*rollout.User{}
	var names []string
	for _, c := range st.Clusters {
		for _, a := range c.Accounts {
			u := byName[a.User]
			if u == nil {
				u = &rollout.User{Name: a.User, Account: a.Name, Kind: a.Kind, Auth: a.Auth.Method}
				byName[a.User] = u
				names = append(names, a.User)
			}
			u.Clusters = append(u.Clusters, c.Name)
		}
	}
	slices.Sort(names)
	out := make([]rollout.User, 0, len(names))
	for _, n := range names {
		u := byName[n]
		slices.Sort(u.Clusters)
		out = append(out, *u)
	}
	return out
}

// accountEvents says what happened to each account on one cluster: its
// strongest applied (or, in a dry run, planned) event, the drops the
// removal limit held back, and its refused statements. It is pure.
func accountEvents(cluster string, res *engine.Result) []rollout.Account {
	if res == nil {
		return nil
	}
	type key struct {
		id   mysqlstate.AccountID
		user string
	}
	strongest := map[key]rollout.Event{}
	var order []key
	note := func(ch plan.Change) {
		var e rollout.Event
		switch ch.Action() {
		case plan.CreateUser:
			e = rollout.Created
		case plan.DropUser:
			e = rollout.Dropped
		case plan.LockAccount:
			e = rollout.Locked
		case plan.EndSession, "":
			return // the consequence of a change already told
		default:
			e = rollout.Changed
		}
		k := key{ch.Account, ch.User}
		old, seen := strongest[k]
		if !seen {
			order = append(order, k)
		}
		if !seen || rank(e) > rank(old) {
			strongest[k] = e
		}
	}
	dryRun := res.Status == engine.Planned
	if dryRun && res.Plan != nil {
		for _, ch := range res.Plan.Changes {
			note(ch)
		}
	}
	for _, s := range res.Applied {
		note(s.Change)
	}
	var out []rollout.Account
	for _, k := range order {
		out = append(out, rollout.Account{User: k.user, Account: k.id.User, Host: hostOf(k.id), Cluster: cluster, Event: strongest[k], DryRun: dryRun})
	}
	if res.Plan != nil {
		for _, ch := range res.Plan.Held {
			out = append(out, rollout.Account{User: ch.User, Account: ch.Account.User, Host: hostOf(ch.Account), Cluster: cluster, Event: rollout.Held,
				Summary: ch.Summary})
		}
	}
	for _, f := range res.Failures {
		out = append(out, rollout.Account{User: f.User, Account: f.Account.User, Host: hostOf(f.Account), Cluster: cluster, Event: rollout.FailedEvent,
			Summary: f.Summary, Error: f.Error})
	}
	return out
}

func rank(e rollout.Event) int {
	return map[rollout.Event]int{rollout.Changed: 1, rollout.Locked: 2, rollout.Dropped: 3, rollout.Created: 4}[e]
}

func hostOf(id mysqlstate.AccountID) string {
	if id.Host == "%" {
		return ""
	}
	return id.Host
}

func accountName(id mysqlstate.AccountID) string {
	if id.Host == "%" || id.Host == "" {
		return id.User
	}
	return id.String()
}
