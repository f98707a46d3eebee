// Package mysqltest gives integration tests the live MySQL-compatible
// servers they run against: the embedded go-mysql-server, started in the
// test process, which every machine with Go has; and the MariaDB server
// named by DBUSERS_TEST_MARIADB_DSN (bash .ci/run starts one and sets it),
// which test packages share while they run in parallel.
//
// It exists so that every package reaches the servers the same way: one
// variable, one loud skip when it is not set (a green run without MariaDB
// must say what did not run), and one way to claim and clean up a corner
// of a shared server: names no other test uses, and everything created
// dropped when the test ends.
//
// Like net/http/httptest it is an ordinary package that only tests import.
package mysqltest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/embedded"
	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// MariaDBEnv names the environment variable that holds the root DSN of the
// MariaDB server the tests also run against, e.g.
// root@unix(/run/mysqld/mysqld.sock)/.
const MariaDBEnv = "DBUSERS_TEST_MARIADB_DSN"

// Server is a live server a test uses as root.
type Server struct {
	// Name is "embedded" or "mariadb", and the name of the server's
	// subtest in EachServer.
	Name   string
	Flavor flavor.Flavor
	// Engine is what a cluster file declares for the server.
	Engine string
	// DSN is root's DSN; DB is a pool logged in with it, closed when the
	// test ends.
	DSN string
	DB  *sql.DB
	// Shared is true for a server that other tests and test packages use
	// at the same time: a test must use names no other test uses and drop
	// everything it creates (see Scratch).
	Shared bool

	cfg *mysql.Config // parsed DSN
}

// MissingMariaDB is what a test says, loudly, when MariaDBEnv is not set;
// untested says what therefore did not run.
func MissingMariaDB(untested string) string {
	return fmt.Sprintf("SKIPPING AGAINST MARIADB: %s is not set (e.g. %s='root@unix(/run/mysqld/mysqld.sock)/', as bash .ci/run sets it); %s",
		MariaDBEnv, MariaDBEnv, untested)
}

// MariaDB connects to the MariaDB server of MariaDBEnv. Without the
// variable it skips the test with MissingMariaDB(untested).
func MariaDB(tb testing.TB, untested string) *Server {
	tb.Helper()
	dsn := os.Getenv(MariaDBEnv)
	if dsn == "" {
		tb.Skip(MissingMariaDB(untested))
	}
	return open(tb, &Server{Name: "mariadb", Flavor: flavor.MariaDB, Engine: "mariadb-10.11", DSN: dsn, Shared: true})
}

// Embedded starts an embedded server with databases (created empty) for
// the test, and stops it when the test ends. Nothing else uses it.
//
// It reports through tb's Helper, Fatal, Fatalf and Cleanup alone, so a
// benchmark's child process can start servers with a minimal testing.TB.
func Embedded(tb testing.TB, databases ...string) *Server {
	tb.Helper()
	e, err := embedded.Start(databases...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Ready(ctx); err != nil {
		tb.Fatal(err)
	}
	return open(tb, &Server{Name: "embedded", Flavor: flavor.Embedded, Engine: flavor.EmbeddedEngine, DSN: e.RootDSN()})
}

// open connects s.DB and checks that root can log in. Its errors never
// show the DSN, which may hold a password.
func open(tb testing.TB, s *Server) *Server {
	tb.Helper()
	cfg, err := mysql.ParseDSN(s.DSN)
	if err != nil {
		tb.Fatalf("%s: the root DSN does not parse", s.Name)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		tb.Fatalf("%s: %v", s.Name, err)
	}
	s.cfg, s.DB = cfg, sql.OpenDB(conn)
	tb.Cleanup(func() { _ = s.DB.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.DB.PingContext(ctx); err != nil {
		tb.Fatalf("%s: connect as root: %v", s.Name, err)
	}
	return s
}

// EachServer runs fn in one subtest per server, named after it: the
// embedded server always, and MariaDB, whose half skips loudly when
// MariaDBEnv is not set.
func EachServer(t *testing.T, fn func(t *testing.T, s *Server)) {
	eachServer(t, false, fn)
}

// EachServerParallel is EachServer with the two subtests in parallel.
func EachServerParallel(t *testing.T, fn func(t *testing.T, s *Server)) {
	eachServer(t, true, fn)
}

func eachServer(t *testing.T, parallel bool, fn func(t *testing.T, s *Server)) {
	t.Run("embedded", func(t *testing.T) {
		if parallel {
			t.Parallel()
		}
		fn(t, Embedded(t))
	})
	t.Run("mariadb", func(t *testing.T) {
		s := MariaDB(t, "the MariaDB half of this test did NOT run; only the embedded server was tested")
		if parallel {
			t.Parallel()
		}
		fn(t, s)
	})
}

// Config returns a copy of root's connection configuration, from which a
// test derives logins to the same server.
func (s *Server) Config() *mysql.Config { return s.cfg.Clone() }

// Exec runs query as root and fails the test if it fails.
func (s *Server) Exec(tb testing.TB, query string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.DB.ExecContext(ctx, query, args...); err != nil {
		tb.Fatalf("%s: %s: %v", s.Name, query, err)
	}
}

// Scratch gives the test its own databases, created empty, and when the
// test ends drops them together with every account whose user name owns
// claims. On a shared server the names must be the test's alone (see
// Name): what owns claims is dropped whoever made it.
func (s *Server) Scratch(tb testing.TB, owns func(user string) bool, databases ...string) {
	tb.Helper()
	tb.Cleanup(func() { s.drop(tb, owns, databases) })
	for _, d := range databases {
		s.Exec(tb, "CREATE DATABASE `"+d+"`")
	}
}

func (s *Server) drop(tb testing.TB, owns func(user string) bool, databases []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := s.DB.QueryContext(ctx, "SELECT User, Host FROM mysql.user")
	if err != nil {
		tb.Errorf("cleanup: list accounts: %v", err)
		return
	}
	var drop []string
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			tb.Errorf("cleanup: %v", err)
			break
		}
		if owns(u) {
			drop = append(drop, fmt.Sprintf("DROP USER '%s'@'%s'", u, h))
		}
	}
	rows.Close()
	for _, d := range databases {
		drop = append(drop, "DROP DATABASE IF EXISTS `"+d+"`")
	}
	for _, q := range drop {
		if _, err := s.DB.ExecContext(ctx, q); err != nil {
			tb.Errorf("cleanup: %s: %v", q, err)
		}
	}
}

// ManagedAccounts returns the sorted user names of the accounts that a
// run with prefix manages: those that start with prefix and "_". A test
// reads them with root, independently of the code under test.
func (s *Server) ManagedAccounts(tb testing.TB, prefix string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.DB.QueryContext(ctx, "SELECT User FROM mysql.user")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			tb.Fatal(err)
		}
		if strings.HasPrefix(u, prefix+"_") {
			out = append(out, u)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// CanLogin logs in to the server as user with password, at root's
// address, and reports the login's error: tests prove that an account
// they made works by logging in as it.
func (s *Server) CanLogin(ctx context.Context, user, password string) error {
	return CanLogin(ctx, s.cfg, user, password)
}

// CanLogin logs in as user with password at the address of at (a
// configuration built field by field, so no DSN has to quote hostile
// names) and reports the login's error. It gives up after ten seconds.
func CanLogin(ctx context.Context, at *mysql.Config, user, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := at.Clone()
	cfg.User, cfg.Passwd, cfg.DBName = user, password, ""
	cfg.Timeout = 10 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	return db.PingContext(ctx)
}

// Name returns first followed by six random lower-case letters: unique
// enough that concurrent tests and packages never share a prefix, and with
// it accounts, databases, locks, parameters or secrets. The first letter
// tells which package left a name behind.
func Name(first string) string {
	b := []byte(first)
	for range 6 {
		b = append(b, byte('a'+rand.IntN(26)))
	}
	return string(b)
}

// Password returns a random password that says what it is for:
// "pw-<label>-" and 20 random letters and digits.
func Password(label string) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = chars[rand.IntN(len(chars))]
	}
	return "pw-" + label + "-" + string(b)
}
