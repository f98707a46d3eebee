package engine_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/audit"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

var (
	readPrivs  = []string{"SELECT"}
	writePrivs = []string{"INSERT", "SELECT", "UPDATE"}
)

// change is the part of a planned change the tests compare.
type change struct {
	Action plan.Action
	User   string // account name
	DB     string // declared database name
	Privs  []string
}

func changesOf(cs []plan.Change) []change {
	out := []change{}
	for _, c := range cs {
		db, privs := scopeOf(c)
		out = append(out, change{Action: c.Action(), User: c.Account.User, DB: db, Privs: privs})
	}
	return out
}

// scopeOf returns the database (as declared) and the privileges a grant or
// revoke names; nothing for other kinds of change.
func scopeOf(c plan.Change) (string, []string) {
	switch op := c.Op.(type) {
	case plan.GrantDatabase:
		return op.Database, op.Privileges
	case plan.RevokeDatabase:
		return op.Database, op.Privileges
	case plan.RevokeTable:
		return op.Database, op.Privileges
	case plan.RevokeColumn:
		return op.Database, op.Privileges
	case plan.RevokeGlobal:
		return "", op.Privileges
	}
	return "", nil
}

func stepsOf(steps []engine.Step) []change {
	cs := make([]plan.Change, len(steps))
	for i, s := range steps {
		cs[i] = s.Change
	}
	return changesOf(cs)
}

// TestCreate: an empty server gets every declared account with exactly the
// privileges of its role on exactly its databases.
func TestCreate(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(),
			s.pwUser("app", "write", s.dbs[0], s.dbs[1]),
			s.pwUser("reporting", "read", s.dbs[0]),
			s.pwUser("owner", "admin", s.dbs[2]))
		res := s.reconcile(t, s.options(st, c))
		if res.Status != engine.Applied || res.Err != nil {
			t.Fatalf("status %s, error %v", res.Status, res.Err)
		}
		// 3 CREATE USER and 4 GRANT, one statement each.
		if res.Writes != 7 || len(res.Applied) != 7 {
			t.Errorf("writes %d, applied %d; want 7 and 7:\n%s", res.Writes, len(res.Applied), summaries(res))
		}
		admin, err := s.Flavor.Expand([]string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "REFERENCES", "INDEX",
			"ALTER", "CREATE TEMPORARY TABLES", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EXECUTE", "EVENT", "TRIGGER"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string][]string{
			"app":       {s.pattern(s.dbs[0]): writePrivs, s.pattern(s.dbs[1]): writePrivs},
			"reporting": {s.pattern(s.dbs[0]): readPrivs},
			"owner":     {s.pattern(s.dbs[2]): columnNames(admin)},
		}
		for user, privs := range want {
			name := s.acct(user)
			u := s.user(t, name)
			if u == nil {
				t.Errorf("%s was not created", name)
				continue
			}
			if u.Plugin != "mysql_native_password" {
				t.Errorf("%s: plugin %q, want mysql_native_password", name, u.Plugin)
			}
			if diff := cmp.Diff(privs, s.dbPrivs(t, name)); diff != "" {
				t.Errorf("%s: mysql.db privileges (-want +got):\n%s", name, diff)
			}
			if _, err := s.login(t, name, s.password(user)); err != nil {
				t.Errorf("log in as %s: %v", name, err)
			}
		}
	})
}

// columnNames turns privilege names into what dbPrivs reads from mysql.db
// column names (CREATE TEMPORARY TABLES is Create_tmp_table_priv).
func columnNames(privs []string) []string {
	names := map[string]string{
		"CREATE TEMPORARY TABLES": "CREATE_TMP_TABLE", "CREATE VIEW": "CREATE_VIEW", "SHOW VIEW": "SHOW_VIEW",
		"CREATE ROUTINE": "CREATE_ROUTINE", "ALTER ROUTINE": "ALTER_ROUTINE", "LOCK TABLES": "LOCK_TABLES",
		"DELETE HISTORY": "DELETE_HISTORY",
	}
	out := []string{}
	for _, p := range privs {
		if n, ok := names[p]; ok {
			p = n
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestIdempotence: a run right after a successful one sends no write, and
// reading costs a constant, small number of queries. On MariaDB the
// server's own statement counters prove that nothing was sent.
func TestIdempotence(t *testing.T) {
	// Not parallel: the MariaDB counters must not see this package's other
	// tests (other packages may still add noise; see below).
	forEachServerSerial(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(),
			s.pwUser("app", "write", s.dbs[0], s.dbs[1]),
			s.pwUser("reporting", "read", "*"),
			s.pwUser("owner", "admin", s.dbs[2]),
			s.pwUser("dba", "trusted_admin", s.dbs[0]))
		s.mustApply(t, s.options(st, c))

		second := s.reconcile(t, s.options(st, c))
		if second.Status != engine.Unchanged || second.Err != nil {
			t.Fatalf("second run: status %s, error %v; want unchanged:\n%s", second.Status, second.Err, summaries(second))
		}
		if second.Writes != 0 {
			t.Errorf("second run sent %d write(s), want 0", second.Writes)
		}
		// A lock, two to detect, one per grant table, the unmanaged
		// accounts, an unlock.
		if want := 5 + len(s.Flavor.GrantTables()); second.Queries > want {
			t.Errorf("second run sent %d queries, want at most %d", second.Queries, want)
		}
		if s.Flavor != flavor.MariaDB {
			return
		}
		// Other test packages share the server and may create or drop
		// accounts meanwhile: measure up to 10 times, a quarter second
		// apart (their bursts are short), and keep the quietest.
		minDelta := -1
		var noisy map[string]int
		for try := range 10 {
			if try > 0 {
				time.Sleep(250 * time.Millisecond)
			}
			before := s.comCounters(t)
			res := s.reconcile(t, s.options(st, c))
			after := s.comCounters(t)
			if res.Writes != 0 || res.Status != engine.Unchanged {
				t.Fatalf("repeat run: status %s, %d writes", res.Status, res.Writes)
			}
			delta, moved := 0, map[string]int{}
			for k, v := range after {
				if d := v - before[k]; d != 0 {
					delta += d
					moved[k] = d
				}
			}
			if minDelta < 0 || delta < minDelta {
				minDelta, noisy = delta, moved
			}
			if minDelta == 0 {
				break
			}
		}
		if minDelta != 0 {
			t.Errorf("a no-op run moved the server's statement counters in each of 10 tries; quietest: %v", noisy)
		}
	})
}

// comCounters reads the statement counters that any account change moves.
func (s *testServer) comCounters(tb testing.TB) map[string]int {
	tb.Helper()
	out := map[string]int{}
	for _, r := range s.rows(tb, "SHOW GLOBAL STATUS WHERE Variable_name IN "+
		"('Com_create_user','Com_grant','Com_revoke','Com_drop_user','Com_alter_user')") {
		var n int
		if _, err := fmt.Sscan(r["Value"], &n); err != nil {
			tb.Fatalf("counter %s: %v", r["Variable_name"], err)
		}
		out[r["Variable_name"]] = n
	}
	if len(out) != 5 {
		tb.Fatalf("read %d counters, want 5: %v", len(out), out)
	}
	return out
}

// TestElevate: read → write grants only what is missing.
func TestElevate(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		s.mustApply(t, s.options(st, c))

		st, c = s.state(t, s.settings(), s.pwUser("app", "write", s.dbs[0]))
		res := s.mustApply(t, s.options(st, c))
		want := []change{{Action: plan.Grant, User: s.acct("app"), DB: s.dbs[0], Privs: []string{"INSERT", "UPDATE"}}}
		if diff := cmp.Diff(want, changesOf(res.Plan.Changes)); diff != "" {
			t.Fatalf("plan (-want +got):\n%s", diff)
		}
		if sum := res.Plan.Changes[0].Summary; !strings.Contains(sum, "elevate") {
			t.Errorf("summary %q does not say elevate", sum)
		}
		if diff := cmp.Diff(map[string][]string{s.pattern(s.dbs[0]): writePrivs}, s.dbPrivs(t, s.acct("app"))); diff != "" {
			t.Errorf("mysql.db (-want +got):\n%s", diff)
		}
	})
}

// TestDowngrade: write → read revokes exactly INSERT and UPDATE, and the
// account really can no longer write.
func TestDowngrade(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		db := s.dbs[0]
		s.Exec(t, "CREATE TABLE `"+db+"`.items (id INT PRIMARY KEY, sku VARCHAR(40))")
		s.Exec(t, "INSERT INTO `"+db+"`.items VALUES (1, 'first')")
		st, c := s.state(t, s.settings(), s.pwUser("app", "write", db))
		s.mustApply(t, s.options(st, c))

		st, c = s.state(t, s.settings(), s.pwUser("app", "read", db))
		res := s.mustApply(t, s.options(st, c))
		acct := s.acct("app")
		want := []change{{Action: plan.Revoke, User: acct, DB: db, Privs: []string{"INSERT", "UPDATE"}}}
		if diff := cmp.Diff(want, changesOf(res.Plan.Changes)); diff != "" {
			t.Fatalf("plan (-want +got):\n%s", diff)
		}
		if got, want := res.Plan.Changes[0].Summary, fmt.Sprintf("downgrade %s on %s: write → read", acct, db); got != want {
			t.Errorf("summary %q, want %q", got, want)
		}
		wantSQL := fmt.Sprintf("REVOKE INSERT, UPDATE ON `%s`.* FROM '%s'@'%%'", s.pattern(db), acct)
		if len(res.Applied) != 1 || res.Applied[0].Statement != wantSQL {
			t.Errorf("applied %+v, want the one statement %s", res.Applied, wantSQL)
		}
		if diff := cmp.Diff(map[string][]string{s.pattern(db): readPrivs}, s.dbPrivs(t, acct)); diff != "" {
			t.Errorf("mysql.db (-want +got):\n%s", diff)
		}

		user, err := s.login(t, acct, s.password("app"))
		if err != nil {
			t.Fatalf("log in as %s: %v", acct, err)
		}
		ctx := context.Background()
		var sku string
		if err := user.QueryRowContext(ctx, "SELECT sku FROM `"+db+"`.items WHERE id = 1").Scan(&sku); err != nil || sku != "first" {
			t.Errorf("SELECT as %s: %q, %v; want it allowed", acct, sku, err)
		}
		if _, err := user.ExecContext(ctx, "INSERT INTO `"+db+"`.items VALUES (2, 'second')"); err == nil {
			t.Errorf("INSERT as %s was allowed after the downgrade to read", acct)
		}
	})
}

// TestRemove: an account no longer declared is dropped; an account whose
// access moved keeps only its new databases.
func TestRemove(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(),
			s.pwUser("alice", "write", s.dbs[0], s.dbs[1]),
			s.pwUser("bob", "read", s.dbs[0]))
		s.mustApply(t, s.options(st, c))

		// alice also exists at another host, made by hand.
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'10.0.0.%%' IDENTIFIED BY 'by-hand'", s.acct("alice")))

		st, c = s.state(t, s.settings(), s.pwUser("alice", "write", s.dbs[1], s.dbs[2]))
		res := s.mustApply(t, s.options(st, c))
		want := []change{
			// in database order: <prefix>_events before <prefix>_orders
			{Action: plan.Grant, User: s.acct("alice"), DB: s.dbs[2], Privs: writePrivs},
			{Action: plan.Revoke, User: s.acct("alice"), DB: s.dbs[0], Privs: writePrivs},
			{Action: plan.DropUser, User: s.acct("alice")}, // @'10.0.0.%'
			{Action: plan.DropUser, User: s.acct("bob")},
		}
		if diff := cmp.Diff(want, changesOf(res.Plan.Changes)); diff != "" {
			t.Errorf("plan (-want +got):\n%s", diff)
		}
		if s.exists(t, s.acct("bob")) {
			t.Errorf("%s still exists", s.acct("bob"))
		}
		if rows := s.rows(t, "SELECT Host FROM mysql.user WHERE User = ?", s.acct("alice")); len(rows) != 1 || rows[0]["Host"] != "%" {
			t.Errorf("%s hosts: %v; want only %%", s.acct("alice"), rows)
		}
		wantPrivs := map[string][]string{s.pattern(s.dbs[1]): writePrivs, s.pattern(s.dbs[2]): writePrivs}
		if diff := cmp.Diff(wantPrivs, s.dbPrivs(t, s.acct("alice"))); diff != "" {
			t.Errorf("%s mysql.db (-want +got):\n%s", s.acct("alice"), diff)
		}
	})
}

// snapshot is every mysql.user and mysql.db row of some accounts, sorted.
func (s *testServer) snapshot(tb testing.TB, names ...string) []map[string]string {
	tb.Helper()
	in := strings.TrimSuffix(strings.Repeat("?,", len(names)), ",")
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	var out []map[string]string
	for _, table := range []string{"mysql.user", "mysql.db"} {
		for _, r := range s.rows(tb, "SELECT * FROM "+table+" WHERE User IN ("+in+")", args...) {
			r["table"] = table
			out = append(out, r)
		}
	}
	key := func(r map[string]string) string {
		return r["table"] + "|" + r["User"] + "|" + r["Host"] + "|" + r["Db"]
	}
	slices.SortFunc(out, func(a, b map[string]string) int { return strings.Compare(key(a), key(b)) })
	return out
}

// TestLookAlikesUntouched: accounts that merely resemble the prefix are not
// managed, whatever LIKE or case-insensitive comparison would say.
func TestLookAlikesUntouched(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		p := s.prefix
		lookAlikes := []string{
			p + "x_bob",                             // longer prefix
			strings.ToUpper(p) + "_bob",             // the prefix in upper case
			p,                                       // the bare prefix
			"other_" + p,                            // no prefix at all
			p + "Xbob",                              // what an unescaped LIKE 'p_%' matches
			strings.ToUpper(p[:1]) + p[1:] + "_bob", // first letter capitalised
		}
		for _, name := range lookAlikes {
			s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'not-ours'", name))
			s.Exec(t, fmt.Sprintf("GRANT SELECT, INSERT ON `%s`.* TO '%s'@'%%'", s.dbs[0], name))
		}
		compared := lookAlikes
		before := s.snapshot(t, compared...)
		if len(before) != 2*len(compared) {
			t.Fatalf("snapshot has %d rows, want %d", len(before), 2*len(compared))
		}

		st, c := s.state(t, s.settings(), s.pwUser("alice", "read", s.dbs[0]))
		res := s.mustApply(t, s.options(st, c))
		if !s.exists(t, s.acct("alice")) {
			t.Fatalf("the run did not create %s", s.acct("alice"))
		}
		for _, ch := range append(slices.Clone(res.Plan.Changes), res.Plan.Held...) {
			if slices.Contains(compared, ch.Account.User) {
				t.Errorf("the plan touches look-alike %s: %s", ch.Account, ch.Summary)
			}
		}
		if diff := cmp.Diff(before, s.snapshot(t, compared...)); diff != "" {
			t.Errorf("look-alike accounts changed (-before +after):\n%s", diff)
		}
	})
}

// TestProtected: a protected account and the admin account the run logs in
// as are never touched, although they carry the prefix and are not
// declared.
func TestProtected(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		breakglass, admin := s.acct("breakglass"), s.acct("admin")
		adminPassword := mysqltest.Password("admin")
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'break-the-glass'", breakglass))
		s.Exec(t, fmt.Sprintf("GRANT SELECT, INSERT, DELETE ON `%s`.* TO '%s'@'%%'", s.dbs[0], breakglass))
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", admin, adminPassword))
		s.Exec(t, fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", admin))
		before := s.snapshot(t, breakglass, admin)

		settings := s.settings()
		settings.ProtectedAccounts = []string{breakglass}
		// breakglass is even declared, with another role: protection wins.
		st, c := s.state(t, settings, s.pwUser("alice", "read", s.dbs[0]), s.pwUser("breakglass", "read", s.dbs[1]))
		adminDB, err := s.login(t, admin, adminPassword)
		if err != nil {
			t.Fatalf("log in as %s: %v", admin, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res := engine.Reconcile(ctx, adminDB, s.options(st, c))
		if res.Status != engine.Applied {
			t.Fatalf("status %s, error %v", res.Status, res.Err)
		}
		want := []change{
			{Action: plan.CreateUser, User: s.acct("alice")},
			{Action: plan.Grant, User: s.acct("alice"), DB: s.dbs[0], Privs: readPrivs},
		}
		if diff := cmp.Diff(want, changesOf(res.Plan.Changes)); diff != "" {
			t.Errorf("plan (-want +got):\n%s", diff)
		}
		if len(res.Plan.Skipped) != 1 || res.Plan.Skipped[0].User != "breakglass" {
			t.Errorf("skipped %+v, want breakglass (protected)", res.Plan.Skipped)
		}
		if diff := cmp.Diff(before, s.snapshot(t, breakglass, admin)); diff != "" {
			t.Errorf("protected accounts changed (-before +after):\n%s", diff)
		}
	})
}

// TestRemovalLimit: a run that would drop more than the limit drops
// nothing, says why, and applies everything else.
func TestRemovalLimit(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		var all []config.User
		for i := range 10 {
			all = append(all, s.pwUser(fmt.Sprintf("u%02d", i), "read", s.dbs[0]))
		}
		st, c := s.state(t, s.settings(), all...)
		s.mustApply(t, s.options(st, c))

		settings := s.settings()
		settings.RemovalLimit = config.RemovalLimit{Count: 1, Fraction: 0.1}
		st, c = s.state(t, settings, s.pwUser("u00", "write", s.dbs[0]), all[1])
		res := s.reconcile(t, s.options(st, c))
		if res.Status != engine.Applied || res.Err != nil {
			t.Fatalf("status %s, error %v; want applied", res.Status, res.Err)
		}
		if !strings.Contains(res.Plan.LimitTripped, "removal limit") || !strings.Contains(res.Plan.LimitTripped, "8 of 10") {
			t.Errorf("LimitTripped = %q, want it to say the removal limit tripped on 8 of 10", res.Plan.LimitTripped)
		}
		var held []string
		for _, h := range res.Plan.Held {
			if h.Action() != plan.DropUser {
				t.Errorf("held change %s is not a drop", h.Summary)
			}
			held = append(held, h.Account.User)
		}
		var wantHeld []string
		for i := 2; i < 10; i++ {
			wantHeld = append(wantHeld, s.acct(fmt.Sprintf("u%02d", i)))
		}
		if diff := cmp.Diff(wantHeld, held); diff != "" {
			t.Errorf("held (-want +got):\n%s", diff)
		}
		want := []change{{Action: plan.Grant, User: s.acct("u00"), DB: s.dbs[0], Privs: []string{"INSERT", "UPDATE"}}}
		if diff := cmp.Diff(want, stepsOf(res.Applied)); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		for i := range 10 {
			if name := s.acct(fmt.Sprintf("u%02d", i)); !s.exists(t, name) {
				t.Errorf("%s was dropped although the removal limit tripped", name)
			}
		}
		if diff := cmp.Diff(map[string][]string{s.pattern(s.dbs[0]): writePrivs}, s.dbPrivs(t, s.acct("u00"))); diff != "" {
			t.Errorf("the grant past the tripped limit was not applied (-want +got):\n%s", diff)
		}
	})
}

// TestAuthentication: an account made by hand with another password is
// rotated to the secret's; on MariaDB, one with another plugin or REQUIRE
// SSL is changed back to the declared authentication.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		users := []config.User{s.pwUser("hand", "read", s.dbs[0])}
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'made-by-hand'", s.acct("hand")))
		s.Exec(t, fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'%%'", s.pattern(s.dbs[0]), s.acct("hand")))
		want := []change{{Action: plan.AlterAuth, User: s.acct("hand")}}
		if s.Flavor == flavor.MariaDB {
			users = append(users, s.pwUser("tls", "read", s.dbs[0]), s.pwUser("sock", "read", s.dbs[0]))
			s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s' REQUIRE SSL", s.acct("tls"), s.password("tls")))
			s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED VIA unix_socket", s.acct("sock")))
			for _, u := range []string{"tls", "sock"} {
				s.Exec(t, fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'%%'", s.pattern(s.dbs[0]), s.acct(u)))
			}
			want = append(want, change{Action: plan.AlterAuth, User: s.acct("sock")}, change{Action: plan.AlterAuth, User: s.acct("tls")})
			if u := s.user(t, s.acct("tls")); u.SSLType == "" {
				t.Fatalf("setup: %s has no REQUIRE SSL", s.acct("tls"))
			}
		}
		st, c := s.state(t, s.settings(), users...)
		res := s.mustApply(t, s.options(st, c))
		if diff := cmp.Diff(want, changesOf(res.Plan.Changes)); diff != "" {
			t.Fatalf("plan (-want +got):\n%s", diff)
		}
		for _, ch := range res.Plan.Changes {
			rotate := ch.Account.User == s.acct("hand")
			if op, ok := ch.Op.(plan.SetAuth); !ok || op.Auth.Rotate != rotate {
				t.Errorf("%s: %+v, want an authentication change with rotate=%v", ch.Summary, ch.Op, rotate)
			}
			if rotate && !strings.Contains(ch.Summary, "rotate the password") {
				t.Errorf("summary %q does not say rotate", ch.Summary)
			}
			if !rotate && (!strings.Contains(ch.Summary, ch.Account.User) || strings.Contains(ch.Summary, "rotate")) {
				t.Errorf("summary %q: want a change of authentication (not a rotation) of %s", ch.Summary, ch.Account.User)
			}
		}
		for _, u := range users {
			name := s.acct(u.Name)
			live := s.user(t, name)
			if live.Plugin != "mysql_native_password" || live.SSLType != "" {
				t.Errorf("%s: plugin %q, ssl_type %q; want mysql_native_password without REQUIRE", name, live.Plugin, live.SSLType)
			}
			if _, err := s.login(t, name, s.password(u.Name)); err != nil {
				t.Errorf("log in as %s with the secret's password: %v", name, err)
			}
		}
		if _, err := s.login(t, s.acct("hand"), "made-by-hand"); err == nil {
			t.Errorf("%s still logs in with the hand-made password", s.acct("hand"))
		}
	})
}

// TestPasswordRotation: a changed secret sends exactly one ALTER USER; an
// unchanged one sends nothing.
func TestPasswordRotation(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("app", "write", s.dbs[0]), s.pwUser("other", "read", s.dbs[0]))
		s.mustApply(t, s.options(st, c))
		acct, old := s.acct("app"), s.password("app")

		s.passwords[secret("app")] = mysqltest.Password("app-rotated")
		res := s.mustApply(t, s.options(st, c))
		if res.Writes != 1 || len(res.Applied) != 1 {
			t.Fatalf("rotation: %d writes, applied %+v; want exactly one ALTER USER", res.Writes, res.Applied)
		}
		step := res.Applied[0]
		if step.Change.Action() != plan.AlterAuth || step.Change.Account.User != acct || !strings.HasPrefix(step.Statement, "ALTER USER") {
			t.Errorf("applied %s (%s), want ALTER USER of %s", step.Statement, step.Change.Action(), acct)
		}
		if _, err := s.login(t, acct, s.password("app")); err != nil {
			t.Errorf("log in with the new password: %v", err)
		}
		if _, err := s.login(t, acct, old); err == nil {
			t.Errorf("%s still logs in with the old password", acct)
		}

		res = s.mustApply(t, s.options(st, c))
		if res.Status != engine.Unchanged || res.Writes != 0 {
			t.Errorf("unchanged secret: status %s, %d writes; want unchanged, 0", res.Status, res.Writes)
		}
	})
}

// TestMissingSecret: a password user without its secret is skipped: not
// created, and not dropped when it exists.
func TestMissingSecret(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("keeper", "read", s.dbs[0]))
		s.mustApply(t, s.options(st, c))

		st, c = s.state(t, s.settings(),
			s.pwUser("keeper", "write", s.dbs[0]), s.pwUser("ghost", "read", s.dbs[0]), s.pwUser("app", "read", s.dbs[1]))
		opt := s.options(st, c)
		opt.Passwords = maps.Clone(s.passwords)
		delete(opt.Passwords, secret("keeper"))
		delete(opt.Passwords, secret("ghost"))
		res := s.mustApply(t, opt)
		var skipped []string
		for _, sk := range res.Plan.Skipped {
			skipped = append(skipped, sk.User)
			if !strings.Contains(sk.Reason, secret(sk.User)) {
				t.Errorf("skip reason %q does not name the secret %s", sk.Reason, secret(sk.User))
			}
		}
		if diff := cmp.Diff([]string{"ghost", "keeper"}, skipped); diff != "" {
			t.Errorf("skipped (-want +got):\n%s", diff)
		}
		if s.exists(t, s.acct("ghost")) {
			t.Errorf("%s was created without its secret", s.acct("ghost"))
		}
		if !s.exists(t, s.acct("keeper")) {
			t.Errorf("%s was dropped because its secret is missing", s.acct("keeper"))
		}
		if diff := cmp.Diff(map[string][]string{s.pattern(s.dbs[0]): readPrivs}, s.dbPrivs(t, s.acct("keeper"))); diff != "" {
			t.Errorf("%s changed although it was skipped (-want +got):\n%s", s.acct("keeper"), diff)
		}
		if !s.exists(t, s.acct("app")) {
			t.Errorf("%s was not created: one missing secret must not stop the others", s.acct("app"))
		}
	})
}

// TestEngineMismatch: a server that is not the declared engine is refused
// before anything is sent.
func TestEngineMismatch(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		declared := "mariadb-10.11"
		if s.Flavor == flavor.MariaDB {
			declared = "aurora-mysql-3"
		}
		st, c := s.stateAs(t, declared, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		res := s.reconcile(t, s.options(st, c))
		if res.Status != engine.Failed {
			t.Fatalf("status %s, want failed", res.Status)
		}
		if !strings.Contains(res.Error, "engine mismatch") || !strings.Contains(res.Error, declared) {
			t.Errorf("error %q, want an engine mismatch naming %s", res.Error, declared)
		}
		if res.Writes != 0 || len(res.Applied) != 0 {
			t.Errorf("writes %d, applied %d; want none", res.Writes, len(res.Applied))
		}
		if s.exists(t, s.acct("app")) {
			t.Errorf("%s was created on a mismatched server", s.acct("app"))
		}
	})
}

// hookSink records like audit.Memory and calls on after each record, so a
// test can act between two statements of a run.
type hookSink struct {
	audit.Memory
	on func(audit.Record)
}

func (h *hookSink) Record(r audit.Record) error {
	_ = h.Memory.Record(r)
	if h.on != nil {
		h.on(r)
	}
	return nil
}

// TestFailedAccountStaysWithItsAccount: an operator drops an account
// between its CREATE USER and its GRANT; the GRANT fails, that account's
// later changes are not sent, every other account converges in the same
// run, and the result and the audit trail say exactly what took effect and
// which account failed.
func TestFailedAccountStaysWithItsAccount(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(),
			s.pwUser("alice", "read", s.dbs[0]), s.pwUser("bob", "read", s.dbs[0], s.dbs[1]), s.pwUser("carol", "read", s.dbs[0]))
		bob := s.acct("bob")
		sink := &hookSink{on: func(r audit.Record) {
			if r.Action == string(plan.CreateUser) && r.User == "bob" {
				s.Exec(t, fmt.Sprintf("DROP USER '%s'@'%%'", bob))
			}
		}}
		opt := s.options(st, c)
		opt.Audit = sink
		res := s.reconcile(t, opt)
		if res.Status != engine.Partial || !errors.Is(res.Err, engine.ErrPartial) {
			t.Fatalf("status %s, error %v; want partial", res.Status, res.Err)
		}
		if !strings.Contains(res.Error, "1 account(s) failed") || !strings.Contains(res.Error, bob) {
			t.Errorf("error %q does not name the failed account %s", res.Error, bob)
		}
		if len(res.Failures) != 1 || res.Failures[0].Account.User != bob || !strings.HasPrefix(res.Failures[0].Statement, "GRANT") ||
			res.Failures[0].Error == "" || res.Failures[0].Skipped != 1 || res.Failures[0].User != "bob" {
			t.Errorf("failures %+v; want bob's first GRANT, with one change skipped after it", res.Failures)
		}
		wantApplied := []change{
			{Action: plan.CreateUser, User: s.acct("alice")},
			{Action: plan.Grant, User: s.acct("alice"), DB: s.dbs[0], Privs: readPrivs},
			{Action: plan.CreateUser, User: bob},
			{Action: plan.CreateUser, User: s.acct("carol")},
			{Action: plan.Grant, User: s.acct("carol"), DB: s.dbs[0], Privs: readPrivs},
		}
		if diff := cmp.Diff(wantApplied, stepsOf(res.Applied)); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		// Grants come in database order: <prefix>_billing first.
		wantNotApplied := []change{
			{Action: plan.Grant, User: bob, DB: s.dbs[1], Privs: readPrivs},
			{Action: plan.Grant, User: bob, DB: s.dbs[0], Privs: readPrivs},
		}
		if diff := cmp.Diff(wantNotApplied, changesOf(res.NotApplied)); diff != "" {
			t.Errorf("not applied (-want +got):\n%s", diff)
		}
		if res.Writes != 6 {
			t.Errorf("writes %d, want 6 (5 applied, 1 failed)", res.Writes)
		}
		recs := sink.Records()
		if len(recs) != 6 {
			t.Fatalf("audit has %d records, want 6: %+v", len(recs), recs)
		}
		for i, r := range recs {
			want := audit.Applied
			if i == 3 {
				want = audit.Failed
			}
			if r.Outcome != want {
				t.Errorf("record %d %s: outcome %s, want %s", i, r.Statement, r.Outcome, want)
			}
		}
		if failed := recs[3]; !strings.HasPrefix(failed.Statement, "GRANT") || failed.User != "bob" || failed.Error == "" {
			t.Errorf("record 3 %+v, want the failed GRANT to bob with its error", failed)
		}
		if !s.exists(t, s.acct("alice")) || !s.exists(t, s.acct("carol")) || s.exists(t, bob) {
			t.Errorf("alice exists %v, carol %v (want both), bob %v (want not)", s.exists(t, s.acct("alice")), s.exists(t, s.acct("carol")), s.exists(t, bob))
		}

		// The run released its lock, and the next run repairs bob.
		sink.on = nil
		if res := s.mustApply(t, opt); len(res.Applied) != 3 {
			t.Errorf("rerun applied %d statements, want 3 (create bob, grant twice):\n%s", len(res.Applied), summaries(res))
		}
	})
}

// TestLocked: a run that cannot take the named lock changes nothing.
func TestLocked(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		ctx := context.Background()
		holder, err := s.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		var got int
		if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", engine.LockName(desired.Prefix(s.prefix))).Scan(&got); err != nil || got != 1 {
			t.Fatalf("take the lock: %d, %v", got, err)
		}
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		opt := s.options(st, c)
		opt.LockTimeout = time.Second
		start := time.Now()
		res := s.reconcile(t, opt)
		if res.Status != engine.Failed || !errors.Is(res.Err, engine.ErrLocked) {
			t.Fatalf("status %s, error %v; want failed with ErrLocked", res.Status, res.Err)
		}
		if res.Writes != 0 || s.exists(t, s.acct("app")) {
			t.Errorf("a locked-out run wrote: %d writes, account exists %v", res.Writes, s.exists(t, s.acct("app")))
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the locked-out run took %s with a 1 s lock timeout", d)
		}

		if err := holder.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", engine.LockName(desired.Prefix(s.prefix))).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if res := s.mustApply(t, opt); res.Status != engine.Applied {
			t.Errorf("after release: status %s, want applied", res.Status)
		}
	})
}

// TestAudit: one JSON line per applied statement, with everything a person
// needs to answer "who changed what", and never a password.
func TestAudit(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		// A stale account to drop and a stale password to rotate, so every
		// kind of statement is audited.
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'stale'", s.acct("gone")))
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'stale'", s.acct("rotated")))
		st, c := s.state(t, s.settings(),
			s.pwUser("app", "write", s.dbs[0]), s.pwUser("rotated", "read", s.dbs[1]))
		// A password with every character a literal must escape.
		s.passwords[secret("app")] = `it's a \ "secret"` + mysqltest.Password("quote")
		var buf bytes.Buffer
		opt := s.options(st, c)
		opt.Audit = audit.NewJSONLines(&buf)
		res := s.mustApply(t, opt)

		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != len(res.Applied) || len(lines) != 5 {
			t.Fatalf("%d audit lines for %d applied statements, want 5:\n%s", len(lines), len(res.Applied), buf.String())
		}
		actions, redacted := map[string]bool{}, 0
		for i, line := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("line %d is not JSON: %v: %s", i+1, err, line)
			}
			step := res.Applied[i]
			want := map[string]any{
				"cluster": clusterName, "account": step.Change.Account.String(), "action": string(step.Change.Action()),
				"statement": step.Statement, "outcome": "applied", "config_version": "test", "commit": "0123abc",
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("line %d: %s = %v, want %v", i+1, k, rec[k], v)
				}
			}
			if step.Change.User != "" && rec["user"] != step.Change.User {
				t.Errorf("line %d: user = %v, want %s", i+1, rec["user"], step.Change.User)
			}
			if _, ok := rec["duration_ms"].(float64); !ok {
				t.Errorf("line %d: duration_ms missing: %s", i+1, line)
			}
			if ts, _ := rec["time"].(string); ts == "" {
				t.Errorf("line %d: time missing", i+1)
			}
			actions[rec["action"].(string)] = true
			if strings.Contains(rec["statement"].(string), "IDENTIFIED BY '<redacted>'") {
				redacted++
			}
		}
		for _, a := range []plan.Action{plan.CreateUser, plan.AlterAuth, plan.Grant, plan.DropUser} {
			if !actions[string(a)] {
				t.Errorf("no %s in the audit trail", a)
			}
		}
		resJSON, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		for ref, pw := range s.passwords {
			for where, text := range map[string]string{"audit": buf.String(), "result JSON": string(resJSON), "error": res.Error} {
				encoded, _ := json.Marshal(pw)
				forms := []string{pw, strings.ReplaceAll(pw, `'`, `''`), strings.Trim(string(encoded), `"`)}
				if slices.ContainsFunc(forms, func(f string) bool { return strings.Contains(text, f) }) {
					t.Errorf("the password of %s appears in the %s", ref, where)
				}
			}
		}
		if redacted != 2 {
			t.Errorf("%d statements with a redacted password in the audit trail, want 2 (create, rotate):\n%s", redacted, buf.String())
		}
		// The password with quotes and a backslash works as written.
		if _, err := s.login(t, s.acct("app"), s.password("app")); err != nil {
			t.Errorf("log in with a password that needs escaping: %v", err)
		}
	})
}

// TestServerSQLMode: a server whose sql_mode has NO_BACKSLASH_ESCAPES (an
// RDS parameter group may set it) must still get the password exactly as
// the secret holds it; the statement renderer escapes backslashes and
// relies on the engine to set its session's sql_mode.
func TestServerSQLMode(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		cfg, err := mysql.ParseDSN(s.DSN)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		// Every connection of this pool starts with the server's mode plus
		// NO_BACKSLASH_ESCAPES, as if it were the global default.
		cfg.Params["sql_mode"] = "CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		var mode string
		if err := admin.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
			t.Fatalf("read sql_mode: %v", err)
		}
		if !strings.Contains(mode, "NO_BACKSLASH_ESCAPES") {
			t.Skipf("%s does not take NO_BACKSLASH_ESCAPES (sql_mode %q)", s.Name, mode)
		}

		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		s.passwords[secret("app")] = `back\slash\` + mysqltest.Password("mode")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res := engine.Reconcile(ctx, admin, s.options(st, c))
		if res.Status != engine.Applied {
			t.Fatalf("status %s, error %v", res.Status, res.Err)
		}
		if _, err := s.login(t, s.acct("app"), s.password("app")); err != nil {
			t.Errorf("log in with the secret's password: %v", err)
		}
		if res := engine.Reconcile(ctx, admin, s.options(st, c)); res.Status != engine.Unchanged {
			t.Errorf("second run: status %s, %d writes, want unchanged", res.Status, res.Writes)
		}
	})
}

// TestDriftRepair: what a person granted by hand outside the declarations
// (global privileges, table and column grants, a role, a grant on an
// unescaped wildcard pattern) is revoked, and the declared grant stays.
func TestDriftRepair(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		db := s.dbs[0]
		s.Exec(t, "CREATE TABLE `"+db+"`.items (id INT PRIMARY KEY, sku VARCHAR(40))")
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", db))
		s.mustApply(t, s.options(st, c))

		acct := fmt.Sprintf("'%s'@'%%'", s.acct("app"))
		role := s.prefix + "role"
		drift := []string{
			"GRANT PROCESS ON *.* TO " + acct,
			"GRANT SELECT ON `" + s.pattern(db) + "`.* TO " + acct + " WITH GRANT OPTION",
			"GRANT INSERT ON `" + db + "`.items TO " + acct,
			"CREATE ROLE " + role,
			"GRANT " + role + " TO " + acct,
		}
		want := []change{
			{Action: plan.RevokeRole, User: s.acct("app")},
			{Action: plan.Revoke, User: s.acct("app"), Privs: []string{"PROCESS"}},
			{Action: plan.Revoke, User: s.acct("app"), DB: db, Privs: []string{"INSERT"}},
		}
		grantOption := change{Action: plan.Revoke, User: s.acct("app"), DB: db, Privs: []string{"GRANT OPTION"}}
		if s.Flavor == flavor.MariaDB {
			// An unescaped _ is a wildcard on MariaDB: this grant reaches
			// every database that matches, not just db.
			drift = append(drift,
				"GRANT UPDATE (sku) ON `"+db+"`.items TO "+acct,
				"GRANT SELECT, DELETE ON `"+db+"`.* TO "+acct)
			want = append(want,
				change{Action: plan.Revoke, User: s.acct("app"), DB: db, Privs: []string{"UPDATE"}},
				grantOption, // on the escaped pattern, which sorts first
				change{Action: plan.Revoke, User: s.acct("app"), DB: db, Privs: []string{"DELETE", "SELECT"}})
		} else {
			want = append(want, grantOption)
		}
		for _, q := range drift {
			s.Exec(t, q)
		}
		t.Cleanup(func() { _, _ = s.DB.Exec("DROP ROLE " + role) })

		res := s.mustApply(t, s.options(st, c))
		if diff := cmp.Diff(want, changesOf(res.Plan.Changes)); diff != "" {
			t.Errorf("plan (-want +got):\n%s", diff)
		}
		for _, table := range []string{"mysql.tables_priv", "mysql.columns_priv"} {
			if s.Flavor == flavor.Embedded && table == "mysql.columns_priv" {
				continue // the embedded server has no column grants
			}
			if rows := s.rows(t, "SELECT * FROM "+table+" WHERE User = ?", s.acct("app")); len(rows) != 0 {
				t.Errorf("%s still has %d row(s) for %s", table, len(rows), s.acct("app"))
			}
		}
		if diff := cmp.Diff(map[string][]string{s.pattern(db): readPrivs}, s.dbPrivs(t, s.acct("app"))); diff != "" {
			t.Errorf("mysql.db (-want +got):\n%s", diff)
		}
		var process string
		if err := s.DB.QueryRow("SELECT Process_priv FROM mysql.user WHERE User = ? AND Host = '%'", s.acct("app")).Scan(&process); err != nil || process != "N" {
			t.Errorf("Process_priv = %q, %v; want N", process, err)
		}
	})
}

// TestExpiry: once an access entry's day has passed, the next run revokes
// what only it granted.
func TestExpiry(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		u := s.pwUser("temp", "read", s.dbs[0])
		u.Access = append(u.Access, config.Access{Clusters: []string{clusterName}, Databases: []string{s.dbs[0], s.dbs[1]},
			Role: "write", Expires: "2026-02-01", Reason: "INC-1"})
		before := time.Date(2026, 2, 1, 23, 0, 0, 0, time.UTC) // the last day still grants
		st, c := s.stateOn(t, s.Engine, before, s.settings(), u)
		s.mustApply(t, s.options(st, c))
		want := map[string][]string{s.pattern(s.dbs[0]): writePrivs, s.pattern(s.dbs[1]): writePrivs}
		if diff := cmp.Diff(want, s.dbPrivs(t, s.acct("temp"))); diff != "" {
			t.Fatalf("before expiry (-want +got):\n%s", diff)
		}

		after := time.Date(2026, 2, 2, 0, 0, 1, 0, time.UTC)
		st, c = s.stateOn(t, s.Engine, after, s.settings(), u)
		res := s.mustApply(t, s.options(st, c))
		wantPlan := []change{
			{Action: plan.Revoke, User: s.acct("temp"), DB: s.dbs[1], Privs: writePrivs},
			{Action: plan.Revoke, User: s.acct("temp"), DB: s.dbs[0], Privs: []string{"INSERT", "UPDATE"}},
		}
		if diff := cmp.Diff(wantPlan, changesOf(res.Plan.Changes)); diff != "" {
			t.Errorf("plan after expiry (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string][]string{s.pattern(s.dbs[0]): readPrivs}, s.dbPrivs(t, s.acct("temp"))); diff != "" {
			t.Errorf("after expiry (-want +got):\n%s", diff)
		}
	})
}

// TestConcurrentRuns: two runs at once on one server serialize on the lock;
// the second finds nothing left to do.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		var users []config.User
		for i := range 20 {
			users = append(users, s.pwUser(fmt.Sprintf("u%02d", i), "write", s.dbs[0], s.dbs[1]))
		}
		st, c := s.state(t, s.settings(), users...)
		results := make(chan *engine.Result, 2)
		for range 2 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				results <- engine.Reconcile(ctx, s.DB, s.options(st, c))
			}()
		}
		a, b := <-results, <-results
		if a.Err != nil || b.Err != nil {
			t.Fatalf("errors: %v; %v", a.Err, b.Err)
		}
		statuses := []engine.Status{a.Status, b.Status}
		slices.Sort(statuses)
		if diff := cmp.Diff([]engine.Status{engine.Applied, engine.Unchanged}, statuses); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		if a.Writes+b.Writes != 60 {
			t.Errorf("writes %d + %d, want 60 in all (20 CREATE USER, 40 GRANT)", a.Writes, b.Writes)
		}
	})
}

// failingSink fails to record from the nth record on.
type failingSink struct {
	audit.Memory
	failFrom int
}

func (f *failingSink) Record(r audit.Record) error {
	_ = f.Memory.Record(r)
	if len(f.Records()) >= f.failFrom {
		return errors.New("disk full")
	}
	return nil
}

// TestAuditFailureStops: a statement that cannot be audited is the last one
// sent.
func TestAuditFailureStops(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("alice", "read", s.dbs[0]), s.pwUser("bob", "read", s.dbs[0]))
		opt := s.options(st, c)
		opt.Audit = &failingSink{failFrom: 2}
		res := s.reconcile(t, opt)
		if res.Status != engine.Failed || !strings.Contains(res.Error, "audit log") {
			t.Fatalf("status %s, error %q; want failed on the audit log", res.Status, res.Error)
		}
		if res.Writes != 2 || len(res.Applied) != 2 || len(res.NotApplied) != 2 {
			t.Errorf("writes %d, applied %d, not applied %d; want 2, 2 (the unaudited one included), 2",
				res.Writes, len(res.Applied), len(res.NotApplied))
		}
		if s.exists(t, s.acct("bob")) {
			t.Errorf("%s was created after the audit log failed", s.acct("bob"))
		}
	})
}

// TestLockedAccountLeftAlone: on MariaDB, an account an operator locked
// stays locked; the plan notes it and changes nothing else.
func TestLockedAccountLeftAlone(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		if s.Flavor == flavor.Embedded {
			t.Skip("the embedded server has no ACCOUNT LOCK")
		}
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		s.mustApply(t, s.options(st, c))
		s.Exec(t, fmt.Sprintf("ALTER USER '%s'@'%%' ACCOUNT LOCK", s.acct("app")))
		before := s.snapshot(t, s.acct("app"))

		res := s.mustApply(t, s.options(st, c))
		if res.Status != engine.Unchanged || res.Writes != 0 {
			t.Errorf("status %s, %d writes; want unchanged", res.Status, res.Writes)
		}
		if len(res.Plan.Notes) != 1 || !strings.Contains(res.Plan.Notes[0], "locked") {
			t.Errorf("notes %q, want one saying %s is locked", res.Plan.Notes, s.acct("app"))
		}
		if diff := cmp.Diff(before, s.snapshot(t, s.acct("app"))); diff != "" {
			t.Errorf("the locked account changed (-before +after):\n%s", diff)
		}
		if _, err := s.login(t, s.acct("app"), s.password("app")); err == nil {
			t.Errorf("%s logs in although it is locked", s.acct("app"))
		}
	})
}

// TestRoleTransitions walks one account through every built-in role and
// back: after each step the server holds exactly the role's privileges
// (ALL PRIVILEGES expanded the way the server stores it) and the next run
// has nothing to do.
func TestRoleTransitions(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		roles, problems := s.settings().RolePrivileges()
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		for _, role := range []string{"read", "trusted_admin", "admin", "write", "trusted_admin", "read", "admin", "read"} {
			st, c := s.state(t, s.settings(), s.pwUser("app", role, s.dbs[0]))
			res := s.mustApply(t, s.options(st, c))
			privs, err := s.Flavor.Expand(roles[role])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string][]string{s.pattern(s.dbs[0]): columnNames(privs)}, s.dbPrivs(t, s.acct("app"))); diff != "" {
				t.Fatalf("after %s (-want +got):\n%s", role, diff)
			}
			again := s.reconcile(t, s.options(st, c))
			if again.Status != engine.Unchanged || again.Writes != 0 {
				t.Fatalf("after %s (%d statement(s)), the next run: status %s, %d writes:\n%s",
					role, len(res.Applied), again.Status, again.Writes, summaries(again))
			}
		}
	})
}
