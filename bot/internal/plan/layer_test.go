package plan

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

// TestPureCoreKnowsNoFileFormat: planning depends on values only. It must
// not reach the declaration files' reader (config), their positions
// (jsonpos, diag), the JSON Schema library or any AWS package, so that the
// diff cannot see admin secrets, role ARNs or tags, and stays cheap to
// test and to reason about.
func TestPureCoreKnowsNoFileFormat(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/dbusers/dbusers/bot/internal/plan").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/dbusers/dbusers/bot/internal/config",
		"github.com/dbusers/dbusers/bot/internal/jsonpos",
		"github.com/dbusers/dbusers/bot/internal/diag",
		"github.com/xeipuuv/gojsonschema",
		"github.com/aws/",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 {
		t.Fatalf("go list -deps printed too little to be believed: %q", out)
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f) {
				t.Errorf("package plan depends on %s", d)
			}
		}
	}
}

// TestChangeJSON: a change reads back as the kind it was, and the flat
// shape that reports and the Lambda have always printed is kept.
func TestChangeJSON(t *testing.T) {
	ref := DatabaseRef{Database: "app_db", Pattern: `app\_db`}
	changes := []Change{
		{Account: id("acme_a"), User: "a", Summary: "create", Op: NewAccount{Auth: Auth{Method: "password", SecretRef: "s", RequireSSL: true}}},
		{Account: id("acme_a"), Summary: "rotate", Op: SetAuth{Auth: Auth{Method: "password", SecretRef: "s", Rotate: true}}},
		{Account: id("acme_a"), Summary: "role", Op: RevokeRoleGrant{Role: mysqlstate.AccountID{User: "r"}}},
		{Account: id("acme_a"), Summary: "global", Op: RevokeGlobal{Privileges: []string{"PROCESS"}}},
		{Account: id("acme_a"), Summary: "db", Op: RevokeDatabase{DatabaseRef: ref, Privileges: []string{"INSERT"}}},
		{Account: id("acme_a"), Summary: "table", Op: RevokeTable{DatabaseRef: ref, Table: "t", Privileges: []string{"SELECT"}}},
		{Account: id("acme_a"), Summary: "column", Op: RevokeColumn{DatabaseRef: ref, Table: "t", Column: "c", Privileges: []string{"UPDATE"}}},
		{Account: id("acme_a"), Summary: "grant", Op: GrantDatabase{DatabaseRef: ref, Privileges: []string{"SELECT"}}},
		{Account: id("acme_gone"), User: "gone", Summary: "drop", Op: Drop{}},
	}
	data, err := json.Marshal(changes)
	if err != nil {
		t.Fatal(err)
	}
	var back []Change
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(changes, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var flat []map[string]any
	if err := json.Unmarshal(data, &flat); err != nil {
		t.Fatal(err)
	}
	if flat[7]["action"] != "grant" || flat[7]["pattern"] != `app\_db` || flat[6]["column"] != "c" || flat[8]["action"] != "drop_user" {
		t.Errorf("flat shape changed: %s", data)
	}
	if strings.Contains(string(data), "Password") || strings.Contains(string(data), `"password":`) {
		t.Errorf("JSON carries a password field: %s", data)
	}
}

// TestChangeJSONRefusesWhatNoKindIs: a change read from JSON (a plan
// returned by the Lambda) cannot smuggle in a combination the planner never
// makes, such as a grant on a table or a role revoke that also sets a
// password.
func TestChangeJSONRefusesWhatNoKindIs(t *testing.T) {
	for _, in := range []string{
		`{"action":"grant","account":{"user":"a","host":"%"},"pattern":"db","table":"t","privileges":["SELECT"],"summary":""}`,
		`{"action":"grant","account":{"user":"a","host":"%"},"privileges":["SELECT"],"summary":""}`,
		`{"action":"revoke","account":{"user":"a","host":"%"},"pattern":"db","column":"c","privileges":["SELECT"],"summary":""}`,
		`{"action":"revoke","account":{"user":"a","host":"%"},"table":"t","privileges":["SELECT"],"summary":""}`,
		`{"action":"revoke","account":{"user":"a","host":"%"},"summary":""}`,
		`{"action":"revoke_role","account":{"user":"a","host":"%"},"summary":""}`,
		`{"action":"revoke_role","account":{"user":"a","host":"%"},"role":{"user":"r","host":""},"auth":{"method":"iam","require_ssl":true},"summary":""}`,
		`{"action":"create_user","account":{"user":"a","host":"%"},"summary":""}`,
		`{"action":"drop_user","account":{"user":"a","host":"%"},"privileges":["SELECT"],"summary":""}`,
		`{"action":"truncate","account":{"user":"a","host":"%"},"summary":""}`,
	} {
		var c Change
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("%s read as %+v", in, c)
		}
	}
}

// TestDiffMySQL84: 8.4 creates password accounts with caching_sha2_password
// and keeps one that holds the declared password there.
func TestDiffMySQL84(t *testing.T) {
	p := scenario{engine: "mysql-8.4", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))}}.diff()
	if len(p.Changes) != 2 {
		t.Fatalf("changes = %v", summaries(p))
	}
	if op := p.Changes[0].Op.(NewAccount); op.Auth.Password != "pw-app" {
		t.Errorf("create = %+v", op)
	}
	same := sha2Live("app", "pw-app", map[string][]string{"orders": readPrivs})
	if p := (scenario{engine: "mysql-8.4", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
		server: []*mysqlstate.Account{same}}).diff(); len(p.Changes) != 0 {
		t.Errorf("an account holding the declared password under caching_sha2_password changes: %v", summaries(p))
	}
	old := sha2Live("app", "old", map[string][]string{"orders": readPrivs})
	p = scenario{engine: "mysql-8.4", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
		server: []*mysqlstate.Account{old}}.diff()
	if got := summaries(p); len(got) != 1 || got[0] != "alter_auth: rotate the password of acme_app (secret s/app changed)" {
		t.Errorf("changes = %v; want one rotation", got)
	}
}

// FuzzChangeJSON: whatever JSON a change is read from (a plan returned by
// the Lambda is input), what reads back writes and reads again as the same
// change, and nothing panics.
//
// CI fuzz budget: 20000 execs
func FuzzChangeJSON(f *testing.F) {
	for _, s := range []string{
		`{"action":"grant","account":{"user":"a","host":"%"},"database":"d","pattern":"d","privileges":["SELECT"],"summary":"s"}`,
		`{"action":"end_session","account":{"user":"a","host":"%"},"session":{"id":4,"user":"a"},"via":"rds_kill","summary":"s"}`,
		`{"action":"lock_account","account":{"user":"a","host":"%"},"objects":[{"kind":"view","database":"d","name":"v","definer":{"user":"a","host":"%"}}],"summary":"s"}`,
		`{"action":"reset_options","account":{"user":"a","host":"%"},"reset":["limits"],"summary":"s"}`,
		`{"action":"revoke","account":{"user":"a","host":"%"},"database":"d","routine":"p","routine_type":"PROCEDURE","privileges":["EXECUTE"],"summary":"s"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var c Change
		if json.Unmarshal([]byte(in), &c) != nil {
			return
		}
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("%s reads as %+v, which does not write: %v", in, c, err)
		}
		var back Change
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%s writes as %s, which does not read: %v", in, data, err)
		}
		if !cmp.Equal(c, back, cmpopts.EquateEmpty()) {
			t.Fatalf("round trip of %s: %+v != %+v", in, c, back)
		}
	})
}
