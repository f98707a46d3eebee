package review

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
)

// ruleCase is the smallest pull request that triggers one rule: base is
// fleet() with baseEdit applied (for what must already be merged, such as
// a role nobody holds yet), head is base with edit applied.
type ruleCase struct {
	kind     string
	baseEdit func(t testing.TB, b *config.Config)
	edit     func(t testing.TB, h *config.Config)
	// want are the codes of every risk, in order; nil means []string{kind}.
	want []string
	// says are pieces of text the rule's risk must carry: what moved,
	// before and after.
	says []string
}

// pullRequest compares fleet() with baseEdit applied (nil: none) against
// that base with edit applied.
func pullRequest(t testing.TB, baseEdit, edit func(testing.TB, *config.Config)) *Review {
	t.Helper()
	base := fleet()
	if baseEdit != nil {
		baseEdit(t, base)
	}
	head := clone(t, base)
	edit(t, head)
	return compare(t, base, head)
}

// withRole adds a role template to dbusers.json.
func withRole(name string, r config.Role) func(testing.TB, *config.Config) {
	return func(_ testing.TB, c *config.Config) {
		if c.Settings.Roles == nil {
			c.Settings.Roles = map[string]config.Role{}
		}
		c.Settings.Roles[name] = r
	}
}

// aliceOnProd gives alice role on prod-orders/orders, where she reads.
func aliceOnProd(role string) func(testing.TB, *config.Config) {
	return func(t testing.TB, h *config.Config) { user(t, h, "alice").Access[1].Role = role }
}

func ruleCases() []ruleCase {
	return []ruleCase{
		// ops is trusted_admin in all but name.
		{kind: "all_privileges", baseEdit: withRole("ops", config.Role{Privileges: []string{"ALL PRIVILEGES"}}),
			edit: aliceOnProd("ops"),
			says: []string{"every privilege (ALL PRIVILEGES) for alice on prod-orders/orders (role ops)"}},
		// Every privilege of admin, plus DROP: all but LOCK TABLES.
		{kind: "production_drop", baseEdit: withRole("ops", config.Role{Extends: []string{"admin"}, Privileges: []string{"DROP"}}),
			edit: aliceOnProd("ops"),
			says: []string{"DROP on production for alice on prod-orders/orders (role ops)"}},
		{kind: "production_admin", edit: aliceOnProd("admin"),
			says: []string{"ALTER and CREATE ROUTINE on production for alice on prod-orders/orders (role admin)"}},
		{kind: "expiry_removed", edit: func(t testing.TB, h *config.Config) { user(t, h, "bob").Access[0].Expires = "" },
			says: []string{"was 2026-06-30"}},
		{kind: "user_removed", edit: func(t testing.TB, h *config.Config) { removeUser(h, "erin") }},
		{kind: "access_removed", edit: func(t testing.TB, h *config.Config) {
			u := user(t, h, "alice")
			u.Access = u.Access[:1]
		}},
		{kind: "authentication", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "orders_api").Auth.Secret = "dbusers/orders_api-v2"
		}, says: []string{"from dbusers/orders_api to dbusers/orders_api-v2"}},
		// orders_api holds write on production: its grant there gains DROP
		// through the template, which the role's risk says once.
		{kind: "role_escalation", edit: withRole("write", config.Role{Extends: []string{"read"}, Privileges: []string{"INSERT", "UPDATE", "DROP"}}),
			says: []string{"role write changed in dbusers.json: +DROP", "now grants DROP to every holder (3 user(s), 1 of them on production)"}},
		{kind: "role_template", edit: withRole("write", config.Role{Extends: []string{"read"}, Privileges: []string{"INSERT", "UPDATE", "DELETE"}}),
			says: []string{"role write changed in dbusers.json: +DELETE"}},
		{kind: "cluster_endpoint", edit: func(t testing.TB, h *config.Config) {
			cluster(t, h, "prod-orders").Endpoint = "prod-orders.attacker.example"
		}, says: []string{"endpoint prod-orders.example:3306 → prod-orders.attacker.example:3306"}},
		{kind: "cluster_account", edit: func(t testing.TB, h *config.Config) {
			cluster(t, h, "prod-orders").AccountID = "999999999999"
		}, says: []string{"account/region 111111111111/eu-west-1 → 999999999999/eu-west-1"}},
		{kind: "cluster_tls", edit: func(t testing.TB, h *config.Config) {
			cluster(t, h, "prod-orders").TLS = "required"
		}, says: []string{"tls verify-identity → required", "no longer checks who answers"}},
		{kind: "cluster_change", edit: func(t testing.TB, h *config.Config) {
			cluster(t, h, "staging-main").Engine = "aurora-mysql-3"
		}, says: []string{"engine rds-mysql-8.0 → aurora-mysql-3"}},
		{kind: "prefix_change", edit: func(_ testing.TB, h *config.Config) { h.Settings.Prefix = "acmecorp" },
			says: []string{`from "acme" to "acmecorp"`}},
		{kind: "removal_limit", edit: func(_ testing.TB, h *config.Config) {
			h.Settings.RemovalLimit = config.RemovalLimit{Count: 100000, Fraction: 1}
		}, says: []string{"from count 5, fraction 0.2 to count 100000, fraction 1"}},
		{kind: "protected_accounts", edit: func(_ testing.TB, h *config.Config) { h.Settings.ProtectedAccounts = nil },
			says: []string{"from acme_breakglass to none", "dbusers now manages acme_breakglass"}},
		{kind: "ssm_parameter", edit: func(_ testing.TB, h *config.Config) { h.Settings.SSM.Parameter = "/dbusers/elsewhere" },
			says: []string{"from /dbusers/config to /dbusers/elsewhere"}},
		{kind: "management_role", edit: func(_ testing.TB, h *config.Config) {
			h.Settings.AWS = config.AWS{ManagementRole: "dbusers-everything", ExternalID: "x1"}
		}, says: []string{"from dbusers-management (no external id) to dbusers-everything (external id x1)"}},
	}
}

// TestRules: each rule's smallest pull request raises exactly that rule's
// risk, with what moved in its text; the comment is in
// testdata/rules/<kind>.md. Every rule has a case.
func TestRules(t *testing.T) {
	covered := map[string]bool{}
	for _, rc := range ruleCases() {
		covered[rc.kind] = true
		t.Run(rc.kind, func(t *testing.T) {
			r := pullRequest(t, rc.baseEdit, rc.edit)
			md := r.Markdown()
			golden(t, filepath.Join("rules", rc.kind+".md"), md)

			want := rc.want
			if want == nil {
				want = []string{rc.kind}
			}
			if diff := cmp.Diff(want, riskKinds(r)); diff != "" {
				t.Errorf("risk kinds (-want +got):\n%s\nrisks: %+v", diff, r.Risks)
			}
			for _, k := range r.Risks {
				if k.Kind == rc.kind {
					for _, s := range rc.says {
						if !strings.Contains(k.Text, s) {
							t.Errorf("risk %q does not say %q", k.Text, s)
						}
					}
				}
			}
		})
	}
	for _, ru := range rules {
		if !covered[ru.kind] {
			t.Errorf("rule %s has no case in ruleCases", ru.kind)
		}
	}
}

// TestRulesCombined: changes that several rules look at are each called
// out once, by the most precise rule.
func TestRulesCombined(t *testing.T) {
	for _, tc := range []struct {
		name     string
		baseEdit func(t testing.TB, b *config.Config)
		edit     func(t testing.TB, h *config.Config)
		want     []string // "kind: text" of every risk, in order
	}{
		{
			// The pull request of issue 16: the rails go, and nothing about
			// it may hide under "Configuration changes".
			name: "weakened_rails",
			edit: func(_ testing.TB, h *config.Config) {
				h.Settings.RemovalLimit = config.RemovalLimit{Count: 100000, Fraction: 1}
				h.Settings.ProtectedAccounts = nil
			},
			want: []string{
				"removal_limit: removal limit loosened from count 5, fraction 0.2 to count 100000, fraction 1: one run may drop more managed accounts per cluster before the limit holds the drops back",
				"protected_accounts: protected accounts shrink from acme_breakglass to none: dbusers now manages acme_breakglass, and drops it from every cluster unless a user file declares it",
			},
		},
		{
			// Endpoint and tls have rules of their own; cluster_change says
			// only what is left (the engine).
			name: "cluster_moved",
			edit: func(t testing.TB, h *config.Config) {
				c := cluster(t, h, "prod-orders")
				c.Endpoint, c.TLS, c.Engine = "db.attacker.example", "disabled", "rds-mysql-8.0"
			},
			want: []string{
				"cluster_endpoint: cluster prod-orders: endpoint prod-orders.example:3306 → db.attacker.example:3306: dbusers will log in there with the cluster's admin secret and keep the cluster's accounts on whatever server answers; affects every user of the cluster (4 user(s))",
				"cluster_tls: cluster prod-orders: tls verify-identity → disabled: the admin login and every statement cross the network unencrypted; affects every user of the cluster (4 user(s))",
				"cluster_change: cluster prod-orders changed: engine aurora-mysql-3 → rds-mysql-8.0: affects every user of the cluster (4 user(s))",
			},
		},
		{
			// The live plan's login is part of how a cluster is reached.
			name: "plan_secret_set",
			edit: func(t testing.TB, h *config.Config) {
				cluster(t, h, "staging-main").PlanSecret = "dbusers/staging-main/plan"
			},
			want: []string{
				"cluster_change: cluster staging-main changed: plan secret set: affects every user of the cluster (4 user(s))",
			},
		},
		{
			// A stronger tls mode is no weakening: only cluster_change.
			name:     "tls_stronger",
			baseEdit: func(t testing.TB, b *config.Config) { cluster(t, b, "staging-main").TLS = "required" },
			edit:     func(t testing.TB, h *config.Config) { cluster(t, h, "staging-main").TLS = "verify-ca" },
			want: []string{
				"cluster_change: cluster staging-main changed: tls required → verify-ca: affects every user of the cluster (4 user(s))",
			},
		},
		{
			// Every privilege includes DROP, ALTER and CREATE ROUTINE: the
			// line is flagged once, for the strongest.
			name: "all_privileges_on_production_once",
			edit: aliceOnProd("trusted_admin"),
			want: []string{
				"all_privileges: every privilege (ALL PRIVILEGES) for alice on prod-orders/orders (role trusted_admin)",
			},
		},
		{
			// Added next to read, ops alone carries the new privileges.
			name:     "names_the_carrying_role",
			baseEdit: withRole("ops", config.Role{Privileges: []string{"ALTER", "CREATE ROUTINE", "INDEX"}}),
			edit: func(t testing.TB, h *config.Config) {
				u := user(t, h, "alice")
				u.Access = append(u.Access, config.Access{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "ops"})
			},
			want: []string{
				"production_admin: ALTER and CREATE ROUTINE on production for alice on prod-orders/orders (role ops): it can change the schema and add stored routines",
			},
		},
		{
			// Roles that make every privilege only together are all named.
			name:     "all_privileges_from_two_roles",
			baseEdit: withRole("ops", config.Role{Extends: []string{"admin"}, Privileges: []string{"DROP"}}),
			edit: func(t testing.TB, h *config.Config) {
				withRole("locker", config.Role{Privileges: []string{"LOCK TABLES"}})(t, h)
				u := user(t, h, "alice")
				u.Access = append(u.Access,
					config.Access{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "ops"},
					config.Access{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "locker"})
			},
			want: []string{
				"all_privileges: every privilege (ALL PRIVILEGES) for alice on prod-orders/orders (roles locker, ops, read)",
				"role_template: role locker added to dbusers.json (LOCK TABLES): changes every holder of the role (1 user(s))",
			},
		},
		{
			// A template that becomes every privilege, held on production.
			name: "role_becomes_all_privileges",
			edit: withRole("read", config.Role{Privileges: []string{"ALL PRIVILEGES"}}),
			want: []string{
				"role_escalation: role read changed in dbusers.json: SELECT → ALL PRIVILEGES: " +
					"the role now grants every privilege (ALL PRIVILEGES) to every holder (3 user(s), 2 of them on production)",
			},
		},
		{
			// A template change and a new grant of the role in one pull
			// request: the role's risk, and the new holder's line.
			name: "role_escalation_and_new_holder",
			edit: func(t testing.TB, h *config.Config) {
				withRole("write", config.Role{Extends: []string{"read"}, Privileges: []string{"INSERT", "UPDATE", "DROP"}})(t, h)
				aliceOnProd("write")(t, h)
			},
			want: []string{
				"production_drop: DROP on production for alice on prod-orders/orders (role write): it can drop the database and its tables",
				"role_escalation: role write changed in dbusers.json: +DROP: the role now grants DROP to every holder (3 user(s), 2 of them on production)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pullRequest(t, tc.baseEdit, tc.edit)
			var got []string
			for _, k := range r.Risks {
				got = append(got, k.Kind+": "+k.Text)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("risks (-want +got):\n%s", diff)
			}
			if tc.name == "weakened_rails" {
				golden(t, "weakened_rails.md", r.Markdown())
			}
		})
	}
}

// TestHarmlessChanges: everyday pull requests raise no risk.
func TestHarmlessChanges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		baseEdit func(t testing.TB, b *config.Config)
		edit     func(t testing.TB, h *config.Config)
	}{
		{name: "description edit", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "alice").Description = "Backend engineer, checkout team."
			cluster(t, h, "prod-orders").Description = "Orders."
		}},
		{name: "read on staging", edit: func(t testing.TB, h *config.Config) {
			u := user(t, h, "bob")
			u.Access = append(u.Access, config.Access{Clusters: []string{"staging-main"}, Databases: []string{"orders"}, Role: "read"})
		}},
		{name: "new user who reads", edit: func(t testing.TB, h *config.Config) {
			addUser(h, config.User{Name: "frank", Owner: "frank@acme.example", Kind: "human", Access: []config.Access{
				{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read", Expires: "2026-04-30"}}})
		}},
		{name: "admin on staging", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "bob").Access[1].Role = "admin"
		}},
		{name: "DROP on staging", baseEdit: withRole("ops", config.Role{Extends: []string{"admin"}, Privileges: []string{"DROP"}}),
			edit: func(t testing.TB, h *config.Config) { user(t, h, "bob").Access[1].Role = "ops" }},
		{name: "downgrade on production", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "carol").Access[0].Role = "write"
		}},
		{name: "expiry added", edit: func(t testing.TB, h *config.Config) { user(t, h, "alice").Access[1].Expires = "2026-04-30" }},
		{name: "removal limit tightened", edit: func(_ testing.TB, h *config.Config) {
			h.Settings.RemovalLimit = config.RemovalLimit{Count: 3, Fraction: 0.1}
		}},
		{name: "protected account added", edit: func(_ testing.TB, h *config.Config) {
			h.Settings.ProtectedAccounts = append(h.Settings.ProtectedAccounts, "acme_auditor")
		}},
		{name: "SSM tier", edit: func(_ testing.TB, h *config.Config) { h.Settings.SSM.Tier = "Advanced" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := pullRequest(t, tc.baseEdit, tc.edit); len(r.Risks) != 0 {
				t.Errorf("risks %+v", r.Risks)
			}
		})
	}
}

// TestRulesInREADME: the README's review section lists every rule by its
// code, so that people reading the JSON can look a kind up.
func TestRulesInREADME(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## Pull-request review")
	if !ok {
		t.Fatal(`README.md has no "## Pull-request review" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, ru := range rules {
		row := "| `" + ru.kind + "` | " + string(ru.level) + " |"
		if !strings.Contains(section, row) {
			t.Errorf("README.md's review section has no row starting %q", row)
		}
	}
}

func riskKinds(r *Review) []string {
	var out []string
	for _, k := range r.Risks {
		out = append(out, k.Kind)
	}
	return out
}
