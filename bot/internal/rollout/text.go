package rollout

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Title is the verdict in a few words, for a comment's title: "applied on
// 4 of 4 cluster(s)", "1 of 4 cluster(s) need attention", "dry run,
// nothing was applied".
func (r *Record) Title() string {
	total := len(r.Clusters) + r.ClustersLeftOut
	problems := r.Problems()
	switch {
	case len(problems) == 1 && problems[0].What == "bundle":
		return "the bundle was refused, nothing was changed"
	case len(problems) > 0:
		bad := map[string]bool{}
		for _, p := range problems {
			bad[p.Cluster] = true
		}
		return fmt.Sprintf("%d of %d cluster(s) need attention", len(bad), total)
	case r.Outcome() == DryRunOnly:
		return "dry run, nothing was applied"
	}
	return r.Headline()
}

// Headline is the record's verdict in a line, what the comment's title and
// the commit status say: "applied on 4 of 4 clusters", "failed on 1 of 4
// clusters: prod-orders (assume-role)", "dry run: nothing was applied".
func (r *Record) Headline() string {
	total := len(r.Clusters) + r.ClustersLeftOut
	count := r.Count()
	problems := r.Problems()
	if len(problems) == 1 && problems[0].What == "bundle" {
		return "the function refused the bundle: nothing was changed"
	}
	if len(problems) > 0 {
		var names []string
		bad := map[string]bool{}
		for _, p := range problems {
			bad[p.Cluster] = true
			names = append(names, p.Cluster+" ("+problemWord(p)+")")
		}
		return fmt.Sprintf("not applied everywhere: %d of %d cluster(s) need attention: %s", len(bad), total, capJoin(names, 5))
	}
	changes, planned := 0, 0
	for _, c := range r.Clusters {
		if c.DryRun && c.Status == Planned {
			planned++
			changes += c.Changes
		}
	}
	if planned > 0 {
		return fmt.Sprintf("dry run: nothing was applied (%d change(s) planned on %d of %d cluster(s))", changes, planned, total)
	}
	if count[Applied] == 0 && r.ClustersLeftOut == 0 {
		return fmt.Sprintf("nothing to change on %d cluster(s): already in place", total)
	}
	return fmt.Sprintf("applied on %d of %d cluster(s)", count[Applied]+count[Unchanged]+r.ClustersLeftOut, total)
}

func problemWord(p Problem) string {
	switch p.What {
	case "failed":
		return "failed at " + p.Stage
	case "held":
		return "drops held back"
	}
	return p.What
}

// Who is the line of what happened to whom: "acme_hana created on
// prod-orders, staging-main; acme_gina dropped on local", at most limit
// people, then how many more.
func (r *Record) Who(limit int) string {
	var parts []string
	people := r.People()
	for i, p := range people {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(people)-limit))
			break
		}
		parts = append(parts, p.Account+" "+p.What())
	}
	return strings.Join(parts, "; ")
}

// What says in a phrase what happened to the person's account.
func (p Person) What() string {
	parts := p.done()
	if len(p.Failures) > 0 {
		var where []string
		for _, f := range p.Failures {
			where = appendOnce(where, f.Cluster)
		}
		parts = append(parts, "failed on "+strings.Join(where, ", "))
	}
	return strings.Join(parts, "; ")
}

// Lines are the phrases of what happened and where the account is now,
// without the failures, which a caller lists one by one.
func (p Person) Lines() []string {
	parts := p.done()
	if p.Declared {
		if len(p.Now) > 0 {
			parts = append(parts, "now on "+strings.Join(p.Now, ", "))
		}
		for _, pe := range p.Pending {
			parts = append(parts, fmt.Sprintf("not on %s (%s)", pe.Cluster, pe.Why))
		}
	} else if p.User != "" {
		parts = append(parts, "no longer declared")
	}
	return parts
}

// Done is What without the failures, which a caller lists one by one.
func (p Person) Done() string { return strings.Join(p.done(), "; ") }

func (p Person) done() []string {
	var parts []string
	for _, e := range Events(p.Applied) {
		parts = append(parts, Verb(e, false)+" "+strings.Join(p.Applied[e], ", "))
	}
	for _, e := range Events(p.Planned) {
		parts = append(parts, Verb(e, true)+" "+strings.Join(p.Planned[e], ", "))
	}
	if len(p.Held) > 0 {
		parts = append(parts, "drop held back by the removal limit on "+strings.Join(p.Held, ", "))
	}
	return parts
}

// CommitState is the commit status the record earns: success (applied, or
// a dry run, which the description says) or failure.
func (r *Record) CommitState() string {
	if r.Outcome() == NotOK {
		return "failure"
	}
	return "success"
}

// StatusDescription is the commit status's description: GitHub keeps 140
// characters of it.
func (r *Record) StatusDescription() string {
	return clip(r.Headline(), 139)
}

// Text writes the record for a terminal.
func Text(w io.Writer, r *Record, found *Found) {
	fmt.Fprintf(w, "rollout of version %s", r.Version)
	var prov []string
	if r.Commit != "" {
		prov = append(prov, "commit "+short(r.Commit))
	}
	if r.PullRequest != "" {
		prov = append(prov, "pull request #"+r.PullRequest)
	}
	if len(prov) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(prov, ", "))
	}
	fmt.Fprintf(w, ": %s\n", r.Headline())
	if found != nil && found.SupersededBy != "" {
		fmt.Fprintf(w, "  (the version asked for was superseded by %s before a run read it; this is the record of %s, which carries its declarations)\n",
			found.SupersededBy, found.SupersededBy)
	}
	if run, ok := r.Latest(); ok {
		fmt.Fprintf(w, "  latest run: %s\n", RunLine(run))
		if run.DryRun {
			if run.ForcedDryRun {
				fmt.Fprintln(w, "  the function runs in dry-run mode (DBUSERS_DRY_RUN): it planned and applied nothing")
			} else {
				fmt.Fprintln(w, "  it was a dry run: it planned and applied nothing")
			}
		}
	}
	if people := r.People(); len(people) > 0 {
		fmt.Fprintln(w, "accounts:")
		for _, p := range people {
			fmt.Fprintf(w, "  %s", p.Account)
			if p.Declared {
				fmt.Fprintf(w, " (%s, %s)", p.User, p.Auth)
			}
			fmt.Fprintf(w, ": %s", strings.Join(p.Lines(), "; "))
			fmt.Fprintln(w)
			for _, f := range p.Failures {
				fmt.Fprintf(w, "      failed on %s: %s: %s\n", f.Cluster, f.Summary, oneLine(f.Error))
			}
		}
		if r.AccountsLeftOut > 0 {
			fmt.Fprintf(w, "  … and %d more account event(s), left out of the record to fit (the function's logs have all of them)\n", r.AccountsLeftOut)
		}
	}
	fmt.Fprintln(w, "clusters:")
	width := 0
	for _, c := range r.Clusters {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Clusters {
		status := string(c.Status)
		if c.DryRun {
			status += " (dry run)"
		}
		fmt.Fprintf(w, "  %-*s  %-19s %d change(s), %d statement(s), %d created, %d dropped", width, c.Name, status, c.Changes, c.Statements, c.Created, c.Dropped)
		if c.Status == Failed {
			fmt.Fprintf(w, "; at %s: %s", c.Stage, oneLine(c.Error))
		}
		fmt.Fprintln(w)
		if c.Held > 0 {
			fmt.Fprintf(w, "      %d drop(s) held back: %s\n", c.Held, oneLine(c.LimitTripped))
		}
		for _, f := range c.FailedAccounts {
			fmt.Fprintf(w, "      %s: %s: %s\n", f.Account, f.Summary, oneLine(f.Error))
		}
		if n := c.FailedAccountCount - len(c.FailedAccounts); n > 0 {
			fmt.Fprintf(w, "      … and %d more failed account(s)\n", n)
		}
		for _, s := range c.Skipped {
			fmt.Fprintf(w, "      skipped %s: %s\n", s.User, oneLine(s.Reason))
		}
		for _, n := range c.Notes {
			fmt.Fprintf(w, "      note: %s\n", oneLine(n))
		}
	}
	if r.ClustersLeftOut > 0 {
		fmt.Fprintf(w, "  … and %d more cluster(s) that applied or had nothing to do (left out of the record to fit)\n", r.ClustersLeftOut)
	}
	if problems := r.Problems(); len(problems) > 0 {
		fmt.Fprintln(w, "what to do:")
		for _, p := range problems {
			name := p.Cluster
			if name == "" {
				name = "bundle"
			}
			fmt.Fprintf(w, "  %s: %s\n", name, Hint(p))
			if p.What == "bundle" {
				fmt.Fprintf(w, "      %s\n", oneLine(p.Error))
			}
		}
		if run, ok := r.Latest(); ok && run.RequestID != "" {
			fmt.Fprintf(w, "  the run's logs: %s\n", LogsHint(run))
		}
	}
	if len(r.Cut) > 0 {
		fmt.Fprintf(w, "left out of the record to fit SSM: %s\n", strings.Join(r.Cut, "; "))
	}
}

// RunLine describes a run in a line.
func RunLine(run Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s", run.Trigger, run.FinishedAt.UTC().Format("2006-01-02 15:04:05 MST"))
	if d := run.FinishedAt.Sub(run.StartedAt); d > 0 {
		fmt.Fprintf(&b, " (%s)", d.Round(time.Millisecond))
	}
	if run.RequestID != "" {
		fmt.Fprintf(&b, ", request id %s", run.RequestID)
	}
	switch {
	case run.SignedBy != "":
		fmt.Fprintf(&b, ", bundle signed by %s", run.SignedBy)
	case run.Unsigned:
		b.WriteString(", bundle used UNSIGNED (DBUSERS_ALLOW_UNSIGNED)")
	}
	return b.String()
}

// LogsHint says where the run's logs are: its log group and a Logs
// Insights filter on its request id.
func LogsHint(run Run) string {
	group := run.LogGroup
	if group == "" {
		group = "the function's log group"
	}
	return fmt.Sprintf("CloudWatch Logs Insights on %s: filter request_id = %q", group, run.RequestID)
}

func capJoin(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }
