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
