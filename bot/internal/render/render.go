// Package render turns planned changes into the SQL statements that carry
// them out on one server flavor. It is the only place in dbusers where SQL
// text is built: names are quoted with Ident, data (user names, hosts,
// passwords, lock names) with Literal, privilege names are checked against an
// allow-list because they cannot be quoted, and every statement comes with a
// redacted form that is safe to log. Rendering is pure: values in, text out,
// no I/O.
package render

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// iamClause is how RDS and Aurora MySQL spell IAM authentication.
const iamClause = "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"

// Statements renders the statements that apply c on a server of flavor f, in
// the order they must run. It validates every name and privilege first and
// fails rather than render something the flavor cannot run or that would
// reach further than c says (a grant on *.*, REVOKE ALL, IAM where the
// plugin does not exist). Errors name the change but never hold a password.
func Statements(c plan.Change, f flavor.Flavor) ([]Statement, error) {
	st, err := statement(c, f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Action, c.Account, err)
	}
	return []Statement{st}, nil
}

func statement(c plan.Change, f flavor.Flavor) (Statement, error) {
	if !slices.Contains(flavors, f) {
		return Statement{}, fmt.Errorf("unknown server flavor %q", f)
	}
	if err := CheckAccount(c.Account, f); err != nil {
		return Statement{}, err
	}
	switch c.Action {
	case plan.CreateUser:
		return authStatement("CREATE USER", c, f)
	case plan.AlterAuth:
		return authStatement("ALTER USER", c, f)
	case plan.Grant:
		return grant(c, f)
	case plan.Revoke:
		return revoke(c, f)
	case plan.RevokeRole:
		return revokeRole(c, f)
	case plan.DropUser:
		return plain("DROP USER " + Account(c.Account)), nil
	}
	return Statement{}, fmt.Errorf("unknown action %q", c.Action)
}

// plain is a statement without a secret.
func plain(sql string) Statement { return Statement{SQL: sql, Redacted: sql} }

// authStatement renders CREATE USER or ALTER USER with the authentication
// and TLS requirement of c.Auth.
func authStatement(verb string, c plan.Change, f flavor.Flavor) (Statement, error) {
	a := c.Auth
	if a == nil {
		return Statement{}, errors.New("no authentication given")
	}
	head := verb + " " + Account(c.Account) + " "
	switch a.Method {
	case "iam":
		if f != flavor.MySQL57 && f != flavor.MySQL80 {
			return Statement{}, fmt.Errorf("%s has no IAM authentication: AWSAuthenticationPlugin exists only on RDS and Aurora MySQL", f)
		}
		// IAM tokens travel as clear text: TLS is required whatever
		// RequireSSL says.
		return plain(head + iamClause + " REQUIRE SSL"), nil
	case "password":
		if a.Password == "" {
			return Statement{}, errors.New("empty password")
		}
		by := "IDENTIFIED BY "
		if f == flavor.MySQL57 || f == flavor.MySQL80 {
			// MariaDB 10.11 rejects WITH ... BY; its IDENTIFIED BY already
			// means mysql_native_password, as on the embedded server.
			by = "IDENTIFIED WITH mysql_native_password BY "
		}
		// The embedded server accepts REQUIRE in CREATE USER only, and
		// enforces it in neither: leave it out there.
		var tls string
		switch {
		case f == flavor.Embedded:
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

// grant renders GRANT on one database, never on *.* and never with GRANT
// OPTION or a global privilege.
func grant(c plan.Change, f flavor.Flavor) (Statement, error) {
	if c.Pattern == "" {
		return Statement{}, errors.New("grant without a database: dbusers never grants on *.*")
	}
	if c.Table != "" || c.Column != "" {
		return Statement{}, errors.New("grant on a table or column: dbusers grants per database only")
	}
	if err := CheckIdent(c.Pattern); err != nil {
		return Statement{}, fmt.Errorf("database pattern: %w", err)
	}
	privs, err := privilegeList(c.Privileges)
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
	return plain("GRANT " + list + " ON " + Ident(c.Pattern) + ".* TO " + Account(c.Account)), nil
}

// revoke renders REVOKE of an explicit privilege list on *.*, a database, a
// table or a column; never REVOKE ALL, which RDS refuses on *.*.
func revoke(c plan.Change, f flavor.Flavor) (Statement, error) {
	privs, err := privilegeList(c.Privileges)
	if err != nil {
		return Statement{}, err
	}
	var on string
	switch {
	case c.Pattern == "" && (c.Table != "" || c.Column != ""):
		return Statement{}, errors.New("revoke on a table or column without a database")
	case c.Table == "" && c.Column != "":
		return Statement{}, errors.New("revoke on a column without a table")
	case c.Pattern == "":
		on = "*.*"
	case c.Table == "":
		if err := CheckIdent(c.Pattern); err != nil {
			return Statement{}, fmt.Errorf("database pattern: %w", err)
		}
		on = Ident(c.Pattern) + ".*"
	default:
		if err := CheckIdent(c.Pattern); err != nil {
			return Statement{}, fmt.Errorf("database: %w", err)
		}
		if err := CheckIdent(c.Table); err != nil {
			return Statement{}, fmt.Errorf("table: %w", err)
		}
		on = Ident(c.Pattern) + "." + Ident(c.Table)
	}
	list := strings.Join(privs, ", ")
	if c.Column != "" {
		if f == flavor.Embedded {
			return Statement{}, fmt.Errorf("%s has no column privileges", f)
		}
		if err := CheckIdent(c.Column); err != nil {
			return Statement{}, fmt.Errorf("column: %w", err)
		}
		cols := make([]string, len(privs))
		for i, p := range privs {
			if !slices.Contains(columnPrivileges, p) {
				return Statement{}, fmt.Errorf("privilege %s does not exist on a column", p)
			}
			cols[i] = p + " (" + Ident(c.Column) + ")"
		}
		list = strings.Join(cols, ", ")
	}
	return plain("REVOKE " + list + " ON " + on + " FROM " + Account(c.Account)), nil
}

// revokeRole renders the revoke of a granted role. MySQL 8.0 names roles
// like accounts; MariaDB names them like identifiers and has no host.
func revokeRole(c plan.Change, f flavor.Flavor) (Statement, error) {
	if c.Role == nil {
		return Statement{}, errors.New("revoke_role without a role")
	}
	var role string
	switch f {
	case flavor.MySQL57:
		return Statement{}, fmt.Errorf("%s has no roles", f)
	case flavor.MariaDB:
		if err := CheckAccount(*c.Role, f); err != nil {
			return Statement{}, fmt.Errorf("role: %w", err)
		}
		role = Ident(c.Role.User)
	default:
		if err := CheckAccount(*c.Role, f); err != nil {
			return Statement{}, fmt.Errorf("role: %w", err)
		}
		role = Account(*c.Role)
	}
	return plain("REVOKE " + role + " FROM " + Account(c.Account)), nil
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
