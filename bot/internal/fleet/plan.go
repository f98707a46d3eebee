package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/redact"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// This file is the Lambda's plan mode: the live plan of a pull request.
// It plans through engine.Preview, which has no way to apply, and never
// calls engine.Reconcile (a test checks this file's source for it). A
// plan invoke can name any candidate bundle, so it is trusted with
// nothing the candidate says about where a cluster is: the account,
// region, role, endpoint, port, TLS mode and secrets come from the
// published bundle, which only a merge writes (and signs). A cluster the candidate
// adds is reported unpublished, not reached. Plan mode sends no SNS
// alert and writes no metric: a pull request must not be able to page
// anyone.

// PlanSessionName is the role session name plan mode assumes roles with:
// CloudTrail in a cluster's account tells a plan from a run.
const PlanSessionName = "dbusers-plan"

// ResponseBudget bounds the JSON of a plan response: Lambda returns at
// most 6 MB from a synchronous invoke. Past it, changes are left out
// (liveplan.Report.Fit) and counted.
const ResponseBudget = 5 << 20

// Invoke is the Lambda's handler: a plan invoke goes to Plan, an inventory
// invoke to Inventory, any other event to Handle; the plan function
// (cfg.PlanOnly) refuses all but the first.
func Invoke(ctx context.Context, deps Deps, cfg Config, raw json.RawMessage) (any, error) {
	if IsPlanInvoke(raw) {
		return Plan(ctx, deps, cfg, raw)
	}
	if IsInventoryInvoke(raw) && !cfg.PlanOnly {
		inv, err := Inventory(ctx, deps, cfg, raw)
		if inv == nil {
			return nil, err
		}
		return inv, err
	}
	if cfg.PlanOnly {
		err := fmt.Errorf("this is the plan function (%s=true): it answers only a plan invoke ({\"plan\": {...}}) and never runs; nothing was changed", EnvPlanOnly)
		logger(deps).Error("event refused", "error", err.Error())
		return nil, err
	}
	rep, err := Handle(ctx, deps, cfg, raw)
	if rep == nil {
		return nil, err // an untyped nil: the response is null, not a typed nil
	}
	return rep, err
}

func logger(deps Deps) *slog.Logger {
	out := &lockedWriter{w: deps.Stdout}
	if deps.Stdout == nil {
		out.w = io.Discard
	}
	return slog.New(slog.NewJSONHandler(out, nil))
}

// Plan answers a plan invoke: the live plan of the candidate bundle on
// every cluster it names (or those asked for). Clusters that cannot be
// planned are reported, not errors; the invoke fails only when the
// request is refused or the published bundle cannot be read.
func Plan(ctx context.Context, deps Deps, cfg Config, raw json.RawMessage) (*liveplan.Report, error) {
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	log := logger(deps).With("trigger", TriggerPlan)
	req, err := DecodePlan(raw)
	if err != nil {
		log.Error("plan refused", "error", err.Error())
		return nil, err
	}
	r := &run{deps: deps, cfg: cfg, log: log, now: now, session: PlanSessionName}
	rep, err := r.plan(ctx, req)
	if err != nil {
		log.Error("plan refused", "error", err.Error())
		return nil, err
	}
	dropped := rep.Fit(ResponseBudget)
	log.Info("plan done", "candidate", rep.Version, "commit", rep.Commit, "clusters", len(rep.Clusters),
		"changes_left_out", dropped, "duration_ms", float64(now().Sub(start).Microseconds())/1000)
	return rep, nil
}

func (r *run) plan(ctx context.Context, req PlanRequest) (*liveplan.Report, error) {
	work := ctx
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) > 2*reportMargin {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-reportMargin))
		defer cancel()
	}
	today := r.now()
	head, err := config.Desired(req.Bundle.Config(), today)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", req.Bundle.Meta.Version, err)
	}
	// Verified as a run verifies it: where the clusters are and how to log
	// in comes from a bundle only the publisher could have written.
	published, err := r.readBundle(work, r.log, &Report{})
	switch {
	case errors.Is(err, ssmbundle.ErrNoPointer):
		// Nothing merged yet: every cluster is new.
		published = &ssmbundle.Bundle{}
	case err != nil:
		return nil, fmt.Errorf("the published configuration (%s) could not be read, and a live plan reaches clusters only through it: %w", r.cfg.Pointer, err)
	}
	var base *desired.State
	var notes []string
	switch {
	case req.Base != nil:
		if base, err = config.Desired(req.Base.Config(), today); err != nil {
			return nil, fmt.Errorf("base_bundle %s: %w", req.Base.Meta.Version, err)
		}
	case published.Meta.Version != "":
		if base, err = config.Desired(published.Config(), today); err != nil {
			notes = append(notes, fmt.Sprintf("the published configuration %s does not build (%v): drift is not told", published.Meta.Version, err))
			base = nil
		}
	}

	targets, err := selectClusters(head, req.Bundle.Config(), req.Clusters)
	if err != nil {
		return nil, err
	}
	where := make(map[string]config.Cluster, len(published.Content.Clusters))
	for _, c := range published.Content.Clusters {
		where[c.Name] = c
	}
	limit := cmpPositive(r.cfg.Concurrency, published.Content.Settings.Concurrency, DefaultConcurrency)
	results := make([]liveplan.Cluster, len(targets))
	var g errgroup.Group
	g.SetLimit(limit)
	for i, t := range targets {
		g.Go(func() error {
			at, ok := where[t.want.Name]
			results[i] = r.planCluster(work, head, base, t, at, ok, published.Content.Settings.AWS)
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(results, func(a, b liveplan.Cluster) int { return strings.Compare(a.Name, b.Name) })
	rep := &liveplan.Report{Version: req.Bundle.Meta.Version, Commit: req.Bundle.Meta.Commit, Published: published.Meta.Version,
		DryRun: r.cfg.ForceDryRun, Notes: notes, Clusters: results}
	for _, c := range results {
		if !c.ReadAt.IsZero() && (rep.ReadAt.IsZero() || c.ReadAt.Before(rep.ReadAt)) {
			rep.ReadAt = c.ReadAt
		}
	}
	return rep, nil
}

// cmpPositive returns the first positive value.
func cmpPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// planCluster plans one cluster. t.want is what the candidate declares
// there; at is the published cluster file (found: ok), the only source of
// where the cluster is and how to log in.
func (r *run) planCluster(ctx context.Context, head, base *desired.State, t target, at config.Cluster, ok bool, settings config.AWS) liveplan.Cluster {
	t0 := r.now()
	lc := liveplan.Cluster{Name: t.want.Name, Environment: t.want.Environment, Production: desired.IsProduction(t.want.Environment)}
	log := r.log.With("cluster", lc.Name)
	defer func() {
		attrs := []any{"status", lc.Status, "changes", len(lc.Changes), "held", len(lc.Held),
			"duration_ms", float64(r.now().Sub(t0).Microseconds()) / 1000}
		if lc.Error != "" {
			attrs = append(attrs, "stage", lc.Stage, "error", lc.Error)
		}
		log.Info("cluster planned", attrs...)
	}()
	if !ok {
		lc.Status = liveplan.Unpublished
		lc.Error = fmt.Sprintf("cluster %s is not in the published configuration: a live plan reaches only clusters already merged; "+
			"the first run after the merge creates its accounts", lc.Name)
		return lc
	}
	if changed := connectionChanges(t.at, at); len(changed) > 0 {
		lc.Notes = append(lc.Notes, fmt.Sprintf("this pull request changes how the cluster is reached (%s): planned with the published %s, the merge's run uses the new one",
			strings.Join(changed, ", "), strings.Join(changed, ", ")))
	}
	secret, stage := at.AdminSecret, StageAdminSecret
	if at.PlanSecret != "" {
		secret, stage = at.PlanSecret, StagePlanSecret
	}
	l, err := r.login(ctx, at, settings, secret, stage)
	if err != nil {
		lc.Status, lc.Stage, lc.Error = liveplan.Failed, StageConnect, err.Error()
		var se *stageError
		if errors.As(err, &se) {
			lc.Stage = se.stage
		}
		return lc
	}
	defer l.db.Close()

	var baseCluster desired.Cluster
	if base != nil {
		if c, ok := base.Find(lc.Name); ok {
			baseCluster = *c
		}
	}
	passwords, notes := readPasswords(ctx, l.secrets, desired.Cluster{Accounts: append(slices.Clone(t.want.Accounts), baseCluster.Accounts...)})
	lc.Notes = append(lc.Notes, notes...)
	res := engine.Preview(ctx, l.db, engine.PreviewOptions{State: head, Cluster: t.want, Base: base, Passwords: passwords, Now: r.now})
	lc.Server, lc.ReadAt = res.Server, res.ReadAt
	if res.Err != nil {
		lc.Status, lc.Stage, lc.Error = liveplan.Failed, StagePlan, redact.Error(res.Err, l.admin.Password).Error()
		return lc
	}
	if res.RunActive {
		lc.Notes = append(lc.Notes, "a dbusers run was applying on this server while it was read: the plan may show changes that run is making")
	}
	lc.Status = liveplan.Unchanged
	if res.Status == engine.Planned {
		lc.Status = liveplan.Planned
	}
	flv := t.want.Flavor()
	for i, ch := range res.Plan.Changes {
		lc.Changes = append(lc.Changes, liveplan.NewChange(ch, flv, res.Drift[i]))
	}
	for _, ch := range res.Plan.Held {
		lc.Held = append(lc.Held, liveplan.NewChange(ch, flv, false))
	}
	lc.LimitTripped = res.Plan.LimitTripped
	if stage == StagePlanSecret && slices.ContainsFunc(res.Plan.Changes, func(c plan.Change) bool { return c.Action() == plan.DropUser }) {
		lc.Notes = append(lc.Notes, "planned with the read-only plan login, which cannot see the definers of triggers and events: "+
			"an account that defines one is dropped here, and locked by the run")
	}
	lc.Notes = append(lc.Notes, res.Plan.Notes...)
	lc.Skipped = res.Plan.Skipped
	return lc
}

// connectionChanges names the fields of a cluster file that say where a
// cluster is and how to log in, and that the candidate changes.
func connectionChanges(candidate, published config.Cluster) []string {
	var out []string
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"account_id", candidate.AccountID, published.AccountID},
		{"region", candidate.Region, published.Region},
		{"endpoint", candidate.Endpoint, published.Endpoint},
		{"port", candidate.Port, published.Port},
		{"tls", candidate.TLS, published.TLS},
		{"role_arn", candidate.RoleARN, published.RoleARN},
		{"external_id", candidate.ExternalID, published.ExternalID},
		{"admin_secret", candidate.AdminSecret, published.AdminSecret},
		{"plan_secret", candidate.PlanSecret, published.PlanSecret},
	} {
		if f.a != f.b {
			out = append(out, f.name)
		}
	}
	return out
}
