package mysqlstate

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/embedded"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	_ "github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
)

// mariaDBEnv names the MariaDB server the suite also runs against, e.g.
// root@unix(/run/mysqld/mysqld.sock)/ (.ci/run sets it).
const mariaDBEnv = "DBUSERS_TEST_MARIADB_DSN"

// server is one live server the suite runs against.
type server struct {
	db     *sql.DB
	flavor flavor.Flavor
	engine string // the engine name a cluster file would declare
	// shared is true for a server that other test packages use at the same
	// time: names must be unique and everything created is dropped.
	shared bool
}

// eachServer runs fn against the embedded server and, when mariaDBEnv is
// set, against MariaDB; without it the MariaDB half skips loudly.
func eachServer(t *testing.T, fn func(t *testing.T, s *server)) {
	t.Run("embedded", func(t *testing.T) { fn(t, startEmbedded(t)) })
	t.Run("mariadb", func(t *testing.T) { fn(t, openMariaDB(t)) })
}

func startEmbedded(tb testing.TB) *server {
	tb.Helper()
	e, err := embedded.Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Ready(ctx); err != nil {
		tb.Fatal(err)
	}
	db, err := sql.Open("mysql", e.RootDSN())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return &server{db: db, flavor: flavor.Embedded, engine: flavor.EmbeddedEngine}
}

func openMariaDB(tb testing.TB) *server {
	tb.Helper()
	dsn := os.Getenv(mariaDBEnv)
	if dsn == "" {
		tb.Skipf("SKIPPING the MariaDB half of this test: %s is not set (e.g. %s='root@unix(/run/mysqld/mysqld.sock)/'); only the embedded server was tested", mariaDBEnv, mariaDBEnv)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatalf("open MariaDB from %s: %v", mariaDBEnv, err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		tb.Fatalf("connect to MariaDB from %s: %v", mariaDBEnv, err)
	}
	return &server{db: db, flavor: flavor.MariaDB, engine: "mariadb-10.11", shared: true}
}

// fixture creates accounts, roles and databases with names unique to one
// test, and drops them at the end on a shared server.
type fixture struct {
	tb testing.TB
	s  *server
	// stem is "t" and random letters; prefix is stem + "_", the managed
	// prefix of the test.
	stem, prefix string
}

func newFixture(tb testing.TB, s *server) *fixture {
	b := []byte("t")
	for range 7 {
		b = append(b, byte('a'+rand.IntN(26)))
	}
	return &fixture{tb: tb, s: s, stem: string(b), prefix: string(b) + "_"}
}

func (f *fixture) exec(stmts ...string) {
	f.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range stmts {
		if _, err := f.s.db.ExecContext(ctx, q); err != nil {
			f.tb.Fatalf("%s: %v", q, err)
		}
	}
}

// cleanup runs stmt at the end of the test on a shared server.
func (f *fixture) cleanup(stmt string) {
	if !f.s.shared {
		return
	}
	f.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := f.s.db.ExecContext(ctx, stmt); err != nil {
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
	eachServer(t, func(t *testing.T, s *server) {
		ctx := testContext(t)
		id, err := Detect(ctx, s.db)
		if err != nil {
			t.Fatal(err)
		}
		if id.Flavor != s.flavor {
			t.Errorf("flavor = %q; want %q (version %q, comment %q)", id.Flavor, s.flavor, id.Version, id.VersionComment)
		}
		var version, user string
		if err := s.db.QueryRowContext(ctx, "SELECT VERSION(), CURRENT_USER()").Scan(&version, &user); err != nil {
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
		if err := CheckEngine(s.engine, id); err != nil {
			t.Errorf("CheckEngine(%s): %v", s.engine, err)
		}
		want := "engine mismatch: cluster declares aurora-mysql-3 (MySQL 8.0 on Aurora) but the server is "
		switch s.flavor {
		case flavor.MariaDB:
			want += "MariaDB " + version
		case flavor.Embedded:
			want += "the embedded go-mysql-server (version 8.0.31, version_comment Dolt)"
		}
		want += "; refusing to reconcile"
		if err := CheckEngine("aurora-mysql-3", id); err == nil || err.Error() != want {
			t.Errorf("CheckEngine(aurora-mysql-3)\n got %v\nwant %s", err, want)
		}
	})
}

func TestReadServers(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		f := newFixture(t, s)
		p := f.prefix
		mainDB := f.stem + "db"     // no underscore
		underDB := f.prefix + "app" // contains _, granted as escaped
		f.database(mainDB)
		f.database(underDB)
		f.exec(fmt.Sprintf("CREATE TABLE %s.t1 (id INT PRIMARY KEY, c INT)", ident(mainDB)))

		bob := f.user(p+"bob", "IDENTIFIED BY 'secret'")
		global := "PROCESS, REPLICATION CLIENT, SHOW DATABASES"
		if s.flavor == flavor.MariaDB {
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
		if s.flavor == flavor.MariaDB {
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
		got, err := Read(ctx, s.db, p)
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
				mainDB:            s.flavor.DatabasePrivileges(),
				escapeDB(underDB): {"SELECT"},
			},
			Tables: []TableGrant{{Database: mainDB, Table: "t1", Privileges: []string{"INSERT", "SELECT"}}},
			Roles:  []AccountID{{User: role, Host: "%"}},
		}
		want := map[AccountID]*Account{
			bob:    wantBob,
			nopass: {ID: nopass, Plugin: "mysql_native_password"},
		}
		switch s.flavor {
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
		if !s.flavor.IsAll(got.Accounts[bob].Databases[mainDB]) {
			t.Errorf("ALL PRIVILEGES read back as %q; want %s's expansion", got.Accounts[bob].Databases[mainDB], s.flavor)
		}
		if got.Flavor != s.flavor || got.CurrentUser.User == "" {
			t.Errorf("server = %s as %v; want %s", got.Flavor, got.CurrentUser, s.flavor)
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
const maxQueries = 8

func TestReadQueryCountIsConstant(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		f := newFixture(t, s)
		db := f.stem + "db"
		f.database(db)
		count := func(wantAccounts int) int {
			t.Helper()
			c := &countingQuerier{q: s.db}
			got, err := Read(testContext(t), c, f.prefix)
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
		t.Logf("%s: %d queries for Detect + Read", s.flavor, one)
	})
}

func TestReadRefusesEmptyPrefix(t *testing.T) {
	s := startEmbedded(t)
	if _, err := Read(testContext(t), s.db, ""); err == nil {
		t.Fatal("Read with an empty prefix succeeded; want an error")
	}
}

// BenchmarkRead reads 1,000 accounts with grants on 3 databases each.
func BenchmarkRead(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *server
	}{{"mariadb", openMariaDB}, {"embedded", startEmbedded}} {
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
			c := &countingQuerier{q: s.db}
			b.ResetTimer()
			for b.Loop() {
				got, err := Read(ctx, c, f.prefix)
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
