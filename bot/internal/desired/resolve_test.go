package desired

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

var today = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fleet is a small valid configuration: a MariaDB dev cluster, an Aurora 3
// and an RDS 8.0 prod cluster, and a role that extends another.
func fleet() *Declarations {
	return &Declarations{
		Prefix: "acme",
		Roles: map[string]RoleTemplate{
			"etl": {Extends: []string{"write"}, Privileges: []string{"delete", "CREATE  TEMPORARY TABLES"}},
		},
		Protected:    []string{"acme_breakglass"},
		RemovalLimit: RemovalLimit{Count: 5, Fraction: 0.2},
		Clusters: []ClusterDecl{
			{Name: "dev-maria", Environment: "dev", Engine: "mariadb-10.11", TLS: "disabled", Databases: []string{"orders", "analytics"}},
			{Name: "prod-orders", Environment: "prod", Engine: "aurora-mysql-3", Databases: []string{"orders", "payments"}},
			{Name: "prod-reports", Environment: "prod", Engine: "rds-mysql-8.0", Databases: []string{"reports"}},
		},
		Users: []UserDecl{
			{Name: "alice", Owner: "alice@acme.example", Kind: "human", Access: []AccessDecl{
				{Environments: []string{"prod"}, Databases: []string{"*"}, Role: "read"},
			}},
			{Name: "etl_job", Owner: "team-data", Kind: "service",
				Auth: Auth{Method: "password", Secret: "dbusers/etl_job"},
				Access: []AccessDecl{
					{Clusters: []string{"dev-maria"}, Databases: []string{"orders"}, Role: "etl"},
				}},
		},
	}
}

func build(t *testing.T, d *Declarations, day time.Time) *State {
	t.Helper()
	st, problems := Resolve(*d, day)
	if err := problems.Err(); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return st
}

func engine(t *testing.T, name string) flavor.Engine {
	t.Helper()
	e, ok := flavor.LookupEngine(name)
	if !ok {
		t.Fatalf("no engine %s", name)
	}
	return e
}

// TestBuild checks a whole state: extends expanded, "*" expanded to the
// cluster's databases, environments expanded to their clusters, defaults
// applied, and everything sorted.
func TestBuild(t *testing.T) {
	cfg := fleet()
	got := build(t, cfg, today)
	read := []Grant{{Database: "orders", Privileges: []string{"SELECT"}, Roles: []string{"read"}},
		{Database: "payments", Privileges: []string{"SELECT"}, Roles: []string{"read"}}}
	alice := func(grants ...Grant) Account {
		return Account{Name: "acme_alice", User: "alice", Owner: "alice@acme.example", Kind: "human",
			Auth: Auth{Method: "iam"}, Grants: grants}
	}
	want := &State{
		Prefix:       "acme",
		Protected:    []string{"acme_breakglass"},
		RemovalLimit: RemovalLimit{Count: 5, Fraction: 0.2},
		Users:        map[string]bool{"alice": true, "etl_job": true},
		Date:         "2026-03-01",
		Roles: map[string][]string{
			"read":          {"SELECT"},
			"write":         {"INSERT", "SELECT", "UPDATE"},
			"etl":           {"CREATE TEMPORARY TABLES", "DELETE", "INSERT", "SELECT", "UPDATE"},
			"admin":         BuiltinRoles()["admin"].Privileges,
			"trusted_admin": {"ALL PRIVILEGES"},
		},
		Clusters: []Cluster{
			{Name: "dev-maria", Environment: "dev", Engine: engine(t, "mariadb-10.11"), TLS: "disabled",
				Databases: []string{"orders", "analytics"}, Accounts: []Account{{
					Name: "acme_etl_job", User: "etl_job", Owner: "team-data", Kind: "service",
					Auth: Auth{Method: "password", Secret: "dbusers/etl_job"},
					Grants: []Grant{{Database: "orders",
						Privileges: []string{"CREATE TEMPORARY TABLES", "DELETE", "INSERT", "SELECT", "UPDATE"},
						Roles:      []string{"etl"}}},
				}}},
			{Name: "prod-orders", Environment: "prod", Engine: engine(t, "aurora-mysql-3"), Databases: []string{"orders", "payments"},
				Accounts: []Account{alice(read...)}},
			{Name: "prod-reports", Environment: "prod", Engine: engine(t, "rds-mysql-8.0"), Databases: []string{"reports"}, Accounts: []Account{alice(
				Grant{Database: "reports", Privileges: []string{"SELECT"}, Roles: []string{"read"}})}},
		},
	}
	slices.Sort(want.Roles["admin"])
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Build (-want +got):\n%s", diff)
	}
	if c, ok := got.Find("prod-orders"); !ok || c != &got.Clusters[1] {
		t.Errorf("Find(prod-orders) = %p, %v; want %p", c, ok, &got.Clusters[1])
	}
	if _, ok := got.Find("nope"); ok {
		t.Error("Find(nope) found a cluster")
	}
}

// TestBuildAllPrivileges: ALL PRIVILEGES is expanded per flavor. MariaDB
// has DELETE HISTORY; MySQL does not.
func TestBuildAllPrivileges(t *testing.T) {
	cfg := fleet()
	cfg.Users = []UserDecl{{Name: "root_ish", Kind: "service", Auth: Auth{Method: "password", Secret: "s"},
		Access: []AccessDecl{{Clusters: []string{"dev-maria", "prod-orders"}, Databases: []string{"orders"}, Role: "trusted_admin"}}}}
	st := build(t, cfg, today)
	common := []string{"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
		"DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES", "SELECT",
		"SHOW VIEW", "TRIGGER", "UPDATE"}
	maria := append(slices.Clone(common), "DELETE HISTORY")
	slices.Sort(maria)
	for name, want := range map[string][]string{"dev-maria": maria, "prod-orders": common} {
		c, _ := st.Find(name)
		if len(c.Accounts) != 1 || len(c.Accounts[0].Grants) != 1 {
			t.Fatalf("%s: accounts %+v", name, c.Accounts)
		}
		g := c.Accounts[0].Grants[0]
		if diff := cmp.Diff(want, g.Privileges); diff != "" {
			t.Errorf("%s: ALL PRIVILEGES (-want +got):\n%s", name, diff)
		}
		if !c.Flavor().IsAll(g.Privileges) {
			t.Errorf("%s: the expansion is not what the flavor calls all", name)
		}
		if diff := cmp.Diff([]string{"trusted_admin"}, g.Roles); diff != "" {
			t.Errorf("%s: roles (-want +got):\n%s", name, diff)
		}
	}
}

// TestBuildUnion: two entries on the same database of the same cluster
// make one grant with both roles and the union of their privileges.
func TestBuildUnion(t *testing.T) {
	cfg := fleet()
	cfg.Users = []UserDecl{{Name: "bob", Kind: "human", Access: []AccessDecl{
		{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "write"},
		{Environments: []string{"prod"}, Databases: []string{"*"}, Role: "read"},
		{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "etl", Expires: "2026-06-30"},
	}}}
	st := build(t, cfg, today)
	c, _ := st.Find("prod-orders")
	want := []Grant{
		{Database: "orders", Privileges: []string{"CREATE TEMPORARY TABLES", "DELETE", "INSERT", "SELECT", "UPDATE"},
			Roles: []string{"etl", "read", "write"}},
		{Database: "payments", Privileges: []string{"SELECT"}, Roles: []string{"read"}},
	}
	if diff := cmp.Diff(want, c.Accounts[0].Grants); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
}

func TestBuildExpiry(t *testing.T) {
	entry := func(expires string) AccessDecl {
		return AccessDecl{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read", Expires: expires}
	}
	tests := []struct {
		name    string
		day     time.Time
		entries []AccessDecl
		grant   bool   // whether bob holds a grant at all
		expires string // Grant.Expires
	}{
		{"expires today still grants", today, []AccessDecl{entry("2026-03-01")}, true, "2026-03-01"},
		{"expired yesterday grants nothing", today, []AccessDecl{entry("2026-02-28")}, false, ""},
		{"never expires", today, []AccessDecl{entry("")}, true, ""},
		{"latest expiry wins", today, []AccessDecl{entry("2026-04-01"), entry("2026-12-31"), entry("2026-05-01")}, true, "2026-12-31"},
		{"one entry without expiry makes it permanent", today, []AccessDecl{entry("2026-04-01"), entry("")}, true, ""},
		{"expired entries do not count", today, []AccessDecl{entry("2026-01-01"), entry("2026-04-01")}, true, "2026-04-01"},
		{"an expired permanent entry is not possible, an expired one is ignored", today,
			[]AccessDecl{entry("2026-02-01"), entry("2026-03-01")}, true, "2026-03-01"},
		// The day is judged in UTC: 23:30 in New York on 1 March is already
		// 2 March.
		{"the day is UTC", time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("EST", -5*3600)),
			[]AccessDecl{entry("2026-03-01")}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fleet()
			cfg.Users = []UserDecl{{Name: "bob", Kind: "human", Access: tt.entries}}
			st := build(t, cfg, tt.day)
			c, _ := st.Find("prod-orders")
			if !tt.grant {
				if len(c.Accounts) != 0 {
					t.Fatalf("expired access still grants: %+v", c.Accounts)
				}
				return
			}
			if len(c.Accounts) != 1 || len(c.Accounts[0].Grants) != 1 {
				t.Fatalf("accounts = %+v, want one grant", c.Accounts)
			}
			if got := c.Accounts[0].Grants[0].Expires; got != tt.expires {
				t.Errorf("Expires = %q, want %q", got, tt.expires)
			}
		})
	}
}

// TestBuildDeterministic: the order of the declarations does not change
// the state.
func TestBuildDeterministic(t *testing.T) {
	cfg := fleet()
	cfg.Users = append(cfg.Users,
		UserDecl{Name: "zed", Kind: "human", Auth: Auth{Method: "password", Secret: "z"}, Access: []AccessDecl{{Environments: []string{"prod", "dev"}, Databases: []string{"*"}, Role: "read"}}},
		UserDecl{Name: "amy", Kind: "human", Auth: Auth{Method: "password", Secret: "a"}, Access: []AccessDecl{
			{Clusters: []string{"prod-reports", "prod-orders"}, Databases: []string{"*"}, Role: "write"},
			{Clusters: []string{"dev-maria"}, Databases: []string{"orders", "analytics"}, Role: "admin"}}},
	)
	want := build(t, cfg, today)
	for i := range 20 {
		shuffled := fleet()
		shuffled.Users = slices.Clone(cfg.Users)
		// Rotate and reverse to try different orders deterministically.
		rot := i % len(shuffled.Users)
		shuffled.Users = append(shuffled.Users[rot:], shuffled.Users[:rot]...)
		if i%2 == 1 {
			slices.Reverse(shuffled.Users)
			slices.Reverse(shuffled.Clusters)
		}
		if diff := cmp.Diff(want, build(t, shuffled, today)); diff != "" {
			t.Fatalf("order %d changes the state (-first +this):\n%s", i, diff)
		}
	}
	var names []string
	for _, c := range want.Clusters {
		names = append(names, c.Name)
		if !slices.IsSortedFunc(c.Accounts, func(a, b Account) int { return cmpString(a.Name, b.Name) }) {
			t.Errorf("%s: accounts not sorted", c.Name)
		}
		for _, a := range c.Accounts {
			if !slices.IsSortedFunc(a.Grants, func(x, y Grant) int { return cmpString(x.Database, y.Database) }) {
				t.Errorf("%s/%s: grants not sorted", c.Name, a.Name)
			}
			for _, g := range a.Grants {
				if !slices.IsSorted(g.Privileges) || !slices.IsSorted(g.Roles) {
					t.Errorf("%s/%s/%s: privileges or roles not sorted", c.Name, a.Name, g.Database)
				}
			}
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("clusters not sorted: %v", names)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestBuildSharesNothing: changing the configuration after Build leaves
// the state alone, and changing the state leaves the configuration alone.
func TestBuildSharesNothing(t *testing.T) {
	cfg := fleet()
	st := build(t, cfg, today)
	want := build(t, fleet(), today)

	cfg.Protected[0] = "changed"
	cfg.Roles["etl"].Privileges[0] = "DROP"
	cfg.Roles["etl"].Extends[0] = "admin"
	cfg.Clusters[0].Databases[0] = "changed"
	cfg.Clusters[0].Name = "changed"
	cfg.Users[0].Access[0].Databases[0] = "changed"
	cfg.Users[0].Access[0].Environments[0] = "changed"
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("changing the configuration changed the state (-want +got):\n%s", diff)
	}

	cfg = fleet()
	st = build(t, cfg, today)
	st.Protected[0] = "changed"
	st.Clusters[0].Databases[0] = "changed"
	st.Roles["read"][0] = "changed"
	st.Clusters[1].Accounts[0].Grants[0].Privileges[0] = "changed"
	if diff := cmp.Diff(fleet(), cfg); diff != "" {
		t.Errorf("changing the state changed the configuration (-want +got):\n%s", diff)
	}
	if got := BuiltinRoles()["read"].Privileges; !slices.Equal(got, []string{"SELECT"}) {
		t.Errorf("changing the state changed the built-in roles: %v", got)
	}
}

// TestResolveProblems: Resolve reports every problem with the declaration
// and the path of the value it concerns, in the words validate prints.
func TestResolveProblems(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Declarations)
		want []Problem
	}{
		{"empty prefix", func(d *Declarations) { d.Prefix = "" },
			[]Problem{{Error, InSettings, "", []string{"prefix"}, "prefix is empty"}}},
		{"role problem", func(d *Declarations) { d.Roles["etl"] = RoleTemplate{Extends: []string{"nope"}} },
			[]Problem{{Error, InSettings, "", []string{"roles", "etl"}, `role etl extends unknown role "nope"`}}},
		{"unknown engine", func(d *Declarations) { d.Clusters[1].Engine = "oracle" },
			[]Problem{
				{Error, InCluster, "prod-orders", []string{"engine"}, `unknown engine "oracle" (want one of ` + strings.Join(flavor.Engines(), ", ") + ")"},
			}},
		{"unknown role", func(d *Declarations) { d.Users[0].Access[0].Role = "reader" },
			[]Problem{{Error, InUser, "alice", []string{"access", "0", "role"}, `unknown role "reader" (known: admin, etl, read, trusted_admin, write)`}}},
		{"unknown cluster", func(d *Declarations) { d.Users[1].Access[0].Clusters[0] = "nope" },
			[]Problem{{Error, InUser, "etl_job", []string{"access", "0", "clusters", "0"}, `unknown cluster "nope" (known: dev-maria, prod-orders, prod-reports)`}}},
		{"unknown environment", func(d *Declarations) { d.Users[0].Access[0].Environments[0] = "stage" },
			[]Problem{{Error, InUser, "alice", []string{"access", "0", "environments", "0"}, `unknown environment "stage" (known: dev, prod)`}}},
		{"database not managed", func(d *Declarations) { d.Users[1].Access[0].Databases[0] = "payments" },
			[]Problem{{Error, InUser, "etl_job", []string{"access", "0", "databases", "0"}, `database "payments" is not managed by cluster dev-maria (it manages: orders, analytics)`}}},
		{"privilege the flavor lacks", func(d *Declarations) {
			d.Roles["historian"] = RoleTemplate{Privileges: []string{"DELETE HISTORY"}}
			d.Users[0].Access[0].Role = "historian"
		}, []Problem{
			{Error, InUser, "alice", []string{"access", "0", "role"}, "role historian grants DELETE HISTORY, which aurora-mysql-3 (cluster prod-orders) does not have"},
			{Error, InUser, "alice", []string{"access", "0", "role"}, "role historian grants DELETE HISTORY, which rds-mysql-8.0 (cluster prod-reports) does not have"},
		}},
		{"iam on a server without IAM", func(d *Declarations) {
			d.Users[0].Access[0] = AccessDecl{Clusters: []string{"dev-maria"}, Databases: []string{"*"}, Role: "read"}
		},
			[]Problem{{Error, InUser, "alice", []string{"access", "0", "clusters", "0"},
				"user alice uses iam authentication, but cluster dev-maria runs mariadb-10.11, which has no IAM authentication; use password authentication"}}},
		{"password without a secret", func(d *Declarations) { d.Users[1].Auth.Secret = "" },
			[]Problem{{Error, InUser, "etl_job", []string{"auth"}, "password authentication needs auth.secret, the Secrets Manager secret that holds the password"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fleet()
			tt.edit(d)
			_, problems := Resolve(*d, today)
			if diff := cmp.Diff(tt.want, []Problem(problems.Errors())); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if problems.Err() == nil {
				t.Error("Err() is nil although there are errors")
			}
		})
	}
	if _, problems := Resolve(*fleet(), today); len(problems) != 0 {
		t.Errorf("a valid fleet has problems: %v", problems)
	}
}

// TestResolveSkipsExpiredEntries: an expired entry grants nothing and is
// only warned about; an unknown role in it is still an error, as validate
// has always said.
func TestResolveSkipsExpiredEntries(t *testing.T) {
	d := fleet()
	d.Users[0].Access[0].Expires = "2026-01-01"
	st, problems := Resolve(*d, today)
	if err := problems.Err(); err != nil {
		t.Fatalf("an expired entry is an error: %v", err)
	}
	c, _ := st.Find("prod-orders")
	if len(c.Accounts) != 0 {
		t.Errorf("an expired entry grants: %+v", c.Accounts)
	}
	want := []string{"access expired on 2026-01-01: it grants nothing and will be revoked; remove the entry",
		"user alice has no access left after expiry: its accounts will be dropped from every cluster"}
	var got []string
	for _, p := range problems {
		got = append(got, p.Message)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	d.Users[0].Access[0].Role = "gone"
	if _, problems := Resolve(*d, today); problems.Err() == nil {
		t.Error("an unknown role in an expired entry is not an error")
	}
}

func TestPrefix(t *testing.T) {
	p := Prefix("acme")
	if got := p.Account("bob"); got != "acme_bob" {
		t.Errorf("Account = %q", got)
	}
	for name, owned := range map[string]bool{"acme_bob": true, "acme_": true, "acme": false, "Acme_bob": false, "acmebob": false, "xacme_bob": false} {
		if p.Owns(name) != owned {
			t.Errorf("Owns(%q) = %v, want %v", name, !owned, owned)
		}
	}
	if p.User("acme_bob") != "bob" || p.User("other_bob") != "" {
		t.Errorf("User: %q, %q", p.User("acme_bob"), p.User("other_bob"))
	}
	if Prefix("").Owns("_x") {
		t.Error("an empty prefix owns an account")
	}
}

// TestSystemAccount: the server's own accounts, which no run touches and
// no user file may declare, and nothing else.
func TestSystemAccount(t *testing.T) {
	for _, name := range append(slices.Clone(SystemAccounts), "mysql.sys", "mysql.session", "mysql.infoschema") {
		if !SystemAccount(name) {
			t.Errorf("SystemAccount(%q) = false", name)
		}
	}
	for _, name := range []string{"acme_root", "acme_rdsadmin", "rootx", "mysqlx", "acme_mysql.sys", "acme_mysql"} {
		if SystemAccount(name) {
			t.Errorf("SystemAccount(%q) = true", name)
		}
	}
}
