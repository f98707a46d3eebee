package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// TestHeldBackIsInTheHeadline: a run whose drops the removal limit held
// back does not begin with "no changes".
func TestHeldBackIsInTheHeadline(t *testing.T) {
	drop := plan.Change{Account: mysqlstate.AccountID{User: "acme_a", Host: "%"}, Summary: "drop acme_a", Op: plan.Drop{}}
	for status, want := range map[engine.Status]string{
		engine.Unchanged: "cluster c: no change applied; 2 removal(s) HELD BACK by the removal limit",
		engine.Planned:   "cluster c: 0 change(s) planned (dry run: nothing applied); 2 removal(s) HELD BACK by the removal limit",
	} {
		var b bytes.Buffer
		Text(&b, &engine.Result{Cluster: "c", Status: status, Plan: &plan.Plan{Held: []plan.Change{drop, drop}, LimitTripped: "limit"}}, flavor.MariaDB, false)
		if first, _, _ := strings.Cut(b.String(), "\n"); first != want {
			t.Errorf("%s: headline %q, want %q", status, first, want)
		}
	}
	var b bytes.Buffer
	Text(&b, &engine.Result{Cluster: "c", Status: engine.Unchanged, Plan: &plan.Plan{}}, flavor.MariaDB, false)
	if !strings.HasPrefix(b.String(), "cluster c: no changes\n") {
		t.Errorf("a converged cluster: %q", b.String())
	}
}
