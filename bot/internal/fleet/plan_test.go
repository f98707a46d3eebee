package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/rdstls"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// candidate encodes content as dbusers plan --live sends it.
func candidate(tb testing.TB, c ssmbundle.Content) string {
	tb.Helper()
	_, text, err := ssmbundle.NewCandidate(c, ssmbundle.Origin{Commit: "head123", Time: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	return text
}

func planEvent(tb testing.TB, fields map[string]any) []byte {
	tb.Helper()
	return mustJSON(tb, map[string]any{"plan": fields})
}

func TestDecodePlanRefuses(t *testing.T) {
	good := candidate(t, ssmbundle.Content{Settings: config.Settings{Prefix: "acme"}})
	for name, tc := range map[string]struct {
		event string
		want  string
	}{
		"apply next to plan":     {`{"plan": {"bundle": "` + good + `"}, "dry_run": false}`, `field "dry_run" next to "plan"`},
		"clusters next to plan":  {`{"plan": {"bundle": "` + good + `"}, "clusters": ["a"]}`, `field "clusters" next to "plan"`},
		"apply inside plan":      {`{"plan": {"bundle": "` + good + `", "apply": true}}`, `unknown field plan."apply"`},
		"dry_run inside plan":    {`{"plan": {"bundle": "` + good + `", "dry_run": false}}`, `unknown field plan."dry_run"`},
		"repeated key":           {`{"plan": {"bundle": "` + good + `", "bundle": "` + good + `"}}`, `"bundle"`},
		"no bundle":              {`{"plan": {}}`, "plan.bundle is missing"},
		"null plan":              {`{"plan": null}`, "want an object"},
		"plan not an object":     {`{"plan": "x"}`, "want an object"},
		"bundle not a string":    {`{"plan": {"bundle": 1}}`, "field bundle: want a string"},
		"bundle not a bundle":    {`{"plan": {"bundle": "aGVsbG8="}}`, "plan.bundle: not gzip"},
		"bad base":               {`{"plan": {"bundle": "` + good + `", "base_bundle": "%%%"}}`, "plan.base_bundle: not base64"},
		"empty cluster name":     {`{"plan": {"bundle": "` + good + `", "clusters": [" "]}}`, "plan.clusters[0] is empty"},
		"clusters not a list":    {`{"plan": {"bundle": "` + good + `", "clusters": "a"}}`, "want a list"},
		"upper-case PLAN field":  {`{"plan": {"BUNDLE": "` + good + `"}}`, `unknown field plan."BUNDLE"`},
		"not JSON":               {`{"plan": `, "plan invoke"},
		"over the payload limit": {`{"plan": {"bundle": "` + strings.Repeat("A", maxEventBytes) + `"}}`, "more than the"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodePlan([]byte(tc.event))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	req, err := DecodePlan([]byte(`{"plan": {"bundle": "` + good + `", "clusters": ["b", "a", "b"]}}`))
	if err != nil || strings.Join(req.Clusters, ",") != "a,b" || req.Bundle == nil || req.Base != nil {
		t.Errorf("decoded %+v, %v", req, err)
	}
}

// TestPlanFunctionOnlyPlans: the plan function, which is all the PR
// workflow's role may invoke, refuses a run before anything is read.
func TestPlanFunctionOnlyPlans(t *testing.T) {
	var out syncBuffer
	deps := Deps{Stdout: &out} // no AWS client: a call would panic
	for _, event := range []string{`{"dry_run": false}`, `{"dry_run": true}`, string(readEvent(t, "parameter_store_change_update.json")),
		string(readEvent(t, "scheduled_event.json")), `{"PLAN": {}}`, `[]`} {
		rep, err := Invoke(context.Background(), deps, Config{Pointer: "/dbusers/config", PlanOnly: true}, []byte(event))
		if err == nil || rep != nil || !strings.Contains(err.Error(), "this is the plan function") {
			t.Errorf("%s to the plan function: %v, %v", event, rep, err)
		}
	}
	if !strings.Contains(out.buf.String(), `"msg":"event refused"`) {
		t.Errorf("the refusal is not logged: %s", out.buf.String())
	}
}

// TestPlanSourceCannotApply reads plan.go: the plan mode calls
// engine.Preview and never engine.Reconcile, nor builds engine.Options
// (the only type that carries Apply).
func TestPlanSourceCannotApply(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "plan.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var previews int
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == "engine" {
			switch sel.Sel.Name {
			case "Reconcile", "Options":
				t.Errorf("plan.go uses engine.%s", sel.Sel.Name)
			case "Preview":
				previews++
			}
		}
		if sel.Sel.Name == "reconcile" || sel.Sel.Name == "cluster" {
			t.Errorf("plan.go calls the run's %s", sel.Sel.Name)
		}
		return true
	})
	if previews == 0 {
		t.Error("plan.go never calls engine.Preview")
	}
}

// TestPlanLive: a published fleet, applied; someone grants by hand; a pull
// request adds carol, removes bob, adds a cluster and points an existing
// one at another host. The plan invoke returns the three changes with
// their statements and the hand-made grant as drift, reports the new
// cluster unpublished without reaching it, plans the moved one at its
// published endpoint, logs in with the plan secret where there is one,
// alerts nobody and changes nothing.
func TestPlanLive(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		testPlanLive(t, nil)
	})
	t.Run("mariadb", func(t *testing.T) {
		maria := mysqltest.MariaDB(t, "the plan mode was NOT run against a real server")
		t.Parallel()
		testPlanLive(t, maria)
	})
}

func testPlanLive(t *testing.T, maria *mysqltest.Server) {
	ctx := context.Background()
	w := newWorld(t)
	prefix := w.name
	dbs := []string{prefix + "_orders"}
	var srv *server
	if maria == nil {
		srv = startEmbedded(t, dbs...)
	} else {
		srv = openMariaDB(t, maria, prefix, dbs...)
	}
	admin := w.secret(t, prefix+"/main/admin", map[string]any{"username": srv.adminUser, "password": srv.adminPassword})
	planSecret := w.secret(t, prefix+"/main/plan", map[string]any{"username": srv.adminUser, "password": srv.adminPassword})
	secrets := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol"} {
		secrets[u] = w.secret(t, prefix+"/"+u, map[string]any{"password": mysqltest.Password(u)})
	}
	main := config.Cluster{Name: "main", Environment: "prod", AccountID: acctA, Region: "eu-west-1", Endpoint: endpoint("main"), Port: 3306,
		Engine: srv.Engine, AdminSecret: admin, PlanSecret: planSecret, Databases: dbs, TLS: rdstls.Disabled}
	base := ssmbundle.Content{Settings: settingsFor(w), Clusters: []config.Cluster{main},
		Users: []config.User{pwUser("alice", secrets["alice"], "read", "main"), pwUser("bob", secrets["bob"], "write", "main")}}
	base.Settings.RemovalLimit = config.RemovalLimit{Count: 5, Fraction: 1}
	w.publish(t, base, "base123")
	conn := &connector{tb: t, targets: map[string]netAddr{"main": {srv.net, srv.addr}}}
	var out syncBuffer
	cfg := testConfig(t, w)
	if _, err := Handle(ctx, w.deps(&out, conn), cfg, []byte(`{"dry_run": false}`)); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, "GRANT PROCESS ON *.* TO '"+prefix+"_alice'@'%'")
	before := srv.accounts(t, prefix)
	w.sns.sent = nil
	w.secrets.reads = nil

	moved := main
	moved.Endpoint, moved.AdminSecret = "attacker.example", prefix+"/main/other"
	added := config.Cluster{Name: "added", Environment: "dev", AccountID: acctA, Region: "eu-west-1", Endpoint: "new.example", Port: 3306,
		Engine: srv.Engine, AdminSecret: admin, Databases: dbs, TLS: rdstls.Disabled}
	head := base
	head.Clusters = []config.Cluster{added, moved}
	head.Users = []config.User{pwUser("alice", secrets["alice"], "read", "main"), pwUser("carol", secrets["carol"], "read", "main", "added")}

	out = syncBuffer{}
	planCfg := cfg
	planCfg.PlanOnly = true
	res, err := Invoke(ctx, w.deps(&out, conn), planCfg, planEvent(t, map[string]any{"bundle": candidate(t, head)}))
	if err != nil {
		t.Fatal(err)
	}
	rep := res.(*liveplan.Report)
	if len(rep.Clusters) != 2 || rep.Clusters[0].Name != "added" || rep.Clusters[1].Name != "main" {
		t.Fatalf("clusters %+v", rep.Clusters)
	}
	if a := rep.Clusters[0]; a.Status != liveplan.Unpublished || !strings.Contains(a.Error, "not in the published configuration") {
		t.Errorf("added cluster: %s, %q", a.Status, a.Error)
	}
	if l, _ := conn.login("added"); l.Cluster != "" {
		t.Errorf("the unpublished cluster was reached: %+v", l)
	}
	m := rep.Clusters[1]
	if m.Status != liveplan.Planned || m.Server == "" || m.ReadAt.IsZero() {
		t.Fatalf("main: %s (%s: %s), server %q", m.Status, m.Stage, m.Error, m.Server)
	}
	if l, _ := conn.login("main"); l.Host != endpoint("main") {
		t.Errorf("main was reached at %q, not its published endpoint", l.Host)
	}
	if !strings.Contains(strings.Join(m.Notes, "\n"), "changes how the cluster is reached (endpoint, admin_secret)") {
		t.Errorf("notes %q do not say the pull request moves the cluster", m.Notes)
	}
	got := map[string]bool{}
	for _, c := range m.Changes {
		if c.Statement == "" {
			t.Errorf("%s has no statement (%s)", c.Summary, c.RenderError)
		}
		got[c.Account.User+" "+string(c.Action())] = c.Drift
	}
	for change, drift := range map[string]bool{
		prefix + "_carol " + string(plan.CreateUser): false,
		prefix + "_bob " + string(plan.DropUser):     false,
		prefix + "_alice " + string(plan.Revoke):     true,
	} {
		if d, ok := got[change]; !ok || d != drift {
			t.Errorf("change %q: present %v, drift %v; want drift %v (changes: %v)", change, ok, d, drift, got)
		}
	}
	if rep.Version == "" || rep.Commit != "head123" || rep.Published == "" || rep.ReadAt.IsZero() {
		t.Errorf("report %+v", rep)
	}
	// The plan secret, never the admin secret, and never the PR's.
	for _, r := range w.secrets.all() {
		if r.secret == admin || r.secret == moved.AdminSecret {
			t.Errorf("plan mode read %s", r.secret)
		}
	}
	// No secret and no hash travels back; nobody is alerted; nothing moved.
	body := string(mustJSON(t, rep))
	for _, pw := range []string{srv.adminPassword, mysqltest.Password("carol"), mysqltest.Password("alice"), "*"} {
		if pw != "*" && strings.Contains(body, pw) {
			t.Errorf("the response carries a password")
		}
	}
	if strings.Contains(body, "authentication_string") || strings.Contains(strings.ToLower(body), "*2470c0c06dee42fd1618bb99005adca2ec9d1e19") {
		t.Error("the response carries a hash")
	}
	if n := len(w.sns.messages()); n != 0 {
		t.Errorf("plan mode sent %d SNS message(s)", n)
	}
	if after := srv.accounts(t, prefix); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("accounts %v after the plan, %v before", after, before)
	}
	for _, l := range out.lines(t) {
		if _, ok := l["audit"]; ok {
			t.Errorf("plan mode wrote an audit record: %v", l)
		}
		if _, ok := l["_aws"]; ok {
			t.Errorf("plan mode wrote metrics: %v", l)
		}
	}

	// A base bundle: drift is told against it instead of the published one.
	res, err = Invoke(ctx, w.deps(&out, conn), cfg, planEvent(t, map[string]any{"bundle": candidate(t, head), "base_bundle": candidate(t, head),
		"clusters": []string{"main"}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.(*liveplan.Report).Clusters[0].Changes {
		if !c.Drift {
			t.Errorf("against itself as base, %q is not drift", c.Summary)
		}
	}
}

// TestPlanRefusals: a plan invoke that names an unknown cluster, or comes
// before anything can be trusted, is refused with nothing reached.
func TestPlanRefusals(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	conn := &connector{tb: t, targets: map[string]netAddr{}}
	var out syncBuffer
	content := ssmbundle.Content{Settings: settingsFor(w), Clusters: []config.Cluster{{Name: "main", Environment: "dev", AccountID: acctA,
		Region: "eu-west-1", Endpoint: "h", Engine: "mariadb-10.11", AdminSecret: "s", Databases: []string{"d"}}}}
	_, err := Plan(ctx, w.deps(&out, conn), testConfig(t, w), planEvent(t, map[string]any{"bundle": candidate(t, content), "clusters": []string{"nope"}}))
	if err == nil || !strings.Contains(err.Error(), `unknown cluster(s) "nope"`) {
		t.Errorf("unknown cluster: %v", err)
	}
	// Nothing published yet: every cluster is new.
	rep, err := Plan(ctx, w.deps(&out, conn), testConfig(t, w), planEvent(t, map[string]any{"bundle": candidate(t, content)}))
	if err != nil || len(rep.Clusters) != 1 || rep.Clusters[0].Status != liveplan.Unpublished {
		t.Errorf("before any publish: %+v, %v", rep, err)
	}
	// A published bundle that is not signed by the key: refused, as a run refuses it.
	_, err = ssmbundle.Publish(ctx, w.ssm, ssmbundle.Target{Pointer: w.pointer, Tier: "Standard", Keep: 3}, content,
		ssmbundle.Origin{Commit: "c", Time: time.Now()}, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Plan(ctx, w.deps(&out, conn), testConfig(t, w), planEvent(t, map[string]any{"bundle": candidate(t, content)}))
	if err == nil || !strings.Contains(err.Error(), "published configuration") {
		t.Errorf("unsigned published bundle: %v", err)
	}
	if len(w.sts.calls) != 0 {
		t.Errorf("assumed %v", w.sts.calls)
	}
}

func TestFitKeepsTheResponseSmall(t *testing.T) {
	rep := &liveplan.Report{}
	for c := range 3 {
		lc := liveplan.Cluster{Name: string(rune('a' + c)), Status: liveplan.Planned}
		for i := range 5000 * (c + 1) {
			lc.Changes = append(lc.Changes, liveplan.Change{Change: plan.Change{Account: mysqlstate.AccountID{User: "acme_u", Host: "%"}, Summary: strings.Repeat("x", 100), Op: plan.Drop{}}, Statement: strings.Repeat("y", 200+i%7)})
		}
		rep.Clusters = append(rep.Clusters, lc)
	}
	dropped := rep.Fit(1 << 20)
	data, _ := json.Marshal(rep)
	if len(data) > 1<<20 {
		t.Errorf("%d bytes after Fit(1 MB)", len(data))
	}
	total := 0
	for _, c := range rep.Clusters {
		total += c.Truncated
		if c.Truncated > 0 && len(c.Changes) == 0 {
			t.Errorf("%s: every change left out", c.Name)
		}
	}
	if dropped == 0 || dropped != total || total+len(rep.Clusters[0].Changes)+len(rep.Clusters[1].Changes)+len(rep.Clusters[2].Changes) != 30000 {
		t.Errorf("left out %d, counted %d", dropped, total)
	}
	if rep.Fit(1<<30) != 0 {
		t.Error("a report within budget lost changes")
	}
}

// tenThousand is the largest configuration publish is measured with:
// 10,000 users over 200 clusters, each user on two.
func tenThousand() ssmbundle.Content {
	c := ssmbundle.Content{Settings: config.Settings{Prefix: "acme", SSM: config.SSM{Parameter: "/dbusers/config"}}}
	for i := range 200 {
		c.Clusters = append(c.Clusters, config.Cluster{Name: fmt.Sprintf("c%03d", i), Environment: "prod", AccountID: acctA, Region: "eu-west-1",
			Endpoint: endpoint(fmt.Sprintf("c%03d", i)), Engine: "aurora-mysql-3", AdminSecret: fmt.Sprintf("dbusers/c%03d/admin", i),
			Databases: []string{"orders", "billing"}})
	}
	for i := range 10_000 {
		c.Users = append(c.Users, config.User{Name: fmt.Sprintf("u%05d", i), Owner: "team@acme.example", Kind: "service",
			Auth: config.UserAuth{Type: "password", Secret: fmt.Sprintf("dbusers/u%05d", i)},
			Access: []config.Access{{Clusters: []string{fmt.Sprintf("c%03d", i%200), fmt.Sprintf("c%03d", (i+1)%200)},
				Databases: []string{"*"}, Role: "read"}}})
	}
	return c
}

// BenchmarkDecodePlan10kUsers: a plan invoke with a 10,000-user candidate
// and its base fits in Lambda's 6 MB request, and decodes in the time
// reported.
func BenchmarkDecodePlan10kUsers(b *testing.B) {
	c := tenThousand()
	event := planEvent(b, map[string]any{"bundle": candidate(b, c), "base_bundle": candidate(b, c)})
	if len(event) > maxEventBytes {
		b.Fatalf("%d bytes, over %d", len(event), maxEventBytes)
	}
	for b.Loop() {
		if _, err := DecodePlan(event); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(event))/1e6, "request-MB")
}

// BenchmarkFitResponse: the live plan of a new 10,000-user cluster (20,000
// changes with statements) is cut to the response budget.
func BenchmarkFitResponse(b *testing.B) {
	var full liveplan.Cluster
	for i := range 10_000 {
		acct := mysqlstate.AccountID{User: fmt.Sprintf("acme_u%05d", i), Host: "%"}
		full.Changes = append(full.Changes,
			liveplan.Change{Change: plan.Change{Account: acct, Summary: "create " + acct.User + " (service, password authentication) for team@acme.example",
				Op: plan.NewAccount{}}, Statement: "CREATE USER '" + acct.User + "'@'%' IDENTIFIED BY '<redacted>' REQUIRE SSL"},
			liveplan.Change{Change: plan.Change{Account: acct, Summary: "grant read on orders to " + acct.User,
				Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Database: "orders", Pattern: "orders"}, Privileges: []string{"SELECT"}}},
				Statement: "GRANT SELECT ON `orders`.* TO '" + acct.User + "'@'%'"})
	}
	var size, kept int
	for b.Loop() {
		rep := &liveplan.Report{Clusters: []liveplan.Cluster{full, full, full}}
		for i := range rep.Clusters {
			rep.Clusters[i].Name = fmt.Sprintf("c%d", i)
		}
		rep.Fit(ResponseBudget)
		data, err := json.Marshal(rep)
		if err != nil {
			b.Fatal(err)
		}
		size, kept = len(data), len(rep.Clusters[0].Changes)
	}
	if size > ResponseBudget {
		b.Fatalf("%d bytes, over %d", size, ResponseBudget)
	}
	b.ReportMetric(float64(size)/1e6, "response-MB")
	b.ReportMetric(float64(kept), "changes-kept/cluster")
}
