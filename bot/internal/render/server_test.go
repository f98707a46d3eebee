package render

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// liveServer is one real server the tests send rendered statements to.
type liveServer struct {
	*mysqltest.Server
	wildcard bool // GRANT treats _ and % in database names as wildcards
}

func live(s *mysqltest.Server) *liveServer {
	return &liveServer{Server: s, wildcard: s.Flavor.WildcardDatabaseNames(false)}
}

// eachServer runs fn against the embedded server and against MariaDB, whose
// half skips loudly when DBUSERS_TEST_MARIADB_DSN is not set.
func eachServer(t *testing.T, fn func(t *testing.T, s *liveServer)) {
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) { fn(t, live(s)) })
}

func ctxFor(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// apply renders c for the server's flavor and sends it.
func (s *liveServer) apply(tb testing.TB, c plan.Change) {
	tb.Helper()
	st, err := Change(c, s.Flavor)
	if err != nil {
		tb.Fatalf("%s: %v", s.Name, err)
	}
	if _, err := s.DB.ExecContext(ctxFor(tb), st.SQL); err != nil {
		tb.Fatalf("%s: %s: %v", s.Name, st, st.SanitizeError(err))
	}
}

// rows reads every column of every row as text, each row joined with sep.
// Reading columns one by one (not CONCAT on the server) matters: the
// embedded server concatenates ENUM columns as their index.
func (s *liveServer) rows(ctx context.Context, sep, q string) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([][]byte, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = string(v)
		}
		out = append(out, strings.Join(parts, sep))
	}
	return out, rows.Err()
}

// strings reads one string column.
func (s *liveServer) strings(ctx context.Context, q string) ([]string, error) {
	return s.rows(ctx, "", q)
}

// objects is every account and database on a server.
type objects struct {
	accounts  []mysqlstate.AccountID
	databases []string
}

func (s *liveServer) objects(ctx context.Context) (objects, error) {
	var o objects
	rows, err := s.DB.QueryContext(ctx, "SELECT User, Host FROM mysql.user")
	if err != nil {
		return o, err
	}
	defer rows.Close()
	for rows.Next() {
		var u, h []byte
		if err := rows.Scan(&u, &h); err != nil {
			return o, err
		}
		o.accounts = append(o.accounts, mysqlstate.AccountID{User: string(u), Host: string(h)})
	}
	if err := rows.Err(); err != nil {
		return o, err
	}
	o.databases, err = s.strings(ctx, "SHOW DATABASES")
	return o, err
}

// appeared lists the objects in after that are not in before.
func appeared(before, after objects) objects {
	var o objects
	for _, a := range after.accounts {
		if !slices.Contains(before.accounts, a) {
			o.accounts = append(o.accounts, a)
		}
	}
	for _, d := range after.databases {
		if !slices.Contains(before.databases, d) {
			o.databases = append(o.databases, d)
		}
	}
	return o
}

// TestStatementsOnServer sends the statements of every action to real
// servers and checks what they did, including logging in as the user.
func TestStatementsOnServer(t *testing.T) {
	eachServer(t, func(t *testing.T, s *liveServer) {
		ctx := ctxFor(t)
		st := mysqltest.Name("rst")
		user := mysqlstate.AccountID{User: st + "_o'svc`\\", Host: "%"}
		appDB, oddDB := st+"_app_db", st+"_we`ird 'db' \\ %"
		role := mysqlstate.AccountID{User: st + "_role", Host: "%"}
		if s.Flavor == flavor.MariaDB {
			role.Host = "" // MariaDB roles have no host
		}
		t.Cleanup(func() {
			// Best effort: most of these are gone already.
			for _, q := range []string{"DROP USER " + Account(user), "DROP DATABASE " + Ident(appDB), "DROP DATABASE " + Ident(oddDB)} {
				_, _ = s.DB.ExecContext(context.Background(), q)
			}
			if s.Flavor == flavor.MariaDB {
				_, _ = s.DB.ExecContext(context.Background(), "DROP ROLE "+Ident(role.User))
			} else {
				_, _ = s.DB.ExecContext(context.Background(), "DROP ROLE "+Account(role))
			}
		})
		s.Exec(t, "CREATE DATABASE "+Ident(appDB))
		s.Exec(t, "CREATE DATABASE "+Ident(oddDB))
		s.Exec(t, "CREATE TABLE "+Ident(appDB)+".`t1` (id INT PRIMARY KEY, c INT)")

		pw1, pw2 := `pw1-'quote'-\back-`+"`tick`-%_\"é", `pw2-''\\`+"\n\x1a"
		s.apply(t, plan.Change{Account: user, Op: plan.NewAccount{Auth: plan.Auth{Method: "password", Password: pw1}}})
		if err := s.CanLogin(ctx, user.User, pw1); err != nil {
			t.Fatalf("log in as the created user: %v", err)
		}

		// The IAM plugin exists on neither server: rendering refuses.
		if _, err := Change(plan.Change{Account: user, Op: plan.SetAuth{Auth: plan.Auth{Method: "iam"}}}, s.Flavor); err == nil {
			t.Errorf("IAM rendered for %s", s.Flavor)
		}

		dbRow := func(pattern string) []string {
			t.Helper()
			got, err := s.rows(ctx, ":", "SELECT Db, Select_priv, Insert_priv, Update_priv, Drop_priv FROM mysql.db WHERE User = "+Literal(user.User)+" AND Db = "+Literal(pattern))
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		appPattern := flavor.DatabasePattern(appDB, s.wildcard)
		s.apply(t, plan.Change{Account: user, Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: appPattern}, Privileges: []string{"SELECT", "INSERT", "UPDATE"}}})
		if got, want := dbRow(appPattern), []string{appPattern + ":Y:Y:Y:N"}; !slices.Equal(got, want) {
			t.Errorf("after GRANT on %s: mysql.db = %q, want %q", appDB, got, want)
		}
		oddPattern := flavor.DatabasePattern(oddDB, s.wildcard)
		s.apply(t, plan.Change{Account: user, Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: oddPattern}, Privileges: s.Flavor.DatabasePrivileges()}})
		if got, want := dbRow(oddPattern), []string{oddPattern + ":Y:Y:Y:Y"}; !slices.Equal(got, want) {
			t.Errorf("after GRANT ALL on %s: mysql.db = %q, want %q", oddDB, got, want)
		}
		if name, exact := flavor.UnescapeDatabasePattern(oddPattern); s.wildcard && (name != oddDB || !exact) {
			t.Errorf("flavor.UnescapeDatabasePattern(%q) = %q, %v", oddPattern, name, exact)
		}

		s.apply(t, plan.Change{Account: user, Op: plan.RevokeDatabase{DatabaseRef: plan.DatabaseRef{Pattern: appPattern}, Privileges: []string{"INSERT", "UPDATE"}}})
		if got, want := dbRow(appPattern), []string{appPattern + ":Y:N:N:N"}; !slices.Equal(got, want) {
			t.Errorf("after REVOKE on %s: mysql.db = %q, want %q", appDB, got, want)
		}

		s.Exec(t, "GRANT PROCESS, REPLICATION CLIENT ON *.* TO "+Account(user))
		s.apply(t, plan.Change{Account: user, Op: plan.RevokeGlobal{Privileges: []string{"PROCESS", "REPLICATION CLIENT"}}})
		got, err := s.rows(ctx, "", "SELECT Process_priv, Repl_client_priv FROM mysql.user WHERE User = "+Literal(user.User))
		if err != nil || !slices.Equal(got, []string{"NN"}) {
			t.Errorf("after global REVOKE: Process_priv, Repl_client_priv = %q, %v; want NN", got, err)
		}

		s.Exec(t, "GRANT SELECT, INSERT ON "+Ident(appDB)+".`t1` TO "+Account(user))
		s.apply(t, plan.Change{Account: user, Op: plan.RevokeTable{DatabaseRef: plan.DatabaseRef{Pattern: appDB}, Table: "t1", Privileges: []string{"SELECT", "INSERT"}}})
		if got, err := s.strings(ctx, "SELECT Table_name FROM mysql.tables_priv WHERE User = "+Literal(user.User)); err != nil || len(got) != 0 {
			t.Errorf("after table REVOKE: tables_priv = %q, %v; want no rows", got, err)
		}

		if s.Flavor != flavor.Embedded { // go-mysql-server has no column grants
			s.Exec(t, "GRANT SELECT (`c`), UPDATE (`c`) ON "+Ident(appDB)+".`t1` TO "+Account(user))
			s.apply(t, plan.Change{Account: user, Op: plan.RevokeColumn{DatabaseRef: plan.DatabaseRef{Pattern: appDB}, Table: "t1", Column: "c", Privileges: []string{"SELECT", "UPDATE"}}})
			if got, err := s.strings(ctx, "SELECT Column_name FROM mysql.columns_priv WHERE User = "+Literal(user.User)); err != nil || len(got) != 0 {
				t.Errorf("after column REVOKE: columns_priv = %q, %v; want no rows", got, err)
			}
		}

		var roleRows string
		if s.Flavor == flavor.MariaDB {
			s.Exec(t, "CREATE ROLE "+Ident(role.User))
			s.Exec(t, "GRANT "+Ident(role.User)+" TO "+Account(user))
			roleRows = "SELECT Role FROM mysql.roles_mapping WHERE User = " + Literal(user.User)
		} else {
			s.Exec(t, "CREATE ROLE "+Account(role))
			s.Exec(t, "GRANT "+Account(role)+" TO "+Account(user))
			roleRows = "SELECT FROM_USER FROM mysql.role_edges WHERE TO_USER = " + Literal(user.User)
		}
		if got, err := s.strings(ctx, roleRows); err != nil || !slices.Equal(got, []string{role.User}) {
			t.Fatalf("role setup: %q, %v", got, err)
		}
		s.apply(t, plan.Change{Account: user, Op: plan.RevokeRoleGrant{Role: role}})
		if got, err := s.strings(ctx, roleRows); err != nil || len(got) != 0 {
			t.Errorf("after REVOKE role: %q, %v; want no rows", got, err)
		}

		s.apply(t, plan.Change{Account: user, Op: plan.SetAuth{Auth: plan.Auth{Method: "password", Password: pw2, Rotate: true}}})
		if err := s.CanLogin(ctx, user.User, pw2); err != nil {
			t.Errorf("log in with the rotated password: %v", err)
		}
		if err := s.CanLogin(ctx, user.User, pw1); err == nil {
			t.Errorf("the old password still logs in after rotation")
		}

		s.apply(t, plan.Change{Account: user, Op: plan.Drop{}})
		if got, err := s.strings(ctx, "SELECT User FROM mysql.user WHERE User = "+Literal(user.User)); err != nil || len(got) != 0 {
			t.Errorf("after DROP USER: %q, %v; want no rows", got, err)
		}
		// A missing account must fail loudly, not be skipped by IF EXISTS.
		drop, err := Change(plan.Change{Account: user, Op: plan.Drop{}}, s.Flavor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.ExecContext(ctx, drop.SQL); err == nil {
			t.Errorf("%s: dropping a missing account succeeded", drop)
		}
	})
}

// TestLocksOnServer takes and gives back a lock with a hostile name.
func TestLocksOnServer(t *testing.T) {
	eachServer(t, func(t *testing.T, s *liveServer) {
		ctx := ctxFor(t)
		conn, err := s.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		name := mysqltest.Name("rlk") + `'\lock`
		for _, q := range []string{GetLock(name, 5), ReleaseLock(name)} {
			var got sql.NullInt64
			if err := conn.QueryRowContext(ctx, q).Scan(&got); err != nil || got.Int64 != 1 {
				t.Errorf("%s = %v, %v; want 1", q, got, err)
			}
		}
	})
}

// TestEnableBackslashEscapes checks that the statement restores the sql_mode
// Literal needs, on a session that had NO_BACKSLASH_ESCAPES.
func TestEnableBackslashEscapes(t *testing.T) {
	eachServer(t, func(t *testing.T, s *liveServer) {
		ctx := ctxFor(t)
		conn, err := s.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, q := range []string{"SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')", EnableBackslashEscapes()} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		var mode string
		var got []byte
		in := "a\\b'c\x00d\ne"
		if err := conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode, "+Literal(in)).Scan(&mode, &got); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(mode, "NO_BACKSLASH_ESCAPES") || string(got) != in {
			t.Errorf("sql_mode %q, literal read back as %q; want no NO_BACKSLASH_ESCAPES and %q", mode, got, in)
		}
	})
}

// TestSanitizeErrorOnServer makes MariaDB echo a password in a syntax error
// (MySQL's IDENTIFIED WITH ... BY, which MariaDB rejects) and checks that
// SanitizeError hides it.
func TestSanitizeErrorOnServer(t *testing.T) {
	s := mysqltest.MariaDB(t, "SanitizeError was NOT checked against a server that echoes a password")
	pw := "echoed-by-the-server-" + mysqltest.Name("")
	st, err := Change(plan.Change{Account: acct(mysqltest.Name("rse")), Op: plan.NewAccount{Auth: plan.Auth{Method: "password", Password: pw}}}, flavor.MySQL80)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.DB.ExecContext(ctxFor(t), st.SQL)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1064 || !strings.Contains(err.Error(), "echoed") {
		t.Fatalf("MariaDB answered %v; want a syntax error that quotes the password", err)
	}
	if clean := st.SanitizeError(err); strings.Contains(clean.Error(), "echoed") {
		t.Errorf("SanitizeError left the password in %q", clean)
	}
}
