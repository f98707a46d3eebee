package liveplan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// TestChangeJSON: a change travels from the Lambda to the CLI whole, its
// statement and drift included, as one flat object.
func TestChangeJSON(t *testing.T) {
	in := Change{
		Change:    plan.Change{Account: mysqlstate.AccountID{User: "acme_bob", Host: "%"}, User: "bob", Summary: "drop acme_bob", Op: plan.Drop{}},
		Statement: "DROP USER 'acme_bob'@'%'", Drift: true,
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"action":"drop_user"`, `"statement":"DROP USER 'acme_bob'@'%'"`, `"drift":true`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
	var out Change
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
	// Without extras it is plan.Change's JSON exactly.
	plain, _ := json.Marshal(Change{Change: in.Change})
	want, _ := json.Marshal(in.Change)
	if string(plain) != string(want) {
		t.Errorf("%s, want %s", plain, want)
	}
	if err := json.Unmarshal([]byte(`{"action":"drop_user","statement":1}`), &out); err == nil {
		t.Error("a statement that is not a string was accepted")
	}
}
