package review

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/ghcomment"
	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/render"
)

// readAt is when the live plans of these tests read the databases.
var readAt = time.Date(2026, 3, 1, 8, 59, 30, 0, time.UTC)

// headSHA is the pull request's head commit in these tests.
const headSHA = "4bbf7e2fa288c0ffee0123456789abcdef012345"

// runContext is what the CLI sets in a workflow run.
var runContext = Context{HeadSHA: headSHA, GeneratedAt: time.Date(2026, 3, 1, 9, 0, 12, 0, time.UTC),
	RunURL: "https://github.com/acme/dbaccess/actions/runs/4242"}

func account(name string) mysqlstate.AccountID { return mysqlstate.AccountID{User: name, Host: "%"} }

// change is a planned change with the statement package render gives it
// on f, as the Lambda's plan mode sends it.
func change(t testing.TB, f flavor.Flavor, user, summary string, op plan.Op) liveplan.Change {
	t.Helper()
	c := plan.Change{Account: account("acme_" + user), User: user, Summary: summary, Op: op}
	st, err := render.Change(c, f)
	if err != nil {
		return liveplan.Change{Change: c, RenderError: err.Error()}
	}
	return liveplan.Change{Change: c, Statement: st.Redacted}
}

func drift(c liveplan.Change) liveplan.Change { c.Drift = true; return c }

func iamAuth() plan.Auth { return plan.Auth{Method: "iam", RequireSSL: true} }

func grantOn(db string, privs ...string) plan.GrantDatabase {
	return plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Database: db, Pattern: db}, Privileges: privs}
}

func revokeOn(db string, privs ...string) plan.RevokeDatabase {
	return plan.RevokeDatabase{DatabaseRef: plan.DatabaseRef{Database: db, Pattern: db}, Privileges: privs}
}

// newFrank is what the new_user scenario's frank costs on prod-orders.
func newFrank(t testing.TB) []liveplan.Change {
	return []liveplan.Change{
		change(t, flavor.MySQL80, "frank", "create acme_frank (human, iam authentication) for frank@acme.example", plan.NewAccount{Auth: iamAuth()}),
		change(t, flavor.MySQL80, "frank", "grant read on orders to acme_frank (until 2026-04-30)", grantOn("orders", "SELECT")),
	}
}

func prodOrders(changes ...liveplan.Change) liveplan.Cluster {
	return liveplan.Cluster{Name: "prod-orders", Environment: "prod", Production: true, Server: "Aurora MySQL 3.08.0 (MySQL 8.0.39)",
		Status: liveplan.Planned, Changes: changes}
}

func stagingMain(changes ...liveplan.Change) liveplan.Cluster {
	c := liveplan.Cluster{Name: "staging-main", Environment: "staging", Server: "MySQL 8.0.39", Status: liveplan.Planned, Changes: changes}
	if len(changes) == 0 {
		c.Status = liveplan.Unchanged
	}
	return c
}

func devLocal() liveplan.Cluster {
	return liveplan.Cluster{Name: "dev-local", Environment: "dev", Server: "MariaDB 10.11.19", Status: liveplan.Unchanged}
}

type liveScenario struct {
	name string
	edit func(t testing.TB, head *config.Config) // the pull request; nil: none
	live func(t testing.TB) *liveplan.Report     // nil: no live plan
	note string                                  // LiveNote
	// check asserts what the golden file alone would not make obvious.
	check func(t *testing.T, r *Review, md string)
}

func liveScenarios() []liveScenario {
	addFrank := func(t testing.TB, h *config.Config) {
		addUser(h, config.User{Name: "frank", Owner: "frank@acme.example", Kind: "human", Access: []config.Access{
			{Clusters: []string{"staging-main"}, Databases: []string{"analytics"}, Role: "read"},
			{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read", Expires: "2026-04-30"},
		}})
	}
	return []liveScenario{
		{name: "live_new_user", edit: addFrank, live: func(t testing.TB) *liveplan.Report {
			return &liveplan.Report{ReadAt: readAt, Version: "v20260301-0859", Commit: headSHA, Clusters: []liveplan.Cluster{
				devLocal(),
				prodOrders(newFrank(t)...),
				stagingMain(
					change(t, flavor.MySQL80, "frank", "create acme_frank (human, iam authentication) for frank@acme.example", plan.NewAccount{Auth: iamAuth()}),
					change(t, flavor.MySQL80, "frank", "grant read on analytics to acme_frank", grantOn("analytics", "SELECT"))),
			}}
		}, check: func(t *testing.T, r *Review, md string) {
			for _, want := range []string{
				"**Merging** runs 4 statements on prod-orders, staging-main (the live plan below).",
				"<br>``GRANT SELECT ON `orders`.* TO 'acme_frank'@'%'``",
				"✅ **dev-local** (dev, MariaDB 10.11.19): no change",
			} {
				if !strings.Contains(md, want) {
					t.Errorf("markdown lacks %q", want)
				}
			}
			// Production first, then by name.
			if i, j := strings.Index(md, "**prod-orders**"), strings.Index(md, "**dev-local**"); i < 0 || j < 0 || i > j {
				t.Errorf("prod-orders is not listed first")
			}
		}},
		{name: "live_removal", edit: func(t testing.TB, h *config.Config) { removeUser(h, "bob") }, live: func(t testing.TB) *liveplan.Report {
			return &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{
				devLocal(),
				prodOrders(
					change(t, flavor.MySQL80, "bob", "drop acme_bob: no user file declares bob", plan.Drop{}),
					change(t, flavor.MySQL80, "bob", "end session 4711 of acme_bob (from 10.0.3.7, in payments): its access was taken away",
						plan.Disconnect{Session: mysqlstate.Session{ID: 4711, User: "acme_bob", Client: "10.0.3.7:51234", DB: "payments"}, Via: plan.RDSKill})),
				stagingMain(change(t, flavor.MySQL80, "bob", "drop acme_bob: no user file declares bob", plan.Drop{})),
			}}
		}},
		// The pull request adds frank; on prod-orders someone granted carol
		// DROP by hand and made an account the configuration never had:
		// merging repairs both, which is drift, not the pull request's.
		{name: "live_drift", edit: addFrank, live: func(t testing.TB) *liveplan.Report {
			return &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{
				prodOrders(append(newFrank(t),
					drift(change(t, flavor.MySQL80, "carol", "revoke DROP on orders from acme_carol: no longer granted", revokeOn("orders", "DROP"))),
					drift(change(t, flavor.MySQL80, "ghost", "drop acme_ghost: no user file declares ghost", plan.Drop{})))...),
			}}
		}, check: func(t *testing.T, r *Review, md string) {
			if n := strings.Count(md, "⚠️ **drift:**"); n != 2 {
				t.Errorf("%d changes marked drift, want 2", n)
			}
			if !strings.Contains(md, "2 statements repair drift") {
				t.Errorf("the summary does not count the drift")
			}
		}},
		// One cluster cannot be reached, one is new in the pull request.
		{name: "live_failed_unpublished", edit: func(t testing.TB, h *config.Config) {
			h.Clusters = append(h.Clusters, config.Cluster{Name: "staging-eu", Environment: "staging", Engine: "rds-mysql-8.0",
				Endpoint: "staging-eu.example", Port: 3306, Databases: []string{"orders"}})
			user(t, h, "alice").Access[0].Databases = []string{"orders"}
		}, live: func(t testing.TB) *liveplan.Report {
			return &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{
				{Name: "prod-orders", Environment: "prod", Production: true, Status: liveplan.Failed, Stage: "assume-role",
					Error: "operation error STS: AssumeRole, https response error StatusCode: 403, api error AccessDenied: not authorized to perform: sts:AssumeRole"},
				{Name: "staging-eu", Environment: "staging", Status: liveplan.Unpublished},
				stagingMain(
					change(t, flavor.MySQL80, "alice", "revoke write on analytics from acme_alice: no longer granted", revokeOn("analytics", "INSERT", "SELECT", "UPDATE")),
					change(t, flavor.MySQL80, "alice", "revoke write on payments from acme_alice: no longer granted", revokeOn("payments", "INSERT", "SELECT", "UPDATE"))),
			}}
		}, check: func(t *testing.T, r *Review, md string) {
			for _, want := range []string{"❌ Could not plan prod-orders.", "New in this pull request, planned after the merge: staging-eu.",
				"❌ **prod-orders** (prod): could not plan at `assume-role`:", "🆕 **staging-eu** (staging): new in this pull request"} {
				if !strings.Contains(md, want) {
					t.Errorf("markdown lacks %q", want)
				}
			}
		}},
		// The pull request removes three users; the removal limit holds the
		// drops back on staging-main, whose notes and skips show too.
		{name: "live_held", edit: func(t testing.TB, h *config.Config) {
			removeUser(h, "alice")
			removeUser(h, "bob")
			removeUser(h, "erin")
		}, live: func(t testing.TB) *liveplan.Report {
			held := func(u string) liveplan.Change {
				return change(t, flavor.MySQL80, u, fmt.Sprintf("drop acme_%s: no user file declares %s", u, u), plan.Drop{})
			}
			return &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{
				prodOrders(change(t, flavor.MySQL80, "alice", "drop acme_alice: no user file declares alice", plan.Drop{}),
					change(t, flavor.MySQL80, "bob", "drop acme_bob: no user file declares bob", plan.Drop{})),
				{Name: "staging-main", Environment: "staging", Server: "MySQL 8.0.39", Status: liveplan.Unchanged,
					Held:         []liveplan.Change{held("alice"), held("bob"), held("erin")},
					LimitTripped: "removal limit tripped on staging-main: 3 of 4 managed accounts would be dropped, the limit allows 1 (max of 1 and 20%); nothing is dropped, everything else applies",
					Notes:        []string{"acme_orders_api is locked on staging-main; dbusers leaves lock state to operators"},
					Skipped:      []plan.Skip{{User: "orders_api", Reason: "password secret dbusers/orders_api is missing or has no password; the account is left as it is"}}},
			}}
		}, check: func(t *testing.T, r *Review, md string) {
			if n := strings.Count(md, "- ⏸️ held back, not run: drop acme_"); n != 3 {
				t.Errorf("%d held drops shown, want 3", n)
			}
			if !strings.Contains(md, "The removal limit holds back 3 drops.") {
				t.Errorf("the summary does not say the limit holds drops back")
			}
		}},
		// More statements than a list shows: a folded block of SQL, and
		// the ones the Lambda left out counted.
		{name: "live_truncated", edit: func(t testing.TB, h *config.Config) {
			for i := range 14 {
				addUser(h, config.User{Name: fmt.Sprintf("svc%02d", i), Owner: "team-data", Kind: "service",
					Auth:   config.UserAuth{Type: "password", Secret: fmt.Sprintf("dbusers/svc%02d", i)},
					Access: []config.Access{{Clusters: []string{"staging-main"}, Databases: []string{"orders"}, Role: "read"}}})
			}
		}, live: func(t testing.TB) *liveplan.Report {
			c := stagingMain()
			c.Status = liveplan.Planned
			for i := range 12 {
				u := fmt.Sprintf("svc%02d", i)
				c.Changes = append(c.Changes, change(t, flavor.MySQL80, u, fmt.Sprintf("create acme_%s (service, password authentication) for team-data", u),
					plan.NewAccount{Auth: plan.Auth{Method: "password", SecretRef: "dbusers/" + u, Password: "s3cret-" + u}}))
			}
			c.Changes[3] = drift(c.Changes[3])
			c.Truncated = 16
			return &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{devLocal(), c}}
		}, check: func(t *testing.T, r *Review, md string) {
			if strings.Contains(md, "s3cret") {
				t.Errorf("a password reached the comment")
			}
			for _, want := range []string{"<details><summary>12 statements on <b>staging-main</b> (16 more not shown), 1 marked DRIFT</summary>",
				"```sql\n-- create acme_svc00", "- … 16 more changes not shown"} {
				if !strings.Contains(md, want) {
					t.Errorf("markdown lacks %q", want)
				}
			}
		}},
		{name: "live_dry_run", edit: addFrank, live: func(t testing.TB) *liveplan.Report {
			return &liveplan.Report{ReadAt: readAt, DryRun: true, Clusters: []liveplan.Cluster{prodOrders(newFrank(t)...)}}
		}, check: func(t *testing.T, r *Review, md string) {
			for _, want := range []string{"**Merging will only plan:** the function runs with DBUSERS_DRY_RUN",
				"> ⚠️ merging will only plan: the function runs with DBUSERS_DRY_RUN"} {
				if !strings.Contains(md, want) {
					t.Errorf("markdown lacks %q", want)
				}
			}
		}},
		// No live plan: one line says why, the rest is the declarations'
		// review.
		{name: "live_skipped", edit: addFrank, note: "no AWS credentials: live plan skipped, this review compares declarations only",
			check: func(t *testing.T, r *Review, md string) {
				if !strings.Contains(md, "\nℹ️ no AWS credentials: live plan skipped, this review compares declarations only\n") ||
					strings.Contains(md, "#### Live plan") {
					t.Errorf("the note is not one line, or a live section shows")
				}
			}},
	}
}

func TestGoldenLive(t *testing.T) {
	for _, sc := range liveScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			base := fleet()
			head := clone(t, base)
			if sc.edit != nil {
				sc.edit(t, head)
			}
			r := compare(t, base, head)
			r.Context = runContext
			if sc.live != nil {
				r.Live = sc.live(t)
			}
			r.LiveNote = sc.note
			md := r.Markdown()
			golden(t, sc.name+".md", md)
			if err := ghcommenttest.CheckRenders(md); err != nil {
				t.Errorf("does not render: %v", err)
			}
			if sc.check != nil {
				sc.check(t, r, md)
			}
		})
	}
}

// TestLiveTextAndJSON: the terminal and JSON renderings carry the live
// plan too, and the JSON reads back into the same review.
func TestLiveTextAndJSON(t *testing.T) {
	sc := liveScenarios()[2] // live_drift
	base := fleet()
	head := clone(t, base)
	sc.edit(t, head)
	r := compare(t, base, head)
	r.Context, r.Live = runContext, sc.live(t)
	golden(t, "live_drift.txt", r.Text())
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"live": {`, `"read_at": "2026-03-01T08:59:30Z"`, `"drift": true`,
		`"statement": "REVOKE DROP ON ` + "`orders`" + `.* FROM 'acme_carol'@'%'"`, `"head_sha": "` + headSHA + `"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	var back Review
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("JSON does not round-trip (-want +got):\n%s", diff)
	}
}

// hostileNames are account names and texts a server can hold: MySQL
// takes any characters in a user name.
var hostileNames = []string{
	"acme_x`y``z",
	"acme_a|b|c",
	"acme_<script>alert(1)</script>",
	"acme_two\nlines\r\n```\n# heading",
	"acme_[click](https://evil.example/)",
	"acme_x @acme/security-team",
	"acme_" + strings.Repeat("long", 2000),
	"acme_*bold* _em_ ~~s~~ &amp; \\|",
}

// TestLiveHostile: what comes from the server cannot break out of its
// place in the comment: no HTML, no link, no mention, no table or fence
// broken, however the account is named.
func TestLiveHostile(t *testing.T) {
	c := liveplan.Cluster{Name: "prod-<b>x</b>|y", Environment: "prod\n# env", Production: true, Server: "MySQL <img src=x onerror=alert(1)>",
		Status: liveplan.Planned}
	var notes []string
	for i, name := range hostileNames {
		ch := liveplan.Change{Change: plan.Change{Account: account(name), Summary: "drop " + name + ": no user file declares it", Op: plan.Drop{}},
			Statement: render.Account(account(name)), Drift: i%2 == 0}
		c.Changes = append(c.Changes, ch)
		c.Held = append(c.Held, ch)
		notes = append(notes, name+" is locked")
	}
	c.Notes = notes
	c.LimitTripped = "limit <script> | tripped"
	c.Skipped = []plan.Skip{{User: "x`<b>", Reason: "reason\n```"}}
	failed := liveplan.Cluster{Name: "f", Status: liveplan.Failed, Stage: "con`nect", Error: "dial <tcp>: [x](javascript:alert(1)) | @admins https://evil.example\n```"}
	for _, many := range []bool{false, true} {
		cl := c
		if many { // past liveListLimit: the fenced block
			for len(cl.Changes) <= liveListLimit {
				cl.Changes = append(cl.Changes, c.Changes...)
			}
		}
		r := compare(t, fleet(), fleet())
		r.Live = &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{cl, failed}}
		sections := r.Sections()
		md := join(sections)
		if err := ghcommenttest.CheckRenders(md); err != nil {
			t.Errorf("many=%v: does not render: %v", many, err)
		}
		html := renderGFM(t, md)
		for _, bad := range []string{"<script", "<img", "<b>x", "href=\"https://evil", "href=\"javascript", "<h1"} {
			if strings.Contains(html, bad) {
				t.Errorf("many=%v: rendered HTML holds %q", many, bad)
			}
		}
		// Outside code, no @name that GitHub would take for a mention.
		for _, text := range textOutsideCode(t, md) {
			if strings.Contains(text, " @acme") || strings.HasPrefix(text, "@") {
				t.Errorf("many=%v: a mention outside code: %q", many, text)
			}
		}
		// Every piece of a split comment stays within GitHub's limit.
		for i, b := range pack(sections, ghcomment.MaxBody) {
			if len(b) > ghcomment.MaxBody {
				t.Errorf("many=%v: body %d is %d bytes", many, i+1, len(b))
			}
			if err := ghcommenttest.CheckRenders(b); err != nil {
				t.Errorf("many=%v: body %d does not render on its own: %v", many, i+1, err)
			}
		}
	}
}

// bigLive is a live plan of n changes on one cluster, with long names.
func bigLive(n int) *liveplan.Report {
	c := liveplan.Cluster{Name: "staging-main", Environment: "staging", Server: "MySQL 8.0.39", Status: liveplan.Planned}
	for i := range n {
		name := fmt.Sprintf("acme_service_account_%05d", i)
		c.Changes = append(c.Changes, liveplan.Change{
			Change:    plan.Change{Account: account(name), Summary: "grant read on orders to " + name, Op: grantOn("orders", "SELECT")},
			Statement: "GRANT SELECT ON `orders`.* TO " + render.Account(account(name)), Drift: i%97 == 0})
	}
	return &liveplan.Report{ReadAt: readAt, Clusters: []liveplan.Cluster{c}}
}

// TestLiveLargeSplits: 5,000 changes on one cluster split into comments
// that each fit GitHub's limit and render on their own, every statement
// once and in order, the summary whole in the first.
func TestLiveLargeSplits(t *testing.T) {
	r := compare(t, fleet(), fleet())
	r.Live = bigLive(5000)
	start := time.Now()
	sections := r.Sections()
	bodies := pack(sections, ghcomment.MaxBody)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("rendering and packing 5,000 changes took %v", d)
	}
	if len(bodies) < 2 {
		t.Fatalf("%d body for 5,000 statements, want several", len(bodies))
	}
	for i, b := range bodies {
		if len(b) > ghcomment.MaxBody {
			t.Errorf("body %d is %d bytes, over %d", i+1, len(b), ghcomment.MaxBody)
		}
		if err := ghcommenttest.CheckRenders(b); err != nil {
			t.Errorf("body %d does not render on its own: %v", i+1, err)
		}
		if i > 0 && !strings.HasPrefix(b, "<details><summary>statements on <b>staging-main</b> (continued)</summary>") {
			t.Errorf("body %d starts with %.80q, want the block of SQL continued", i+1, b)
		}
	}
	all, pos := strings.Join(bodies, ""), 0
	for i := range 5000 {
		stmt := fmt.Sprintf("GRANT SELECT ON `orders`.* TO 'acme_service_account_%05d'@'%%';\n", i)
		j := strings.Index(all[pos:], stmt)
		if j < 0 {
			t.Fatalf("statement %d is missing or out of order", i)
		}
		pos += j + len(stmt)
	}
}

// BenchmarkLive5000 renders and packs a live plan of 5,000 changes on one
// cluster: what `dbusers comment` adds for a large first rollout.
func BenchmarkLive5000(b *testing.B) {
	r := compare(b, fleet(), fleet())
	r.Live = bigLive(5000)
	b.ReportAllocs()
	var bodies []string
	for b.Loop() {
		bodies = pack(r.Sections(), ghcomment.MaxBody)
	}
	b.ReportMetric(float64(len(bodies)), "comments")
}
