// Package render turns planned changes into the SQL statements that carry
// them out on one server flavor. Names are quoted with Ident, data (user
// names, hosts, passwords, lock names) with Literal, privilege names are
// checked against an allow-list because they cannot be quoted, and every
// statement comes with a redacted form that is safe to log. Rendering is
// pure: values in, text out, no I/O. The other packages that send SQL
// (mysqlstate's reads, adminsql's script, the demo's seed) quote with the
// same helpers.
package render

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// iamClause is how RDS and Aurora MySQL spell IAM authentication.
const iamClause = "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"

// Change renders the statement that applies c on a server of flavor f.
// It validates every name and privilege first and fails rather than render
// something the flavor cannot run or that would reach further than c says
// (REVOKE ALL, IAM where the plugin does not exist). Errors name the change
// but never hold a password.
func Change(c plan.Change, f flavor.Flavor) (Statement, error) {
	st, err := statement(c, f)
	if err != nil {
		return Statement{}, fmt.Errorf("%s %s: %w", c.Action(), c.Account, err)
	}
	return st, nil
}

func statement(c plan.Change, f flavor.Flavor) (Statement, error) {
	if !f.Known() {
		return Statement{}, fmt.Errorf("unknown server flavor %q", f)
	}
	if err := CheckAccount(c.Account, f); err != nil {
		return Statement{}, err
	}
	switch op := c.Op.(type) {
	case plan.NewAccount:
		return authStatement("CREATE USER", c.Account, op.Auth, f)
	case plan.SetAuth:
		return authStatement("ALTER USER", c.Account, op.Auth, f)
	case plan.GrantDatabase:
		return grant(c.Account, op, f)
	case plan.RevokeGlobal:
		return revoke(c.Account, op.Privileges, "*.*", "")
	case plan.RevokeDatabase:
		on, err := onDatabase(op.DatabaseRef)
		if err != nil {
			return Statement{}, err
		}
		return revoke(c.Account, op.Privileges, on, "")
	case plan.RevokeTable:
		on, err := onTable(op.DatabaseRef, op.Table)
		if err != nil {
			return Statement{}, err
		}
		return revoke(c.Account, op.Privileges, on, "")
	case plan.RevokeColumn:
		if !f.ColumnPrivileges() {
			return Statement{}, fmt.Errorf("%s has no column privileges", f)
		}
		on, err := onTable(op.DatabaseRef, op.Table)
		if err != nil {
			return Statement{}, err
		}
		if err := CheckIdent(op.Column); err != nil {
			return Statement{}, fmt.Errorf("column: %w", err)
		}
		return revoke(c.Account, op.Privileges, on, op.Column)
	case plan.RevokeRoleGrant:
		return revokeRole(c.Account, op.Role, f)
	case plan.RevokeRoutine:
		return revokeRoutine(c.Account, op)
	case plan.RevokeProxy:
		if err := checkAccountRef(op.Proxied, f, true); err != nil {
			return Statement{}, fmt.Errorf("proxied account: %w", err)
		}
		return plain("REVOKE PROXY ON " + Account(op.Proxied) + " FROM " + Account(c.Account)), nil
	case plan.Reset:
		return reset(c.Account, op, f)
	case plan.ClearDefaults:
		clause := f.DefaultRolesClause()
		if clause == "" {
			return Statement{}, fmt.Errorf("%s has no default roles", f)
		}
		return plain("SET DEFAULT ROLE NONE " + clause + " " + Account(c.Account)), nil
	case plan.Drop:
		return plain("DROP USER " + Account(c.Account)), nil
	case plan.Lock:
		if !f.AccountLock() {
			return Statement{}, fmt.Errorf("%s cannot lock an account (no ACCOUNT LOCK)", f)
		}
		return plain("ALTER USER " + Account(c.Account) + " ACCOUNT LOCK"), nil
	case plan.Disconnect:
		return endSession(op)
	case nil:
		return Statement{}, errors.New("no operation")
	}
	return Statement{}, fmt.Errorf("unknown operation %T", c.Op)
}

// plain is a statement without a secret.
func plain(sql string) Statement { return Statement{SQL: sql, Redacted: sql} }

// authStatement renders CREATE USER or ALTER USER with the authentication
// and TLS requirement of a.
func authStatement(verb string, id mysqlstate.AccountID, a plan.Auth, f flavor.Flavor) (Statement, error) {
	head := verb + " " + Account(id) + " "
	switch a.Method {
	case "iam":
		if !f.IAMPlugin() {
			return Statement{}, fmt.Errorf("%s has no IAM authentication: AWSAuthenticationPlugin exists only on RDS and Aurora MySQL", f)
		}
		// IAM tokens travel as clear text: TLS is required whatever
		// RequireSSL says.
		return plain(head + iamClause + " REQUIRE SSL"), nil
	case "password":
		if a.Password == "" {
			return Statement{}, errors.New("empty password")
		}
		by := f.PasswordClause()
		// A server that does not enforce REQUIRE (the embedded one accepts
		// it in CREATE USER only) gets none.
		var tls string
		switch {
		case !f.EnforcesRequireSSL():
		case a.RequireSSL:
			tls = " REQUIRE SSL"
		default:
			tls = " REQUIRE NONE"
		}
		return Statement{
			SQL:      head + by + Literal(a.Password) + tls,
			Redacted: head + by + redactedLiteral + tls,
		}, nil
	}
	return Statement{}, fmt.Errorf("unknown authentication method %q", a.Method)
}

// grant renders GRANT on one database, never with GRANT OPTION or a
// global privilege.
func grant(id mysqlstate.AccountID, op plan.GrantDatabase, f flavor.Flavor) (Statement, error) {
	on, err := onDatabase(op.DatabaseRef)
	if err != nil {
		return Statement{}, err
	}
	privs, err := privilegeList(op.Privileges)
	if err != nil {
		return Statement{}, err
	}
	for _, p := range privs {
		if !f.Supports(p) || p == flavor.AllPrivileges {
			return Statement{}, fmt.Errorf("privilege %s is not a database privilege on %s", p, f)
		}
	}
	list := strings.Join(privs, ", ")
	if f.IsAll(privs) {
		list = flavor.AllPrivileges
	}
	return plain("GRANT " + list + " ON " + on + " TO " + Account(id)), nil
}

// onDatabase is the ON clause of one database: `pattern`.*.
func onDatabase(ref plan.DatabaseRef) (string, error) {
	if ref.Pattern == "" {
		return "", errors.New("no database: dbusers never grants on *.*, and revokes a global privilege only as such")
	}
	if err := CheckIdent(ref.Pattern); err != nil {
		return "", fmt.Errorf("database pattern: %w", err)
	}
	return Ident(ref.Pattern) + ".*", nil
}

// onTable is the ON clause of one table: `db`.`table`.
func onTable(ref plan.DatabaseRef, table string) (string, error) {
	if ref.Pattern == "" {
		return "", errors.New("revoke on a table or column without a database")
	}
	if err := CheckIdent(ref.Pattern); err != nil {
		return "", fmt.Errorf("database: %w", err)
	}
	if table == "" {
		return "", errors.New("revoke on a column without a table")
	}
	if err := CheckIdent(table); err != nil {
		return "", fmt.Errorf("table: %w", err)
	}
	return Ident(ref.Pattern) + "." + Ident(table), nil
}

// revoke renders REVOKE of an explicit privilege list ON on, of one column
// when column is set; never REVOKE ALL, which RDS refuses on *.*.
func revoke(id mysqlstate.AccountID, privileges []string, on, column string) (Statement, error) {
	privs, err := privilegeList(privileges)
	if err != nil {
		return Statement{}, err
	}
	list := strings.Join(privs, ", ")
	if column != "" {
		cols := make([]string, len(privs))
		for i, p := range privs {
			if !slices.Contains(columnPrivileges, p) {
				return Statement{}, fmt.Errorf("privilege %s does not exist on a column", p)
			}
			cols[i] = p + " (" + Ident(column) + ")"
		}
		list = strings.Join(cols, ", ")
	}
	return plain("REVOKE " + list + " ON " + on + " FROM " + Account(id)), nil
}

// revokeRole renders the revoke of a granted role. MySQL 8 names roles
// like accounts; MariaDB names them like identifiers and has no host.
func revokeRole(id, role mysqlstate.AccountID, f flavor.Flavor) (Statement, error) {
	if role.User == "" {
		return Statement{}, errors.New("revoke_role without a role")
	}
	var name string
	switch f.Roles() {
	case flavor.NoRoles:
		return Statement{}, fmt.Errorf("%s has no roles", f)
	case flavor.RolesAsNames:
		if err := CheckAccount(role, f); err != nil {
			return Statement{}, fmt.Errorf("role: %w", err)
		}
		name = Ident(role.User)
	default:
		if err := CheckAccount(role, f); err != nil {
			return Statement{}, fmt.Errorf("role: %w", err)
		}
		name = Account(role)
	}
	return plain("REVOKE " + name + " FROM " + Account(id)), nil
}

// revokeRoutine renders REVOKE of privileges on one stored routine.
func revokeRoutine(id mysqlstate.AccountID, op plan.RevokeRoutine) (Statement, error) {
	if op.Type != "PROCEDURE" && op.Type != "FUNCTION" {
		return Statement{}, fmt.Errorf("routine type %q: want PROCEDURE or FUNCTION", op.Type)
	}
	if err := CheckIdent(op.Database); err != nil {
		return Statement{}, fmt.Errorf("routine database: %w", err)
	}
	if err := CheckIdent(op.Routine); err != nil {
		return Statement{}, fmt.Errorf("routine: %w", err)
	}
	privs, err := privilegeList(op.Privileges)
	if err != nil {
		return Statement{}, err
	}
	for _, p := range privs {
		if !slices.Contains(routinePrivileges, p) {
			return Statement{}, fmt.Errorf("privilege %s does not exist on a routine", p)
		}
	}
	return plain("REVOKE " + strings.Join(privs, ", ") + " ON " + op.Type + " " + Ident(op.Database) + "." + Ident(op.Routine) +
		" FROM " + Account(id)), nil
}

// routinePrivileges are the privileges that exist on a stored routine.
var routinePrivileges = []string{"ALTER ROUTINE", "EXECUTE", "GRANT OPTION"}

// reset renders the ALTER USER that puts resource limits and the password
// expiry policy back to the server's defaults. MySQL and MariaDB both take
// WITH before the password option.
func reset(id mysqlstate.AccountID, op plan.Reset, f flavor.Flavor) (Statement, error) {
	if !f.AccountOptions() {
		return Statement{}, fmt.Errorf("%s cannot reset account options", f)
	}
	if !op.Limits && !op.PasswordLifetime {
		return Statement{}, errors.New("nothing to reset")
	}
	sql := "ALTER USER " + Account(id)
	if op.Limits {
		sql += " WITH MAX_QUERIES_PER_HOUR 0 MAX_UPDATES_PER_HOUR 0 MAX_CONNECTIONS_PER_HOUR 0 MAX_USER_CONNECTIONS 0"
	}
	if op.PasswordLifetime {
		sql += " PASSWORD EXPIRE DEFAULT"
	}
	return plain(sql), nil
}

// endSession renders the statement that ends one session: KILL, or the
// procedure RDS and Aurora give an admin without CONNECTION_ADMIN. The id
// is a number, so it is written as one.
func endSession(op plan.Disconnect) (Statement, error) {
	if op.Session.ID <= 0 {
		return Statement{}, fmt.Errorf("session id %d", op.Session.ID)
	}
	id := strconv.FormatInt(op.Session.ID, 10)
	switch op.Via {
	case plan.KillConnection:
		return plain("KILL CONNECTION " + id), nil
	case plan.RDSKill:
		return plain("CALL mysql.rds_kill(" + id + ")"), nil
	}
	return Statement{}, fmt.Errorf("unknown way to end a session %q", op.Via)
}

// privilegeList checks every privilege name and returns them sorted and
// without duplicates, so that the same change always renders the same text.
func privilegeList(privileges []string) ([]string, error) {
	if len(privileges) == 0 {
		return nil, errors.New("no privileges given")
	}
	for _, p := range privileges {
		if err := CheckPrivilege(p); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(privileges)
	slices.Sort(out)
	return slices.Compact(out), nil
}
