package liveplan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// TestChangeJSON: a change travels from the Lambda to the CLI with its
// statement, render error and drift flag, next to plan.Change's own
// fields (whose MarshalJSON the embedding would otherwise promote).
func TestChangeJSON(t *testing.T) {
	acct := mysqlstate.AccountID{User: "acme_frank", Host: "%"}
	r := Report{ReadAt: time.Date(2026, 3, 1, 8, 59, 0, 0, time.UTC), Clusters: []Cluster{{
		Name: "prod-orders", Status: Planned,
		Changes: []Change{
			{Change: plan.Change{Account: acct, User: "frank", Summary: "drop acme_frank: no user file declares frank", Op: plan.Drop{}},
				Statement: "DROP USER 'acme_frank'@'%'", Drift: true},
			{Change: plan.Change{Account: acct, Summary: "revoke global SUPER", Op: plan.RevokeGlobal{Privileges: []string{"SUPER"}}},
				RenderError: "no statement"},
			{Change: plan.Change{Account: acct, Summary: "plain", Op: plan.Drop{}}},
		},
		Held: []Change{{Change: plan.Change{Account: acct, Summary: "held", Op: plan.Drop{}}, Statement: "DROP USER 'acme_frank'@'%'"}},
	}}}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"statement":"DROP USER 'acme_frank'@'%'","drift":true}`, `"render_error":"no statement"`, `"action":"drop_user"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON lacks %s:\n%s", want, data)
		}
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("JSON does not round-trip (-want +got):\n%s", diff)
	}
}
