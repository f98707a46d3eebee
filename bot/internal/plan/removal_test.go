package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

func session(id int64, user, db string) mysqlstate.Session {
	return mysqlstate.Session{ID: id, User: user, Client: "10.0.0.5:5123" + string(rune('0'+id%10)), DB: db}
}

// TestDiffEndsSessionsOfAccessTaken: the sessions of an account that is
// dropped, or loses any privilege, end after the change that takes it;
// an account that keeps all it had keeps its sessions. RDS and Aurora end
// them with mysql.rds_kill.
func TestDiffEndsSessionsOfAccessTaken(t *testing.T) {
	sessions := []mysqlstate.Session{session(41, "acme_gone", "orders"), session(42, "acme_gone", ""),
		session(43, "acme_bob", "orders"), session(44, "acme_keep", "orders")}
	s := scenario{
		accounts: []desired.Account{pwAccount("bob", grant("orders", "read")), pwAccount("keep", grant("orders", "read"))},
		server: []*mysqlstate.Account{live("bob", map[string][]string{"orders": writePrivs}),
			live("keep", map[string][]string{"orders": readPrivs}), live("gone", map[string][]string{"orders": readPrivs})},
		sessions: sessions,
	}
	want := []string{
		"revoke: downgrade acme_bob on orders: write → read",
		"end_session: end session 43 of acme_bob (10.0.0.5:51233, database orders): access revoked",
		"drop_user: drop acme_gone: no user file declares gone",
		"end_session: end session 41 of acme_gone (10.0.0.5:51231, database orders): account dropped",
		"end_session: end session 42 of acme_gone (10.0.0.5:51232): account dropped",
	}
	p := s.diff()
	if diff := cmp.Diff(want, summaries(p)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	for _, c := range p.Changes {
		if op, ok := c.Op.(Disconnect); ok && op.Via != KillConnection {
			t.Errorf("%s: via %s on MariaDB", c.Summary, op.Via)
		}
	}
	s.engine = "aurora-mysql-3"
	s.accounts = []desired.Account{iamAccount("keep", grant("orders", "read"))}
	s.server = []*mysqlstate.Account{{ID: id("acme_keep"), Plugin: IAMPlugin, AuthString: IAMAuthString, RequireSSL: true,
		Databases: map[string][]string{"orders": readPrivs}}, live("gone", nil)}
	for _, c := range s.diff().Changes {
		if op, ok := c.Op.(Disconnect); ok && op.Via != RDSKill {
			t.Errorf("%s: via %s on Aurora, want rds_kill", c.Summary, op.Via)
		}
	}

	// The policy can keep sessions open, removal by removal.
	off := desired.SessionPolicy{OnDrop: false, OnLock: true, OnRevoke: true}
	s = scenario{server: []*mysqlstate.Account{live("gone", nil)}, sessions: sessions, policy: &off}
	if got := summaries(s.diff()); len(got) != 1 || !strings.HasPrefix(got[0], "drop_user:") {
		t.Errorf("with end_sessions.drop false: %v", got)
	}
}

// TestDiffLocksADefiner: an account that would be dropped but still
// defines stored objects is locked instead, counted by the removal limit
// like a drop; a locked one stays locked with a note; on a server without
// ACCOUNT LOCK it is kept, and the note says it can still log in.
func TestDiffLocksADefiner(t *testing.T) {
	objects := []mysqlstate.StoredObject{
		{Kind: "view", Database: "orders", Name: "v_refunds", Definer: id("acme_dba")},
		{Kind: "procedure", Database: "orders", Name: "refund", Definer: id("acme_dba")},
	}
	s := scenario{server: []*mysqlstate.Account{live("dba", map[string][]string{"orders": writePrivs})},
		objects: objects, sessions: []mysqlstate.Session{session(7, "acme_dba", "orders")}}
	p := s.diff()
	want := []string{
		"lock_account: lock 'acme_dba'@'%' instead of dropping it: it is the definer of orders.v_refunds (view), orders.refund (procedure); give them another definer (recreate them, or ALTER them with DEFINER = another account) and the next run drops it",
		"end_session: end session 7 of acme_dba (10.0.0.5:51237, database orders): account locked",
	}
	if diff := cmp.Diff(want, summaries(p)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if op := p.Changes[0].Op.(Lock); len(op.Objects) != 2 {
		t.Errorf("lock %+v", op)
	}

	locked := live("dba", nil)
	locked.Locked = true
	s.server = []*mysqlstate.Account{locked}
	p = s.diff()
	if got := summaries(p); len(got) != 1 || !strings.HasPrefix(got[0], "end_session: end session 7 of acme_dba") {
		t.Errorf("a locked definer: changes %v", got)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "stays locked: it is still the definer of orders.v_refunds (view)") {
		t.Errorf("notes %q", p.Notes)
	}

	s.engine = "go-mysql-server"
	s.server = []*mysqlstate.Account{live("dba", nil)}
	p = s.diff()
	if len(p.Changes) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "is kept: it is the definer of") || !strings.Contains(p.Notes[0], "cannot lock accounts") {
		t.Errorf("embedded: changes %v notes %q", summaries(p), p.Notes)
	}

	// Two locks and one drop trip a limit of two.
	s = scenario{limit: desired.RemovalLimit{Count: 2}, objects: []mysqlstate.StoredObject{
		{Kind: "view", Database: "orders", Name: "a", Definer: id("acme_d1")},
		{Kind: "event", Database: "orders", Name: "b", Definer: id("acme_d2")}},
		server: []*mysqlstate.Account{live("d1", nil), live("d2", nil), live("d3", nil)}}
	p = s.diff()
	if len(p.Changes) != 0 || len(p.Held) != 3 || !strings.Contains(p.LimitTripped, "3 of 3 managed accounts would be dropped or locked") {
		t.Errorf("changes %v held %d: %s", summaries(p), len(p.Held), p.LimitTripped)
	}
}

// TestDiffRemovesEveryGrant: what a person grants by hand outside what
// dbusers expresses goes, with a sentence each: routine and proxy grants,
// default roles, PASSWORD EXPIRE, a password lifetime and resource limits.
func TestDiffRemovesEveryGrant(t *testing.T) {
	a := live("bob", map[string][]string{"orders": readPrivs})
	a.Roles = []mysqlstate.AccountID{{User: "acme_r"}}
	a.DefaultRoles = []mysqlstate.AccountID{{User: "acme_r"}}
	a.Routines = []mysqlstate.RoutineGrant{{Database: "orders", Name: "refund", Type: "PROCEDURE", Privileges: []string{"EXECUTE"}}}
	a.Proxies = []mysqlstate.AccountID{{User: "root", Host: "localhost"}}
	a.PasswordExpired = true
	a.PasswordLifetime = "30"
	a.Limits = mysqlstate.Limits{UserConnections: 3}
	s := scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "read"))}, server: []*mysqlstate.Account{a}}
	got := summaries(s.diff())
	wantPrefixes := []string{"alter_auth: reset the expired password of acme_bob", "reset_options: reset the password lifetime (30 days) and the resource limits (MAX_USER_CONNECTIONS 3) of acme_bob",
		"revoke_role: revoke role", "clear_default_roles: clear the default roles of acme_bob", "revoke: revoke EXECUTE on procedure orders.refund from acme_bob",
		"revoke: revoke PROXY on 'root'@'localhost' from acme_bob"}
	if len(got) != len(wantPrefixes) {
		t.Fatalf("changes %q", got)
	}
	for i, w := range wantPrefixes {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("change %d = %q, want %q…", i, got[i], w)
		}
	}
}

// TestDiffNamespace: every <prefix>_… account at any host is dbusers'; the
// sentence of a drop says why, and names a declared user only for that
// user's own account (at '%').
func TestDiffNamespace(t *testing.T) {
	s := scenario{users: []string{"erin"}, server: []*mysqlstate.Account{
		live("erin", nil), {ID: mysqlstate.AccountID{User: "acme_bob", Host: "10.0.0.%"}}, {ID: id("acme_Bob")}, {ID: id("acme_bоb")}, live("zed", nil),
	}}
	p := s.diff()
	want := []string{
		`drop_user: drop 'acme_Bob'@'%': "Bob" is not a declarable user name (lowercase letters, digits and _), so no user file can own it`,
		`drop_user: drop 'acme_bob'@'10.0.0.%': dbusers manages acme_bob only at '%'`,
		`drop_user: drop 'acme_bоb'@'%': "b\u043eb" is not a declarable user name (lowercase letters, digits and _), so no user file can own it`,
		"drop_user: drop acme_erin: the configuration grants it nothing on c1",
		"drop_user: drop acme_zed: no user file declares zed",
	}
	if diff := cmp.Diff(want, summaries(p)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	users := map[string]string{}
	for _, c := range p.Changes {
		users[c.Account.String()] = c.User
	}
	if users["'acme_erin'@'%'"] != "erin" || users["'acme_zed'@'%'"] != "" || users["'acme_bob'@'10.0.0.%'"] != "" {
		t.Errorf("users %v: only erin's own account is erin's", users)
	}
}
