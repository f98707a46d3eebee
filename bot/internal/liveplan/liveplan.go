// Package liveplan is the live plan of a pull request: what merging it
// would do to the real databases, read by the Lambda's plan mode (which
// never applies) and shown in the review comment. It holds plain values
// that travel as JSON from the Lambda to the CLI; the Lambda fills them in
// (bot/internal/fleet), the review renders them (bot/internal/review).
package liveplan

import (
	"encoding/json"
	"time"

	"github.com/dbusers/dbusers/bot/internal/plan"
)

// Report is the live plan of every cluster asked for.
type Report struct {
	// ReadAt is when the live state was read (the first cluster's read).
	ReadAt time.Time `json:"read_at"`
	// Version and Commit name the candidate bundle the plan is of.
	Version string `json:"version,omitempty"`
	Commit  string `json:"commit,omitempty"`
	// DryRun is the function's DBUSERS_DRY_RUN: merging then only plans.
	DryRun bool `json:"dry_run,omitempty"`
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

// changeExtra is what a Change adds to plan.Change's JSON object.
type changeExtra struct {
	Statement   string `json:"statement,omitempty"`
	RenderError string `json:"render_error,omitempty"`
	Drift       bool   `json:"drift,omitempty"`
}

// MarshalJSON writes the change as plan.Change's flat object with the
// statement, render error and drift flag added. Without it, the embedded
// plan.Change's MarshalJSON is promoted and the three are silently lost.
func (c Change) MarshalJSON() ([]byte, error) {
	inner, err := json.Marshal(c.Change)
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(changeExtra{c.Statement, c.RenderError, c.Drift})
	if err != nil {
		return nil, err
	}
	if len(extra) <= 2 || len(inner) < 2 || inner[len(inner)-1] != '}' {
		return inner, nil // nothing to add ("{}"), or not an object
	}
	out := append(inner[:len(inner)-1:len(inner)-1], ',')
	return append(out, extra[1:]...), nil
}

// UnmarshalJSON reads a change written by MarshalJSON.
func (c *Change) UnmarshalJSON(data []byte) error {
	var inner plan.Change
	if err := json.Unmarshal(data, &inner); err != nil {
		return err
	}
	var extra changeExtra
	if err := json.Unmarshal(data, &extra); err != nil {
		return err
	}
	*c = Change{Change: inner, Statement: extra.Statement, RenderError: extra.RenderError, Drift: extra.Drift}
	return nil
}
