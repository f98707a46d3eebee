package mysqlstate

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// fixture creates accounts, roles and databases with names unique to one
// test, and drops them at the end on a shared server.
type fixture struct {
	tb testing.TB
	s  *mysqltest.Server
	// stem is "t" and random letters; prefix is stem + "_", the managed
	// prefix of the test.
	stem, prefix string
}

func newFixture(tb testing.TB, s *mysqltest.Server) *fixture {
	stem := mysqltest.Name("t")
	return &fixture{tb: tb, s: s, stem: stem, prefix: stem + "_"}
}

// managed is the prefix whose namespace is f.prefix.
func (f *fixture) managed() desired.Prefix { return desired.Prefix(f.stem) }

func (f *fixture) exec(stmts ...string) {
	f.tb.Helper()
	for _, q := range stmts {
		f.s.Exec(f.tb, q)
	}
}

// cleanup runs stmt at the end of the test on a shared server.
func (f *fixture) cleanup(stmt string) {
	if !f.s.Shared {
		return
	}
	f.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := f.s.DB.ExecContext(ctx, stmt); err != nil {
			f.tb.Errorf("clean up: %s: %v", stmt, err)
		}
	})
}

func (f *fixture) database(name string) {
	f.cleanup("DROP DATABASE IF EXISTS " + ident(name))
	f.exec("CREATE DATABASE " + ident(name))
}

func (f *fixture) user(name, options string) AccountID {
	id := AccountID{User: name, Host: "%"}
	f.cleanup("DROP USER IF EXISTS " + account(id))
	f.exec(strings.TrimSpace("CREATE USER " + account(id) + " " + options))
	return id
}

func (f *fixture) role(name string) {
	f.cleanup("DROP ROLE IF EXISTS " + ident(name))
	f.exec("CREATE ROLE " + ident(name))
}

// ident and lit quote for the fixture's statements only.
func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
func lit(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
func account(id AccountID) string { return lit(id.User) + "@" + lit(id.Host) }

// escapeDB escapes _ and % as GRANT wants a database name that contains
// them.
func escapeDB(s string) string {
	return strings.NewReplacer(`_`, `\_`, `%`, `\%`).Replace(s)
}

func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func TestDetectServers(t *testing.T) {
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) {
		ctx := testContext(t)
		id, err := Detect(ctx, s.DB)
		if err != nil {
			t.Fatal(err)
		}
		if id.Flavor != s.Flavor {
			t.Errorf("flavor = %q; want %q (version %q, comment %q)", id.Flavor, s.Flavor, id.Version, id.VersionComment)
		}
		var version, user string
		if err := s.DB.QueryRowContext(ctx, "SELECT VERSION(), CURRENT_USER()").Scan(&version, &user); err != nil {
			t.Fatal(err)
		}
		if id.Version != version {
			t.Errorf("version = %q; want VERSION() %q", id.Version, version)
		}
		if id.CurrentUser != parseAccount(user) || id.CurrentUser.User == "" {
			t.Errorf("current user = %v; want %s", id.CurrentUser, user)
		}
		if id.Aurora() || id.PartialRevokes {
			t.Errorf("aurora = %v, partial_revokes = %v; want neither", id.Aurora(), id.PartialRevokes)
		}
		if err := CheckEngine(engineNamed(s.Engine), id); err != nil {
			t.Errorf("CheckEngine(%s): %v", s.Engine, err)
		}
		want := "engine mismatch: cluster declares aurora-mysql-3 (MySQL 8.0 on Aurora) but the server is "
		switch s.Flavor {
		case flavor.MariaDB:
			want += "MariaDB " + version
		case flavor.Embedded:
			want += "the embedded go-mysql-server (version 8.0.31, version_comment Dolt)"
		}
		want += "; refusing to reconcile"
		if err := CheckEngine(engineNamed("aurora-mysql-3"), id); err == nil || err.Error() != want {
			t.Errorf("CheckEngine(aurora-mysql-3)\n got %v\nwant %s", err, want)
		}
	})
}

func TestReadServers(t *testing.T) {
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) {
		f := newFixture(t, s)
		p := f.prefix
		mainDB := f.stem + "db"     // no underscore
		underDB := f.prefix + "app" // contains _, granted as escaped
		f.database(mainDB)
		f.database(underDB)
		f.exec(fmt.Sprintf("CREATE TABLE %s.t1 (id INT PRIMARY KEY, c INT)", ident(mainDB)))

		bob := f.user(p+"bob", "IDENTIFIED BY 'secret'")
		global := "PROCESS, REPLICATION CLIENT, SHOW DATABASES"
		if s.Flavor == flavor.MariaDB {
			global += ", SLAVE MONITOR"
		}
		f.exec(
			"GRANT "+global+" ON *.* TO "+account(bob),
			"GRANT ALL PRIVILEGES ON "+ident(mainDB)+".* TO "+account(bob),
			"GRANT SELECT ON "+ident(escapeDB(underDB))+".* TO "+account(bob),
			"GRANT SELECT, INSERT ON "+ident(mainDB)+".t1 TO "+account(bob),
		)
		role := p + "readers"
		f.role(role)
		f.exec("GRANT " + ident(role) + " TO " + account(bob))
		nopass := f.user(p+"nopass", "")
		var svc AccountID
		if s.Flavor == flavor.MariaDB {
			// go-mysql-server has neither column grants nor ACCOUNT LOCK,
			// and accepts REQUIRE SSL without storing it.
			f.exec("GRANT SELECT (c), UPDATE (c) ON " + ident(mainDB) + ".t1 TO " + account(bob))
			svc = f.user(p+"svc", "IDENTIFIED BY 'secret' REQUIRE SSL ACCOUNT LOCK")
		}
		// Look-alikes that a careless prefix match would take for managed
		// accounts; each has a grant so that every table has rows to skip.
		for _, name := range []string{
			f.stem + "x_bob",                 // acmex_bob
			strings.ToUpper(f.stem) + "_bob", // ACME_bob
			f.stem,                           // acme
			"x" + p + "user",                 // other_user
			f.stem + "Xbob",                  // acmeXbob: what unescaped acme_% matches
		} {
			id := f.user(name, "IDENTIFIED BY 'secret'")
			f.exec("GRANT SELECT ON "+ident(mainDB)+".* TO "+account(id),
				"GRANT SELECT ON "+ident(mainDB)+".t1 TO "+account(id),
				"GRANT "+ident(role)+" TO "+account(id))
		}

		ctx := testContext(t)
		got, err := Read(ctx, s.DB, f.managed())
		if err != nil {
			t.Fatal(err)
		}
		secret := NativePasswordHash("secret")
		if secret != "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7" {
			t.Fatalf("NativePasswordHash(secret) = %s", secret)
		}
		wantBob := &Account{
			ID: bob, Plugin: "mysql_native_password", AuthString: secret,
			Global: []string{"PROCESS", "REPLICATION CLIENT", "SHOW DATABASES"},
			Databases: map[string][]string{
				mainDB:            s.Flavor.DatabasePrivileges(),
				escapeDB(underDB): {"SELECT"},
			},
			Tables: []TableGrant{{Database: mainDB, Table: "t1", Privileges: []string{"INSERT", "SELECT"}}},
			Roles:  []AccountID{{User: role, Host: "%"}},
		}
		want := map[AccountID]*Account{
			bob:    wantBob,
			nopass: {ID: nopass, Plugin: "mysql_native_password"},
		}
		switch s.Flavor {
		case flavor.MariaDB:
			wantBob.Global = []string{"BINLOG MONITOR", "PROCESS", "SHOW DATABASES", "SLAVE MONITOR"}
			wantBob.Tables = append(wantBob.Tables, TableGrant{Database: mainDB, Table: "t1", Column: "c", Privileges: []string{"SELECT", "UPDATE"}})
			wantBob.Roles = []AccountID{{User: role}} // a MariaDB role has no host, and is no account
			want[svc] = &Account{ID: svc, Plugin: "mysql_native_password", AuthString: secret, Locked: true, RequireSSL: true}
		case flavor.Embedded:
			// A MySQL 8.0-style role is a locked account without password.
			id := AccountID{User: role, Host: "%"}
			want[id] = &Account{ID: id, Plugin: "mysql_native_password", Locked: true}
		}
		if diff := cmp.Diff(want, got.Accounts); diff != "" {
			t.Errorf("accounts (-want +got):\n%s", diff)
		}
		if !s.Flavor.IsAll(got.Accounts[bob].Databases[mainDB]) {
			t.Errorf("ALL PRIVILEGES read back as %q; want %s's expansion", got.Accounts[bob].Databases[mainDB], s.Flavor)
		}
		if got.Flavor != s.Flavor || got.CurrentUser.User == "" {
			t.Errorf("server = %s as %v; want %s", got.Flavor, got.CurrentUser, s.Flavor)
		}
	})
}

// countingQuerier counts the queries Read sends.
type countingQuerier struct {
	q Querier
	n int
}

func (c *countingQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.n++
	return c.q.QueryContext(ctx, query, args...)
}

// maxQueries is the most Detect plus Read may send, on any flavor.
const maxQueries = 11

func TestReadQueryCountIsConstant(t *testing.T) {
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) {
		f := newFixture(t, s)
		db := f.stem + "db"
		f.database(db)
		count := func(wantAccounts int) int {
			t.Helper()
			c := &countingQuerier{q: s.DB}
			got, err := Read(testContext(t), c, f.managed())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Accounts) != wantAccounts {
				t.Fatalf("read %d accounts; want %d", len(got.Accounts), wantAccounts)
			}
			return c.n
		}
		f.exec("GRANT SELECT ON " + ident(db) + ".* TO " + account(f.user(f.prefix+"u000", "IDENTIFIED BY 'pw'")))
		one := count(1)
		for i := 1; i < 200; i++ {
			id := f.user(fmt.Sprintf("%su%03d", f.prefix, i), "IDENTIFIED BY 'pw'")
			f.exec("GRANT SELECT ON " + ident(db) + ".* TO " + account(id))
		}
		many := count(200)
		if one > maxQueries || many != one {
			t.Errorf("queries: %d with 1 account, %d with 200; want the same, at most %d", one, many, maxQueries)
		}
		t.Logf("%s: %d queries for Detect + Read", s.Flavor, one)
	})
}

func TestReadRefusesEmptyPrefix(t *testing.T) {
	s := mysqltest.Embedded(t)
	if _, err := Read(testContext(t), s.DB, ""); err == nil {
		t.Fatal("Read with an empty prefix succeeded; want an error")
	}
}

// BenchmarkRead reads 1,000 accounts with grants on 3 databases each.
func BenchmarkRead(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *mysqltest.Server
	}{
		{"mariadb", func(tb testing.TB) *mysqltest.Server {
			return mysqltest.MariaDB(tb, "the benchmark did NOT run against MariaDB")
		}},
		{"embedded", func(tb testing.TB) *mysqltest.Server { return mysqltest.Embedded(tb) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.open(b)
			f := newFixture(b, s)
			var dbs []string
			for i := range 3 {
				dbs = append(dbs, fmt.Sprintf("%sdb%d", f.stem, i))
				f.database(dbs[i])
			}
			const accounts = 1000
			for i := range accounts {
				id := f.user(fmt.Sprintf("%su%04d", f.prefix, i), "IDENTIFIED BY 'pw'")
				for _, db := range dbs {
					f.exec("GRANT SELECT, INSERT ON " + ident(db) + ".* TO " + account(id))
				}
			}
			ctx := testContext(b)
			c := &countingQuerier{q: s.DB}
			b.ResetTimer()
			for b.Loop() {
				got, err := Read(ctx, c, f.managed())
				if err != nil {
					b.Fatal(err)
				}
				if len(got.Accounts) != accounts {
					b.Fatalf("read %d accounts; want %d", len(got.Accounts), accounts)
				}
			}
			b.ReportMetric(float64(c.n)/float64(b.N), "queries/op")
		})
	}
}

// TestLikePrefixOnServers checks that every server reads likePrefix's
// pattern, with ESCAPE '!', as this package means it: exactly the names
// that start with the prefix, _ and % and ! taken literally.
func TestLikePrefixOnServers(t *testing.T) {
	prefixes := []string{"acme_", "a%b", `a\b`, "o'b", "x!y", "日本_", "x`y"}
	names := []string{"acme_bob", "acmeXbob", "acme", "a%bc", "aXbc", `a\bc`, "abc", "o'bc", "x!yz", "xyz", "日本_x", "日本x", "x`yz", "x``yz"}
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) {
		ctx := testContext(t)
		for _, p := range prefixes {
			for _, n := range names {
				// BINARY: mysql.user's columns are binary; a literal alone
				// compares in the connection's collation, which may be case-
				// and accent-insensitive.
				var got string
				err := s.DB.QueryRowContext(ctx, "SELECT CAST((BINARY ? LIKE BINARY ? ESCAPE '!') AS CHAR)", n, likePrefix(p)).Scan(&got)
				if err != nil {
					t.Fatal(err)
				}
				if want := strings.HasPrefix(n, p); (got == "1") != want {
					t.Errorf("%q LIKE %q ESCAPE '!' = %s, want %v", n, likePrefix(p), got, want)
				}
			}
		}
	})
}

// TestEveryFlavorsGrantTablesAreRead: each table a flavor names in
// GrantTables (which adminsql grants SELECT on) has a query here.
func TestEveryFlavorsGrantTablesAreRead(t *testing.T) {
	for _, f := range flavor.All() {
		steps, err := readSteps(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var read []string
		for _, s := range steps {
			read = append(read, s.table)
		}
		slices.Sort(read)
		if !slices.Equal(read, f.GrantTables()) {
			t.Errorf("%s: reads %v, GrantTables %v", f, read, f.GrantTables())
		}
	}
	if _, err := readSteps(flavor.Flavor("oracle")); err == nil {
		t.Error("an unknown flavor has read steps")
	}
}

// TestReadEveryGrant: routine grants, proxy grants, default roles,
// password expiry, password lifetime and resource limits set by hand are
// all read, so that no privilege or setting stays invisible to a plan.
func TestReadEveryGrant(t *testing.T) {
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) {
		f := newFixture(t, s)
		db := f.stem + "db"
		f.database(db)
		f.exec("CREATE PROCEDURE " + ident(db) + ".p() SELECT 1")
		bob := f.user(f.prefix+"bob", "IDENTIFIED BY 'secret'")
		f.exec("GRANT EXECUTE ON PROCEDURE " + ident(db) + ".p TO " + account(bob))
		want := &Account{ID: bob, Plugin: "mysql_native_password", AuthString: NativePasswordHash("secret"),
			Routines: []RoutineGrant{{Database: db, Name: "p", Type: "PROCEDURE", Privileges: []string{"EXECUTE"}}}}
		if s.Flavor != flavor.Embedded {
			role := f.prefix + "r"
			f.role(role)
			f.exec("GRANT PROXY ON 'root'@'localhost' TO "+account(bob),
				"GRANT "+ident(role)+" TO "+account(bob),
				"ALTER USER "+account(bob)+" WITH MAX_USER_CONNECTIONS 3 MAX_QUERIES_PER_HOUR 7 PASSWORD EXPIRE INTERVAL 30 DAY",
				"ALTER USER "+account(bob)+" PASSWORD EXPIRE")
			want.Proxies = []AccountID{{User: "root", Host: "localhost"}}
			want.Limits = Limits{Queries: 7, UserConnections: 3}
			want.PasswordLifetime, want.PasswordExpired = "30", true
			if s.Flavor == flavor.MariaDB {
				f.exec("SET DEFAULT ROLE " + ident(role) + " FOR " + account(bob))
				want.Roles, want.DefaultRoles = []AccountID{{User: role}}, []AccountID{{User: role}}
			} else {
				f.exec("SET DEFAULT ROLE " + account(AccountID{User: role, Host: "%"}) + " TO " + account(bob))
				r := AccountID{User: role, Host: "%"}
				want.Roles, want.DefaultRoles = []AccountID{r}, []AccountID{r}
			}
		}
		got, err := Read(testContext(t), s.DB, f.managed())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got.Accounts[bob]); diff != "" {
			t.Errorf("bob (-want +got):\n%s", diff)
		}
	})
}

// TestReadSessionsAndObjects: the open sessions of managed user names
// (never the reader's own) and the stored objects they define, each in one
// query.
func TestReadSessionsAndObjects(t *testing.T) {
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) {
		f := newFixture(t, s)
		db := f.stem + "db"
		f.database(db)
		bob := f.user(f.prefix+"bob", "IDENTIFIED BY 'secret'")
		other := f.user("x"+f.prefix+"eve", "IDENTIFIED BY 'secret'")
		f.exec("GRANT SELECT ON "+ident(db)+".* TO "+account(bob), "GRANT SELECT ON "+ident(db)+".* TO "+account(other),
			"CREATE TABLE "+ident(db)+".t (id INT PRIMARY KEY)",
			"CREATE DEFINER="+account(bob)+" SQL SECURITY DEFINER VIEW "+ident(db)+".v AS SELECT id FROM "+ident(db)+".t",
			"CREATE DEFINER="+account(bob)+" PROCEDURE "+ident(db)+".p() SELECT 1",
			"CREATE DEFINER="+account(bob)+" TRIGGER "+ident(db)+".tr BEFORE INSERT ON "+ident(db)+".t FOR EACH ROW SET NEW.id = NEW.id",
			"CREATE DEFINER="+account(other)+" VIEW "+ident(db)+".w AS SELECT 1 AS one")
		f.exec("CREATE DEFINER=" + account(bob) + " EVENT " + ident(db) + ".e ON SCHEDULE EVERY 1 DAY DO SELECT 1")
		cfg := s.Config()
		cfg.User, cfg.Passwd, cfg.DBName = bob.User, "secret", db
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		conn := sql.OpenDB(connector)
		defer conn.Close()
		var sessionID int64
		if err := conn.QueryRowContext(testContext(t), "SELECT CONNECTION_ID()").Scan(&sessionID); err != nil {
			t.Fatal(err)
		}
		srv := &Server{}
		ctx := testContext(t)
		if err := ReadSessions(ctx, s.DB, srv, f.managed()); err != nil {
			t.Fatal(err)
		}
		if len(srv.Sessions) != 1 || srv.Sessions[0].ID != sessionID || srv.Sessions[0].User != bob.User || srv.Sessions[0].DB != db {
			t.Errorf("sessions %+v, want bob's session %d in %s", srv.Sessions, sessionID, db)
		}
		if err := ReadObjects(ctx, s.DB, srv, f.managed()); err != nil {
			t.Fatal(err)
		}
		want := []StoredObject{
			{Kind: "event", Database: db, Name: "e", Definer: bob},
			{Kind: "procedure", Database: db, Name: "p", Definer: bob},
			{Kind: "trigger", Database: db, Name: "tr", Definer: bob},
			{Kind: "view", Database: db, Name: "v", Definer: bob},
		}
		if diff := cmp.Diff(want, srv.Objects); diff != "" {
			t.Errorf("objects (-want +got):\n%s", diff)
		}
		if got := srv.OwnedBy(bob); len(got) != 4 {
			t.Errorf("OwnedBy(bob) = %v", got)
		}
	})
}
