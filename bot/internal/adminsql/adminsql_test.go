package adminsql_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/adminsql"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

func TestScriptRefusesBadInput(t *testing.T) {
	for _, in := range []adminsql.Input{
		{Engine: "oracle-19", User: "a", Databases: []string{"d"}},
		{Engine: flavor.EmbeddedEngine, User: "a", Databases: []string{"d"}},
		{Engine: "mysql-8.0", User: "", Databases: []string{"d"}},
		{Engine: "mysql-8.0", User: "a", Databases: nil},
		{Engine: "mysql-8.0", User: "a", Databases: []string{"d"}, Privileges: []string{"SELECT; DROP"}},
	} {
		if _, err := adminsql.Script(in); err == nil {
			t.Errorf("Script(%+v) succeeded; want an error", in)
		}
	}
}

func TestScriptPerEngine(t *testing.T) {
	for _, tc := range []struct {
		engine      string
		want, avoid []string
	}{
		{"aurora-mysql-3", []string{"REQUIRE SSL", "`mysql`.`global_grants`", "`mysql`.`role_edges`", "`mysql`.`default_roles`", "GRANT ALL PRIVILEGES ON `app_db`.*",
			"GRANT PROCESS ON *.*", "GRANT EXECUTE ON PROCEDURE `mysql`.`rds_kill`", "GRANT SHOW_ROUTINE ON *.*", "GRANT SHOW VIEW, TRIGGER, EVENT ON `app_db`.*"},
			[]string{"ON *.* TO 'dbusers_admin'@'%' WITH GRANT OPTION", "ROLE_ADMIN ON", "CONNECTION_ADMIN ON", "SUPER ON"}},
		{"mysql-8.0", []string{"GRANT CONNECTION_ADMIN ON *.*", "GRANT SHOW_ROUTINE ON *.*"}, []string{"rds_kill", "SUPER ON"}},
		{"mysql-5.7", []string{"GRANT ALL PRIVILEGES ON `app\\_db`.*", "`mysql`.`procs_priv`", "`mysql`.`proxies_priv`", "GRANT SELECT ON `mysql`.`proc`", "Not granted: SUPER"},
			[]string{"global_grants", "role_edges", "global_priv", "SUPER ON", "rds_kill"}},
		{"mariadb-10.11", []string{"`mysql`.`global_priv`", "`mysql`.`roles_mapping`", "GRANT CONNECTION ADMIN ON *.*", "GRANT SELECT ON `mysql`.`proc`"}, []string{"global_grants", "`mysql`.`user`"}},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			got, err := adminsql.Script(adminsql.Input{Engine: tc.engine, User: "dbusers_admin", Databases: []string{"app_db"},
				Privileges: []string{flavor.AllPrivileges}})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got, "GRANT CREATE USER ON *.* TO 'dbusers_admin'@'%';") {
				t.Errorf("no CREATE USER grant:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(got, a) {
					t.Errorf("unexpected %q in:\n%s", a, got)
				}
			}
		})
	}
}

// TestLeastPrivilegeAccountReconciles proves the script is enough: an
// account created by it alone reconciles a cluster with every built-in
// role, and converges.
func TestLeastPrivilegeAccountReconciles(t *testing.T) {
	s := mysqltest.MariaDB(t, "the least-privilege account is proven against MariaDB only")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tag := mysqltest.Name("")
	prefix, admin, password := "a"+tag, "adm_"+tag, mysqltest.Password("admin")
	dbs := []string{"as_" + tag + "_one", "as_" + tag + "_two"}
	s.Scratch(t, func(u string) bool { return strings.HasPrefix(u, prefix+"_") || u == admin }, dbs...)

	settings := config.Settings{Prefix: prefix, RemovalLimit: config.RemovalLimit{Count: 5, Fraction: 0.5}}
	roles, _ := settings.RolePrivileges()
	var privs []string
	for _, p := range roles {
		privs = append(privs, p...)
	}
	script, err := adminsql.Script(adminsql.Input{Engine: "mariadb-10.11", User: admin, Databases: dbs, Privileges: privs, TLS: "disabled"})
	if err != nil {
		t.Fatal(err)
	}
	script = strings.ReplaceAll(script, adminsql.PasswordPlaceholder, password)
	for _, stmt := range statements(script) {
		s.Exec(t, stmt)
	}
	// Run again, as after a new role template: nothing fails, and the
	// account keeps its password (the login below proves it).
	again, err := adminsql.Script(adminsql.Input{Engine: "mariadb-10.11", User: admin, Databases: dbs, Privileges: privs, TLS: "disabled"})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range statements(strings.ReplaceAll(again, adminsql.PasswordPlaceholder, "another-password")) {
		s.Exec(t, stmt)
	}

	cluster := config.Cluster{Name: "local", Environment: "dev", Engine: "mariadb-10.11", Databases: dbs, TLS: "disabled"}
	var users []config.User
	for i, role := range []string{"read", "write", "admin", "trusted_admin"} {
		users = append(users, config.User{Name: fmt.Sprintf("u%d", i), Owner: "t", Kind: "service",
			Auth:   config.UserAuth{Type: "password", Secret: "s"},
			Access: []config.Access{{Clusters: []string{"local"}, Databases: []string{"*"}, Role: role}}})
	}
	st, err := config.Desired(&config.Config{Settings: settings, Clusters: []config.Cluster{cluster}, Users: users}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Config()
	cfg.User, cfg.Passwd = admin, password
	if cfg.Net == "unix" {
		// The account is '...'@'%': reach it over TCP, as the Lambda does.
		cfg.Net, cfg.Addr = "tcp", "127.0.0.1:3306"
	}
	adminDB, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer adminDB.Close()
	c, _ := st.Find("local")
	opts := engine.Options{State: st, Cluster: *c, Passwords: map[string]string{"s": "user-secret"}, Apply: true}
	res := engine.Reconcile(ctx, adminDB, opts)
	if res.Status != engine.Applied {
		t.Fatalf("reconcile as the least-privileged account: status %s, error %v", res.Status, res.Err)
	}
	if res = engine.Reconcile(ctx, adminDB, opts); res.Status != engine.Unchanged || res.Writes != 0 {
		t.Fatalf("second run: status %s, %d writes, error %v", res.Status, res.Writes, res.Err)
	}

	// Enough for removals too: u0 (read) has a session open, u2 (admin)
	// defines a view; both leave. The account sees the session and the
	// view's definer, ends the one and locks the other.
	userCfg := s.Config()
	userCfg.User, userCfg.Passwd, userCfg.DBName = prefix+"_u0", "user-secret", dbs[0]
	sessionDB, err := sql.Open("mysql", userCfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer sessionDB.Close()
	session, err := sessionDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	s.Exec(t, "CREATE DEFINER='"+prefix+"_u2'@'%' VIEW `"+dbs[0]+"`.v AS SELECT 1 AS one")
	st, err = config.Desired(&config.Config{Settings: settings, Clusters: []config.Cluster{cluster}, Users: []config.User{users[1], users[3]}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, _ = st.Find("local")
	opts.State, opts.Cluster = st, *c
	res = engine.Reconcile(ctx, adminDB, opts)
	if res.Status != engine.Applied {
		t.Fatalf("removal as the least-privileged account: status %s, error %v", res.Status, res.Err)
	}
	var ended, locked bool
	for _, st := range res.Applied {
		ended = ended || st.Change.Action() == plan.EndSession
		locked = locked || st.Change.Action() == plan.LockAccount && st.Change.Account.User == prefix+"_u2"
	}
	if !ended || !locked {
		t.Errorf("ended a session %v, locked the definer %v; want both", ended, locked)
	}
	if err := session.PingContext(ctx); err == nil {
		t.Error("the dropped account's session is still open")
	}
}

// statements splits the script into statements, dropping comments.
func statements(script string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(script, "\n") {
		if strings.HasPrefix(line, "--") || strings.TrimSpace(line) == "" {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(line, ";") {
			out = append(out, strings.TrimSuffix(cur.String(), ";"))
			cur.Reset()
		}
	}
	return out
}

func TestPlanScriptPerEngine(t *testing.T) {
	for _, tc := range []struct {
		engine string
		want   []string
	}{
		{"aurora-mysql-3", []string{"REQUIRE SSL", "GRANT SELECT ON `mysql`.`global_grants`", "GRANT SHOW_ROUTINE ON *.*", "GRANT SHOW VIEW ON `app_db`.*"}},
		{"mysql-5.7", []string{"GRANT SELECT ON `mysql`.`proc`", "GRANT SHOW VIEW ON `app\\_db`.*"}},
		{"mariadb-10.11", []string{"GRANT SELECT ON `mysql`.`global_priv`", "GRANT SELECT ON `mysql`.`proc`"}},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			got, err := adminsql.PlanScript(adminsql.Input{Engine: tc.engine, User: "dbusers_plan", Databases: []string{"app_db"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range append(tc.want, "GRANT PROCESS ON *.* TO 'dbusers_plan'@'%';", adminsql.PlanPasswordPlaceholder) {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			// Every statement but CREATE USER grants SELECT, PROCESS or a
			// SHOW privilege, and nothing WITH GRANT OPTION.
			for _, stmt := range statements(got) {
				if strings.HasPrefix(stmt, "CREATE USER ") {
					continue
				}
				ok := false
				for _, p := range []string{"GRANT SELECT ON ", "GRANT PROCESS ON ", "GRANT SHOW VIEW ON ", "GRANT SHOW_ROUTINE ON "} {
					ok = ok || strings.HasPrefix(stmt, p)
				}
				if !ok || strings.Contains(stmt, "GRANT OPTION") || strings.Contains(stmt, "CREATE USER ON") {
					t.Errorf("the plan login is granted more than reads: %s", stmt)
				}
			}
		})
	}
	// A hostile name stays one quoted account name: no statement is added.
	got, err := adminsql.PlanScript(adminsql.Input{Engine: "mysql-8.0", User: "x'; DROP USER root; --", Databases: []string{"d"}})
	if err == nil {
		for _, stmt := range statements(got) {
			if !strings.HasPrefix(stmt, "CREATE USER IF NOT EXISTS 'x''; DROP USER root; --'@'%'") && !strings.HasSuffix(stmt, "TO 'x''; DROP USER root; --'@'%'") {
				t.Errorf("statement %q does not keep the name quoted", stmt)
			}
		}
	}
}

// TestPlanLoginPlansAndCannotWrite proves the plan login is enough for the
// live plan and can change nothing: created by PlanScript alone, it plans
// what the management account would (a new user, a drop with the dropped
// account's open session, a view's definer locked), and every write it
// tries is refused.
func TestPlanLoginPlansAndCannotWrite(t *testing.T) {
	s := mysqltest.MariaDB(t, "the plan login is proven against MariaDB only")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tag := mysqltest.Name("")
	prefix, login, password := "p"+tag, "pln_"+tag, mysqltest.Password("plan")
	dbs := []string{"ps_" + tag + "_one"}
	s.Scratch(t, func(u string) bool { return strings.HasPrefix(u, prefix+"_") || u == login }, dbs...)
	script, err := adminsql.PlanScript(adminsql.Input{Engine: "mariadb-10.11", User: login, Databases: dbs, TLS: "disabled"})
	if err != nil {
		t.Fatal(err)
	}
	// Twice: the script runs again without an error, and the login keeps
	// its password (it logs in below).
	for _, pw := range []string{password, "another-password"} {
		for _, stmt := range statements(strings.ReplaceAll(script, adminsql.PlanPasswordPlaceholder, pw)) {
			s.Exec(t, stmt)
		}
	}
	s.Exec(t, "CREATE TABLE `"+dbs[0]+"`.t (id INT)")

	settings := config.Settings{Prefix: prefix, RemovalLimit: config.RemovalLimit{Count: 5, Fraction: 1}}
	cluster := config.Cluster{Name: "local", Environment: "dev", Engine: "mariadb-10.11", Databases: dbs, TLS: "disabled"}
	user := func(name, role string) config.User {
		return config.User{Name: name, Owner: "t", Kind: "service", Auth: config.UserAuth{Type: "password", Secret: "s"},
			Access: []config.Access{{Clusters: []string{"local"}, Databases: []string{"*"}, Role: role}}}
	}
	stateOf := func(users ...config.User) (*config.Config, engine.Options) {
		cfg := &config.Config{Settings: settings, Clusters: []config.Cluster{cluster}, Users: users}
		st, err := config.Desired(cfg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, _ := st.Find("local")
		return cfg, engine.Options{State: st, Cluster: *c, Passwords: map[string]string{"s": "user-secret"}, Apply: true}
	}
	_, base := stateOf(user("stays", "read"), user("leaves", "write"), user("definer", "admin"))
	if res := engine.Reconcile(ctx, s.DB, base); res.Status != engine.Applied {
		t.Fatalf("set up: %s, %v", res.Status, res.Err)
	}
	s.Exec(t, "CREATE DEFINER='"+prefix+"_definer'@'%' VIEW `"+dbs[0]+"`.v AS SELECT 1 AS one")
	userCfg := s.Config()
	userCfg.User, userCfg.Passwd, userCfg.DBName = prefix+"_leaves", "user-secret", dbs[0]
	sessionDB, err := sql.Open("mysql", userCfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer sessionDB.Close()
	session, err := sessionDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()

	_, head := stateOf(user("stays", "read"), user("arrives", "read"))
	planCfg := s.Config()
	planCfg.User, planCfg.Passwd = login, password
	if planCfg.Net == "unix" {
		planCfg.Net, planCfg.Addr = "tcp", "127.0.0.1:3306"
	}
	planDB, err := sql.Open("mysql", planCfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer planDB.Close()
	live := engine.Preview(ctx, planDB, engine.PreviewOptions{State: head.State, Cluster: head.Cluster, Passwords: head.Passwords})
	head.Apply = false
	want := engine.Reconcile(ctx, s.DB, head)
	if live.Err != nil || want.Err != nil {
		t.Fatalf("plan login: %v; management account: %v", live.Err, want.Err)
	}
	if got, exp := summaries(live.Plan.Changes), summaries(want.Plan.Changes); got != exp {
		t.Errorf("the plan login plans\n%s\nthe management account\n%s", got, exp)
	}
	for _, a := range []plan.Action{plan.CreateUser, plan.DropUser, plan.EndSession, plan.LockAccount} {
		if !strings.Contains(summaries(live.Plan.Changes), string(a)) {
			t.Errorf("the live plan has no %s:\n%s", a, summaries(live.Plan.Changes))
		}
	}

	var sessionID int
	if err := session.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&sessionID); err != nil {
		t.Fatal(err)
	}
	writer, err := planDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	for _, stmt := range []string{
		"CREATE USER '" + prefix + "_evil'@'%' IDENTIFIED BY 'x'",
		"GRANT SELECT ON *.* TO '" + prefix + "_stays'@'%'",
		"REVOKE SELECT ON `" + dbs[0] + "`.* FROM '" + prefix + "_stays'@'%'",
		"DROP USER '" + prefix + "_stays'@'%'",
		"ALTER USER '" + prefix + "_stays'@'%' ACCOUNT LOCK",
		"SET PASSWORD FOR '" + prefix + "_stays'@'%' = PASSWORD('x')",
		"UPDATE mysql.global_priv SET Priv = '{}' WHERE User = '" + prefix + "_stays'",
		"INSERT INTO `" + dbs[0] + "`.t VALUES (1)",
		"CREATE TABLE `" + dbs[0] + "`.t2 (id INT)",
		"DROP VIEW `" + dbs[0] + "`.v",
		fmt.Sprintf("KILL %d", sessionID),
		"FLUSH PRIVILEGES",
	} {
		if _, err := writer.ExecContext(ctx, stmt); err == nil {
			t.Errorf("the plan login could run: %s", stmt)
		}
	}
	if err := session.PingContext(ctx); err != nil {
		t.Errorf("the session the plan login tried to kill is gone: %v", err)
	}
}

func summaries(cs []plan.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s: %s\n", c.Action(), c.Account.User, c.Summary)
	}
	return b.String()
}
