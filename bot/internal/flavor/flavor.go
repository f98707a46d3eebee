// Package flavor knows how the MySQL-compatible servers that dbusers manages
// differ: which declared engines map to which server family, which
// privileges exist at database level, whether IAM authentication exists, and
// how database names in GRANT are matched. Everything that varies by server
// lives here so that planning and rendering can stay flavor-agnostic.
package flavor

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Flavor is a family of servers that share grant semantics and SQL syntax.
type Flavor string

// The flavors dbusers can introspect and render for.
const (
	MySQL57  Flavor = "mysql-5.7"       // MySQL 5.7 and Aurora MySQL 2
	MySQL80  Flavor = "mysql-8.0"       // MySQL 8.0, RDS MySQL 8.0 and Aurora MySQL 3
	MariaDB  Flavor = "mariadb"         // MariaDB 10.x / 11.x
	Embedded Flavor = "go-mysql-server" // the embedded server used by the demo and tests
)

// Engine describes one value of a cluster file's "engine" field.
type Engine struct {
	Name   string
	Flavor Flavor
	// IAM is true when the engine accepts AWSAuthenticationPlugin (RDS and
	// Aurora). Self-managed servers do not have the plugin.
	IAM bool
	// Aurora is true when the server reports @@aurora_version.
	Aurora bool
}

// EmbeddedEngine is the engine name the demo and tests give the embedded
// server. It is not accepted in cluster files.
const EmbeddedEngine = "go-mysql-server"

var engines = []Engine{
	{Name: "aurora-mysql-2", Flavor: MySQL57, IAM: true, Aurora: true},
	{Name: "aurora-mysql-3", Flavor: MySQL80, IAM: true, Aurora: true},
	{Name: "rds-mysql-8.0", Flavor: MySQL80, IAM: true},
	{Name: "rds-mysql-5.7", Flavor: MySQL57, IAM: true},
	{Name: "mysql-8.0", Flavor: MySQL80},
	{Name: "mysql-5.7", Flavor: MySQL57},
	{Name: "mariadb-10.11", Flavor: MariaDB},
	{Name: EmbeddedEngine, Flavor: Embedded},
}

// Engines lists the engine names a cluster file may declare, in a stable order.
func Engines() []string {
	var names []string
	for _, e := range engines {
		if e.Name != EmbeddedEngine {
			names = append(names, e.Name)
		}
	}
	return names
}

// LookupEngine returns the engine with that name.
func LookupEngine(name string) (Engine, bool) {
	for _, e := range engines {
		if e.Name == name {
			return e, true
		}
	}
	return Engine{}, false
}

// AllPrivileges is the spelling a role template uses for "every database
// privilege". It is expanded per flavor and never granted on *.*.
const AllPrivileges = "ALL PRIVILEGES"

// databasePrivileges are the privileges that exist at database level, per
// flavor. They are exactly what "GRANT ALL PRIVILEGES ON db.*" stores, so a
// trusted_admin grant compares equal to its expansion. GRANT OPTION is left
// out on purpose: dbusers never hands it out.
var databasePrivileges = map[Flavor][]string{
	MySQL57: {"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
		"DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES", "SELECT",
		"SHOW VIEW", "TRIGGER", "UPDATE"},
	MySQL80: {"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
		"DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES", "SELECT",
		"SHOW VIEW", "TRIGGER", "UPDATE"},
	MariaDB: {"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
		"DELETE", "DELETE HISTORY", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES",
		"SELECT", "SHOW VIEW", "TRIGGER", "UPDATE"},
	Embedded: {"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
		"DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES", "SELECT",
		"SHOW VIEW", "TRIGGER", "UPDATE"},
}

// DatabasePrivileges returns the sorted database-level privileges of f.
func (f Flavor) DatabasePrivileges() []string {
	return slices.Clone(databasePrivileges[f])
}

// KnownDatabasePrivilege reports whether p names a database-level privilege on
// at least one flavor (or is ALL PRIVILEGES). Role templates are checked with
// it before any cluster is known.
func KnownDatabasePrivilege(p string) bool {
	if p == AllPrivileges {
		return true
	}
	for _, list := range databasePrivileges {
		if slices.Contains(list, p) {
			return true
		}
	}
	return false
}

// Supports reports whether f has database-level privilege p.
func (f Flavor) Supports(p string) bool {
	return p == AllPrivileges || slices.Contains(databasePrivileges[f], p)
}

// Expand turns a role's privilege list into the sorted set f stores,
// replacing ALL PRIVILEGES with its expansion. It fails on a privilege f does
// not have, so that a grant can never silently differ from its declaration.
func (f Flavor) Expand(privileges []string) ([]string, error) {
	set := map[string]bool{}
	for _, p := range privileges {
		p = Canonical(p)
		switch {
		case p == AllPrivileges:
			for _, q := range databasePrivileges[f] {
				set[q] = true
			}
		case f.Supports(p):
			set[p] = true
		default:
			return nil, fmt.Errorf("privilege %s does not exist at database level on %s", p, f)
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// IsAll reports whether the sorted set privs is every database privilege of f,
// which renders as ALL PRIVILEGES.
func (f Flavor) IsAll(privs []string) bool {
	return slices.Equal(privs, databasePrivileges[f])
}

// Canonical upper-cases a privilege name and collapses its spaces, so that
// "create  temporary tables" and "CREATE TEMPORARY TABLES" are one privilege.
func Canonical(p string) string {
	// ASCII only: strings.ToUpper maps look-alikes such as "ſ" (long s)
	// and "ı" (dotless i) onto S and I, which would let "ſelect" pass
	// for SELECT. A name with any other rune stays as written and is
	// then refused as unknown.
	for _, r := range p {
		if r > unicode.MaxASCII {
			return p
		}
	}
	p = strings.Join(strings.Fields(strings.ToUpper(p)), " ")
	if p == "ALL" {
		return AllPrivileges
	}
	return p
}

// WildcardDatabaseNames reports whether the server treats _ and % in the
// database name of a GRANT as wildcards, so that dbusers must escape them to
// grant on exactly one database. MySQL 8.0 stops doing so when
// partial_revokes is on (always on Aurora MySQL 3); the embedded server never
// does.
func (f Flavor) WildcardDatabaseNames(partialRevokes bool) bool {
	switch f {
	case MySQL57, MariaDB:
		return true
	case MySQL80:
		return !partialRevokes
	}
	return false
}

// AccountNameLimit is the longest account name the flavor stores. dbusers
// validates against the smallest (32, MySQL 5.7 and Aurora 2) so a user can
// move between clusters.
func (f Flavor) AccountNameLimit() int {
	switch f {
	case MySQL57:
		return 32
	case MariaDB:
		return 128
	}
	return 32
}

// AccountNameInBytes reports whether the flavor counts AccountNameLimit in
// bytes, not characters: go-mysql-server refuses a 32-character name of 33
// bytes (fuzzing found it), where MySQL and MariaDB count characters.
func (f Flavor) AccountNameInBytes() bool { return f == Embedded }

// DatabasePattern returns the database name as GRANT must see it to mean
// exactly that database. Where the server treats _ and % in GRANT database
// names as wildcards (wildcard true, see WildcardDatabaseNames), it escapes
// them with a backslash, and escapes a backslash as \\ because the server
// reads the backslash as the pattern's escape character (MariaDB stores the
// database `a\b` as `a\\b`). Otherwise the name is returned unchanged. It
// works on bytes, so that any input, even invalid UTF-8, survives exactly.
func DatabasePattern(name string, wildcard bool) string {
	if !wildcard {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '\\' || c == '%' || c == '_' {
			b.WriteByte('\\')
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// UnescapeDatabasePattern is the inverse of DatabasePattern with wildcard
// true: it reads a database pattern as a wildcard server stores it (in
// mysql.db) and returns the database name it means. exact is false when the
// pattern contains an unescaped _ or %, that is when it matches more than
// one name (someone granted it by hand); name is then only good for
// messages. A trailing lone backslash is a literal backslash, as the server
// reads it.
func UnescapeDatabasePattern(pattern string) (name string, exact bool) {
	var b strings.Builder
	exact = true
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern):
			i++
			b.WriteByte(pattern[i])
		case c == '_' || c == '%':
			exact = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), exact
}
