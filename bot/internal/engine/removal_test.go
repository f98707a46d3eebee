package engine_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/audit"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openSession logs in as user with db as the default database, on one
// connection, as a client with a long-lived connection would.
func (s *testServer) openSession(t *testing.T, user, password, db string) *sql.Conn {
	t.Helper()
	cfg := s.Config()
	cfg.User, cfg.Passwd, cfg.DBName = user, password, db
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(connector)
	t.Cleanup(func() { _ = pool.Close() })
	conn, err := pool.Conn(ctx10(t))
	if err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// endedSessions returns the sessions a run ended, by the audit trail.
func endedSessions(opt engine.Options) []audit.Record {
	var out []audit.Record
	for _, r := range opt.Audit.(*audit.Memory).Records() {
		if r.Action == string(plan.EndSession) {
			out = append(out, r)
		}
	}
	return out
}

// TestRemovalEndsOpenSessions: a service connected with a default
// database keeps, on MariaDB and MySQL, the database privileges it had at
// connect time until it changes database; DROP USER closes nothing. After
// the account is dropped, downgraded or its access expires, the session
// that was open can neither read nor write, because the run ended it.
func TestRemovalEndsOpenSessions(t *testing.T) {
	t.Parallel()
	for _, tc := range []string{"dropped", "downgraded", "expired"} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			forEachServer(t, func(t *testing.T, s *testServer) { testRemovalEndsSession(t, s, tc) })
		})
	}
}

func testRemovalEndsSession(t *testing.T, s *testServer, how string) {
	db := s.dbs[0]
	s.Exec(t, "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY)")
	app := s.pwUser("app", "write", db)
	app.Access[0].Expires = "2030-01-31"
	st, c := s.stateOn(t, s.Engine, time.Now(), s.settings(), app)
	s.mustApply(t, s.options(st, c))

	session := s.openSession(t, s.acct("app"), s.password("app"), db)
	if _, err := session.ExecContext(ctx10(t), "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatalf("the session cannot write before the change: %v", err)
	}

	var opt engine.Options
	switch how {
	case "dropped":
		st, c = s.state(t, s.settings())
	case "downgraded":
		read := s.pwUser("app", "read", db)
		st, c = s.state(t, s.settings(), read)
	case "expired":
		st, c = s.stateOn(t, s.Engine, time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC), s.settings(), app)
	}
	opt = s.options(st, c)
	res := s.mustApply(t, opt)
	ended := endedSessions(opt)
	if len(ended) != 1 || ended[0].Outcome != audit.Applied || !strings.Contains(ended[0].Summary, s.acct("app")) {
		t.Fatalf("ended sessions %+v; want one, of %s\n%s", ended, s.acct("app"), summaries(res))
	}
	// An entry that expires takes the account's only grant here: it goes.
	want := map[string]string{"dropped": "account dropped", "downgraded": "access revoked", "expired": "account dropped"}[how]
	if !strings.Contains(ended[0].Summary, want) {
		t.Errorf("summary %q does not say %q", ended[0].Summary, want)
	}
	if _, err := session.ExecContext(ctx10(t), "INSERT INTO t VALUES (2)"); err == nil {
		t.Errorf("%s: the old session still writes", how)
	}
	var n int
	if err := session.QueryRowContext(ctx10(t), "SELECT COUNT(*) FROM t").Scan(&n); err == nil {
		t.Errorf("%s: the old session still reads", how)
	}
	if how == "downgraded" {
		// A new session has exactly the new privileges.
		fresh := s.openSession(t, s.acct("app"), s.password("app"), db)
		if err := fresh.QueryRowContext(ctx10(t), "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
			t.Errorf("a new session cannot read after the downgrade: %v", err)
		}
		if _, err := fresh.ExecContext(ctx10(t), "INSERT INTO t VALUES (3)"); err == nil {
			t.Error("a new session writes after the downgrade")
		}
	}
	// Nothing is left to do, and nothing to end.
	if again := s.mustApply(t, opt); again.Status != engine.Unchanged {
		t.Errorf("next run: %s\n%s", again.Status, summaries(again))
	}
}

// TestSessionsStayWhenThePolicySaysSo: end_sessions.drop false keeps a
// dropped account's session for teams that prefer to wait.
func TestSessionsStayWhenThePolicySaysSo(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		s.mustApply(t, s.options(st, c))
		session := s.openSession(t, s.acct("app"), s.password("app"), s.dbs[0])
		settings := s.settings()
		no := false
		settings.EndSessions = &config.EndSessions{Drop: &no}
		st, c = s.state(t, settings)
		opt := s.options(st, c)
		s.mustApply(t, opt)
		if len(endedSessions(opt)) != 0 {
			t.Errorf("sessions ended although end_sessions.drop is false")
		}
		if err := session.PingContext(ctx10(t)); err != nil {
			t.Errorf("the session was closed: %v", err)
		}
		// This is the hazard that ending sessions removes: on MariaDB the
		// dropped account's session still reads its database.
		if s.Flavor == flavor.MariaDB {
			s.Exec(t, "CREATE TABLE `"+s.dbs[0]+"`.t (id INT PRIMARY KEY)")
			var n int
			if err := session.QueryRowContext(ctx10(t), "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
				t.Errorf("MariaDB no longer keeps a dropped account's session privileges (%v): revisit why dbusers ends sessions", err)
			}
		}
	})
}

// TestDefinerIsLockedNotDropped: an admin who created a view and a
// routine leaves. The run locks the account instead of dropping it (where
// the server can lock), ends its session, keeps its objects working, names
// them in the plan, and applies another user's change in the same run;
// once the objects have another definer, the next run drops the account.
func TestDefinerIsLockedNotDropped(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		db := s.dbs[0]
		dba, viewer := s.pwUser("dba", "admin", db), s.pwUser("viewer", "read", db)
		st, c := s.state(t, s.settings(), dba, viewer)
		s.mustApply(t, s.options(st, c))
		definer := fmt.Sprintf("'%s'@'%%'", s.acct("dba"))
		s.Exec(t, "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY)")
		s.Exec(t, "INSERT INTO `"+db+"`.t VALUES (1), (2)")
		s.Exec(t, "CREATE DEFINER="+definer+" SQL SECURITY DEFINER VIEW `"+db+"`.v_count AS SELECT COUNT(*) AS n FROM `"+db+"`.t")
		s.Exec(t, "CREATE DEFINER="+definer+" PROCEDURE `"+db+"`.p_count() SELECT COUNT(*) FROM `"+db+"`.t")
		session := s.openSession(t, s.acct("dba"), s.password("dba"), db)

		// dba leaves; newbie arrives.
		st, c = s.state(t, s.settings(), viewer, s.pwUser("newbie", "read", db))
		opt := s.options(st, c)
		res := s.reconcile(t, opt)
		if res.Err != nil || res.Status != engine.Applied {
			t.Fatalf("status %s, error %v\n%s", res.Status, res.Err, summaries(res))
		}
		if !s.exists(t, s.acct("newbie")) {
			t.Error("another user's change did not apply in the same run")
		}
		if !s.exists(t, s.acct("dba")) {
			t.Fatal("the definer was dropped")
		}
		var n int
		// As a reader who holds SELECT on the view only through its
		// definer (the embedded server checks views as their invoker, so
		// there root reads it).
		reader := s.openSession(t, s.acct("viewer"), s.password("viewer"), db)
		if s.Flavor == flavor.Embedded {
			reader = s.openSession(t, "root", "", db)
		}
		if err := reader.QueryRowContext(ctx10(t), "SELECT n FROM v_count").Scan(&n); err != nil || n != 2 {
			t.Errorf("the definer's view no longer works: %d, %v", n, err)
		}
		rows, err := s.DB.QueryContext(ctx10(t), "CALL `"+db+"`.p_count()")
		if err != nil {
			t.Errorf("the definer's routine no longer works: %v", err)
		} else {
			rows.Close()
		}
		if s.Flavor.AccountLock() {
			lock := findChange(res, plan.LockAccount)
			if lock == nil || !strings.Contains(lock.Summary, db+".v_count (view)") || !strings.Contains(lock.Summary, db+".p_count (procedure)") {
				t.Errorf("the plan does not lock dba naming both objects:\n%s", summaries(res))
			}
			if _, err := s.login(t, s.acct("dba"), s.password("dba")); err == nil {
				t.Error("the locked definer can still log in")
			}
			if len(endedSessions(opt)) != 1 {
				t.Errorf("ended sessions %+v, want dba's", endedSessions(opt))
			}
			if err := session.PingContext(ctx10(t)); err == nil {
				t.Error("the definer's open session survived the lock")
			}
		} else if len(res.Plan.Notes) == 0 || !strings.Contains(strings.Join(res.Plan.Notes, "\n"), "cannot lock accounts") {
			t.Errorf("notes %q do not say the definer is kept", res.Plan.Notes)
		}
		if again := s.reconcile(t, opt); again.Status != engine.Unchanged || !strings.Contains(strings.Join(again.Plan.Notes, "\n"), s.acct("dba")) {
			t.Errorf("second run: %s, notes %q; want unchanged with a note about dba", again.Status, again.Plan.Notes)
		}

		// Hand the objects over; the next run drops the account.
		s.Exec(t, "DROP VIEW `"+db+"`.v_count")
		s.Exec(t, "DROP PROCEDURE `"+db+"`.p_count")
		last := s.mustApply(t, opt)
		if d := findChange(last, plan.DropUser); d == nil || d.Account.User != s.acct("dba") || s.exists(t, s.acct("dba")) {
			t.Errorf("after the handover: %s\n%s", last.Status, summaries(last))
		}
	})
}

func findChange(res *engine.Result, a plan.Action) *plan.Change {
	if res.Plan == nil {
		return nil
	}
	for i, c := range res.Plan.Changes {
		if c.Action() == a {
			return &res.Plan.Changes[i]
		}
	}
	return nil
}

// TestEveryGrantIsSeen: a routine grant, a proxy grant, a default role,
// PASSWORD EXPIRE, a password lifetime and resource limits set by hand on
// a managed account are gone after one run, which then verifies.
func TestEveryGrantIsSeen(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		db := s.dbs[0]
		app := s.pwUser("app", "read", db)
		st, c := s.state(t, s.settings(), app)
		opt := s.options(st, c)
		s.mustApply(t, opt)
		acct := fmt.Sprintf("'%s'@'%%'", s.acct("app"))
		s.Exec(t, "CREATE PROCEDURE `"+db+"`.p() SELECT 1")
		s.Exec(t, "GRANT EXECUTE ON PROCEDURE `"+db+"`.p TO "+acct)
		if s.Flavor == flavor.MariaDB {
			role := s.acct("r")
			s.Exec(t, "CREATE ROLE `"+role+"`")
			t.Cleanup(func() { _, _ = s.DB.Exec("DROP ROLE IF EXISTS `" + role + "`") })
			s.Exec(t, "GRANT `"+role+"` TO "+acct)
			s.Exec(t, "SET DEFAULT ROLE `"+role+"` FOR "+acct)
			s.Exec(t, "GRANT PROXY ON 'root'@'localhost' TO "+acct)
			s.Exec(t, "ALTER USER "+acct+" WITH MAX_USER_CONNECTIONS 3 PASSWORD EXPIRE INTERVAL 30 DAY")
			s.Exec(t, "ALTER USER "+acct+" PASSWORD EXPIRE")
		}
		res := s.mustApply(t, opt)
		if res.Status != engine.Applied {
			t.Fatalf("status %s\n%s", res.Status, summaries(res))
		}
		srv, err := mysqlstate.Read(ctx10(t), s.DB, desired.Prefix(s.prefix))
		if err != nil {
			t.Fatal(err)
		}
		a := srv.Accounts[mysqlstate.AccountID{User: s.acct("app"), Host: "%"}]
		if a == nil || len(a.Routines) != 0 || len(a.Proxies) != 0 || len(a.DefaultRoles) != 0 || len(a.Roles) != 0 ||
			a.PasswordExpired || a.PasswordLifetime != "" || a.Limits != (mysqlstate.Limits{}) {
			t.Errorf("left after the run: %+v", a)
		}
		conn, err := s.login(t, s.acct("app"), s.password("app"))
		if err != nil {
			t.Fatalf("app cannot log in after the run: %v", err)
		}
		var one int
		if err := conn.QueryRowContext(ctx10(t), "SELECT 1").Scan(&one); err != nil {
			t.Errorf("app cannot run a query after the run (an expired password?): %v", err)
		}
	})
}

// TestDefinerErrorStaysWithItsAccount: MySQL 8.0.22+ refuses DROP USER of
// a definer of objects dbusers could not see (ER_CANNOT_USER_REFERENCED_AS_DEFINER).
// The run goes on: the other account is dropped, a new one created, and
// the result names the refused account and says what to do; the cluster is
// partial, not failed.
func TestDefinerErrorStaysWithItsAccount(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("gone1", "read", s.dbs[0]), s.pwUser("gone2", "read", s.dbs[0]))
		s.mustApply(t, s.options(st, c))
		refused := fmt.Sprintf("DROP USER '%s'@'%%'", s.acct("gone1"))
		db := s.refusing(t, func(query string) error {
			if query == refused {
				return &mysql.MySQLError{Number: 4006, Message: fmt.Sprintf("Operation DROP USER failed for '%s'@'%%' as it is referenced as a definer account in a stored routine.", s.acct("gone1"))}
			}
			return nil
		})
		st, c = s.state(t, s.settings(), s.pwUser("newbie", "read", s.dbs[0]))
		opt := s.options(st, c)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res := engine.Reconcile(ctx, db, opt)
		if res.Status != engine.Partial || !errors.Is(res.Err, engine.ErrPartial) {
			t.Fatalf("status %s, error %v; want partial\n%s", res.Status, res.Err, summaries(res))
		}
		if len(res.Failures) != 1 || res.Failures[0].Account.User != s.acct("gone1") || !strings.Contains(res.Failures[0].Error, "definer of stored objects that dbusers could not see") {
			t.Errorf("failures %+v", res.Failures)
		}
		if !s.exists(t, s.acct("newbie")) || s.exists(t, s.acct("gone2")) || !s.exists(t, s.acct("gone1")) {
			t.Errorf("newbie %v (want true), gone2 %v (want false), gone1 %v (want true)",
				s.exists(t, s.acct("newbie")), s.exists(t, s.acct("gone2")), s.exists(t, s.acct("gone1")))
		}
	})
}

// TestReadOnlyServerIsRefused: a server with innodb_read_only on (an
// Aurora reader the endpoint points at during a failover) is refused
// before the first write, with a reason that says so. (Setting it on a
// test server would stop every other test, so the server's answer to the
// variables query says it.)
func TestReadOnlyServerIsRefused(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		db := sql.OpenDB(&refusingConnector{inner: mustConnector(t, s), readOnly: true})
		t.Cleanup(func() { _ = db.Close() })
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res := engine.Reconcile(ctx, db, s.options(st, c))
		if res.Status != engine.Failed || !errors.Is(res.Err, engine.ErrReadOnly) || res.Writes != 0 || !strings.Contains(res.Error, "nothing was changed") {
			t.Errorf("status %s, %d writes, error %v; want failed, read-only, no write", res.Status, res.Writes, res.Err)
		}
	})
}

// refusing returns a pool to the test server whose statements go through
// refuse first: a non-nil error is returned as the server's answer, and
// the statement is not sent. It stands in for server behaviour the test
// servers do not have.
func (s *testServer) refusing(t *testing.T, refuse func(query string) error) *sql.DB {
	t.Helper()
	db := sql.OpenDB(&refusingConnector{inner: mustConnector(t, s), refuse: refuse})
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustConnector(t *testing.T, s *testServer) driver.Connector {
	t.Helper()
	inner, err := mysql.NewConnector(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

// refusingConnector connects to a real server and changes what it says:
// statements refuse refuses are answered with its error, and with
// readOnly the server says innodb_read_only is ON.
type refusingConnector struct {
	inner    driver.Connector
	refuse   func(string) error
	readOnly bool
}

func (c *refusingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &refusingConn{Conn: conn, c: c}, nil
}

func (c *refusingConnector) Driver() driver.Driver { return c.inner.Driver() }

// refusingConn passes everything to the driver's connection but what its
// connector changes.
type refusingConn struct {
	driver.Conn
	c *refusingConnector
}

func (c *refusingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.c.refuse != nil {
		if err := c.c.refuse(query); err != nil {
			return nil, err
		}
	}
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *refusingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil || !c.c.readOnly || !strings.HasPrefix(query, "SHOW GLOBAL VARIABLES") {
		return rows, err
	}
	defer rows.Close()
	out := &cannedRows{cols: rows.Columns()}
	for {
		vals := make([]driver.Value, len(out.cols))
		if err := rows.Next(vals); err != nil {
			break
		}
		out.rows = append(out.rows, vals)
	}
	out.rows = append(out.rows, []driver.Value{"innodb_read_only", "ON"})
	return out, nil
}

func (c *refusingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *refusingConn) CheckNamedValue(v *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(v)
}

func (c *refusingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *refusingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// cannedRows are rows read ahead, with one more.
type cannedRows struct {
	cols []string
	rows [][]driver.Value
}

func (r *cannedRows) Columns() []string { return r.cols }
func (r *cannedRows) Close() error      { return nil }
func (r *cannedRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}
