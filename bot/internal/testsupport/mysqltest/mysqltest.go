// Package mysqltest gives integration tests the live MySQL-compatible
// servers they run against: the embedded go-mysql-server, started in the
// test process, which every machine with Go has; and one real server per
// flavor (MariaDB, MySQL 5.7, 8.0 and 8.4), each named by its own
// environment variable, which test packages share while they run in
// parallel. bash .ci/run starts MariaDB and sets DBUSERS_TEST_MARIADB_DSN;
// the MySQL jobs of .github/workflows/ci.yml set the MySQL variables.
//
// It exists so that every package reaches the servers the same way: one
// variable per flavor, one loud skip when it is not set (a green run
// without a server must say what did not run), and one way to claim and
// clean up a corner of a shared server: names no other test uses, and
// everything created dropped when the test ends. Like skeema's
// SKEEMA_TEST_IMAGES, the list of flavors is what EachServer runs a test
// against.
//
// Like net/http/httptest it is an ordinary package that only tests import.
package mysqltest

import (
	"context"
	"database/sql"
	"errors"
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

// The environment variables that hold root's DSN (go-sql-driver/mysql
// syntax) of the real server of each flavor the tests also run against,
// e.g. root@unix(/run/mysqld/mysqld.sock)/ or root:pw@tcp(127.0.0.1:3306)/.
const (
	MariaDBEnv = "DBUSERS_TEST_MARIADB_DSN"
	MySQL57Env = "DBUSERS_TEST_MYSQL57_DSN"
	MySQL80Env = "DBUSERS_TEST_MYSQL80_DSN"
	MySQL84Env = "DBUSERS_TEST_MYSQL84_DSN"
)

// Real is one flavor of real server that tests reach through an
// environment variable.
type Real struct {
	// Name is the server's subtest name in EachServer and its Server.Name.
	Name string
	// Label names the server in messages, e.g. "MySQL 8.0".
	Label  string
	Env    string
	Flavor flavor.Flavor
	// Engine is what a cluster file declares for the server.
	Engine string

	example string // a value for Env, for the skip message
	setBy   string // what sets Env, for the skip message
	// isVersion reports whether VERSION() is this flavor's: a variable
	// that names the wrong server would fail every test in a confusing way.
	isVersion func(version string) bool
}

const (
	mysqlExample = "root:pw@tcp(127.0.0.1:3306)/"
	mysqlSetBy   = "the mysql jobs of .github/workflows/ci.yml set them"
)

// reals are the real servers, in the order EachServer runs them.
var reals = []Real{
	{
		Name: "mariadb", Label: "MariaDB", Env: MariaDBEnv, Flavor: flavor.MariaDB, Engine: "mariadb-10.11",
		example: "root@unix(/run/mysqld/mysqld.sock)/", setBy: "bash .ci/run sets it",
		isVersion: func(v string) bool { return strings.Contains(v, "MariaDB") },
	},
	{
		Name: "mysql57", Label: "MySQL 5.7", Env: MySQL57Env, Flavor: flavor.MySQL57, Engine: "mysql-5.7",
		example: mysqlExample, setBy: mysqlSetBy, isVersion: mysqlVersion("5.7."),
	},
	{
		Name: "mysql80", Label: "MySQL 8.0", Env: MySQL80Env, Flavor: flavor.MySQL80, Engine: "mysql-8.0",
		example: mysqlExample, setBy: mysqlSetBy, isVersion: mysqlVersion("8.0."),
	},
	{
		Name: "mysql84", Label: "MySQL 8.4", Env: MySQL84Env, Flavor: flavor.MySQL84, Engine: "mysql-8.4",
		example: mysqlExample, setBy: mysqlSetBy, isVersion: mysqlVersion("8.4."),
	},
}

// mysqlVersion matches the VERSION() of an Oracle MySQL release series.
func mysqlVersion(prefix string) func(string) bool {
	return func(v string) bool { return strings.HasPrefix(v, prefix) && !strings.Contains(v, "MariaDB") }
}

// Reals returns the real servers, in the order EachServer runs them after
// the embedded one.
func Reals() []Real { return slices.Clone(reals) }

// Server is a live server a test uses as root.
type Server struct {
	// Name is "embedded" or the Name of a Real ("mariadb", "mysql80", ...),
	// and the name of the server's subtest in EachServer.
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

// Missing is what a test says, loudly, when r's variable is not set;
// untested says what therefore did not run.
func (r Real) Missing(untested string) string {
	return fmt.Sprintf("SKIPPING AGAINST %s: %s is not set (e.g. %s='%s', as %s); %s",
		strings.ToUpper(r.Label), r.Env, r.Env, r.example, r.setBy, untested)
}

// Connect connects to the server of r's variable, and checks that it is a
// server of r's flavor. Without the variable it skips the test with
// r.Missing(untested); a set variable whose server cannot be reached fails
// the test.
func (r Real) Connect(tb testing.TB, untested string) *Server {
	tb.Helper()
	dsn := os.Getenv(r.Env)
	if dsn == "" {
		tb.Skip(r.Missing(untested))
	}
	s, err := r.open(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.DB.Close() })
	return s
}

// open is Connect without the testing.TB.
func (r Real) open(dsn string) (*Server, error) {
	s := &Server{Name: r.Name, Flavor: r.Flavor, Engine: r.Engine, DSN: dsn, Shared: true}
	if err := s.connect(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var version string
	err := s.DB.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version)
	if err == nil && !r.isVersion(version) {
		err = fmt.Errorf("%s names a server whose VERSION() is %q, which is not %s", r.Env, version, r.Label)
	}
	if err != nil {
		_ = s.DB.Close()
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return s, nil
}

// MissingMariaDB is what a test says, loudly, when MariaDBEnv is not set;
// untested says what therefore did not run.
func MissingMariaDB(untested string) string { return reals[0].Missing(untested) }

// MariaDB connects to the MariaDB server of MariaDBEnv. Without the
// variable it skips the test with MissingMariaDB(untested).
func MariaDB(tb testing.TB, untested string) *Server {
	tb.Helper()
	return reals[0].Connect(tb, untested)
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

// open connects s.DB for a server nothing else closes, and closes it when
// the test ends.
func open(tb testing.TB, s *Server) *Server {
	tb.Helper()
	if err := s.connect(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.DB.Close() })
	return s
}

// connect parses s.DSN, connects s.DB and checks that root can log in. Its
// errors never show the DSN, which may hold a password. On error, s.DB is
// closed.
func (s *Server) connect() error {
	cfg, err := mysql.ParseDSN(s.DSN)
	if err != nil {
		return fmt.Errorf("%s: the root DSN does not parse", s.Name)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	s.cfg, s.DB = cfg, sql.OpenDB(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.DB.PingContext(ctx); err != nil {
		_ = s.DB.Close()
		return fmt.Errorf("%s: connect as root: %w", s.Name, sanitize(err, cfg))
	}
	return nil
}

// sanitize keeps root's password out of an error. The driver's errors
// name the address at most, but a server's error text is not the
// driver's to control.
func sanitize(err error, cfg *mysql.Config) error {
	if cfg.Passwd == "" || !strings.Contains(err.Error(), cfg.Passwd) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), cfg.Passwd, "<password>"))
}

// EachServer runs fn in one subtest per server, named after it: the
// embedded server always, then each of Reals, whose subtest skips loudly
// (naming its variable) when its variable is not set.
func EachServer(t *testing.T, fn func(t *testing.T, s *Server)) {
	eachServer(t, false, fn)
}

// EachServerParallel is EachServer with the subtests in parallel.
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
	for _, r := range reals {
		t.Run(r.Name, func(t *testing.T) {
			// Connected (or skipped) before t.Parallel, so the skip is
			// reported at once rather than after the serial tests.
			s := r.Connect(t, "this test did NOT run against "+r.Label)
			if parallel {
				t.Parallel()
			}
			fn(t, s)
		})
	}
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
	// The databases go first: MySQL 8.0.22 and later refuse to drop an
	// account that is the DEFINER of a view, routine, trigger or event,
	// and a test's stored objects live in its databases.
	var drop []string
	for _, d := range databases {
		drop = append(drop, "DROP DATABASE IF EXISTS `"+d+"`")
	}
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
