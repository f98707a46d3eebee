// Package liveplan is the live plan of a pull request: what merging it
// would do to the real databases, read by the Lambda's plan mode (which
// never applies) and shown in the review comment. It holds plain values
// that travel as JSON from the Lambda to the CLI; the Lambda fills them in
// (bot/internal/fleet), the review renders them (bot/internal/review).
package liveplan

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/render"
)

// Report is the live plan of every cluster asked for.
type Report struct {
	// ReadAt is when the live state was read (the first cluster's read).
	ReadAt time.Time `json:"read_at"`
	// Version and Commit name the candidate bundle the plan is of.
	Version string `json:"version,omitempty"`
	Commit  string `json:"commit,omitempty"`
	// Published is the version of the published configuration the
	// clusters were reached through (and, without a base, drift told
	// against).
	Published string `json:"published,omitempty"`
	// DryRun is the function's DBUSERS_DRY_RUN: merging then only plans.
	DryRun bool `json:"dry_run,omitempty"`
	// Notes are about the plan as a whole.
	Notes []string `json:"notes,omitempty"`
	// Clusters are sorted by name.
	Clusters []Cluster `json:"clusters"`
}

// Status is how far planning one cluster got.
type Status string

// The statuses of a cluster's live plan.
const (
	Unchanged Status = "unchanged" // the merge changes nothing there
	Planned   Status = "planned"   // Changes is what the merge will do
	Failed    Status = "failed"    // could not plan: see Stage and Error
	// Unpublished: the cluster is new in the pull request. A live plan
	// connects only to clusters of the published (merged) configuration,
	// so that a pull request cannot send the function's credentials to a
	// server of its choosing; its first run after the merge creates it.
	Unpublished Status = "unpublished"
)

// Cluster is one cluster's live plan.
type Cluster struct {
	Name   string `json:"cluster"`
	Status Status `json:"status"`
	// Environment is the cluster's, as the pull request declares it;
	// Production is true for a production environment.
	Environment string `json:"environment,omitempty"`
	Production  bool   `json:"production,omitempty"`
	// Server is what the server said it is, e.g. "MariaDB 10.11.19".
	Server string `json:"server,omitempty"`
	// ReadAt is when its live state was read.
	ReadAt time.Time `json:"read_at,omitzero"`
	// Stage and Error say where and why planning failed (account,
	// assume-role, admin-secret or plan-secret, tls, connect, plan).
	Stage string `json:"stage,omitempty"`
	Error string `json:"error,omitempty"`
	// Changes are what the merge will run, in order.
	Changes []Change `json:"changes,omitempty"`
	// Held are the removals the removal limit would hold back, and why.
	Held         []Change `json:"held,omitempty"`
	LimitTripped string   `json:"limit_tripped,omitempty"`
	// Notes and Skipped are as in a run's plan.
	Notes   []string    `json:"notes,omitempty"`
	Skipped []plan.Skip `json:"skipped,omitempty"`
	// Truncated counts changes left out to keep the response within
	// Lambda's payload limit (the first ones are kept).
	Truncated int `json:"truncated,omitempty"`
}

// Change is one planned change with the statement that carries it.
type Change struct {
	plan.Change
	// Statement is the redacted SQL; empty when it could not be rendered
	// (RenderError says why).
	Statement   string `json:"statement,omitempty"`
	RenderError string `json:"render_error,omitempty"`
	// Drift is true when the base revision's live plan has the same
	// change: the server differs from what is already merged (a grant made
	// by hand, an account dropped by hand), and merging only repairs it.
	Drift bool `json:"drift,omitempty"`
}

// Fit leaves out changes, the last ones of the longest lists first, until
// the report's JSON is at most budget bytes, and counts them in each
// cluster's Truncated. It returns how many it left out. Each change is
// measured once; the report is marshalled whole only to check. A report
// that cannot fit even without any change (thousands of failed clusters)
// is left as it is; the caller's transport refuses it.
func (r *Report) Fit(budget int) int {
	size := func() int {
		data, err := json.Marshal(r)
		if err != nil {
			return 0 // the caller's own marshal reports it
		}
		return len(data)
	}
	total := size()
	if total <= budget {
		return 0
	}
	// sizes[i][j] is the JSON length of cluster i's change j (Changes,
	// then Held), with its comma.
	full := slices.Clone(r.Clusters)
	sizes := make([][]int, len(full))
	longest := 0
	for i, c := range full {
		for _, ch := range append(slices.Clone(c.Changes), c.Held...) {
			data, _ := json.Marshal(ch)
			sizes[i] = append(sizes[i], len(data)+1)
		}
		longest = max(longest, len(sizes[i]))
	}
	// kept returns the report's size with at most keep changes a cluster.
	kept := func(keep int) int {
		n := total
		for i := range full {
			for _, sz := range sizes[i][min(keep, len(sizes[i])):] {
				n -= sz
			}
		}
		return n + 40*len(full) // a "truncated" field each, at most
	}
	lo, hi := 0, longest // kept(hi) > budget
	for lo+1 < hi {
		if mid := (lo + hi) / 2; kept(mid) <= budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	for {
		dropped := 0
		for i, c := range full {
			cut := c
			if n := len(c.Changes) + len(c.Held); n > lo {
				ch := min(len(c.Changes), lo)
				cut.Changes = c.Changes[:ch]
				cut.Held = c.Held[:min(len(c.Held), lo-ch)]
				cut.Truncated = c.Truncated + n - len(cut.Changes) - len(cut.Held)
				dropped += cut.Truncated - c.Truncated
			}
			r.Clusters[i] = cut
		}
		if lo == 0 || size() <= budget {
			return dropped
		}
		lo = lo * 9 / 10 // the estimate was short: keep a tenth fewer
	}
}

// NewChange is ch with its redacted statement on flavor f (or why there is
// none), drift as given.
func NewChange(ch plan.Change, f flavor.Flavor, drift bool) Change {
	out := Change{Change: ch, Drift: drift}
	st, err := render.Change(ch, f)
	if err != nil {
		out.RenderError = err.Error()
		return out
	}
	out.Statement = st.Redacted
	return out
}

// changeExtra is what a Change adds to plan.Change's JSON.
type changeExtra struct {
	Statement   string `json:"statement,omitempty"`
	RenderError string `json:"render_error,omitempty"`
	Drift       bool   `json:"drift,omitempty"`
}

// MarshalJSON writes one flat object: plan.Change's fields and the
// statement, render error and drift. (Embedding plan.Change promotes its
// MarshalJSON, which would drop them.)
func (c Change) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(c.Change)
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(changeExtra{Statement: c.Statement, RenderError: c.RenderError, Drift: c.Drift})
	if err != nil {
		return nil, err
	}
	if len(extra) <= 2 { // {}
		return base, nil
	}
	out := make([]byte, 0, len(base)+len(extra))
	out = append(out, base[:len(base)-1]...)
	out = append(out, ',')
	return append(out, extra[1:]...), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Change) UnmarshalJSON(data []byte) error {
	var extra changeExtra
	if err := json.Unmarshal(data, &extra); err != nil {
		return err
	}
	if err := json.Unmarshal(data, &c.Change); err != nil {
		return err
	}
	c.Statement, c.RenderError, c.Drift = extra.Statement, extra.RenderError, extra.Drift
	return nil
}
