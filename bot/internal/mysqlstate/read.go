package mysqlstate

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// Read detects the server and reads every account the prefix owns, with its
// authentication, global, database, table, column and role grants. It sends
// at most 8 queries, however many accounts there are.
func Read(ctx context.Context, q Querier, prefix desired.Prefix) (*Server, error) {
	id, err := Detect(ctx, q)
	if err != nil {
		return nil, err
	}
	return ReadAccounts(ctx, q, id, prefix)
}

// ReadAccounts is Read for a caller that has already detected the server
// (typically to run CheckEngine before anything else), so that detection is
// not paid twice. It sends one query per grant table of the flavor
// (flavor.GrantTables), at most 6.
func ReadAccounts(ctx context.Context, q Querier, id Identity, prefix desired.Prefix) (*Server, error) {
	if prefix == "" {
		return nil, errors.New("read accounts: empty prefix: refusing to read every account as managed")
	}
	srv := &Server{
		Flavor:         id.Flavor,
		Version:        id.Version,
		VersionComment: id.VersionComment,
		AuroraVersion:  id.AuroraVersion,
		PartialRevokes: id.PartialRevokes,
		CurrentUser:    id.CurrentUser,
		ReadOnly:       id.ReadOnly,
		Accounts:       map[AccountID]*Account{},
	}
	steps, err := readSteps(id.Flavor)
	if err != nil {
		return nil, err
	}
	r := &reader{srv: srv, prefix: prefix, tables: map[tableKey]int{}}
	pattern := likePrefix(prefix.Namespace())
	for _, s := range steps {
		if err := r.run(ctx, q, s, pattern); err != nil {
			return nil, err
		}
	}
	r.finish()
	return srv, nil
}

// step is one bulk query and what to do with each of its rows.
type step struct {
	table string // the table of the mysql schema it reads, e.g. "user"
	query string // takes the LIKE pattern of the prefix as its one argument
	row   func(r *reader, row *row) error
}

// The queries. Each filters by user name with LIKE on an escaped prefix;
// the reader checks the prefix again, case-sensitively, because the column
// collation may not be. ESCAPE '!' rather than the default backslash keeps
// the pattern right under NO_BACKSLASH_ESCAPES.
const (
	userQuery = "SELECT * FROM mysql.user WHERE User LIKE ? ESCAPE '!'"
	// MariaDB's mysql.user is a view over mysql.global_priv that lacks
	// account_locked and the privileges of access bits 30 and up, so read
	// the table itself.
	mariaDBUserQuery = "SELECT User, Host, JSON_VALUE(Priv, '$.access') AS access, " +
		"JSON_VALUE(Priv, '$.plugin') AS plugin, JSON_VALUE(Priv, '$.authentication_string') AS authentication_string, " +
		"JSON_VALUE(Priv, '$.account_locked') AS account_locked, JSON_VALUE(Priv, '$.ssl_type') AS ssl_type, " +
		"JSON_VALUE(Priv, '$.is_role') AS is_role, JSON_VALUE(Priv, '$.default_role') AS default_role, " +
		"JSON_VALUE(Priv, '$.password_last_changed') AS password_last_changed, " +
		"JSON_VALUE(Priv, '$.password_lifetime') AS password_lifetime, " +
		"JSON_VALUE(Priv, '$.max_questions') AS max_questions, JSON_VALUE(Priv, '$.max_updates') AS max_updates, " +
		"JSON_VALUE(Priv, '$.max_connections') AS max_connections, " +
		"JSON_VALUE(Priv, '$.max_user_connections') AS max_user_connections " +
		"FROM mysql.global_priv WHERE User LIKE ? ESCAPE '!'"
	dbQuery           = "SELECT * FROM mysql.db WHERE User LIKE ? ESCAPE '!'"
	tablesQuery       = "SELECT Host, Db, User, Table_name, Table_priv FROM mysql.tables_priv WHERE User LIKE ? ESCAPE '!'"
	columnsQuery      = "SELECT Host, Db, User, Table_name, Column_name, Column_priv FROM mysql.columns_priv WHERE User LIKE ? ESCAPE '!'"
	globalGrantsQuery = "SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants WHERE USER LIKE ? ESCAPE '!'"
	roleEdgesQuery    = "SELECT FROM_USER, FROM_HOST, TO_USER, TO_HOST FROM mysql.role_edges WHERE TO_USER LIKE ? ESCAPE '!'"
	rolesMappingQuery = "SELECT User, Host, Role FROM mysql.roles_mapping WHERE User LIKE ? ESCAPE '!'"
	procsQuery        = "SELECT Host, Db, User, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv WHERE User LIKE ? ESCAPE '!'"
	proxiesQuery      = "SELECT Host, User, Proxied_host, Proxied_user FROM mysql.proxies_priv WHERE User LIKE ? ESCAPE '!'"
	defaultRolesQuery = "SELECT HOST, USER, DEFAULT_ROLE_HOST, DEFAULT_ROLE_USER FROM mysql.default_roles WHERE USER LIKE ? ESCAPE '!'"
)

// steps reads each grant table a flavor may have. The accounts come
// first: the other tables' rows only count for accounts it found.
var steps = []step{
	{"user", userQuery, (*reader).userRow},
	{"global_priv", mariaDBUserQuery, (*reader).mariaDBUserRow},
	{"db", dbQuery, (*reader).dbRow},
	{"tables_priv", tablesQuery, (*reader).tableRow},
	{"columns_priv", columnsQuery, (*reader).columnRow},
	{"global_grants", globalGrantsQuery, (*reader).globalGrantRow},
	{"role_edges", roleEdgesQuery, (*reader).roleEdgeRow},
	{"roles_mapping", rolesMappingQuery, (*reader).rolesMappingRow},
	{"default_roles", defaultRolesQuery, (*reader).defaultRoleRow},
	{"procs_priv", procsQuery, (*reader).procRow},
	{"proxies_priv", proxiesQuery, (*reader).proxyRow},
}

// readSteps lists the queries for a flavor: one per table of
// flavor.GrantTables, in the order of steps. With Detect's two queries:
// MySQL 5.7 6, MySQL 8 8, MariaDB 7, embedded 6.
func readSteps(f flavor.Flavor) ([]step, error) {
	tables := f.GrantTables()
	if len(tables) == 0 {
		return nil, fmt.Errorf("read accounts: unsupported flavor %q", f)
	}
	var out []step
	for _, s := range steps {
		if i := slices.Index(tables, s.table); i >= 0 {
			out = append(out, s)
			tables = slices.Delete(tables, i, i+1)
		}
	}
	if len(tables) > 0 {
		return nil, fmt.Errorf("read accounts: no query reads mysql.%s of flavor %s", tables[0], f)
	}
	return out, nil
}

// likePrefix returns the LIKE pattern (escape character !) that matches
// every string starting with prefix, _ and % included literally.
func likePrefix(prefix string) string {
	var b strings.Builder
	for i := 0; i < len(prefix); i++ { // bytes: the escaped characters are ASCII
		if c := prefix[i]; c == '!' || c == '_' || c == '%' {
			b.WriteByte('!')
		}
		b.WriteByte(prefix[i])
	}
	b.WriteByte('%')
	return b.String()
}

// row is one result row with its columns addressable by lower-case name, so
// that SELECT * works whatever columns a server version has.
type row struct {
	index map[string]int
	vals  []sql.NullString
	// privs are the columns that hold a privilege (the *_priv columns of
	// mysql.user and mysql.db), named once per query rather than once per
	// row: 1,000 accounts times 30 columns add up.
	privs []privColumn
}

// privColumn is a column of a row that holds a privilege.
type privColumn struct {
	i         int
	privilege string
}

// granted returns the privileges the row's *_priv columns grant, in
// column order.
func (r *row) granted() []string {
	var out []string
	for _, c := range r.privs {
		if yes(r.vals[c.i].String) {
			out = append(out, c.privilege)
		}
	}
	return out
}

func (r *row) get(name string) string {
	if i, ok := r.index[name]; ok {
		return r.vals[i].String
	}
	return ""
}

func (r *row) account(userCol, hostCol string) AccountID {
	return AccountID{User: r.get(userCol), Host: r.get(hostCol)}
}

// yes reads the many spellings of true in the grant tables: enum 'Y', JSON
// true, 1.
func yes(s string) bool {
	switch strings.ToUpper(s) {
	case "Y", "1", "TRUE":
		return true
	}
	return false
}

type tableKey struct {
	id                      AccountID
	database, table, column string
}

// reader accumulates the rows of every step into srv.Accounts.
type reader struct {
	srv    *Server
	prefix desired.Prefix
	// tables indexes Account.Tables by account, table and column.
	tables map[tableKey]int
}

func (r *reader) run(ctx context.Context, q Querier, s step, pattern string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("read mysql.%s: %w", s.table, err)
		}
	}()
	rows, err := q.QueryContext(ctx, s.query, pattern)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	cur := &row{index: make(map[string]int, len(cols)), vals: make([]sql.NullString, len(cols))}
	dest := make([]any, len(cols))
	for i, c := range cols {
		cur.index[strings.ToLower(c)] = i
		if p, ok := columnPrivilege(c); ok {
			cur.privs = append(cur.privs, privColumn{i, p})
		}
		dest[i] = &cur.vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := s.row(r, cur); err != nil {
			return err
		}
	}
	return rows.Err()
}

// managed returns the account a row belongs to when it is one Read keeps:
// the exact prefix, and an account the first step found.
func (r *reader) managed(id AccountID) *Account {
	if !r.prefix.Owns(id.User) {
		return nil
	}
	return r.srv.Accounts[id]
}

func (r *reader) userRow(row *row) error {
	id := row.account("user", "host")
	if !r.prefix.Owns(id.User) {
		return nil
	}
	a := &Account{
		ID:               id,
		Plugin:           row.get("plugin"),
		AuthString:       row.get("authentication_string"),
		Locked:           yes(row.get("account_locked")),
		RequireSSL:       row.get("ssl_type") != "",
		PasswordExpired:  yes(row.get("password_expired")),
		PasswordLifetime: row.get("password_lifetime"), // NULL: the default
	}
	if err := a.Limits.read(row); err != nil {
		return fmt.Errorf("account %s: %w", id, err)
	}
	a.Global = row.granted()
	r.srv.Accounts[id] = a
	return nil
}

// read takes the resource limits of a mysql.user row (or of MariaDB's
// global_priv, read under the same names).
func (l *Limits) read(row *row) error {
	for _, f := range []struct {
		col string
		v   *int64
	}{
		{"max_questions", &l.Queries}, {"max_updates", &l.Updates},
		{"max_connections", &l.Connections}, {"max_user_connections", &l.UserConnections},
	} {
		s := row.get(f.col)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%s %q: %w", f.col, s, err)
		}
		*f.v = n
	}
	return nil
}

func (r *reader) mariaDBUserRow(row *row) error {
	id := row.account("user", "host")
	if !r.prefix.Owns(id.User) || yes(row.get("is_role")) {
		// A MariaDB role is not an account: it cannot log in and DROP USER
		// does not remove it.
		return nil
	}
	var access uint64
	if s := row.get("access"); s != "" {
		var err error
		if access, err = strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("account %s: access mask %q: %w", id, s, err)
		}
	}
	global, err := mariaDBPrivileges(access)
	if err != nil {
		return fmt.Errorf("account %s: %w", id, err)
	}
	ssl := row.get("ssl_type")
	a := &Account{
		ID:         id,
		Plugin:     row.get("plugin"),
		AuthString: row.get("authentication_string"),
		Locked:     yes(row.get("account_locked")),
		RequireSSL: ssl != "" && ssl != "0",
		Global:     global,
		// MariaDB marks PASSWORD EXPIRE by a last change at time 0.
		PasswordExpired: row.get("password_last_changed") == "0",
	}
	// -1 (or nothing) is the server default.
	if lt := row.get("password_lifetime"); lt != "" && lt != "-1" {
		a.PasswordLifetime = lt
	}
	if err := a.Limits.read(row); err != nil {
		return fmt.Errorf("account %s: %w", id, err)
	}
	if dr := row.get("default_role"); dr != "" {
		a.DefaultRoles = []AccountID{{User: dr}}
	}
	r.srv.Accounts[id] = a
	return nil
}

func (r *reader) dbRow(row *row) error {
	a := r.managed(row.account("user", "host"))
	if a == nil {
		return nil
	}
	privs := row.granted()
	if len(privs) == 0 {
		return nil
	}
	if a.Databases == nil {
		a.Databases = map[string][]string{}
	}
	db := row.get("db")
	a.Databases[db] = append(a.Databases[db], privs...)
	return nil
}

func (r *reader) tableRow(row *row) error {
	r.addTableGrant(row, "", row.get("table_priv"))
	return nil
}

func (r *reader) columnRow(row *row) error {
	if c := row.get("column_name"); c != "" {
		r.addTableGrant(row, c, row.get("column_priv"))
	}
	return nil
}

func (r *reader) addTableGrant(row *row, column, set string) {
	a := r.managed(row.account("user", "host"))
	privs := parsePrivilegeSet(set)
	if a == nil || len(privs) == 0 {
		return
	}
	k := tableKey{id: a.ID, database: row.get("db"), table: row.get("table_name"), column: column}
	i, ok := r.tables[k]
	if !ok {
		i = len(a.Tables)
		r.tables[k] = i
		a.Tables = append(a.Tables, TableGrant{Database: k.database, Table: k.table, Column: column})
	}
	a.Tables[i].Privileges = append(a.Tables[i].Privileges, privs...)
}

func (r *reader) globalGrantRow(row *row) error {
	a := r.managed(row.account("user", "host"))
	if a == nil {
		return nil
	}
	a.Global = append(a.Global, flavor.Canonical(row.get("priv")))
	if yes(row.get("with_grant_option")) {
		// The grant option of a dynamic privilege shows as WITH GRANT
		// OPTION in SHOW GRANTS; the flat set records that it exists.
		a.Global = append(a.Global, "GRANT OPTION")
	}
	return nil
}

func (r *reader) roleEdgeRow(row *row) error {
	if a := r.managed(row.account("to_user", "to_host")); a != nil {
		a.Roles = append(a.Roles, row.account("from_user", "from_host"))
	}
	return nil
}

func (r *reader) defaultRoleRow(row *row) error {
	if a := r.managed(row.account("user", "host")); a != nil {
		a.DefaultRoles = append(a.DefaultRoles, row.account("default_role_user", "default_role_host"))
	}
	return nil
}

func (r *reader) procRow(row *row) error {
	a := r.managed(row.account("user", "host"))
	privs := parsePrivilegeSet(row.get("proc_priv"))
	if a == nil || len(privs) == 0 {
		return nil
	}
	a.Routines = append(a.Routines, RoutineGrant{Database: row.get("db"), Name: row.get("routine_name"),
		Type: strings.ToUpper(row.get("routine_type")), Privileges: privs})
	return nil
}

func (r *reader) proxyRow(row *row) error {
	if a := r.managed(row.account("user", "host")); a != nil {
		a.Proxies = append(a.Proxies, row.account("proxied_user", "proxied_host"))
	}
	return nil
}

func (r *reader) rolesMappingRow(row *row) error {
	if a := r.managed(row.account("user", "host")); a != nil {
		// MariaDB roles have no host.
		a.Roles = append(a.Roles, AccountID{User: row.get("role")})
	}
	return nil
}

// finish sorts and de-duplicates every list so that equal states compare
// equal and print alike.
func (r *reader) finish() {
	for _, a := range r.srv.Accounts {
		a.Global = sortedSet(a.Global)
		for db, privs := range a.Databases {
			a.Databases[db] = sortedSet(privs)
		}
		for i := range a.Tables {
			a.Tables[i].Privileges = sortedSet(a.Tables[i].Privileges)
		}
		slices.SortFunc(a.Tables, func(x, y TableGrant) int {
			return cmp.Or(cmp.Compare(x.Database, y.Database), cmp.Compare(x.Table, y.Table), cmp.Compare(x.Column, y.Column))
		})
		a.Roles = sortedAccounts(a.Roles)
		a.DefaultRoles = sortedAccounts(a.DefaultRoles)
		a.Proxies = sortedAccounts(a.Proxies)
		for i := range a.Routines {
			a.Routines[i].Privileges = sortedSet(a.Routines[i].Privileges)
		}
		slices.SortFunc(a.Routines, func(x, y RoutineGrant) int {
			return cmp.Or(cmp.Compare(x.Database, y.Database), cmp.Compare(x.Type, y.Type), cmp.Compare(x.Name, y.Name))
		})
	}
}

// sortedAccounts sorts accounts and drops duplicates.
func sortedAccounts(ids []AccountID) []AccountID {
	slices.SortFunc(ids, compareAccounts)
	return slices.Compact(ids)
}

func compareAccounts(x, y AccountID) int {
	return cmp.Or(cmp.Compare(x.User, y.User), cmp.Compare(x.Host, y.Host))
}

// sortedSet sorts privileges, drops duplicates and USAGE, and returns nil
// for an empty set.
func sortedSet(privs []string) []string {
	privs = slices.DeleteFunc(privs, func(p string) bool { return p == "USAGE" })
	if len(privs) == 0 {
		return nil
	}
	slices.Sort(privs)
	return slices.Compact(privs)
}
