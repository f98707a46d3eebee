package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

var (
	readPrivs  = []string{"SELECT"}
	writePrivs = []string{"INSERT", "SELECT", "UPDATE"}
	roles      = map[string][]string{"read": readPrivs, "write": writePrivs, "trusted_admin": {flavor.AllPrivileges}}
)

func id(user string) mysqlstate.AccountID { return mysqlstate.AccountID{User: user, Host: "%"} }

func pwAccount(user string, grants ...desired.Grant) desired.Account {
	return desired.Account{Name: "acme_" + user, User: user, Owner: user + "@x", Kind: "service",
		Auth: desired.Auth{Method: "password", Secret: "s/" + user}, Grants: grants}
}

func iamAccount(user string, grants ...desired.Grant) desired.Account {
	return desired.Account{Name: "acme_" + user, User: user, Owner: user + "@x", Kind: "human",
		Auth: desired.Auth{Method: "iam"}, Grants: grants}
}

func grant(db, role string) desired.Grant {
	privs, err := flavor.MariaDB.Expand(roles[role])
	if err != nil {
		panic(err)
	}
	return desired.Grant{Database: db, Privileges: privs, Roles: []string{role}}
}

// live is a server account holding the password "pw-<user>".
func live(user string, dbs map[string][]string) *mysqlstate.Account {
	return &mysqlstate.Account{ID: id("acme_" + user), Plugin: PasswordPlugin,
		AuthString: mysqlstate.NativePasswordHash("pw-" + user), Databases: dbs}
}

// sha2Live is a MySQL 8 account that holds password with caching_sha2_password.
func sha2Live(user, password string, dbs map[string][]string) *mysqlstate.Account {
	salt := [20]byte{'s', 'a', 'l', 't', '-', 'o', 'f', '-', 't', 'w', 'e', 'n', 't', 'y', '-', 'b', 'y', 't', 'e', 's'}
	return &mysqlstate.Account{ID: id("acme_" + user), Plugin: mysqlstate.CachingSHA2Plugin,
		AuthString: mysqlstate.CachingSHA2Hash(password, salt), Databases: dbs}
}

type scenario struct {
	engine   string
	tls      string // "" means "disabled", which most scenarios use
	accounts []desired.Account
	server   []*mysqlstate.Account
	limit    desired.RemovalLimit
	protect  []string
	noSecret bool
	// users are the declared names, fleet-wide (default: the accounts');
	// sessions and objects, when set, are what the server reads back for
	// them; policy (default: end sessions on every removal).
	users    []string
	sessions []mysqlstate.Session
	objects  []mysqlstate.StoredObject
	policy   *desired.SessionPolicy
}

func (s scenario) diff() *Plan {
	engine := s.engine
	if engine == "" {
		engine = "mariadb-10.11"
	}
	eng, _ := flavor.LookupEngine(engine)
	srv := &mysqlstate.Server{Flavor: eng.Flavor, CurrentUser: mysqlstate.AccountID{User: "admin", Host: "%"},
		Accounts: map[mysqlstate.AccountID]*mysqlstate.Account{}}
	if eng.Aurora && eng.Flavor == flavor.MySQL80 {
		srv.PartialRevokes = true
	}
	for _, a := range s.server {
		srv.Accounts[a.ID] = a
	}
	srv.Sessions, srv.SessionsRead = s.sessions, true
	srv.Objects, srv.ObjectsRead = s.objects, true
	users := map[string]bool{}
	for _, u := range s.users {
		users[u] = true
	}
	for _, a := range s.accounts {
		users[a.User] = true
	}
	policy := desired.DefaultSessionPolicy
	if s.policy != nil {
		policy = *s.policy
	}
	passwords := map[string]string{}
	if !s.noSecret {
		for _, a := range s.accounts {
			if a.Auth.Method == "password" {
				passwords[a.Auth.Secret] = "pw-" + a.User
			}
		}
	}
	tls := s.tls
	if tls == "" {
		tls = "disabled"
	}
	limit := s.limit
	if limit == (desired.RemovalLimit{}) {
		limit = desired.RemovalLimit{Count: 100}
	}
	return Diff(Input{
		Cluster: desired.Cluster{Name: "c1", Engine: eng, TLS: tls, Accounts: s.accounts},
		Server:  srv, Prefix: "acme", Protected: s.protect, Limit: limit, Roles: roles, Passwords: passwords,
		Users: users, Sessions: policy,
	})
}

func summaries(p *Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, string(c.Action())+": "+c.Summary)
	}
	return out
}

func TestDiffSentences(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    scenario
		want []string
	}{
		{
			name: "create with grants",
			s:    scenario{accounts: []desired.Account{pwAccount("app", grant("orders", "write"), grant("stats", "read"))}},
			want: []string{
				"create_user: create acme_app (service, password authentication) for app@x",
				"grant: grant write on orders to acme_app",
				"grant: grant read on stats to acme_app",
			},
		},
		{
			name: "nothing to do",
			s: scenario{accounts: []desired.Account{pwAccount("app", grant("orders", "write"))},
				server: []*mysqlstate.Account{live("app", map[string][]string{"orders": writePrivs})}},
		},
		{
			name: "elevate",
			s: scenario{accounts: []desired.Account{pwAccount("app", grant("orders", "write"))},
				server: []*mysqlstate.Account{live("app", map[string][]string{"orders": readPrivs})}},
			want: []string{"grant: elevate acme_app on orders: read → write"},
		},
		{
			name: "downgrade",
			s: scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "read"))},
				server: []*mysqlstate.Account{live("bob", map[string][]string{"orders": writePrivs})}},
			want: []string{"revoke: downgrade acme_bob on orders: write → read"},
		},
		{
			name: "custom live set is named by its privileges",
			s: scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "read"))},
				server: []*mysqlstate.Account{live("bob", map[string][]string{"orders": {"DELETE", "SELECT"}})}},
			want: []string{"revoke: downgrade acme_bob on orders: DELETE, SELECT → read"},
		},
		{
			name: "change both ways",
			s: scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "write"))},
				server: []*mysqlstate.Account{live("bob", map[string][]string{"orders": {"DELETE", "SELECT"}})}},
			want: []string{
				"revoke: change acme_bob on orders: DELETE, SELECT → write",
				"grant: change acme_bob on orders: DELETE, SELECT → write",
			},
		},
		{
			name: "database no longer granted",
			s: scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "read"))},
				server: []*mysqlstate.Account{live("bob", map[string][]string{"orders": readPrivs, "stats": writePrivs})}},
			want: []string{"revoke: revoke write on stats from acme_bob: no longer granted"},
		},
		{
			name: "trusted_admin compares equal to its expansion",
			s: scenario{accounts: []desired.Account{pwAccount("dba", grant("orders", "trusted_admin"))},
				server: []*mysqlstate.Account{live("dba", map[string][]string{"orders": flavor.MariaDB.DatabasePrivileges()})}},
		},
		{
			name: "stray global, table and role grants are revoked",
			s: scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "read"))},
				server: []*mysqlstate.Account{func() *mysqlstate.Account {
					a := live("bob", map[string][]string{"orders": readPrivs})
					a.Global = []string{"PROCESS", "RELOAD"}
					a.Tables = []mysqlstate.TableGrant{{Database: "orders", Table: "t", Privileges: []string{"DELETE"}}}
					a.Roles = []mysqlstate.AccountID{{User: "dev_role"}}
					return a
				}()}},
			want: []string{
				"revoke_role: revoke role 'dev_role'@'' from acme_bob: roles are not managed by dbusers",
				"revoke: revoke global PROCESS, RELOAD from acme_bob: dbusers grants per database only",
				"revoke: revoke DELETE on orders.t from acme_bob: dbusers grants per database only",
			},
		},
		{
			name: "password rotation",
			s: scenario{accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
				server: []*mysqlstate.Account{func() *mysqlstate.Account {
					a := live("app", map[string][]string{"orders": readPrivs})
					a.AuthString = mysqlstate.NativePasswordHash("old")
					return a
				}()}},
			want: []string{"alter_auth: rotate the password of acme_app (secret s/app changed)"},
		},
		{
			name: "MySQL 8 account already on caching_sha2_password with the declared password",
			s: scenario{engine: "rds-mysql-8.0", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
				server: []*mysqlstate.Account{sha2Live("app", "pw-app", map[string][]string{"orders": readPrivs})}},
		},
		{
			name: "MySQL 8 account on caching_sha2_password with another password",
			s: scenario{engine: "rds-mysql-8.0", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
				server: []*mysqlstate.Account{sha2Live("app", "old", map[string][]string{"orders": readPrivs})}},
			want: []string{"alter_auth: change authentication of acme_app: caching_sha2_password → password from s/app"},
		},
		{
			name: "caching_sha2_password is only trusted on MySQL 8",
			s: scenario{engine: "mariadb-10.11", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
				server: []*mysqlstate.Account{sha2Live("app", "pw-app", map[string][]string{"orders": readPrivs})}},
			want: []string{"alter_auth: change authentication of acme_app: caching_sha2_password → password from s/app"},
		},
		{
			name: "iam to password",
			s: scenario{engine: "aurora-mysql-3", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
				server: []*mysqlstate.Account{{ID: id("acme_app"), Plugin: IAMPlugin, AuthString: IAMAuthString, RequireSSL: true,
					Databases: map[string][]string{"orders": readPrivs}}}},
			want: []string{"alter_auth: change authentication of acme_app: iam → password from s/app"},
		},
		{
			name: "password account on a TLS cluster must require TLS",
			s: scenario{engine: "aurora-mysql-3", tls: "verify-identity", accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
				server: []*mysqlstate.Account{live("app", map[string][]string{"orders": readPrivs})}},
			want: []string{"alter_auth: require TLS for acme_app (REQUIRE SSL)"},
		},
		{
			name: "iam account matches",
			s: scenario{engine: "aurora-mysql-3", accounts: []desired.Account{iamAccount("ann", grant("orders", "read"))},
				server: []*mysqlstate.Account{{ID: id("acme_ann"), Plugin: IAMPlugin, AuthString: IAMAuthString, RequireSSL: true,
					Databases: map[string][]string{"orders": readPrivs}}}},
		},
		{
			name: "iam account without REQUIRE SSL is fixed",
			s: scenario{engine: "aurora-mysql-3", accounts: []desired.Account{iamAccount("ann", grant("orders", "read"))},
				server: []*mysqlstate.Account{{ID: id("acme_ann"), Plugin: IAMPlugin, AuthString: IAMAuthString,
					Databases: map[string][]string{"orders": readPrivs}}}},
			want: []string{"alter_auth: require TLS for acme_ann (REQUIRE SSL)"},
		},
		{
			name: "drop an undeclared managed account and another host",
			s: scenario{
				accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
				server: []*mysqlstate.Account{live("app", map[string][]string{"orders": readPrivs}), live("gone", nil),
					{ID: mysqlstate.AccountID{User: "acme_app", Host: "10.0.0.1"}}},
			},
			want: []string{
				"drop_user: drop 'acme_app'@'10.0.0.1': dbusers manages acme_app only at '%'",
				"drop_user: drop acme_gone: no user file declares gone",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.s.diff()
			if diff := cmp.Diff(tc.want, summaries(p)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if p.LimitTripped != "" || len(p.Skipped) > 0 {
				t.Errorf("unexpected limit %q / skips %v", p.LimitTripped, p.Skipped)
			}
		})
	}
}

func TestDiffRevokesExactlyTheUnwantedPrivileges(t *testing.T) {
	p := scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "read"))},
		server: []*mysqlstate.Account{live("bob", map[string][]string{"orders": writePrivs})}}.diff()
	if len(p.Changes) != 1 {
		t.Fatalf("changes = %v", summaries(p))
	}
	c := p.Changes[0]
	if op, ok := c.Op.(RevokeDatabase); !ok || op.Pattern != "orders" || !cmp.Equal(op.Privileges, []string{"INSERT", "UPDATE"}) {
		t.Errorf("change = %+v, want a revoke of INSERT, UPDATE on orders", c)
	}
}

func TestDiffNeverTouchesForeignOrProtectedAccounts(t *testing.T) {
	foreign := []*mysqlstate.Account{
		{ID: id("acmex_bob")}, {ID: id("ACME_bob")}, {ID: id("acme")}, {ID: id("other_user")}, {ID: id("acmeXbob")},
		{ID: id("root")}, {ID: id("rdsadmin")}, {ID: id("mysql.sys")},
	}
	protected := []*mysqlstate.Account{
		live("breakglass", map[string][]string{"orders": writePrivs}),
		{ID: id("acme_admin"), Global: []string{"CREATE USER"}}, // the session's own account, below
		{ID: id("acme_rdsadmin")},
	}
	s := scenario{server: append(foreign, protected...), protect: []string{"acme_breakglass", "acme_rdsadmin"},
		accounts: []desired.Account{pwAccount("breakglass", grant("orders", "read"))}}
	eng, _ := flavor.LookupEngine("mariadb-10.11")
	srv := &mysqlstate.Server{Flavor: eng.Flavor, CurrentUser: id("acme_admin"), Accounts: map[mysqlstate.AccountID]*mysqlstate.Account{}}
	for _, a := range s.server {
		srv.Accounts[a.ID] = a
	}
	p := Diff(Input{Cluster: desired.Cluster{Name: "c1", Engine: eng, Accounts: s.accounts},
		Server: srv, Prefix: "acme", Protected: s.protect, Limit: desired.RemovalLimit{Count: 100}, Roles: roles,
		Passwords: map[string]string{"s/breakglass": "pw-breakglass"}})
	if len(p.Changes) != 0 || len(p.Held) != 0 {
		t.Fatalf("plan touches foreign or protected accounts: %v held %v", summaries(p), p.Held)
	}
	if len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0].Reason, "protected in dbusers.json") {
		t.Errorf("declared protected user not reported as skipped: %+v", p.Skipped)
	}
}

func TestDiffRemovalLimit(t *testing.T) {
	server := []*mysqlstate.Account{live("keep", map[string][]string{"orders": readPrivs})}
	for _, u := range []string{"d1", "d2", "d3", "d4"} {
		server = append(server, live(u, nil))
	}
	accounts := []desired.Account{pwAccount("keep", grant("orders", "write"))}
	for _, tc := range []struct {
		name  string
		limit desired.RemovalLimit
		trips bool
	}{
		{"count allows", desired.RemovalLimit{Count: 4}, false},
		{"count trips", desired.RemovalLimit{Count: 3}, true},
		{"fraction allows", desired.RemovalLimit{Count: 0, Fraction: 0.8}, false}, // 0.8 × 5 managed = 4
		{"fraction trips", desired.RemovalLimit{Count: 1, Fraction: 0.6}, true},   // max(1, 3) < 4
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := scenario{accounts: accounts, server: server, limit: tc.limit}.diff()
			drops := 0
			for _, c := range p.Changes {
				if c.Action() == DropUser {
					drops++
				}
			}
			if tc.trips {
				if drops != 0 || len(p.Held) != 4 || !strings.Contains(p.LimitTripped, "4 of 5 managed accounts") {
					t.Errorf("drops %d, held %d, reason %q; want the limit to hold all 4", drops, len(p.Held), p.LimitTripped)
				}
			} else if drops != 4 || len(p.Held) != 0 || p.LimitTripped != "" {
				t.Errorf("drops %d, held %d, reason %q; want 4 drops", drops, len(p.Held), p.LimitTripped)
			}
			// The elevation applies either way.
			if p.Changes[0].Action() != Grant {
				t.Errorf("first change = %s, want the grant to go ahead", p.Changes[0].Summary)
			}
		})
	}
}

func TestDiffSkipsPasswordUserWithoutSecret(t *testing.T) {
	p := scenario{noSecret: true,
		accounts: []desired.Account{pwAccount("new", grant("orders", "read")), pwAccount("old", grant("orders", "read"))},
		server:   []*mysqlstate.Account{live("old", map[string][]string{"orders": writePrivs})}}.diff()
	if len(p.Changes) != 0 {
		t.Errorf("changes for users without a secret: %v", summaries(p))
	}
	if len(p.Skipped) != 2 || !strings.Contains(p.Skipped[0].Reason, "secret s/new is missing") {
		t.Errorf("skipped = %+v", p.Skipped)
	}
}

func TestDiffLockedAccountIsLeftLocked(t *testing.T) {
	a := live("bob", map[string][]string{"orders": readPrivs})
	a.Locked = true
	p := scenario{accounts: []desired.Account{pwAccount("bob", grant("orders", "read"))}, server: []*mysqlstate.Account{a}}.diff()
	if len(p.Changes) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "locked") {
		t.Errorf("changes %v notes %v; want only a note", summaries(p), p.Notes)
	}
}

func TestDiffEscapesWildcardDatabaseNames(t *testing.T) {
	// On MariaDB, GRANT on app_db is a pattern; dbusers grants on app\_db,
	// and a hand-made grant on the pattern app_db is revoked as such.
	p := scenario{accounts: []desired.Account{pwAccount("bob", grant("app_db", "read"))},
		server: []*mysqlstate.Account{live("bob", map[string][]string{"app_db": readPrivs})}}.diff()
	got := map[Action]string{}
	for _, c := range p.Changes {
		switch op := c.Op.(type) {
		case GrantDatabase:
			got[c.Action()] = op.Pattern
		case RevokeDatabase:
			got[c.Action()] = op.Pattern
		}
	}
	if got[Grant] != `app\_db` || got[Revoke] != "app_db" {
		t.Errorf("patterns = %v; want grant on app\\_db and revoke of the wildcard app_db", got)
	}
	// With partial_revokes (Aurora 3) names are literal.
	p = scenario{engine: "aurora-mysql-3", accounts: []desired.Account{pwAccount("bob", grant("app_db", "read"))},
		server: []*mysqlstate.Account{live("bob", map[string][]string{"app_db": readPrivs})}}.diff()
	if len(p.Changes) != 0 {
		t.Errorf("literal names on Aurora 3: %v", summaries(p))
	}
}

func TestDiffEmbeddedServerIgnoresTLSRequirement(t *testing.T) {
	a := live("app", map[string][]string{"orders": readPrivs})
	p := scenario{engine: flavor.EmbeddedEngine, accounts: []desired.Account{pwAccount("app", grant("orders", "read"))},
		server: []*mysqlstate.Account{a}}.diff()
	if len(p.Changes) != 0 {
		t.Errorf("changes = %v", summaries(p))
	}
}

func TestDiffIsDeterministic(t *testing.T) {
	s := scenario{accounts: []desired.Account{pwAccount("a", grant("x", "read")), pwAccount("b", grant("y", "write"))}}
	for _, u := range []string{"z1", "z2", "z3", "z4", "z5"} {
		s.server = append(s.server, live(u, map[string][]string{"x": readPrivs, "y": writePrivs, "w": readPrivs}))
	}
	first := summaries(s.diff())
	for range 20 {
		if diff := cmp.Diff(first, summaries(s.diff())); diff != "" {
			t.Fatalf("plan order changed between runs:\n%s", diff)
		}
	}
}
