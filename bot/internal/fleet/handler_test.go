package fleet

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/rdstls"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

const (
	acctA = "111111111111"
	acctB = "222222222222"
	acctC = "333333333333"
)

// hashRE matches the password hashes a server stores: mysql_native_password
// (*<40 hex>), caching_sha2_password and sha256_password ($A$005$...).
var hashRE = regexp.MustCompile(`\*[0-9A-Fa-f]{40}|\$A\$[0-9]{3}\$`)

// publishEvent is the real-shaped EventBridge event for w's pointer.
func (w *world) publishEvent(tb testing.TB) []byte {
	tb.Helper()
	return []byte(strings.ReplaceAll(string(readEvent(tb, "parameter_store_change_update.json")), `"/dbusers/config"`, `"`+w.pointer+`"`))
}

func testConfig(tb testing.TB, w *world) Config {
	tb.Helper()
	roots, err := rdstls.Load("")
	if err != nil {
		tb.Fatal(err)
	}
	return Config{Pointer: w.pointer, SNSTopicARN: w.topic, LockTimeout: 20 * time.Second, Roots: roots.Pool, RootsSource: roots.Source,
		SigningKeyARN: w.key}
}

func (w *world) deps(out *syncBuffer, conn *connector) Deps {
	return Deps{SSM: w.ssm, Keys: &ssmbundle.Keys{API: w.kms}, STS: w.sts, Secrets: w.secrets.factory, SNS: w.sns, Stdout: out, Connect: conn.connect, Now: time.Now}
}

func settingsFor(w *world) config.Settings {
	return config.Settings{
		Prefix:       w.name,
		RemovalLimit: config.RemovalLimit{Count: 1, Fraction: 0.1},
		SSM:          config.SSM{Parameter: w.pointer, Tier: "Standard"},
		AWS:          config.AWS{ManagementRole: "dbusers-management", ExternalID: "ext-fleet"},
		Concurrency:  3,
	}
}

func endpoint(name string) string { return name + ".cluster-c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com" }

// TestHandleFleet runs a publish event over two accounts (and a third that
// refuses the role) and six clusters: one healthy, one whose removal limit
// trips, one unreachable, one without its admin secret, one declaring the
// wrong engine and one whose role cannot be assumed. The healthy cluster
// and the limited one converge; the others are reported; SNS gets one
// message naming them; the invocation returns an error.
func TestHandleFleet(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		testHandleFleet(t, nil)
	})
	t.Run("mariadb", func(t *testing.T) {
		maria := mysqltest.MariaDB(t, "the handler was NOT run against a real server")
		t.Parallel()
		testHandleFleet(t, maria)
	})
}

// testHandleFleet runs on MariaDB, or on embedded servers alone when maria
// is nil.
func testHandleFleet(t *testing.T, maria *mysqltest.Server) {
	ctx := context.Background()
	w := newWorld(t)
	prefix := w.name
	okDBs := []string{prefix + "_orders", prefix + "_billing"}
	limitDBs := []string{prefix + "_events"}
	var primary *server
	if maria == nil {
		primary = startEmbedded(t, okDBs...)
	} else {
		primary = openMariaDB(t, maria, prefix, okDBs...)
	}
	limited := startEmbedded(t, limitDBs...)
	for _, u := range []string{"old1", "old2", "old3"} {
		limited.Exec(t, "CREATE USER '"+prefix+"_"+u+"'@'%' IDENTIFIED BY 'departed'")
	}

	appPassword := mysqltest.Password("app")
	adminOK := w.secret(t, prefix+"/c-ok/admin", map[string]any{"username": primary.adminUser, "password": primary.adminPassword})
	// RDS-style secret with host and port: the cluster file's endpoint wins.
	adminLimit := w.secret(t, prefix+"/c-limit/admin", map[string]any{"username": limited.adminUser, "password": limited.adminPassword,
		"engine": "mysql", "host": "elsewhere.example", "port": 4406})
	adminDown := w.secret(t, prefix+"/c-down/admin", map[string]any{"username": "admin", "password": mysqltest.Password("admin"), "port": "3307"})
	appSecret := w.secret(t, prefix+"/app", map[string]any{"password": appPassword})
	reportingSecret := prefix + "/reporting" // never created

	clusters := []config.Cluster{
		{Name: "c-ok", Environment: "prod", AccountID: acctA, Region: "eu-west-1", Endpoint: endpoint("c-ok"), Port: 3306,
			Engine: primary.Engine, AdminSecret: adminOK, Databases: okDBs, TLS: rdstls.Disabled},
		{Name: "c-limit", Environment: "prod", AccountID: acctB, Region: "us-east-2", Endpoint: endpoint("c-limit"), Port: 3306,
			Engine: flavor.EmbeddedEngine, AdminSecret: adminLimit, Databases: limitDBs, TLS: rdstls.VerifyCA, ExternalID: "ext-b"},
		{Name: "c-down", Environment: "prod", AccountID: acctA, Region: "eu-west-1", Endpoint: endpoint("c-down"),
			Engine: "mariadb-10.11", AdminSecret: adminDown, Databases: []string{"orders"}, TLS: rdstls.Required},
		{Name: "c-nosecret", Environment: "prod", AccountID: acctB, Region: "us-east-2", Endpoint: endpoint("c-nosecret"), Port: 3306,
			Engine: "mariadb-10.11", AdminSecret: prefix + "/c-nosecret/admin", Databases: []string{"orders"}},
		{Name: "c-mismatch", Environment: "staging", AccountID: acctA, Region: "eu-west-1", Endpoint: endpoint("c-mismatch"), Port: 3306,
			Engine: "aurora-mysql-3", AdminSecret: adminOK, Databases: okDBs},
		{Name: "c-denied", Environment: "staging", AccountID: acctC, Region: "eu-west-1", Endpoint: endpoint("c-denied"), Port: 3306,
			Engine: "mariadb-10.11", AdminSecret: prefix + "/c-denied/admin", Databases: []string{"orders"},
			RoleARN: "arn:aws:iam::" + acctC + ":role/custom/dbusers"},
	}
	users := []config.User{
		pwUser("app", appSecret, "write", "c-ok", "c-limit"),
		pwUser("reporting", reportingSecret, "read", "c-ok"),
	}
	w.sts.deny["arn:aws:iam::"+acctC+":role/custom/dbusers"] = true
	pub := w.publish(t, ssmbundle.Content{Settings: settingsFor(w), Clusters: clusters, Users: users}, "abc123")

	conn := &connector{tb: t, targets: map[string]netAddr{
		"c-ok":       {primary.net, primary.addr},
		"c-mismatch": {primary.net, primary.addr},
		"c-limit":    {limited.net, limited.addr},
		"c-down":     {"tcp", closedPort(t)},
	}}
	var out syncBuffer
	cfg := testConfig(t, w)
	rep, err := Handle(ctx, w.deps(&out, conn), cfg, w.publishEvent(t))

	// The invocation fails, naming the failed clusters.
	if err == nil || !strings.Contains(err.Error(), "4 of 6 cluster(s) failed: c-denied, c-down, c-mismatch, c-nosecret") {
		t.Fatalf("error = %v", err)
	}
	if rep == nil {
		t.Fatal("no report")
	}
	byName := map[string]ClusterReport{}
	var names []string
	for _, c := range rep.Clusters {
		byName[c.Cluster] = c
		names = append(names, c.Cluster)
	}
	if want := []string{"c-denied", "c-down", "c-limit", "c-mismatch", "c-nosecret", "c-ok"}; !slices.Equal(names, want) {
		t.Fatalf("clusters %v, want %v (sorted)", names, want)
	}
	if rep.ConfigVersion != pub.Version || rep.Commit != "abc123" || rep.Trigger != TriggerPublish || rep.DryRun {
		t.Errorf("report header: %+v", rep)
	}
	for name, want := range map[string]struct{ stage, err string }{
		"c-denied":   {StageAssumeRole, "AccessDenied"},
		"c-down":     {StageConnect, "connection refused"},
		"c-nosecret": {StageAdminSecret, "admin secret " + prefix + "/c-nosecret/admin: not found"},
		"c-mismatch": {StageReconcile, "engine mismatch"},
	} {
		c := byName[name]
		if c.Status != engine.Failed || c.Stage != want.stage || !strings.Contains(c.Error, want.err) {
			t.Errorf("%s: status %s, stage %s, error %q; want failed at %s with %q", name, c.Status, c.Stage, c.Error, want.stage, want.err)
		}
	}

	// The healthy cluster converged: app exists and logs in with the
	// secret's password; reporting (no secret) is skipped and reported.
	// (An IAM user on a server without IAM is a validation error: the
	// bundle is refused whole, see TestHandleRefusesUnresolvableBundle.)
	ok := byName["c-ok"]
	if ok.Status != engine.Applied || ok.UsersCreated != 1 || ok.Statements == 0 {
		t.Errorf("c-ok: %+v", ok)
	}
	if got, want := primary.accounts(t, prefix), []string{prefix + "_app"}; !slices.Equal(got, want) {
		t.Errorf("c-ok accounts %v, want %v", got, want)
	}
	if err := primary.CanLogin(ctx, prefix+"_app", appPassword); err != nil {
		t.Errorf("log in as %s_app: %v", prefix, err)
	}
	var skipped []string
	for _, s := range ok.Skipped {
		skipped = append(skipped, s.User+": "+s.Reason)
	}
	if ok.SkippedCount != 1 || !strings.Contains(strings.Join(skipped, "\n"), "reporting: password secret "+reportingSecret+" is missing") {
		t.Errorf("c-ok skipped: %q", skipped)
	}
	if !slices.Contains(ok.Notes, "password secret "+reportingSecret+": not found") {
		t.Errorf("c-ok notes %q lack the missing secret", ok.Notes)
	}

	// The limited cluster applied everything but the drops.
	lim := byName["c-limit"]
	if lim.Status != engine.Applied || lim.Held != 3 || !strings.Contains(lim.LimitTripped, "removal limit tripped on c-limit") || lim.UsersDropped != 0 || lim.UsersCreated != 1 {
		t.Errorf("c-limit: %+v", lim)
	}
	wantLimited := []string{prefix + "_app", prefix + "_old1", prefix + "_old2", prefix + "_old3"}
	if got := limited.accounts(t, prefix); !slices.Equal(got, wantLimited) {
		t.Errorf("c-limit accounts %v, want %v", got, wantLimited)
	}
	if !slices.Equal(rep.Failed, []string{"c-denied", "c-down", "c-mismatch", "c-nosecret"}) || !slices.Equal(rep.LimitsTripped, []string{"c-limit"}) {
		t.Errorf("failed %v, limits %v", rep.Failed, rep.LimitsTripped)
	}

	// One SNS message naming every failed cluster and the tripped limit.
	msgs := w.sns.messages()
	if len(msgs) != 1 || !rep.Alerted {
		t.Fatalf("SNS messages: %d (alerted %v), want 1", len(msgs), rep.Alerted)
	}
	if aws.ToString(msgs[0].TopicArn) != w.topic {
		t.Errorf("topic %s, want %s", aws.ToString(msgs[0].TopicArn), w.topic)
	}
	body := aws.ToString(msgs[0].Message)
	for _, want := range []string{"- c-denied (account 333333333333", "- c-down (account 111111111111", "- c-nosecret (account 222222222222",
		"- c-mismatch (account 111111111111", "- c-limit: removal limit tripped", pub.Version, "commit abc123"} {
		if !strings.Contains(body, want) {
			t.Errorf("SNS message lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "c-ok") {
		t.Errorf("SNS message names the healthy cluster:\n%s", body)
	}
	if s := aws.ToString(msgs[0].Subject); s != "dbusers: 4 cluster(s) failed, removal limit tripped on 1 cluster(s)" {
		t.Errorf("subject %q", s)
	}

	// The rollout record says the same, cluster by cluster, with what
	// happened to each account, what the removal limit held back, and no
	// password (the admin logins' and app's) or hash anywhere.
	rec, recRaw := w.record(t, pub.Version)
	if rec.Outcome() != rollout.NotOK || len(rec.Problems()) != 5 || rec.Commit != "abc123" {
		t.Errorf("record: outcome %s, problems %+v", rec.Outcome(), rec.Problems())
	}
	for _, name := range []string{"c-denied", "c-down", "c-nosecret", "c-mismatch"} {
		if c, _ := rec.FindCluster(name); c.Status != rollout.Failed || c.Stage != byName[name].Stage || c.Error != byName[name].Error {
			t.Errorf("record of %s: %+v", name, c)
		}
	}
	if c, _ := rec.FindCluster("c-limit"); c.Held != 3 || c.LimitTripped != lim.LimitTripped || c.Created != 1 {
		t.Errorf("record of c-limit: %+v", c)
	}
	var events []string
	for _, a := range rec.Accounts {
		events = append(events, a.Cluster+" "+a.Account+" "+string(a.Event))
	}
	wantEvents := []string{"c-limit " + prefix + "_app created", "c-ok " + prefix + "_app created",
		"c-limit " + prefix + "_old1 held", "c-limit " + prefix + "_old2 held", "c-limit " + prefix + "_old3 held"}
	if !slices.Equal(events, wantEvents) {
		t.Errorf("record's accounts %q, want %q", events, wantEvents)
	}
	for _, secret := range []string{appPassword, primary.adminPassword, limited.adminPassword, "departed"} {
		if strings.Contains(recRaw, secret) {
			t.Errorf("the rollout record holds a password")
		}
	}
	if hashRE.MatchString(recRaw) {
		t.Errorf("the rollout record holds a password hash: %s", hashRE.FindString(recRaw))
	}

	// Roles: the settings' role in each cluster's account (once per role and
	// external ID), the cluster's role_arn where it has one.
	calls := slices.Clone(w.sts.calls)
	slices.Sort(calls)
	wantCalls := []string{
		"arn:aws:iam::111111111111:role/dbusers-management ext-fleet",
		"arn:aws:iam::222222222222:role/dbusers-management ext-b",
		"arn:aws:iam::222222222222:role/dbusers-management ext-fleet",
		"arn:aws:iam::333333333333:role/custom/dbusers ext-fleet",
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("AssumeRole calls (-want +got):\n%s", diff)
	}
	// Secrets are read with the credentials of the cluster's account, in
	// the cluster's region; IAM users cause no read.
	type read struct{ secret, role, region string }
	var reads []read
	for _, r := range w.secrets.all() {
		reads = append(reads, read{r.secret, w.sts.roleOf(r.key), r.region})
	}
	roleA, roleB := "arn:aws:iam::111111111111:role/dbusers-management", "arn:aws:iam::222222222222:role/dbusers-management"
	// Each secret once per account and region: c-ok and c-mismatch share
	// adminOK, app is read once in each account.
	wantReads := []read{
		{adminOK, roleA, "eu-west-1"},
		{appSecret, roleA, "eu-west-1"}, {reportingSecret, roleA, "eu-west-1"},
		{adminDown, roleA, "eu-west-1"},
		{adminLimit, roleB, "us-east-2"}, {appSecret, roleB, "us-east-2"},
		{prefix + "/c-nosecret/admin", roleB, "us-east-2"},
	}
	less := func(a, b read) int { return strings.Compare(a.secret+a.role+a.region, b.secret+b.role+b.region) }
	slices.SortFunc(reads, less)
	slices.SortFunc(wantReads, less)
	if diff := cmp.Diff(wantReads, reads, cmp.AllowUnexported(read{})); diff != "" {
		t.Errorf("secret reads (-want +got):\n%s", diff)
	}

	// What the handler connected with: the cluster file's endpoint and
	// port over the admin secret's, the secret's login, TLS per mode.
	l, _ := conn.login("c-ok")
	if l.Host != endpoint("c-ok") || l.Port != 3306 || l.User != primary.adminUser || l.Password != primary.adminPassword || l.TLS != nil {
		t.Errorf("c-ok login (tls disabled): host %s port %d user %s tls %+v", l.Host, l.Port, l.User, l.TLS)
	}
	l, _ = conn.login("c-mismatch")
	if l.Host != endpoint("c-mismatch") || l.TLS == nil || l.TLS.ServerName != endpoint("c-mismatch") || l.TLS.RootCAs == nil || l.TLS.InsecureSkipVerify {
		t.Errorf("c-mismatch login (verify-identity by default): host %s tls %+v", l.Host, l.TLS)
	}
	l, _ = conn.login("c-limit")
	if l.Host != endpoint("c-limit") || l.Port != 3306 || l.TLS == nil || !l.TLS.InsecureSkipVerify || l.TLS.VerifyConnection == nil {
		t.Errorf("c-limit login (verify-ca; secret host and port ignored): host %s port %d tls %+v", l.Host, l.Port, l.TLS)
	}
	l, _ = conn.login("c-down")
	if l.Port != 3307 || l.TLS == nil || !l.TLS.InsecureSkipVerify || l.TLS.VerifyConnection != nil {
		t.Errorf("c-down login (required; port from the secret): port %d tls %+v", l.Port, l.TLS)
	}

	// Logs: every line JSON; audit lines carry version and commit; no
	// password anywhere; one EMF document with the run's figures.
	lines := out.lines(t)
	raw := out.buf.String()
	for _, pw := range []string{appPassword, primary.adminPassword, limited.adminPassword} {
		if strings.Contains(raw, pw) {
			t.Errorf("a password reached the output")
		}
	}
	okAudit := audits(lines, "c-ok")
	if len(okAudit) != ok.Statements {
		t.Errorf("c-ok: %d audit lines for %d statements", len(okAudit), ok.Statements)
	}
	for _, a := range okAudit {
		if a["config_version"] != pub.Version || a["commit"] != "abc123" || a["outcome"] != "applied" {
			t.Errorf("audit line %v", a)
		}
	}
	if len(audits(lines, "c-limit")) != lim.Statements {
		t.Errorf("c-limit: audit lines do not match %d statements", lim.Statements)
	}
	emf := emfOf(t, lines)
	for name, want := range map[string]float64{
		MetricClustersOK: 2, MetricClustersFailed: 4, MetricSafetyLimitsTripped: 1, MetricUsersCreated: 2,
		MetricUsersDropped: 0, MetricStatementsApplied: float64(ok.Statements + lim.Statements), MetricBundleErrors: 0,
	} {
		if emf[name] != want {
			t.Errorf("EMF %s = %v, want %v", name, emf[name], want)
		}
	}
	if d, _ := emf[MetricDurationMs].(float64); d <= 0 {
		t.Errorf("EMF DurationMs = %v", emf[MetricDurationMs])
	}

	// The scheduled run sends no write to converged clusters, and still
	// reports the same failures and the held drops.
	out = syncBuffer{}
	rep, err = Handle(ctx, w.deps(&out, conn), cfg, readEvent(t, "scheduled_event.json"))
	if err == nil || rep == nil {
		t.Fatalf("second run: %v", err)
	}
	for _, c := range rep.Clusters {
		switch c.Cluster {
		case "c-ok":
			if c.Status != engine.Unchanged || c.Writes != 0 {
				t.Errorf("second run c-ok: status %s, %d writes", c.Status, c.Writes)
			}
		case "c-limit":
			if c.Status != engine.Unchanged || c.Writes != 0 || c.Held != 3 {
				t.Errorf("second run c-limit: status %s, %d writes, %d held", c.Status, c.Writes, c.Held)
			}
		}
	}
	if rep.Trigger != TriggerSchedule || len(w.sns.messages()) != 2 {
		t.Errorf("second run: trigger %s, %d SNS messages in all", rep.Trigger, len(w.sns.messages()))
	}
}

// smallFleet publishes one cluster on an embedded server with one password
// user, for the tests that check what does not happen.
func smallFleet(t *testing.T) (*world, *server, *connector, string) {
	t.Helper()
	w := newWorld(t)
	srv := startEmbedded(t, w.name+"_orders")
	admin := w.secret(t, w.name+"/c-ok/admin", map[string]any{"username": srv.adminUser, "password": srv.adminPassword})
	app := w.secret(t, w.name+"/app", map[string]any{"password": mysqltest.Password("app")})
	clusters := []config.Cluster{
		{Name: "c-ok", Environment: "prod", AccountID: acctA, Region: "eu-west-1", Endpoint: endpoint("c-ok"), Port: 3306,
			Engine: flavor.EmbeddedEngine, AdminSecret: admin, Databases: []string{w.name + "_orders"}},
		{Name: "c-two", Environment: "prod", AccountID: acctB, Region: "eu-west-1", Endpoint: endpoint("c-two"), Port: 3306,
			Engine: flavor.EmbeddedEngine, AdminSecret: admin, Databases: []string{w.name + "_orders"}},
	}
	pub := w.publish(t, ssmbundle.Content{Settings: settingsFor(w), Clusters: clusters,
		Users: []config.User{pwUser("app", app, "read", "c-ok")}}, "def456")
	conn := &connector{tb: t, targets: map[string]netAddr{"c-ok": {srv.net, srv.addr}, "c-two": {"tcp", closedPort(t)}}}
	return w, srv, conn, pub.Version
}

// TestHandleCorruptBundle: a chunk that does not match the pointer's hash,
// or a missing chunk, changes nothing anywhere, alerts and fails.
func TestHandleCorruptBundle(t *testing.T) {
	for _, damage := range []string{"overwritten", "deleted"} {
		t.Run(damage, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			w, srv, conn, version := smallFleet(t)
			chunk := ssmbundle.ChunkName(w.pointer, version, 0)
			if damage == "overwritten" {
				got, err := w.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(chunk)})
				if err != nil {
					t.Fatal(err)
				}
				v := aws.ToString(got.Parameter.Value)
				flipped := v[:len(v)/2] + strings.Map(func(r rune) rune {
					if r == 'A' {
						return 'B'
					}
					return 'A'
				}, v[len(v)/2:len(v)/2+8]) + v[len(v)/2+8:]
				if _, err := w.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(chunk), Value: aws.String(flipped),
					Type: types.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
					t.Fatal(err)
				}
			} else {
				if _, err := w.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(chunk)}); err != nil {
					t.Fatal(err)
				}
			}
			var out syncBuffer
			rep, err := Handle(ctx, w.deps(&out, conn), testConfig(t, w), w.publishEvent(t))
			if !errors.Is(err, ssmbundle.ErrCorrupt) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("error %v, want ErrCorrupt saying nothing was changed", err)
			}
			if rep == nil || rep.BundleError == "" || len(rep.Clusters) != 0 {
				t.Fatalf("report %+v", rep)
			}
			if len(w.sts.calls) != 0 || len(w.secrets.all()) != 0 {
				t.Errorf("a corrupt bundle reached STS (%d) or Secrets Manager (%d)", len(w.sts.calls), len(w.secrets.all()))
			}
			if got := srv.accounts(t, w.name); len(got) != 0 {
				t.Errorf("accounts created from a corrupt bundle: %v", got)
			}
			msgs := w.sns.messages()
			if len(msgs) != 1 || !strings.Contains(aws.ToString(msgs[0].Message), "no cluster was changed") ||
				!strings.Contains(aws.ToString(msgs[0].Message), "bundle is corrupt") {
				t.Fatalf("SNS: %d messages %v", len(msgs), msgs)
			}
			if emf := emfOf(t, out.lines(t)); emf[MetricBundleErrors] != 1.0 || emf[MetricClustersOK] != 0.0 {
				t.Errorf("EMF %v", emf)
			}
		})
	}
}

// TestHandleRefusesUnresolvableBundle: a bundle intact by its hash that
// validation would refuse (here an IAM user on a server without IAM, which
// publish never writes) changes nothing anywhere: no cluster runs, the
// bundle error names the user and the cluster, and the alert goes out.
func TestHandleRefusesUnresolvableBundle(t *testing.T) {
	t.Parallel()
	w, srv, conn, _ := smallFleet(t)
	w.publish(t, ssmbundle.Content{Settings: settingsFor(w), Clusters: []config.Cluster{{Name: "c-ok", Environment: "prod",
		AccountID: acctA, Region: "eu-west-1", Endpoint: endpoint("c-ok"), Port: 3306, Engine: flavor.EmbeddedEngine,
		AdminSecret: "admin", Databases: []string{w.name + "_orders"}}},
		Users: []config.User{{Name: "alice", Owner: "alice@acme.example", Kind: "human",
			Access: []config.Access{{Clusters: []string{"c-ok"}, Databases: []string{"*"}, Role: "read"}}}}}, "bad123")
	var out syncBuffer
	rep, err := Handle(context.Background(), w.deps(&out, conn), testConfig(t, w), w.publishEvent(t))
	if err == nil || !strings.Contains(err.Error(), "user alice") || !strings.Contains(err.Error(), "cluster c-ok runs go-mysql-server, which has no IAM authentication") {
		t.Fatalf("error = %v", err)
	}
	if rep == nil || rep.BundleError == "" || len(rep.Clusters) != 0 || len(w.sts.calls) != 0 {
		t.Fatalf("report %+v, STS calls %d", rep, len(w.sts.calls))
	}
	if got := srv.accounts(t, w.name); len(got) != 0 {
		t.Errorf("accounts created: %v", got)
	}
	if msgs := w.sns.messages(); len(msgs) != 1 {
		t.Errorf("SNS: %d messages", len(msgs))
	}
}

// TestHandleDryRun: a direct invoke asking for a dry run, and the
// environment's switch overriding an invoke that asks to apply, plan only.
func TestHandleDryRun(t *testing.T) {
	for _, tt := range []struct {
		name  string
		event func(w *world) []byte
		force bool
	}{
		{"direct invoke", func(*world) []byte { return []byte(`{"dry_run": true, "clusters": ["c-ok"]}`) }, false},
		{"DBUSERS_DRY_RUN", func(w *world) []byte { return []byte(`{"dry_run": false, "clusters": ["c-ok"]}`) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, srv, conn, _ := smallFleet(t)
			cfg := testConfig(t, w)
			cfg.ForceDryRun = tt.force
			var out syncBuffer
			rep, err := Handle(context.Background(), w.deps(&out, conn), cfg, tt.event(w))
			if err != nil {
				t.Fatal(err)
			}
			if !rep.DryRun || rep.Trigger != TriggerInvoke || len(rep.Clusters) != 1 || rep.Clusters[0].Cluster != "c-ok" {
				t.Fatalf("report %+v", rep)
			}
			c := rep.Clusters[0]
			if c.Status != engine.Planned || c.Changes == 0 || c.Statements != 0 || c.Writes != 0 {
				t.Errorf("c-ok: %+v", c)
			}
			if got := srv.accounts(t, w.name); len(got) != 0 {
				t.Errorf("dry run created %v", got)
			}
			if len(audits(out.lines(t), "c-ok")) != 0 || len(w.sns.messages()) != 0 {
				t.Error("dry run wrote audit lines or alerted")
			}
		})
	}
}

// TestHandleRefusedAndIgnored: unknown clusters, a misspelt field, a
// missing "dry_run" or a repeated key in a direct invoke refuse the
// invocation before any cluster runs; a change to another parameter and a
// deletion of the pointer are ignored.
func TestHandleRefusedAndIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, srv, conn, _ := smallFleet(t)
	var out syncBuffer
	rep, err := Handle(ctx, w.deps(&out, conn), testConfig(t, w), []byte(`{"dry_run": false, "clusters": ["c-ok", "nope", "c-zz"]}`))
	if err == nil || rep != nil || !strings.Contains(err.Error(), `unknown cluster(s) "c-zz", "nope"`) {
		t.Fatalf("unknown clusters: %v, %+v", err, rep)
	}
	if len(w.sts.calls) != 0 || len(srv.accounts(t, w.name)) != 0 {
		t.Error("an invocation naming unknown clusters ran clusters")
	}
	for _, file := range []string{"parameter_store_change_chunk.json", "parameter_store_change_delete.json"} {
		event := strings.ReplaceAll(string(readEvent(t, file)), `"/dbusers/config"`, `"`+w.pointer+`"`)
		rep, err := Handle(ctx, w.deps(&out, conn), testConfig(t, w), []byte(event))
		if err != nil || rep != nil {
			t.Errorf("%s: %+v, %v; want ignored", file, rep, err)
		}
	}
	if !strings.Contains(out.buf.String(), `"msg":"event ignored"`) {
		t.Error("ignored events were not logged")
	}
	rep, err = Handle(ctx, w.deps(&out, conn), testConfig(t, w), []byte(`{"dry_run": true, "cluster": ["c-ok"]}`))
	if err == nil || rep != nil || !strings.Contains(err.Error(), `unknown field "cluster"`) {
		t.Errorf("typo: %v", err)
	}
	// An invoke that does not say whether to apply, or says it twice, runs
	// nothing.
	for _, event := range []string{`{"clusters": ["c-ok"]}`, `{}`, `{"dry_run": true, "dry_run": false}`} {
		rep, err = Handle(ctx, w.deps(&out, conn), testConfig(t, w), []byte(event))
		if err == nil || rep != nil {
			t.Errorf("%s: %+v, %v; want it refused", event, rep, err)
		}
	}
	if len(w.sts.calls) != 0 || len(srv.accounts(t, w.name)) != 0 {
		t.Error("a refused invocation ran clusters")
	}

	// A whole run: c-two is unreachable, c-ok applies.
	rep, err = Handle(ctx, w.deps(&out, conn), testConfig(t, w), []byte(`{"dry_run": false}`))
	if err == nil || !strings.Contains(err.Error(), "1 of 2 cluster(s) failed: c-two") {
		t.Fatalf("full run: %v", err)
	}
	if got := srv.accounts(t, w.name); !slices.Equal(got, []string{w.name + "_app"}) {
		t.Errorf("accounts %v", got)
	}
}
