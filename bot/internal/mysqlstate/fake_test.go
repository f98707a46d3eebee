package mysqlstate

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/google/go-cmp/cmp"
)

// fakeServer answers Read's queries from canned result sets, for the
// flavors no test server runs: MySQL 5.7, MySQL 8.0 and Aurora. It returns
// every row whatever the LIKE pattern, as a case-insensitive collation
// might, so the exact prefix check in Go is what keeps look-alikes out.
type fakeServer struct {
	results map[string]fakeResult // by exact query text
	sent    []string
}

type fakeResult struct {
	cols []string
	rows [][]driver.Value
}

// table builds a result from a header line and rows of space-separated
// cells: "-" is NULL, two single quotes are the empty string and "~" is a
// space.
func table(header string, rows ...string) fakeResult {
	r := fakeResult{cols: strings.Fields(header)}
	for _, line := range rows {
		var vals []driver.Value
		for _, cell := range strings.Fields(line) {
			switch cell {
			case "-":
				vals = append(vals, nil)
			case "''":
				vals = append(vals, "")
			default:
				vals = append(vals, strings.ReplaceAll(cell, "~", " "))
			}
		}
		r.rows = append(r.rows, vals)
	}
	return r
}

func (s *fakeServer) db(t *testing.T) *sql.DB {
	db := sql.OpenDB(fakeConnector{s})
	t.Cleanup(func() { _ = db.Close() })
	return db
}

type fakeConnector struct{ s *fakeServer }

func (c fakeConnector) Connect(context.Context) (driver.Conn, error) { return fakeConn(c), nil }
func (c fakeConnector) Driver() driver.Driver                        { return nil }

type fakeConn struct{ s *fakeServer }

func (fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake: no prepare") }
func (fakeConn) Close() error                        { return nil }
func (fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("fake: no transactions") }

func (c fakeConn) QueryContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Rows, error) {
	c.s.sent = append(c.s.sent, query)
	r, ok := c.s.results[query]
	if !ok {
		return nil, fmt.Errorf("Error 1146 (42S02): fake: no result for %q", query)
	}
	return &fakeRows{r: r}, nil
}

type fakeRows struct {
	r fakeResult
	i int
}

func (r *fakeRows) Columns() []string { return r.r.cols }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.i == len(r.r.rows) {
		return io.EOF
	}
	copy(dest, r.r.rows[r.i])
	r.i++
	return nil
}

// mysql80UserColumns is mysql.user of MySQL 8.0 (the columns Read uses,
// and a few it must ignore).
const mysql80UserColumns = `Host User Select_priv Insert_priv Update_priv Delete_priv Create_priv Drop_priv
	Reload_priv Shutdown_priv Process_priv File_priv Grant_priv References_priv Index_priv Alter_priv Show_db_priv
	Super_priv Create_tmp_table_priv Lock_tables_priv Execute_priv Repl_slave_priv Repl_client_priv Create_view_priv
	Show_view_priv Create_routine_priv Alter_routine_priv Create_user_priv Event_priv Trigger_priv
	Create_tablespace_priv ssl_type ssl_cipher plugin authentication_string password_expired account_locked
	Create_role_priv Drop_role_priv Password_require_current`

// noGlobal is the 29 global privilege columns of mysql.user, all N.
const noGlobal = "N N N N N N N N N N N N N N N N N N N N N N N N N N N N N"

func mysqlDBTable(rows ...string) fakeResult {
	return table(`Host Db User Select_priv Insert_priv Update_priv Delete_priv Create_priv Drop_priv Grant_priv
		References_priv Index_priv Alter_priv Create_tmp_table_priv Lock_tables_priv Create_view_priv Show_view_priv
		Create_routine_priv Alter_routine_priv Execute_priv Event_priv Trigger_priv`, rows...)
}

func variables(rows ...string) fakeResult { return table("Variable_name Value", rows...) }

func TestReadMySQL80OnAurora(t *testing.T) {
	s := &fakeServer{results: map[string]fakeResult{
		variablesQuery: variables("version 8.0.28", "version_comment Source~distribution",
			"aurora_version 3.04.0", "partial_revokes ON"),
		currentUserQuery: table("CURRENT_USER() @@SESSION.sql_mode", "admin@% STRICT_TRANS_TABLES"),
		userQuery: table(mysql80UserColumns,
			"% acme_bob "+noGlobal+" ANY '' AWSAuthenticationPlugin RDS N N N N -",
			"% ACME_bob "+noGlobal+" '' '' mysql_native_password x N N N N -",
			"% acmeXbob "+noGlobal+" '' '' mysql_native_password x N N N N -",
			//                S I U D C D R S P F G R I A S S C L E R R C S C A C E T C
			"10.0.% acme_svc Y N N N N N N N Y N N N N N N N N N N N Y N N N N N N N N '' '' caching_sha2_password $A$005$x N Y N N -",
			"% acme_role "+noGlobal+" '' '' caching_sha2_password '' Y Y N N -",
		),
		dbQuery: mysqlDBTable(
			//                                 S I U D C D G R I A C L C S C A E E T
			"% orders acme_bob                 Y Y Y Y Y Y N Y Y Y Y Y Y Y Y Y Y Y Y",
			`% app\_db acme_bob                Y N N N N N N N N N N N N N N N N N N`,
			"% orders acmeXbob                 Y N N N N N N N N N N N N N N N N N N",
			"% stale acme_bob                  N N N N N N N N N N N N N N N N N N N",
			"% orders acme_gone                Y N N N N N N N N N N N N N N N N N N",
			"10.0.% orders acme_svc            Y Y Y N N N Y N N N N N N N N N N N N",
		),
		tablesQuery: table("Host Db User Table_name Table_priv",
			"% orders acme_bob t1 Select,Insert",
			"% orders acme_bob t2 ''",
			"% orders ACME_bob t1 Select"),
		columnsQuery: table("Host Db User Table_name Column_name Column_priv",
			"% orders acme_bob t2 c Select,References",
			"% orders acme_bob t2 b Update"),
		globalGrantsQuery: table("USER HOST PRIV WITH_GRANT_OPTION",
			"acme_bob % BINLOG_ADMIN N",
			"acme_bob % role_admin Y",
			"acmeXbob % BINLOG_ADMIN N"),
		roleEdgesQuery: table("FROM_USER FROM_HOST TO_USER TO_HOST",
			"acme_role % acme_bob %",
			"app_admin % acme_bob %",
			"acme_role % ACME_bob %"),
		defaultRolesQuery: table("HOST USER DEFAULT_ROLE_HOST DEFAULT_ROLE_USER",
			"% acme_bob % acme_role",
			"% ACME_bob % acme_role"),
		procsQuery: table("Host Db User Routine_name Routine_type Proc_priv",
			"% orders acme_bob refund PROCEDURE Execute,Alter~Routine",
			"% orders acmeXbob refund PROCEDURE Execute"),
		proxiesQuery: table("Host User Proxied_host Proxied_user",
			"% acme_bob localhost root"),
	}}
	c := &countingQuerier{q: s.db(t)}
	ctx := testContext(t)
	got, err := Read(ctx, c, "acme")
	if err != nil {
		t.Fatal(err)
	}
	wantQueries := []string{variablesQuery, currentUserQuery, userQuery, dbQuery, tablesQuery, columnsQuery, globalGrantsQuery,
		roleEdgesQuery, defaultRolesQuery, procsQuery, proxiesQuery}
	if !slices.Equal(s.sent, wantQueries) || c.n != maxQueries {
		t.Errorf("sent %d queries:\n%s\nwant:\n%s", c.n, strings.Join(s.sent, "\n"), strings.Join(wantQueries, "\n"))
	}
	id := got.Identity()
	wantID := Identity{Flavor: flavor.MySQL80, Version: "8.0.28", VersionComment: "Source distribution",
		AuroraVersion: "3.04.0", PartialRevokes: true, CurrentUser: AccountID{"admin", "%"}}
	if id != wantID {
		t.Errorf("identity = %+v; want %+v", id, wantID)
	}
	if got.WildcardDatabaseNames() {
		t.Error("WildcardDatabaseNames = true with partial_revokes on; want false")
	}
	if err := CheckEngine(engineNamed("aurora-mysql-3"), id); err != nil {
		t.Error(err)
	}
	bob, svc, role := AccountID{"acme_bob", "%"}, AccountID{"acme_svc", "10.0.%"}, AccountID{"acme_role", "%"}
	want := map[AccountID]*Account{
		bob: {
			ID: bob, Plugin: "AWSAuthenticationPlugin", AuthString: "RDS", RequireSSL: true,
			Global: []string{"BINLOG_ADMIN", "GRANT OPTION", "ROLE_ADMIN"},
			Databases: map[string][]string{
				"orders":  flavor.MySQL80.DatabasePrivileges(),
				`app\_db`: {"SELECT"},
			},
			Tables: []TableGrant{
				{Database: "orders", Table: "t1", Privileges: []string{"INSERT", "SELECT"}},
				{Database: "orders", Table: "t2", Column: "b", Privileges: []string{"UPDATE"}},
				{Database: "orders", Table: "t2", Column: "c", Privileges: []string{"REFERENCES", "SELECT"}},
			},
			Roles:        []AccountID{{"acme_role", "%"}, {"app_admin", "%"}},
			DefaultRoles: []AccountID{{"acme_role", "%"}},
			Routines:     []RoutineGrant{{Database: "orders", Name: "refund", Type: "PROCEDURE", Privileges: []string{"ALTER ROUTINE", "EXECUTE"}}},
			Proxies:      []AccountID{{"root", "localhost"}},
		},
		svc: {
			ID: svc, Plugin: "caching_sha2_password", AuthString: "$A$005$x", Locked: true,
			Global:    []string{"PROCESS", "REPLICATION CLIENT", "SELECT"},
			Databases: map[string][]string{"orders": {"GRANT OPTION", "INSERT", "SELECT", "UPDATE"}},
		},
		role: {ID: role, Plugin: "caching_sha2_password", Locked: true, PasswordExpired: true},
	}
	if diff := cmp.Diff(want, got.Accounts); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
}

// mysql57UserColumns is mysql.user of MySQL 5.7: no role privileges.
const mysql57UserColumns = `Host User Select_priv Insert_priv Update_priv Delete_priv Create_priv Drop_priv
	Reload_priv Shutdown_priv Process_priv File_priv Grant_priv References_priv Index_priv Alter_priv Show_db_priv
	Super_priv Create_tmp_table_priv Lock_tables_priv Execute_priv Repl_slave_priv Repl_client_priv Create_view_priv
	Show_view_priv Create_routine_priv Alter_routine_priv Create_user_priv Event_priv Trigger_priv
	Create_tablespace_priv ssl_type ssl_cipher plugin authentication_string password_expired account_locked`

func TestReadMySQL57OnAurora(t *testing.T) {
	s := &fakeServer{results: map[string]fakeResult{
		variablesQuery:   variables("version 5.7.12", "version_comment MySQL~Community~Server~(GPL)", "aurora_version 2.11.2"),
		currentUserQuery: table("CURRENT_USER() @@SESSION.sql_mode", "admin@% STRICT_TRANS_TABLES"),
		userQuery: table(mysql57UserColumns,
			"% acme_bob "+noGlobal+" '' '' mysql_native_password *14E65567ABDB5135D0CFD9A70B3032C179A49EE7 N N"),
		dbQuery: mysqlDBTable(
			`% app\_db acme_bob Y Y Y Y Y Y N Y Y Y Y Y Y Y Y Y Y Y Y`),
		tablesQuery:  table("Host Db User Table_name Table_priv"),
		columnsQuery: table("Host Db User Table_name Column_name Column_priv"),
		procsQuery:   table("Host Db User Routine_name Routine_type Proc_priv"),
		proxiesQuery: table("Host User Proxied_host Proxied_user"),
	}}
	c := &countingQuerier{q: s.db(t)}
	got, err := Read(testContext(t), c, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if wantQueries := []string{variablesQuery, currentUserQuery, userQuery, dbQuery, tablesQuery, columnsQuery, procsQuery, proxiesQuery}; !slices.Equal(s.sent, wantQueries) {
		t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(s.sent, "\n"), strings.Join(wantQueries, "\n"))
	}
	if got.Flavor != flavor.MySQL57 || !got.Identity().Aurora() || got.PartialRevokes || !got.WildcardDatabaseNames() {
		t.Errorf("identity = %+v; want Aurora MySQL 5.7 with wildcard database names", got.Identity())
	}
	if err := CheckEngine(engineNamed("aurora-mysql-2"), got.Identity()); err != nil {
		t.Error(err)
	}
	bob := AccountID{"acme_bob", "%"}
	want := map[AccountID]*Account{bob: {
		ID: bob, Plugin: "mysql_native_password", AuthString: NativePasswordHash("secret"),
		Databases: map[string][]string{`app\_db`: flavor.MySQL57.DatabasePrivileges()},
	}}
	if diff := cmp.Diff(want, got.Accounts); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
}

func TestReadErrorsNameTheTable(t *testing.T) {
	s := &fakeServer{results: map[string]fakeResult{
		variablesQuery:   variables("version 8.0.36"),
		currentUserQuery: table("CURRENT_USER() @@SESSION.sql_mode", "admin@% STRICT_TRANS_TABLES"),
		userQuery:        table("Host User plugin"),
		dbQuery:          mysqlDBTable(),
		// no mysql.tables_priv
	}}
	_, err := Read(testContext(t), s.db(t), "acme")
	if err == nil || !strings.HasPrefix(err.Error(), "read mysql.tables_priv: ") {
		t.Fatalf("error = %v; want it to start with read mysql.tables_priv", err)
	}
}

func TestDetectRefusesUnknownServer(t *testing.T) {
	s := &fakeServer{results: map[string]fakeResult{
		variablesQuery:   variables("version 5.6.51", "version_comment MySQL~Community~Server~(GPL)"),
		currentUserQuery: table("CURRENT_USER() @@SESSION.sql_mode", "admin@% STRICT_TRANS_TABLES"),
	}}
	_, err := Detect(testContext(t), s.db(t))
	if want := `unsupported server version "5.6.51"`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v; want %s...", err, want)
	}
	s.results[variablesQuery] = variables("version_comment nothing")
	if _, err := Detect(testContext(t), s.db(t)); err == nil || !strings.Contains(err.Error(), "no version") {
		t.Fatalf("error = %v; want no version", err)
	}
}

func TestReadMariaDBUnknownAccessBit(t *testing.T) {
	s := &fakeServer{results: map[string]fakeResult{
		variablesQuery:   variables("version 10.11.19-MariaDB"),
		currentUserQuery: table("CURRENT_USER() @@SESSION.sql_mode", "root@localhost STRICT_TRANS_TABLES"),
		mariaDBUserQuery: table("User Host access plugin authentication_string account_locked ssl_type is_role",
			"acme_bob % 1099511627776 mysql_native_password '' - - -"),
	}}
	_, err := Read(testContext(t), s.db(t), "acme")
	if want := "read mysql.global_priv: account 'acme_bob'@'%': unknown privilege bit 40"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v; want %s...", err, want)
	}
}
