package review

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// day is the date every review is evaluated on. Erin's first entry expired
// before it; Bob's expires after it.
var day = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fleet is the base configuration of every scenario: three clusters in
// three environments, a few people and a service.
func fleet() *config.Config {
	return &config.Config{
		Settings: config.Settings{
			Prefix:            "acme",
			ProtectedAccounts: []string{"acme_breakglass"},
			RemovalLimit:      config.RemovalLimit{Count: 5, Fraction: 0.2},
			SSM:               config.SSM{Parameter: "/dbusers/config"},
			AWS:               config.AWS{ManagementRole: "dbusers-management"},
		},
		Clusters: []config.Cluster{
			{Name: "dev-local", Environment: "dev", Engine: "mariadb-10.11", Endpoint: "127.0.0.1", Port: 3306,
				Databases: []string{"orders", "analytics"}},
			{Name: "prod-orders", Environment: "prod", Engine: "aurora-mysql-3", Endpoint: "prod-orders.example", Port: 3306,
				AccountID: "111111111111", Region: "eu-west-1", Databases: []string{"orders", "payments"}},
			{Name: "staging-main", Environment: "staging", Engine: "rds-mysql-8.0", Endpoint: "staging.example", Port: 3306,
				Databases: []string{"orders", "payments", "analytics"}},
		},
		Users: []config.User{
			{Name: "alice", Owner: "alice@acme.example", Kind: "human", Description: "Backend engineer.", Access: []config.Access{
				{Environments: []string{"staging"}, Databases: []string{"*"}, Role: "write"},
				{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read"},
			}},
			{Name: "bob", Owner: "bob@acme.example", Kind: "human", Access: []config.Access{
				{Clusters: []string{"prod-orders"}, Databases: []string{"payments"}, Role: "read", Expires: "2026-06-30", Reason: "INC-1"},
				{Clusters: []string{"staging-main"}, Databases: []string{"payments"}, Role: "write"},
			}},
			{Name: "carol", Owner: "carol@acme.example", Kind: "human", Access: []config.Access{
				{Environments: []string{"prod"}, Databases: []string{"*"}, Role: "admin", Reason: "DBRE on-call"},
			}},
			{Name: "erin", Owner: "erin@acme.example", Kind: "human", Access: []config.Access{
				{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read", Expires: "2026-01-31", Reason: "INC-0"},
				{Clusters: []string{"staging-main"}, Databases: []string{"orders"}, Role: "read"},
			}},
			{Name: "orders_api", Owner: "team-checkout", Kind: "service",
				Auth: config.UserAuth{Type: "password", Secret: "dbusers/orders_api"},
				Access: []config.Access{
					{Clusters: []string{"dev-local", "staging-main", "prod-orders"}, Databases: []string{"orders"}, Role: "write"},
				}},
		},
	}
}

// clone deep-copies a configuration so a scenario can edit its head.
func clone(t testing.TB, c *config.Config) *config.Config {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out config.Config
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// user returns the head's user by name, for a scenario to edit.
func user(t testing.TB, c *config.Config, name string) *config.User {
	t.Helper()
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i]
		}
	}
	t.Fatalf("no user %s", name)
	return nil
}

func cluster(t testing.TB, c *config.Config, name string) *config.Cluster {
	t.Helper()
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i]
		}
	}
	t.Fatalf("no cluster %s", name)
	return nil
}

func removeUser(c *config.Config, name string) {
	c.Users = slices.DeleteFunc(c.Users, func(u config.User) bool { return u.Name == name })
}

func addUser(c *config.Config, u config.User) {
	c.Users = append(c.Users, u)
	slices.SortFunc(c.Users, func(a, b config.User) int { return strings.Compare(a.Name, b.Name) })
}

func side(t testing.TB, label string, c *config.Config) Side {
	t.Helper()
	st, err := config.Desired(c, day)
	if err != nil {
		t.Fatalf("%s: config.Desired: %v", label, err)
	}
	return Side{Label: label, Config: c, State: st}
}

func compare(t testing.TB, base, head *config.Config) *Review {
	t.Helper()
	return Compare(side(t, "merge base 0123456789ab of origin/main", base), side(t, "working tree", head))
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; run go test -update if the change is intended):\n%s", path, diff)
	}
}

// holders are n users named holderNN with write on staging-main/orders.
func holders(n int) []config.User {
	var out []config.User
	for i := range n {
		out = append(out, config.User{Name: fmt.Sprintf("holder%02d", i+1), Owner: "team-data", Kind: "human",
			Access: []config.Access{{Clusters: []string{"staging-main"}, Databases: []string{"orders"}, Role: "write"}}})
	}
	return out
}

type scenario struct {
	name string
	base func(t testing.TB) *config.Config // nil: fleet()
	edit func(t testing.TB, head *config.Config)
	// check asserts what the golden file alone would not make obvious.
	check func(t *testing.T, r *Review, md string)
}

func scenarios() []scenario {
	return []scenario{
		{name: "no_change", edit: func(t testing.TB, h *config.Config) {
			// A description edit reaches no database.
			user(t, h, "alice").Description = "Backend engineer, checkout team."
			cluster(t, h, "prod-orders").Description = "Orders."
		}, check: func(t *testing.T, r *Review, md string) {
			if !r.Empty() || md != "### dbusers plan: no change to any database account\n" {
				t.Errorf("Empty() = %v, markdown %q", r.Empty(), md)
			}
		}},
		{name: "new_user", edit: func(t testing.TB, h *config.Config) {
			addUser(h, config.User{Name: "frank", Owner: "frank@acme.example", Kind: "human", Access: []config.Access{
				{Clusters: []string{"staging-main"}, Databases: []string{"analytics"}, Role: "read"},
				{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read", Expires: "2026-04-30"},
			}})
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Risks) != 0 {
				t.Errorf("a read-only new user raised risks: %+v", r.Risks)
			}
			if r.Summary.UsersAdded != 1 || r.Summary.GrantsAdded != 2 {
				t.Errorf("summary %+v", r.Summary)
			}
		}},
		{name: "downgrade", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "alice").Access[0].Role = "read"
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Users) != 1 || len(r.Users[0].Lines) != 3 || r.Users[0].Lines[0].Kind != Downgrade {
				t.Fatalf("users %+v", r.Users)
			}
			if got := r.Users[0].Lines[0].Removed; !slices.Equal(got, []string{"INSERT", "UPDATE"}) {
				t.Errorf("removed %v", got)
			}
		}},
		{name: "removal", edit: func(t testing.TB, h *config.Config) {
			removeUser(h, "bob")
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Users) != 1 || r.Users[0].Status != Removed || r.Users[0].Account != "acme_bob" {
				t.Fatalf("users %+v", r.Users)
			}
			if len(r.Risks) != 1 || r.Risks[0].Level != Notice || !strings.Contains(r.Risks[0].Text, "bob is removed") {
				t.Errorf("risks %+v", r.Risks)
			}
		}},
		{name: "expiry_added", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "alice").Access[1].Expires = "2026-04-30"
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Risks) != 0 {
				t.Errorf("adding an expiry is not a risk: %+v", r.Risks)
			}
		}},
		{name: "expiry_changed", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "bob").Access[0].Expires = "2026-09-30"
		}},
		{name: "expiry_removed", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "bob").Access[0].Expires = ""
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Risks) != 1 || r.Risks[0].Level != High || !strings.Contains(r.Risks[0].Text, "permanent") {
				t.Errorf("risks %+v", r.Risks)
			}
		}},
		// An expiry removed together with a role change is still an expiry
		// removed: the temporary access becomes permanent.
		{name: "expiry_removed_with_elevation", edit: func(t testing.TB, h *config.Config) {
			a := &user(t, h, "bob").Access[0]
			a.Expires, a.Role = "", "write"
		}, check: func(t *testing.T, r *Review, md string) {
			if !slices.ContainsFunc(r.Risks, func(k Risk) bool { return k.Level == High && strings.Contains(k.Text, "expiry removed") }) {
				t.Errorf("no expiry-removed risk: %+v", r.Risks)
			}
			if !strings.Contains(md, "was 2026-06-30") {
				t.Errorf("the line does not say the expiry is gone:\n%s", md)
			}
		}},
		// Decision: an entry whose expiry date is before the review's date
		// grants nothing on either side (both are evaluated on the same
		// day), so a pull request that leaves it alone changes nothing and
		// the review does not show it: the pull request did not cause the
		// revocation; the scheduled run performs it, and validate warns
		// about the stale entry. The review is about what merging changes.
		{name: "expired_unchanged", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "erin").Access[0].Reason = "INC-0, closed"
		}, check: func(t *testing.T, r *Review, md string) {
			if !r.Empty() {
				t.Errorf("an expired, untouched entry shows up: %+v", r.Users)
			}
		}},
		// Renewing an expired entry grants the access again: a grant, with
		// its new expiry.
		{name: "expired_renewed", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "erin").Access[0].Expires = "2026-12-31"
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Users) != 1 || len(r.Users[0].Lines) != 1 || r.Users[0].Lines[0].Kind != Grant ||
				r.Users[0].Lines[0].ExpiresTo != "2026-12-31" {
				t.Errorf("users %+v", r.Users)
			}
		}},
		{name: "role_template", base: func(t testing.TB) *config.Config {
			c := fleet()
			for _, u := range holders(40) {
				addUser(c, u)
			}
			return c
		}, edit: func(t testing.TB, h *config.Config) {
			h.Settings.Roles = map[string]config.Role{"write": {Description: "read and change rows, and delete them",
				Extends: []string{"read"}, Privileges: []string{"INSERT", "UPDATE", "DELETE"}}}
		}, check: func(t *testing.T, r *Review, md string) {
			// alice, bob, orders_api and the 40 holders hold write.
			var role *Risk
			for i, k := range r.Risks {
				if strings.Contains(k.Text, "role write") {
					role = &r.Risks[i]
				}
			}
			if role == nil || role.Level != High || len(role.Affected) != 43 {
				t.Fatalf("role risk %+v", role)
			}
			// alice, bob and holder01..holder28 are the first 30 names.
			if !strings.Contains(md, "holder28 and 13 more") {
				t.Errorf("the affected list is not capped at 30 names + \"and 13 more\"")
			}
			if summary := strings.SplitN(md, "#### Changes per user", 2)[0]; strings.Contains(summary, "holder29") {
				t.Errorf("the risk names more than 30 users")
			}
			for _, u := range r.Users {
				for _, l := range u.Lines {
					if l.Kind != Elevate || !strings.HasPrefix(l.Why, "role write changed") {
						t.Errorf("%s: line %+v does not name the template", u.Name, l)
					}
				}
			}
		}},
		{name: "cluster_change", edit: func(t testing.TB, h *config.Config) {
			c := cluster(t, h, "staging-main")
			c.Databases = []string{"orders", "payments"} // analytics dropped
			c.Engine = "aurora-mysql-3"
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Users) != 1 || r.Users[0].Name != "alice" || r.Users[0].Lines[0].Kind != Revoke ||
				!strings.Contains(r.Users[0].Lines[0].Why, "databases removed: analytics") {
				t.Fatalf("users %+v", r.Users)
			}
			if len(r.Risks) == 0 || r.Risks[0].Level != High || !strings.Contains(r.Risks[0].Text, "cluster staging-main changed") {
				t.Errorf("risks %+v", r.Risks)
			}
		}},
		{name: "prod_admin_and_trusted_admin", edit: func(t testing.TB, h *config.Config) {
			u := user(t, h, "alice")
			u.Access = append(u.Access, config.Access{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "admin"})
			addUser(h, config.User{Name: "dave", Owner: "dave@acme.example", Kind: "human", Access: []config.Access{
				{Clusters: []string{"prod-orders"}, Databases: []string{"payments"}, Role: "trusted_admin"},
				{Clusters: []string{"staging-main"}, Databases: []string{"analytics"}, Role: "admin"},
			}})
			// carol already is admin on prod: an edit of her file is no risk.
			user(t, h, "carol").Access[0].Reason = "DBRE on-call (OPS-112)"
		}, check: func(t *testing.T, r *Review, md string) {
			var texts []string
			for _, k := range r.Risks {
				texts = append(texts, string(k.Level)+": "+k.Text)
			}
			want := []string{
				"high: ALTER and CREATE ROUTINE on production for alice on prod-orders/orders (role admin): it can change the schema and add stored routines",
				"high: every privilege (ALL PRIVILEGES) for dave on prod-orders/payments (role trusted_admin)",
			}
			if diff := cmp.Diff(want, texts); diff != "" {
				t.Errorf("risks (-want +got):\n%s", diff)
			}
		}},
		{name: "auth_change", edit: func(t testing.TB, h *config.Config) {
			user(t, h, "alice").Auth = config.UserAuth{Type: "password", Secret: "dbusers/alice"}
			user(t, h, "orders_api").Auth.Secret = "dbusers/orders_api-v2"
		}, check: func(t *testing.T, r *Review, md string) {
			if len(r.Users) != 2 || r.Users[0].Auth != "authentication changes from iam to password" || len(r.Users[0].Lines) != 0 {
				t.Errorf("users %+v", r.Users)
			}
		}},
		{name: "escaping", edit: func(t testing.TB, h *config.Config) {
			addUser(h, config.User{Name: "mallory", Kind: "human",
				Owner:       "<script>alert(1)</script> | team <b>x</b>",
				Description: "pipes | and <img src=x onerror=alert(1)>",
				Access:      []config.Access{{Clusters: []string{"staging-main"}, Databases: []string{"orders"}, Role: "read"}}})
			h.Settings.ProtectedAccounts = append(h.Settings.ProtectedAccounts, "acme_<i>x</i>|y")
		}, check: func(t *testing.T, r *Review, md string) {
			for _, bad := range []string{"<script>", "<b>x", "<i>", "<img", "onerror", "</i>|y"} {
				if strings.Contains(md, bad) {
					t.Errorf("markdown contains unescaped %q:\n%s", bad, md)
				}
			}
			// The <summary> line is HTML, where markdown's backslash
			// escapes would show: the owner is HTML-escaped there.
			if want := "(human, &lt;script&gt;alert(1)&lt;/script&gt; | team &lt;b&gt;x&lt;/b&gt;): added"; !strings.Contains(md, want) {
				t.Errorf("the owner is not escaped in the summary line:\n%s", md)
			}
			if want := `- protected accounts added: acme_&lt;i&gt;x&lt;/i&gt;\|y`; !strings.Contains(md, want) {
				t.Errorf("the settings line is not escaped:\n%s", md)
			}
		}},
		{name: "mixed", edit: mixed},
	}
}

// mixed is a pull request that does a bit of everything; the text and JSON
// renderings are checked on it too.
func mixed(t testing.TB, h *config.Config) {
	addUser(h, config.User{Name: "frank", Owner: "frank@acme.example", Kind: "human", Access: []config.Access{
		{Environments: []string{"prod"}, Databases: []string{"orders"}, Role: "admin", Expires: "2026-03-31"},
	}})
	removeUser(h, "erin")
	user(t, h, "alice").Access[0].Role = "read"
	user(t, h, "bob").Access[0].Expires = ""
	user(t, h, "orders_api").Access[0].Clusters = []string{"staging-main", "prod-orders"}
}

func TestGoldenMarkdown(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			base := fleet()
			if sc.base != nil {
				base = sc.base(t)
			}
			head := clone(t, base)
			sc.edit(t, head)
			r := compare(t, base, head)
			md := r.Markdown()
			golden(t, sc.name+".md", md)
			// A comment may split between rows: each is one whole line,
			// whatever the user-controlled text in it.
			for _, sec := range r.Sections() {
				for _, row := range sec.Rows {
					if strings.Count(row, "\n") != 1 || !strings.HasSuffix(row, "\n") {
						t.Errorf("row %q is not one line", row)
					}
				}
			}
			if sc.check != nil {
				sc.check(t, r, md)
			}
			// One change, one risk: no rule repeats another's.
			texts := map[string]bool{}
			for _, k := range r.Risks {
				if texts[k.Text] {
					t.Errorf("risk listed twice: %s", k.Text)
				}
				texts[k.Text] = true
			}
			if r.Empty() {
				return
			}
			// The risks come before the counts and the first user.
			i := strings.Index(md, "#### Needs a careful review")
			for _, after := range []string{"#### Counts", "#### Changes per user"} {
				if j := strings.Index(md, after); len(r.Risks) > 0 && j >= 0 && (i < 0 || i > j) {
					t.Errorf("risks are not above %q", after)
				}
			}
		})
	}
}

func TestTextAndJSON(t *testing.T) {
	base := fleet()
	head := clone(t, base)
	mixed(t, head)
	r := compare(t, base, head)
	golden(t, "mixed.txt", r.Text())

	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "mixed.json", string(data)+"\n")
	var back Review
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("JSON does not round-trip (-want +got):\n%s", diff)
	}

	empty := compare(t, base, clone(t, base))
	if got := empty.Text(); got != "dbusers plan: no change to any database account\n" {
		t.Errorf("Text of no change = %q", got)
	}
	// Lists are empty, not null, for JSON readers that iterate them.
	data, err = json.Marshal(empty)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"risks":[]`, `"users":[]`, `"clusters_touched":[]`, `"environments":[]`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON of no change lacks %s: %s", want, data)
		}
	}
}

// TestTextControlCharacters: the terminal rendering shows control
// characters of free text as escapes: an owner must not clear the screen
// or start a line that GitHub Actions reads as a workflow command.
func TestTextControlCharacters(t *testing.T) {
	base := fleet()
	head := clone(t, base)
	addUser(head, config.User{Name: "mallory", Kind: "human", Owner: "m@acme.example\n::error file=users/alice.json::spoofed\x1b[2J\r",
		Access: []config.Access{{Clusters: []string{"staging-main"}, Databases: []string{"orders"}, Role: "read"}}})
	head.Settings.ProtectedAccounts = append(head.Settings.ProtectedAccounts, "x\n::warning::y")
	got := compare(t, base, head).Text()
	if strings.Contains(got, "\n::") || strings.ContainsAny(got, "\x1b\r") {
		t.Errorf("Text passes control characters through:\n%q", got)
	}
	if !strings.Contains(got, `(acme_mallory, human, m@acme.example\x0a::error file=users/alice.json::spoofed\x1b[2J\x0d): added`) {
		t.Errorf("Text does not show the escapes:\n%s", got)
	}
}

// TestLargePlanSplits: 2,000 new users do not fit one comment. Every body
// fits and renders on its own (each table under its header), the first
// carries the whole summary with the risks, and every user is in exactly
// one body, in order.
func TestLargePlanSplits(t *testing.T) {
	base := fleet()
	head := clone(t, base)
	for i := range 2000 {
		addUser(head, config.User{Name: fmt.Sprintf("svc%04d", i), Owner: "team-data", Kind: "service",
			Auth: config.UserAuth{Type: "password", Secret: fmt.Sprintf("dbusers/svc%04d", i)},
			Access: []config.Access{
				{Clusters: []string{"staging-main"}, Databases: []string{"orders", "payments"}, Role: "write"},
				{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read"},
			}})
	}
	// And one risk, so the first body must carry it.
	user(t, head, "bob").Access[0].Expires = ""
	r := compare(t, base, head)
	bodies := pack(r.Sections(), ghcomment.MaxBody)
	if len(bodies) < 3 {
		t.Fatalf("%d bodies for 2,000 users, want several", len(bodies))
	}
	for i, b := range bodies {
		if len(b) > ghcomment.MaxBody {
			t.Errorf("body %d is %d bytes, over %d", i+1, len(b), ghcomment.MaxBody)
		}
		if err := ghcommenttest.CheckRenders(b); err != nil {
			t.Errorf("body %d does not render on its own: %v", i+1, err)
		}
	}
	if summary := r.Sections()[0].Markdown(); !strings.HasPrefix(bodies[0], summary) {
		t.Errorf("the first body does not start with the whole summary")
	}
	for _, want := range []string{"🔴 1 high risk · 2001 users change", "expiry removed for bob", "#### Changes per user (2001)"} {
		if !strings.Contains(bodies[0], want) {
			t.Errorf("the first body lacks %q", want)
		}
	}
	if strings.Contains(strings.Join(bodies[1:], ""), "#### Needs a careful review") {
		t.Errorf("the risks are repeated after the first body")
	}
	// Every user once, in order, folded (past openLimit), and never split:
	// each user's section fits a body whole.
	var names []string
	for _, m := range regexp.MustCompile(`<details><summary><b>(\w+)</b>`).FindAllStringSubmatch(strings.Join(bodies, ""), -1) {
		names = append(names, m[1])
	}
	want := []string{"bob"}
	for i := range 2000 {
		want = append(want, fmt.Sprintf("svc%04d", i))
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("users across the bodies (-want +got):\n%s", diff)
	}
	golden(t, "large_first_body.md", bodies[0])
}

// TestSplitSectionsRender: a section longer than a comment splits between
// its rows, and the next comment opens it again, marked "(continued)", so
// that it renders: a user's table keeps its <details> and header, a long
// list of risks its heading, thousands of validation errors their table.
func TestSplitSectionsRender(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sections  func(t *testing.T) []Section
		continued string // some body after the first starts with it
	}{
		{
			name: "a user's table",
			sections: func(t *testing.T) []Section {
				base := fleet()
				c := cluster(t, base, "staging-main")
				for i := range 3000 {
					c.Databases = append(c.Databases, fmt.Sprintf("db%04d", i))
				}
				head := clone(t, base)
				addUser(head, config.User{Name: "wide", Owner: "wide@acme.example", Kind: "human",
					Access: []config.Access{{Clusters: []string{"staging-main"}, Databases: []string{"*"}, Role: "read"}}})
				return compare(t, base, head).Sections()
			},
			continued: "<details open><summary><b>wide</b> <code>acme_wide</code> (human, wide@acme.example): added, 3003 change(s) (continued)</summary>\n\n" +
				"| | cluster | database | change |\n|---|---|---|---|\n| ➕ | staging-main | db",
		},
		{
			name: "risks",
			sections: func(t *testing.T) []Section {
				base := fleet()
				for i := range 1500 {
					addUser(base, config.User{Name: fmt.Sprintf("svc%04d", i), Owner: "team-data", Kind: "service",
						Access: []config.Access{{Clusters: []string{"staging-main"}, Databases: []string{"orders"}, Role: "read"}}})
				}
				return compare(t, base, fleet()).Sections()
			},
			continued: "#### Needs a careful review (continued)\n\n- 🟠 user svc",
		},
		{
			name: "validation errors",
			sections: func(t *testing.T) []Section {
				var diags diag.List
				for i := range 3000 {
					diags = append(diags, diag.Diagnostic{File: fmt.Sprintf("users/u%04d.json", i), Line: 3, Severity: diag.Error, Message: `unknown role "reader"`})
				}
				return InvalidSections(diags, nil, Context{})
			},
			continued: "### dbusers plan: ❌ the declarations do not validate (continued)\n\n| file | line | problem |\n|---|---:|---|\n| `users/u",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sections := tc.sections(t)
			bodies := pack(sections, ghcomment.MaxBody)
			if len(bodies) < 2 {
				t.Fatalf("%d body, want the section split", len(bodies))
			}
			continued := false
			for i, b := range bodies {
				if len(b) > ghcomment.MaxBody {
					t.Errorf("body %d is %d bytes", i+1, len(b))
				}
				if err := ghcommenttest.CheckRenders(b); err != nil {
					t.Errorf("body %d does not render on its own: %v", i+1, err)
				}
				continued = continued || (i > 0 && strings.HasPrefix(b, tc.continued))
			}
			if !continued {
				t.Errorf("no body goes on with %q", tc.continued)
			}
			// Every row, in order.
			all, pos := strings.Join(bodies, ""), 0
			for _, s := range sections {
				for _, row := range s.Rows {
					i := strings.Index(all[pos:], row)
					if i < 0 {
						t.Fatalf("row %q is missing or out of order", row)
					}
					pos += i + len(row)
				}
			}
		})
	}
}

// pack is what `dbusers comment` posts: the sections converted to
// ghcomment's identical struct, then packed.
func pack(sections []Section, limit int) []string {
	converted := make([]ghcomment.Section, len(sections))
	for i, s := range sections {
		converted[i] = ghcomment.Section(s)
	}
	return ghcomment.Pack(converted, limit)
}

// invalidDiags are the problems of a pull request that changes alice's,
// bob's, carol's and a badly named file; dave's file, which it does not
// change, has a warning too. They come sorted by file, as validate sorts
// them: a warning before an error.
func invalidDiags() diag.List {
	return diag.List{
		{File: "users/alice.json", Line: 7, Col: 60, Severity: diag.Error, Message: `unknown role "reader" (known: admin, read, trusted_admin, write)`},
		{File: "users/bob.json", Line: 4, Col: 3, Severity: diag.Error, Message: "syntax error: expected ',' or '}' after object value"},
		{File: "users/carol.json", Line: 9, Col: 20, Severity: diag.Warning, Message: "access expired on 2026-01-31: it grants nothing and will be revoked; remove the entry"},
		{File: "users/dave.json", Line: 5, Col: 20, Severity: diag.Warning, Message: "access expired on 2026-02-28: it grants nothing and will be revoked; remove the entry"},
		{File: "users/x`<b>|y.json", Line: 1, Col: 1, Severity: diag.Error, Message: "file name must be <name>.json | got x`<b>|y"},
	}
}

func TestInvalidMarkdown(t *testing.T) {
	diags := invalidDiags()
	changed := []string{"users/alice.json", "users/bob.json", "users/carol.json", "users/x`<b>|y.json"}
	md := InvalidMarkdown(diags, changed, runContext)
	golden(t, "invalid.md", md)
	for _, want := range []string{"3 error(s) and 1 warning(s)", "| `users/alice.json` | 7 |",
		"1 warning(s) in files this pull request does not change are not shown.", "[workflow run](https://github.com/acme/dbaccess/actions/runs/4242)"} {
		if !strings.Contains(md, want) {
			t.Errorf("invalid markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "dave") {
		t.Errorf("a warning of a file the pull request does not change is shown:\n%s", md)
	}
	// Errors first, whatever the files' order.
	if i, j := strings.Index(md, "x`<b>"), strings.Index(md, "users/carol.json"); i < 0 || j < 0 || i > j {
		t.Errorf("an error comes after a warning:\n%s", md)
	}
	// Without the changed files (no merge base), every warning shows.
	if all := InvalidMarkdown(diags, nil, Context{}); !strings.Contains(all, "3 error(s) and 2 warning(s)") || !strings.Contains(all, "dave") ||
		strings.Contains(all, "not shown") {
		t.Errorf("with the changed files unknown:\n%s", all)
	}
	// A pull request that changes no file with a warning shows none.
	if none := InvalidMarkdown(diags, []string{}, Context{}); !strings.Contains(none, "3 error(s); fix them") ||
		!strings.Contains(none, "2 warning(s) in files this pull request does not change are not shown.") {
		t.Errorf("with no warning in the changed files:\n%s", none)
	}
	// Each diagnostic is one table row of four cells: escaping held.
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| `users/") {
			if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 4 {
				t.Errorf("row has %d cell separators, want 4: %s", n, line)
			}
			// Markup may only appear inside the file's code span.
			if _, rest, _ := strings.Cut(line, ".json` |"); strings.Contains(rest, "<b>") ||
				(strings.Contains(line, "<b>") && !strings.HasPrefix(line, "| ``users/x`<b>\\|y.json`` |")) {
				t.Errorf("row carries markup: %s", line)
			}
		}
	}
}

// TestDeterministic renders the same comparison many times, with the
// declarations in different orders and every map rebuilt, and expects the
// same bytes each time.
func TestDeterministic(t *testing.T) {
	render := func(seed uint64) string {
		rng := rand.New(rand.NewPCG(seed, seed))
		base := fleet()
		for _, u := range holders(12) {
			addUser(base, u)
		}
		head := clone(t, base)
		mixed(t, head)
		head.Settings.Roles = map[string]config.Role{
			"write": {Extends: []string{"read"}, Privileges: []string{"INSERT", "UPDATE", "DELETE"}},
			"etl":   {Extends: []string{"write"}, Privileges: []string{"CREATE TEMPORARY TABLES"}},
		}
		cluster(t, head, "staging-main").Databases = []string{"orders", "payments"}
		user(t, head, "alice").Access[0].Databases = []string{"orders", "payments"}
		for _, c := range []*config.Config{base, head} {
			rng.Shuffle(len(c.Users), func(i, j int) { c.Users[i], c.Users[j] = c.Users[j], c.Users[i] })
			rng.Shuffle(len(c.Clusters), func(i, j int) { c.Clusters[i], c.Clusters[j] = c.Clusters[j], c.Clusters[i] })
			for i := range c.Clusters {
				dbs := c.Clusters[i].Databases
				rng.Shuffle(len(dbs), func(i, j int) { dbs[i], dbs[j] = dbs[j], dbs[i] })
			}
			roles := map[string]config.Role{}
			names := slices.Sorted(maps.Keys(c.Settings.Roles))
			for _, k := range rng.Perm(len(names)) {
				roles[names[k]] = c.Settings.Roles[names[k]]
			}
			if c.Settings.Roles != nil {
				c.Settings.Roles = roles
			}
		}
		r := compare(t, base, head)
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return r.Markdown() + "\n---\n" + r.Text() + "\n---\n" + string(data)
	}
	first := render(1)
	for seed := uint64(2); seed < 30; seed++ {
		if got := render(seed); got != first {
			t.Fatalf("seed %d renders differently:\n%s", seed, cmp.Diff(first, got))
		}
	}
}

// TestBaseWithoutConfiguration: plan compares a repository whose base
// predates dbusers with an empty configuration. Every user is new, and the
// settings of the first dbusers.json are not taken for a change of prefix.
func TestBaseWithoutConfiguration(t *testing.T) {
	head := fleet()
	r := Compare(Side{Label: "main", Config: &config.Config{}, State: &desired.State{Date: "2026-03-01"}}, side(t, "working tree", head))
	if r.Summary.UsersAdded != len(head.Users) {
		t.Errorf("users added %d, want %d", r.Summary.UsersAdded, len(head.Users))
	}
	for _, k := range r.Risks {
		if strings.Contains(k.Text, "prefix") {
			t.Errorf("a first dbusers.json is reported as a prefix change: %s", k.Text)
		}
	}
	golden(t, "base_without_configuration.md", r.Markdown())
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"plain":              "plain",
		"a|b":                `a\|b`,
		"<script>x</script>": "&lt;script&gt;x&lt;/script&gt;",
		"two\nlines\r\n":     "two lines  ",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}
