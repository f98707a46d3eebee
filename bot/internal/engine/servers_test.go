package engine_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/audit"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// clusterName is the one cluster every test declares.
const clusterName = "local"

// testServer is one live server prepared for one test: a prefix and
// databases that no other test uses, and the passwords behind the test's
// secrets.
type testServer struct {
	*mysqltest.Server
	// prefix is the test's own company prefix; dbs are its databases.
	prefix string
	dbs    []string
	// passwords are the test's secret values, by secret reference.
	passwords map[string]string
}

// forEachServer runs fn once per server, in parallel subtests named after
// the server: the embedded server always, MariaDB when
// DBUSERS_TEST_MARIADB_DSN is set (its half skips loudly otherwise).
func forEachServer(t *testing.T, fn func(t *testing.T, s *testServer)) {
	mysqltest.EachServerParallel(t, func(t *testing.T, srv *mysqltest.Server) { fn(t, prepare(t, srv)) })
}

// forEachServerSerial is forEachServer for measurements that other tests
// of this package must not disturb.
func forEachServerSerial(t *testing.T, fn func(t *testing.T, s *testServer)) {
	mysqltest.EachServer(t, func(t *testing.T, srv *mysqltest.Server) { fn(t, prepare(t, srv)) })
}

// prepare picks the test's prefix and creates its three databases; cleanup
// drops the databases and every account the test may have made (the prefix
// in any case, and the other_<prefix> look-alike).
func prepare(tb testing.TB, srv *mysqltest.Server) *testServer {
	tb.Helper()
	s := &testServer{Server: srv, prefix: mysqltest.Name("t"), passwords: map[string]string{}}
	for _, suffix := range []string{"orders", "billing", "events"} {
		s.dbs = append(s.dbs, s.prefix+"_"+suffix)
	}
	srv.Scratch(tb, func(u string) bool {
		return strings.HasPrefix(strings.ToLower(u), s.prefix) || u == "other_"+s.prefix
	}, s.dbs...)
	return s
}

// acct is a test account's full name.
func (s *testServer) acct(user string) string { return s.prefix + "_" + user }

// secret returns the secret reference of a user.
func secret(user string) string { return "dbusers/" + user }

// password returns (making it on first use) the current password behind a
// user's secret.
func (s *testServer) password(user string) string {
	ref := secret(user)
	if _, ok := s.passwords[ref]; !ok {
		s.passwords[ref] = mysqltest.Password(user)
	}
	return s.passwords[ref]
}

// pwUser declares a password-authenticated service user with one access
// entry on the test cluster.
func (s *testServer) pwUser(name, role string, dbs ...string) config.User {
	s.password(name)
	return config.User{
		Name: name, Owner: "team-" + name + "@acme.example", Kind: "service",
		Auth:   config.UserAuth{Type: "password", Secret: secret(name)},
		Access: []config.Access{{Clusters: []string{clusterName}, Databases: dbs, Role: role}},
	}
}

// settings are the fleet settings of a test: its prefix, a removal limit
// loose enough for every test but the one about the limit.
func (s *testServer) settings() config.Settings {
	return config.Settings{
		Prefix:       s.prefix,
		RemovalLimit: config.RemovalLimit{Count: 1000, Fraction: 1},
		SSM:          config.SSM{Parameter: "/dbusers/test"},
	}
}

// state builds the desired state for users on the test cluster.
func (s *testServer) state(tb testing.TB, settings config.Settings, users ...config.User) (*desired.State, desired.Cluster) {
	tb.Helper()
	return s.stateAs(tb, s.Engine, settings, users...)
}

// stateAs is state with the cluster declaring engine.
func (s *testServer) stateAs(tb testing.TB, eng string, settings config.Settings, users ...config.User) (*desired.State, desired.Cluster) {
	tb.Helper()
	return s.stateOn(tb, eng, time.Now(), settings, users...)
}

// stateOn is stateAs with expiry judged on the day of today.
func (s *testServer) stateOn(tb testing.TB, eng string, today time.Time, settings config.Settings, users ...config.User) (*desired.State, desired.Cluster) {
	tb.Helper()
	cfg := &config.Config{
		Settings: settings,
		Clusters: []config.Cluster{{
			Name: clusterName, Environment: "dev", AccountID: "222222222222", Region: "eu-west-1",
			Endpoint: "127.0.0.1", Engine: eng, AdminSecret: "dbusers/local/admin",
			Databases: slices.Clone(s.dbs), TLS: "disabled",
		}},
		Users: users,
	}
	st, err := config.Desired(cfg, today)
	if err != nil {
		tb.Fatalf("build desired state: %v", err)
	}
	c, ok := st.Find(clusterName)
	if !ok {
		tb.Fatalf("desired state has no cluster %s", clusterName)
	}
	return st, *c
}

// options are the engine options of an applying run with an in-memory
// audit sink.
func (s *testServer) options(st *desired.State, c desired.Cluster) engine.Options {
	return engine.Options{
		State: st, Cluster: c, Passwords: s.passwords, Apply: true,
		LockTimeout: 20 * time.Second, Audit: &audit.Memory{},
		ConfigVersion: "test", Commit: "0123abc",
	}
}

// reconcile runs the engine on the admin login.
func (s *testServer) reconcile(tb testing.TB, opt engine.Options) *engine.Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return engine.Reconcile(ctx, s.DB, opt)
}

// mustApply runs and fails the test unless the run applied (or found
// nothing to do).
func (s *testServer) mustApply(tb testing.TB, opt engine.Options) *engine.Result {
	tb.Helper()
	res := s.reconcile(tb, opt)
	if res.Err != nil || (res.Status != engine.Applied && res.Status != engine.Unchanged) {
		tb.Fatalf("reconcile: status %s, error %v\n%s", res.Status, res.Err, summaries(res))
	}
	return res
}

// summaries lists a result's planned changes for failure messages.
func summaries(res *engine.Result) string {
	if res.Plan == nil {
		return "(no plan)"
	}
	var b strings.Builder
	for _, c := range res.Plan.Changes {
		fmt.Fprintf(&b, "  %s: %s\n", c.Action(), c.Summary)
	}
	return b.String()
}

// pattern is how the server stores a database name in mysql.db after a
// GRANT that names exactly that database.
func (s *testServer) pattern(db string) string {
	if s.Flavor == flavor.MariaDB {
		return strings.ReplaceAll(db, "_", `\_`)
	}
	return db
}

// liveUser is an account's row in mysql.user, as this test reads it
// (independently of the mysqlstate package).
type liveUser struct {
	Plugin, AuthString, SSLType string
}

// user reads user@'%' from mysql.user; nil when it does not exist.
func (s *testServer) user(tb testing.TB, name string) *liveUser {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var u liveUser
	var plugin, auth, ssl sql.NullString
	err := s.DB.QueryRowContext(ctx,
		"SELECT plugin, authentication_string, ssl_type FROM mysql.user WHERE User = ? AND Host = '%'", name).
		Scan(&plugin, &auth, &ssl)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		tb.Fatalf("read mysql.user for %s: %v", name, err)
	}
	u.Plugin, u.AuthString, u.SSLType = plugin.String, auth.String, ssl.String
	return &u
}

// exists reports whether name@'%' exists.
func (s *testServer) exists(tb testing.TB, name string) bool {
	tb.Helper()
	return s.user(tb, name) != nil
}

// dbPrivs reads mysql.db for name@'%': stored database pattern → sorted
// privilege names (the column name without _priv, upper case, e.g. SELECT).
func (s *testServer) dbPrivs(tb testing.TB, name string) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	for _, r := range s.rows(tb, "SELECT * FROM mysql.db WHERE User = ? AND Host = '%'", name) {
		var privs []string
		for col, v := range r {
			if p, ok := strings.CutSuffix(col, "_priv"); ok && v == "Y" {
				privs = append(privs, strings.ToUpper(p))
			}
		}
		slices.Sort(privs)
		if len(privs) > 0 {
			out[r["Db"]] = privs
		}
	}
	return out
}

// rows runs a query as admin and returns every row as column → value.
func (s *testServer) rows(tb testing.TB, query string, args ...any) []map[string]string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := s.DB.QueryContext(ctx, query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		r := map[string]string{}
		for i, c := range cols {
			r[c] = vals[i].String
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// login opens a pool logged in as user, on the same address as the admin
// login; the error is the login's.
func (s *testServer) login(tb testing.TB, user, password string) (*sql.DB, error) {
	tb.Helper()
	cfg := s.Config()
	cfg.User, cfg.Passwd, cfg.DBName = user, password, ""
	cfg.Timeout = 10 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	tb.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
