package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/dbusers/dbusers/bot/internal/audit"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// The fault tests put an in-process toxiproxy between the engine and the
// server, over TCP, and slow, cut or stall the engine's connection at a
// chosen statement. The pool behind the proxy has short driver timeouts,
// as production pools have long ones: a stalled server must turn into a
// failed cluster, not a hung run.
const (
	faultIOTimeout = 2 * time.Second
	// mariaDBTCP is where MariaDB listens when its DSN names a socket.
	mariaDBTCP = "127.0.0.1:3306"
)

// proxied is a test server whose admin login also goes through a proxy.
type proxied struct {
	*testServer
	proxy *toxiproxy.Proxy
	// db is an admin login through the proxy; adminUser is its account.
	db        *sql.DB
	adminUser string
}

// forEachProxied is forEachServer with the proxy in front of each server.
func forEachProxied(t *testing.T, fn func(t *testing.T, p *proxied)) {
	forEachServer(t, func(t *testing.T, s *testServer) { fn(t, s.throughProxy(t)) })
}

// throughProxy starts a proxy to s's TCP address and opens an admin pool
// through it. On MariaDB the root login is by socket, so the test makes
// its own admin account, with a password, outside the managed prefix.
func (s *testServer) throughProxy(t *testing.T) *proxied {
	t.Helper()
	admin, err := mysql.ParseDSN(s.DSN)
	if err != nil {
		t.Fatalf("parse the admin DSN: %v", err)
	}
	upstream := admin.Addr
	user, password := admin.User, admin.Passwd
	if admin.Net != "tcp" {
		upstream = mariaDBTCP
		user, password = s.prefix+"admin", mysqltest.Password("admin")
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, password))
		s.Exec(t, fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", user))
	}

	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, "dbusers-"+s.prefix, "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		t.Fatalf("start the proxy: %v", err)
	}
	t.Cleanup(proxy.Stop)

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", proxy.Listen
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = faultIOTimeout, faultIOTimeout, faultIOTimeout
	cfg.Logger = newTestLogger(t)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("log in as %s through the proxy to %s: %v", user, upstream, err)
	}
	return &proxied{testServer: s, proxy: proxy, db: db, adminUser: user}
}

// testLogger sends the driver's complaints ("unexpected EOF") to the test
// log rather than stderr, and drops them once the test is over.
type testLogger struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func newTestLogger(t *testing.T) *testLogger {
	l := &testLogger{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.done = true
	})
	return l
}

func (l *testLogger) Print(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(append([]any{"driver:"}, v...)...)
	}
}

// toxic adds a toxic to every connection through the proxy, now and later.
func (p *proxied) toxic(t *testing.T, name, typ, stream string, attrs string) {
	t.Helper()
	body := fmt.Sprintf(`{"name": %q, "type": %q, "stream": %q, "toxicity": 1, "attributes": %s}`, name, typ, stream, attrs)
	if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		t.Fatalf("add toxic %s: %v", name, err)
	}
}

func (p *proxied) removeToxic(t *testing.T, name string) {
	t.Helper()
	if err := p.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
		t.Fatalf("remove toxic %s: %v", name, err)
	}
}

// run reconciles through the proxy and says how long it took.
func (p *proxied) run(t *testing.T, opt engine.Options) (*engine.Result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	res := engine.Reconcile(ctx, p.db, opt)
	return res, time.Since(start)
}

// outsiders makes accounts the runs must never touch: a look-alike outside
// the managed prefix and a protected account inside it, both with grants.
// It returns their names; the admin account is one more.
func (p *proxied) outsiders(t *testing.T) []string {
	t.Helper()
	lookAlike, breakglass := p.prefix+"x_bob", p.acct("breakglass")
	for _, name := range []string{lookAlike, breakglass} {
		p.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'not-managed'", name))
		p.Exec(t, fmt.Sprintf("GRANT SELECT, INSERT ON `%s`.* TO '%s'@'%%'", p.dbs[0], name))
	}
	return []string{lookAlike, breakglass, p.adminUser}
}

// settingsProtecting are the test's settings with breakglass protected.
func (p *proxied) settingsProtecting() config.Settings {
	settings := p.settings()
	settings.ProtectedAccounts = []string{p.acct("breakglass")}
	return settings
}

// lockFree waits up to 2 s for the run's named lock to be free, as seen
// from another session: a run that lost its connection must not leave it
// held.
func (p *proxied) lockFree(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var holder sql.NullInt64
		if err := p.DB.QueryRow("SELECT IS_USED_LOCK(?)", engine.LockName(desired.Prefix(p.prefix))).Scan(&holder); err != nil {
			t.Fatalf("IS_USED_LOCK: %v", err)
		}
		if !holder.Valid {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock %s is still held by session %d after the run returned", engine.LockName(desired.Prefix(p.prefix)), holder.Int64)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultLatency: 50 ms on every packet each way slows a run down but
// changes nothing about its outcome.
func TestFaultLatency(t *testing.T) {
	t.Parallel()
	forEachProxied(t, func(t *testing.T, p *proxied) {
		p.toxic(t, "latency_up", "latency", "upstream", `{"latency": 50}`)
		p.toxic(t, "latency_down", "latency", "downstream", `{"latency": 50}`)
		st, c := p.state(t, p.settings(), p.pwUser("app", "write", p.dbs[0]), p.pwUser("reporting", "read", p.dbs[1]))

		first, took := p.run(t, p.options(st, c))
		if first.Status != engine.Applied || first.Err != nil {
			t.Fatalf("first run: status %s, error %v; want applied", first.Status, first.Err)
		}
		t.Logf("first run: %d queries (%d writes) in %.0f ms (wall %s)", first.Queries, first.Writes, first.DurationMS, took.Round(time.Millisecond))
		second, took := p.run(t, p.options(st, c))
		if second.Status != engine.Unchanged || second.Writes != 0 {
			t.Fatalf("second run: status %s, %d writes, error %v; want unchanged", second.Status, second.Writes, second.Err)
		}
		t.Logf("second run: %d queries in %.0f ms (wall %s)", second.Queries, second.DurationMS, took.Round(time.Millisecond))
		// Every query is at least one round trip of 100 ms: the latency was
		// there, and the result's duration accounts for it.
		for _, res := range []*engine.Result{first, second} {
			if min := float64(res.Queries) * 100; res.DurationMS < min {
				t.Errorf("a run of %d queries took %.0f ms, less than %.0f ms: the latency did not apply", res.Queries, res.DurationMS, min)
			}
		}
		if diff := cmp.Diff(map[string][]string{p.pattern(p.dbs[0]): writePrivs}, p.dbPrivs(t, p.acct("app"))); diff != "" {
			t.Errorf("app (-want +got):\n%s", diff)
		}
	})
}

// connectionFault is a fault that strikes the engine's connection right
// after the kth statement of a run has been applied and audited.
type connectionFault struct {
	name string
	// toxic is added after the kth record; stream is the direction it acts
	// on: upstream (the next statement never reaches the server) or
	// downstream (the server runs it, but its answer is lost).
	typ, stream, attrs string
	// reached says whether the statement sent after the fault still took
	// effect on the server.
	reached bool
	// minTook and maxTook bound how long the failing run may take.
	minTook, maxTook time.Duration
}

// TestFaultMidApply cuts or stalls the engine's connection in the middle of
// applying a plan. Each time the run fails on that cluster with a reason
// that names the connection; Applied lists exactly the statements the
// server confirmed; the statement in flight is reported as in doubt, never
// as not applied; nothing outside the plan changed; the lock died with the
// session; and the next run, with the fault gone, converges.
func TestFaultMidApply(t *testing.T) {
	t.Parallel()
	faults := []connectionFault{
		// reset_peer drops what comes next and closes the connection.
		{name: "reset before the statement", typ: "reset_peer", stream: "upstream", attrs: `{"timeout": 0}`,
			reached: false, maxTook: 5 * time.Second},
		{name: "reset before the answer", typ: "reset_peer", stream: "downstream", attrs: `{"timeout": 0}`,
			reached: true, maxTook: 5 * time.Second},
		// timeout with 0 swallows everything and never closes: only the
		// driver's read timeout ends the wait.
		{name: "stall before the statement", typ: "timeout", stream: "upstream", attrs: `{"timeout": 0}`,
			reached: false, minTook: faultIOTimeout, maxTook: 20 * time.Second},
		{name: "stall before the answer", typ: "timeout", stream: "downstream", attrs: `{"timeout": 0}`,
			reached: true, minTook: faultIOTimeout, maxTook: 20 * time.Second},
	}
	for _, f := range faults {
		t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			forEachProxied(t, func(t *testing.T, p *proxied) { testMidApply(t, p, f) })
		})
	}
}

func testMidApply(t *testing.T, p *proxied, f connectionFault) {
	// alice: create, grant; bob: create, grant; carol: create, grant. The
	// fault strikes after bob's CREATE USER, so bob's GRANT is in flight.
	const k = 3
	protected := p.outsiders(t)
	before := p.snapshot(t, protected...)
	st, c := p.state(t, p.settingsProtecting(),
		p.pwUser("alice", "read", p.dbs[0]), p.pwUser("bob", "read", p.dbs[0]), p.pwUser("carol", "read", p.dbs[0]))
	alice, bob, carol := p.acct("alice"), p.acct("bob"), p.acct("carol")
	sink := &hookSink{}
	sink.on = func(r audit.Record) {
		if len(sink.Records()) == k {
			p.toxic(t, "fault", f.typ, f.stream, f.attrs)
		}
	}
	opt := p.options(st, c)
	opt.Audit = sink

	res, took := p.run(t, opt)
	t.Logf("%s: the run failed after %s (%.0f ms by its clock, %d queries): %s",
		f.name, took.Round(time.Millisecond), res.DurationMS, res.Queries, res.Error)
	if res.Status != engine.Failed || res.Err == nil {
		t.Fatalf("status %s, error %v; want failed", res.Status, res.Err)
	}
	if took < f.minTook || took > f.maxTook {
		t.Errorf("the failing run took %s, want %s to %s", took, f.minTook, f.maxTook)
	}
	if !strings.Contains(res.Error, "connection") || !strings.Contains(res.Error, "GRANT") || !strings.Contains(res.Error, bob) {
		t.Errorf("error %q does not say that the connection was lost during the GRANT to %s", res.Error, bob)
	}
	if !strings.Contains(res.Error, "may have taken effect") {
		t.Errorf("error %q does not say the statement in flight may have taken effect", res.Error)
	}
	if strings.Contains(res.Error, p.password("bob")) {
		t.Errorf("error %q holds a password", res.Error)
	}
	wantApplied := []change{
		{Action: plan.CreateUser, User: alice},
		{Action: plan.Grant, User: alice, DB: p.dbs[0], Privs: readPrivs},
		{Action: plan.CreateUser, User: bob},
	}
	if diff := cmp.Diff(wantApplied, stepsOf(res.Applied)); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	wantInDoubt := []change{{Action: plan.Grant, User: bob, DB: p.dbs[0], Privs: readPrivs}}
	if diff := cmp.Diff(wantInDoubt, changesOf(res.InDoubt)); diff != "" {
		t.Errorf("in doubt (-want +got):\n%s", diff)
	}
	wantNotApplied := []change{
		{Action: plan.CreateUser, User: carol},
		{Action: plan.Grant, User: carol, DB: p.dbs[0], Privs: readPrivs},
	}
	if diff := cmp.Diff(wantNotApplied, changesOf(res.NotApplied)); diff != "" {
		t.Errorf("not applied (-want +got):\n%s", diff)
	}
	recs := sink.Records()
	if len(recs) != k+1 {
		t.Fatalf("%d audit records, want %d", len(recs), k+1)
	}
	if last := recs[k]; last.Outcome != audit.InDoubt || !strings.Contains(last.Error, "may have taken effect") || last.User != "bob" {
		t.Errorf("last audit record %+v, want bob's GRANT, failed, in doubt", last)
	}

	// What the server holds is what the result says, and what was in
	// flight took effect exactly when it reached the server.
	p.lockFree(t)
	if !p.exists(t, alice) || !p.exists(t, bob) || p.exists(t, carol) {
		t.Errorf("alice exists %v, bob %v, carol %v; want true, true, false",
			p.exists(t, alice), p.exists(t, bob), p.exists(t, carol))
	}
	wantBob := map[string][]string{}
	if f.reached {
		wantBob[p.pattern(p.dbs[0])] = readPrivs
	}
	if diff := cmp.Diff(wantBob, p.dbPrivs(t, bob)); diff != "" {
		t.Errorf("bob's grants after the fault (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, p.snapshot(t, protected...)); diff != "" {
		t.Errorf("accounts outside the plan changed (-before +after):\n%s", diff)
	}

	// The fault goes; the next run takes the lock at once and finishes.
	p.removeToxic(t, "fault")
	sink.on = nil
	opt.LockTimeout = time.Second
	again, took := p.run(t, opt)
	if again.Status != engine.Applied || again.Err != nil {
		t.Fatalf("next run: status %s, error %v; want applied\n%s", again.Status, again.Err, summaries(again))
	}
	wantRest := wantNotApplied
	if !f.reached {
		wantRest = append(wantInDoubt, wantRest...)
	}
	if diff := cmp.Diff(wantRest, stepsOf(again.Applied)); diff != "" {
		t.Errorf("next run applied (-want +got):\n%s", diff)
	}
	t.Logf("%s: the next run applied %d statement(s) in %s", f.name, len(again.Applied), took.Round(time.Millisecond))
	if last, _ := p.run(t, opt); last.Status != engine.Unchanged || last.Writes != 0 {
		t.Errorf("third run: status %s, %d writes; want unchanged", last.Status, last.Writes)
	}
	if diff := cmp.Diff(before, p.snapshot(t, protected...)); diff != "" {
		t.Errorf("accounts outside the plan changed (-before +after):\n%s", diff)
	}
}

// TestFaultStallFromTheStart: a server that stops answering before the run
// has taken its lock fails the cluster within the driver's timeouts (the
// connection attempts database/sql retries included), and changes nothing.
func TestFaultStallFromTheStart(t *testing.T) {
	t.Parallel()
	forEachProxied(t, func(t *testing.T, p *proxied) {
		st, c := p.state(t, p.settings(), p.pwUser("app", "read", p.dbs[0]))
		// The pool's idle connection stalls on its first query; a new one
		// would stall in its handshake.
		p.toxic(t, "stall", "timeout", "upstream", `{"timeout": 0}`)
		res, took := p.run(t, p.options(st, c))
		t.Logf("the stalled run failed after %s: %s", took.Round(time.Millisecond), res.Error)
		if res.Status != engine.Failed || res.Err == nil {
			t.Fatalf("status %s, error %v; want failed", res.Status, res.Err)
		}
		if took > 20*time.Second {
			t.Errorf("the stalled run took %s, want less than 20 s", took)
		}
		if !strings.Contains(res.Error, "connection") {
			t.Errorf("error %q does not name the connection", res.Error)
		}
		if res.Writes != 0 || len(res.Applied) != 0 || p.exists(t, p.acct("app")) {
			t.Errorf("the stalled run wrote: %d writes, %d applied", res.Writes, len(res.Applied))
		}
		p.removeToxic(t, "stall")
		p.lockFree(t)
		opt := p.options(st, c)
		opt.LockTimeout = time.Second
		if again, _ := p.run(t, opt); again.Status != engine.Applied {
			t.Errorf("next run: status %s, error %v; want applied", again.Status, again.Err)
		}
	})
}

// TestConcurrentRunsLockedOut complements TestConcurrentRuns (where the
// second run waits for the lock and finds nothing to do): here the first
// run is slowed down and the second gives up waiting. It reports ErrLocked,
// changes nothing, and every account is created exactly once.
func TestConcurrentRunsLockedOut(t *testing.T) {
	t.Parallel()
	forEachProxied(t, func(t *testing.T, p *proxied) {
		var users []config.User
		for i := range 5 {
			users = append(users, p.pwUser(fmt.Sprintf("u%02d", i), "read", p.dbs[0]))
		}
		st, c := p.state(t, p.settings(), users...)
		// 100 ms per round trip on the slow run's own connection: the slow
		// run holds the lock for well over a second.
		p.toxic(t, "latency_up", "latency", "upstream", `{"latency": 50}`)
		p.toxic(t, "latency_down", "latency", "downstream", `{"latency": 50}`)

		slow := make(chan *engine.Result, 1)
		sink := &hookSink{}
		started := make(chan struct{})
		sink.on = func(r audit.Record) {
			if len(sink.Records()) == 1 {
				close(started) // the slow run holds the lock and is applying
			}
		}
		go func() {
			opt := p.options(st, c)
			opt.Audit = sink
			res, _ := p.run(t, opt)
			slow <- res
		}()
		select {
		case <-started:
		case res := <-slow:
			t.Fatalf("the slow run ended before applying anything: status %s, error %v", res.Status, res.Err)
		}
		opt := p.options(st, c)
		opt.LockTimeout = time.Second
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		fast := engine.Reconcile(ctx, p.DB, opt) // directly, without latency
		first := <-slow

		if first.Status != engine.Applied || first.Err != nil {
			t.Fatalf("slow run: status %s, error %v; want applied", first.Status, first.Err)
		}
		if fast.Status != engine.Failed || !errors.Is(fast.Err, engine.ErrLocked) {
			t.Fatalf("locked-out run: status %s, error %v; want failed with ErrLocked", fast.Status, fast.Err)
		}
		if fast.Writes != 0 || len(fast.Applied) != 0 {
			t.Errorf("locked-out run wrote: %d writes, %d applied", fast.Writes, len(fast.Applied))
		}
		creates := 0
		for _, res := range []*engine.Result{first, fast} {
			for _, s := range res.Applied {
				if s.Change.Action() == plan.CreateUser {
					creates++
				}
			}
		}
		if creates != len(users) {
			t.Errorf("%d CREATE USER across both runs, want %d", creates, len(users))
		}
		t.Logf("slow run: %d statements in %.0f ms; locked-out run gave up after %.0f ms: %s",
			len(first.Applied), first.DurationMS, fast.DurationMS, fast.Error)
	})
}

// TestFaultLockWaitOutlastsReadTimeout: a lock wait longer than the
// driver's read timeout still ends as ErrLocked after the lock timeout, not
// as a lost connection after the read timeout.
func TestFaultLockWaitOutlastsReadTimeout(t *testing.T) {
	t.Parallel()
	forEachProxied(t, func(t *testing.T, p *proxied) {
		ctx := context.Background()
		holder, err := p.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		var got int
		if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", engine.LockName(desired.Prefix(p.prefix))).Scan(&got); err != nil || got != 1 {
			t.Fatalf("take the lock: %d, %v", got, err)
		}
		st, c := p.state(t, p.settings(), p.pwUser("app", "read", p.dbs[0]))
		opt := p.options(st, c)
		opt.LockTimeout = 2*faultIOTimeout - time.Second
		res, took := p.run(t, opt)
		t.Logf("a %s lock wait on a %s read timeout: %s after %s", opt.LockTimeout, faultIOTimeout, res.Error, took.Round(time.Millisecond))
		if res.Status != engine.Failed || !errors.Is(res.Err, engine.ErrLocked) {
			t.Fatalf("status %s, error %v; want failed with ErrLocked", res.Status, res.Err)
		}
		if res.Writes != 0 || p.exists(t, p.acct("app")) {
			t.Errorf("a locked-out run wrote: %d writes", res.Writes)
		}
		if took < opt.LockTimeout || took > opt.LockTimeout+2*time.Second {
			t.Errorf("the run took %s, want about its lock timeout of %s", took, opt.LockTimeout)
		}
	})
}
