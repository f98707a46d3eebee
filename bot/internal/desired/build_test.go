package desired

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/flavor"
)

var today = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fleet is a small valid configuration: a MariaDB dev cluster, an Aurora 3
// and an RDS 8.0 prod cluster, and a role that extends another.
func fleet() *config.Config {
	return &config.Config{
		Settings: config.Settings{
			Prefix: "acme",
			Roles: map[string]config.Role{
				"etl": {Extends: []string{"write"}, Privileges: []string{"delete", "CREATE  TEMPORARY TABLES"}},
			},
			ProtectedAccounts: []string{"acme_breakglass"},
			RemovalLimit:      config.RemovalLimit{Count: 5, Fraction: 0.2},
		},
		Clusters: []config.Cluster{
			{Name: "dev-maria", Environment: "dev", Engine: "mariadb-10.11", Databases: []string{"orders", "analytics"},
				Tags: map[string]string{"team": "platform"}},
			{Name: "prod-orders", Environment: "prod", Engine: "aurora-mysql-3", Databases: []string{"orders", "payments"}},
			{Name: "prod-reports", Environment: "prod", Engine: "rds-mysql-8.0", Databases: []string{"reports"}},
		},
		Users: []config.User{
			{Name: "alice", Owner: "alice@acme.example", Kind: "human", Access: []config.Access{
				{Environments: []string{"prod"}, Databases: []string{"*"}, Role: "read"},
			}},
			{Name: "etl_job", Owner: "team-data", Kind: "service",
				Auth: config.UserAuth{Type: "password", Secret: "dbusers/etl_job"},
				Access: []config.Access{
					{Clusters: []string{"dev-maria"}, Databases: []string{"orders"}, Role: "etl"},
				}},
		},
	}
}

func build(t *testing.T, cfg *config.Config, day time.Time) *State {
	t.Helper()
	st, err := Build(cfg, day)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return st
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
		RemovalLimit: config.RemovalLimit{Count: 5, Fraction: 0.2},
		Date:         "2026-03-01",
		Roles: map[string][]string{
			"read":          {"SELECT"},
			"write":         {"INSERT", "SELECT", "UPDATE"},
			"etl":           {"CREATE TEMPORARY TABLES", "DELETE", "INSERT", "SELECT", "UPDATE"},
			"admin":         config.Settings{}.EffectiveRoles()["admin"].Privileges,
			"trusted_admin": {"ALL PRIVILEGES"},
		},
		Clusters: []Cluster{
			{Cluster: cfg.Clusters[0], Flavor: flavor.MariaDB, Accounts: []Account{{
				Name: "acme_etl_job", User: "etl_job", Owner: "team-data", Kind: "service",
				Auth: Auth{Method: "password", Secret: "dbusers/etl_job"},
				Grants: []Grant{{Database: "orders",
					Privileges: []string{"CREATE TEMPORARY TABLES", "DELETE", "INSERT", "SELECT", "UPDATE"},
					Roles:      []string{"etl"}}},
			}}},
			{Cluster: cfg.Clusters[1], Flavor: flavor.MySQL80, Accounts: []Account{alice(read...)}},
			{Cluster: cfg.Clusters[2], Flavor: flavor.MySQL80, Accounts: []Account{alice(
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
	cfg.Users = []config.User{{Name: "root_ish", Kind: "service", Auth: config.UserAuth{Type: "password", Secret: "s"},
		Access: []config.Access{{Clusters: []string{"dev-maria", "prod-orders"}, Databases: []string{"orders"}, Role: "trusted_admin"}}}}
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
		if !c.Flavor.IsAll(g.Privileges) {
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
	cfg.Users = []config.User{{Name: "bob", Kind: "human", Access: []config.Access{
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
	entry := func(expires string) config.Access {
		return config.Access{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read", Expires: expires}
	}
	tests := []struct {
		name    string
		day     time.Time
		entries []config.Access
		grant   bool   // whether bob holds a grant at all
		expires string // Grant.Expires
	}{
		{"expires today still grants", today, []config.Access{entry("2026-03-01")}, true, "2026-03-01"},
		{"expired yesterday grants nothing", today, []config.Access{entry("2026-02-28")}, false, ""},
		{"never expires", today, []config.Access{entry("")}, true, ""},
		{"latest expiry wins", today, []config.Access{entry("2026-04-01"), entry("2026-12-31"), entry("2026-05-01")}, true, "2026-12-31"},
		{"one entry without expiry makes it permanent", today, []config.Access{entry("2026-04-01"), entry("")}, true, ""},
		{"expired entries do not count", today, []config.Access{entry("2026-01-01"), entry("2026-04-01")}, true, "2026-04-01"},
		{"an expired permanent entry is not possible, an expired one is ignored", today,
			[]config.Access{entry("2026-02-01"), entry("2026-03-01")}, true, "2026-03-01"},
		// The day is judged in UTC: 23:30 in New York on 1 March is already
		// 2 March.
		{"the day is UTC", time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("EST", -5*3600)),
			[]config.Access{entry("2026-03-01")}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fleet()
			cfg.Users = []config.User{{Name: "bob", Kind: "human", Access: tt.entries}}
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
		config.User{Name: "zed", Kind: "human", Access: []config.Access{{Environments: []string{"prod", "dev"}, Databases: []string{"*"}, Role: "read"}}},
		config.User{Name: "amy", Kind: "human", Access: []config.Access{
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

	cfg.Settings.ProtectedAccounts[0] = "changed"
	cfg.Settings.Roles["etl"].Privileges[0] = "DROP"
	cfg.Settings.Roles["etl"].Extends[0] = "admin"
	cfg.Clusters[0].Databases[0] = "changed"
	cfg.Clusters[0].Tags["team"] = "changed"
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
	st.Clusters[0].Tags["team"] = "changed"
	st.Roles["read"][0] = "changed"
	st.Clusters[1].Accounts[0].Grants[0].Privileges[0] = "changed"
	if diff := cmp.Diff(fleet(), cfg); diff != "" {
		t.Errorf("changing the state changed the configuration (-want +got):\n%s", diff)
	}
	if got := config.BuiltinRoles()["read"].Privileges; !slices.Equal(got, []string{"SELECT"}) {
		t.Errorf("changing the state changed the built-in roles: %v", got)
	}
}

// TestBuildRefuses: Build refuses what validation rejects rather than guess.
func TestBuildRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"empty prefix", func(c *config.Config) { c.Settings.Prefix = "" }, "settings: prefix is empty"},
		{"role problem", func(c *config.Config) { c.Settings.Roles["etl"] = config.Role{Extends: []string{"nope"}} },
			`role templates: role etl extends unknown role "nope"`},
		{"unknown engine", func(c *config.Config) { c.Clusters[1].Engine = "oracle" }, `cluster prod-orders: unknown engine "oracle"`},
		{"unknown role", func(c *config.Config) { c.Users[0].Access[0].Role = "reader" }, `user alice: access[0]: unknown role "reader"`},
		{"unknown cluster", func(c *config.Config) { c.Users[1].Access[0].Clusters[0] = "nope" }, `user etl_job: access[0]: unknown cluster "nope"`},
		{"unknown environment", func(c *config.Config) { c.Users[0].Access[0].Environments[0] = "stage" },
			`user alice: access[0]: unknown environment "stage"`},
		{"database not managed", func(c *config.Config) { c.Users[1].Access[0].Databases[0] = "payments" },
			`user etl_job: access[0]: database "payments" is not managed by cluster dev-maria`},
		{"privilege the flavor lacks", func(c *config.Config) {
			c.Settings.Roles["historian"] = config.Role{Privileges: []string{"DELETE HISTORY"}}
			c.Users[0].Access[0].Role = "historian"
		}, "user alice: access[0]: cluster prod-orders: role historian: privilege DELETE HISTORY does not exist at database level on mysql-8.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fleet()
			tt.edit(cfg)
			st, err := Build(cfg, today)
			if err == nil {
				t.Fatalf("Build succeeded: %+v", st)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
	// An expired entry is not looked at: an unknown role there is harmless.
	cfg := fleet()
	cfg.Users[0].Access[0].Role = "gone"
	cfg.Users[0].Access[0].Expires = "2026-01-01"
	if _, err := Build(cfg, today); err != nil {
		t.Errorf("an expired entry with an unknown role fails Build: %v", err)
	}
}
