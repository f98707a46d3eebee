// Package report prints reconcile results for people: the plan with the
// sentence of each change and its redacted SQL, what was applied, what was
// held back by a safety limit and why. The CLI and the demo share it so
// that what a person reads is the same everywhere.
package report

import (
	"cmp"
	"fmt"
	"io"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/render"
)

// Text writes one cluster's result. With sql set, each change is followed
// by its redacted statements.
func Text(w io.Writer, r *engine.Result, f flavor.Flavor, sql bool) {
	header := "cluster " + r.Cluster
	if r.Server != "" {
		header += " (" + r.Server + ")"
	}
	fmt.Fprintf(w, "%s: %s\n", header, describe(r))
	if r.Plan != nil {
		changes := r.Plan.Changes
		if r.Status == engine.Applied || r.Status == engine.Partial || r.Status == engine.Failed && len(r.Applied) > 0 {
			changes = nil // shown below as applied / not applied
		}
		writeChanges(w, "", changes, f, sql)
	}
	if len(r.Applied) > 0 {
		fmt.Fprintf(w, "  applied %d statement(s):\n", len(r.Applied))
		for _, s := range r.Applied {
			fmt.Fprintf(w, "    ✓ %s\n", s.Statement)
		}
	}
	if len(r.InDoubt) > 0 {
		fmt.Fprintln(w, "  in doubt (sent, but the connection was lost before the server answered):")
		writeChanges(w, "  ", r.InDoubt, f, false)
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "  failed account(s) (%d); every other account went on:\n", len(r.Failures))
		for _, x := range r.Failures {
			fmt.Fprintf(w, "    ✗ %s: %s\n", x.Account, x.Summary)
			if x.Statement != "" {
				fmt.Fprintf(w, "      %s\n", x.Statement)
			}
			fmt.Fprintf(w, "      error: %s\n", x.Error)
			if x.Skipped > 0 {
				fmt.Fprintf(w, "      %d later change(s) of the account not sent\n", x.Skipped)
			}
		}
	}
	if len(r.NotApplied) > 0 {
		fmt.Fprintf(w, "  not applied (%d change(s)):\n", len(r.NotApplied))
		writeChanges(w, "  ", r.NotApplied, f, false)
	}
	if r.Plan != nil {
		if r.Plan.LimitTripped != "" {
			fmt.Fprintf(w, "  ! %s\n", r.Plan.LimitTripped)
			fmt.Fprintf(w, "    held back (%d):\n", len(r.Plan.Held))
			for _, c := range r.Plan.Held {
				fmt.Fprintf(w, "      - %s\n", c.Summary)
			}
		}
		for _, s := range r.Plan.Skipped {
			fmt.Fprintf(w, "  ! skipped %s: %s\n", s.User, s.Reason)
		}
		for _, n := range r.Plan.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	if len(r.Unmanaged) > 0 {
		fmt.Fprintf(w, "  %d account(s) outside the prefix, never touched (declare what they are for, then drop them by hand):\n", len(r.Unmanaged))
		for _, u := range r.Unmanaged {
			on := "no grant on a managed database"
			if len(u.Databases) > 0 {
				on = "grants on " + strings.Join(u.Databases, ", ")
			}
			fmt.Fprintf(w, "    ? %s (%s): %s\n", u.Account, cmp.Or(u.Plugin, "no plugin"), on)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  %d queries, %d writes, %.0f ms\n", r.Queries, r.Writes, r.DurationMS)
}

func describe(r *engine.Result) string {
	n := 0
	if r.Plan != nil {
		n = len(r.Plan.Changes)
	}
	held := ""
	if r.Plan != nil && len(r.Plan.Held) > 0 {
		// A run whose removals the limit held back has not converged:
		// the headline must not read as "nothing to do".
		held = fmt.Sprintf("; %d removal(s) HELD BACK by the removal limit", len(r.Plan.Held))
	}
	switch r.Status {
	case engine.Unchanged:
		if held != "" {
			return "no change applied" + held
		}
		return "no changes"
	case engine.Planned:
		return fmt.Sprintf("%d change(s) planned (dry run: nothing applied)%s", n, held)
	case engine.Applied:
		return fmt.Sprintf("%d change(s) applied and verified%s", n, held)
	case engine.Partial:
		return fmt.Sprintf("PARTIAL: %d account(s) failed; %d statement(s) applied and verified for the others", len(r.Failures), len(r.Applied))
	default:
		return "FAILED"
	}
}

func writeChanges(w io.Writer, indent string, changes []plan.Change, f flavor.Flavor, sql bool) {
	for _, c := range changes {
		fmt.Fprintf(w, "%s  %s %s\n", indent, symbol(c.Action()), c.Summary)
		if !sql {
			continue
		}
		st, err := render.Change(c, f)
		if err != nil {
			fmt.Fprintf(w, "%s      (cannot render: %v)\n", indent, err)
			continue
		}
		fmt.Fprintf(w, "%s      %s\n", indent, st.Redacted)
	}
}

func symbol(a plan.Action) string {
	switch a {
	case plan.CreateUser, plan.Grant:
		return "+"
	case plan.DropUser, plan.Revoke, plan.RevokeRole, plan.LockAccount, plan.EndSession, plan.ClearDefaultRoles:
		return "-"
	}
	return "~"
}

// Summary is a one-line count of a run over many clusters.
func Summary(results []*engine.Result) string {
	counts := map[engine.Status]int{}
	for _, r := range results {
		counts[r.Status]++
	}
	var parts []string
	for _, s := range []engine.Status{engine.Applied, engine.Planned, engine.Unchanged, engine.Partial, engine.Failed} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return fmt.Sprintf("%d cluster(s): %s", len(results), strings.Join(parts, ", "))
}
