// Package flavor knows how the MySQL-compatible servers that dbusers manages
// differ: which declared engines map to which server family, which
// privileges exist at database level, which authentication and TLS clauses
// a server understands, how it models roles, which grant tables it has and
// how database names in GRANT are matched. Everything that varies by server
// lives here, behind the methods of Flavor and Engine, so that reading,
// planning and rendering ask a question ("does this server store column
// privileges?") instead of comparing names.
//
// Each flavor is described by one spec value in a file of its own
// (mysql57.go, mysql80.go, mysql84.go, mariadb.go, embedded.go) together
// with the engines that run it. Supporting a new server series is that one
// file plus its line in specs below (and, for editors, the engine names in
// schema/cluster.schema.json, which a test keeps equal to Engines()).
package flavor

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Flavor is a family of servers that share grant semantics and SQL syntax.
// Its value is the flavor's stable name, which reports and test names show.
type Flavor string

// RoleModel is how a flavor stores roles granted to an account.
type RoleModel int

// The role models.
const (
	// NoRoles: the server has no roles (MySQL 5.7).
	NoRoles RoleModel = iota
	// RolesAsAccounts: a role is a locked account with a host, granted with
	// REVOKE 'role'@'host' (MySQL 8, the embedded server).
	RolesAsAccounts
	// RolesAsNames: a role is a bare name without a host (MariaDB).
	RolesAsNames
)

// spec is everything dbusers knows about one flavor. Each flavor's file
// defines one; nothing outside this package sees it.
type spec struct {
	name Flavor
	// product and series name the server for people ("MySQL", "8.0").
	product, series string
	// detect reports whether VERSION() and @@version_comment are this
	// flavor's. Specs are asked in the order of specs.
	detect func(version, comment string) bool
	// databasePrivileges are exactly what "GRANT ALL PRIVILEGES ON db.*"
	// stores, sorted, so a trusted_admin grant compares equal to its
	// expansion. GRANT OPTION is left out: dbusers never hands it out.
	databasePrivileges []string
	// iamPlugin: the server understands IDENTIFIED WITH
	// AWSAuthenticationPlugin (RDS and Aurora MySQL builds).
	iamPlugin bool
	// passwordPlugin is the plugin dbusers creates password accounts with,
	// and passwordClause the clause that sets one ("IDENTIFIED ... BY ").
	passwordPlugin, passwordClause string
	// acceptsCachingSHA2: an account already holding the declared password
	// under caching_sha2_password is as good as one under passwordPlugin.
	acceptsCachingSHA2 bool
	// enforcesRequireSSL: REQUIRE SSL is stored and enforced, so dbusers
	// sets and compares it (the embedded server accepts the clause in
	// CREATE USER only and enforces it nowhere).
	enforcesRequireSSL bool
	roles              RoleModel
	columnPrivileges   bool
	// accountLock: ALTER USER ... ACCOUNT LOCK exists.
	accountLock bool
	// accountOptions: ALTER USER ... PASSWORD EXPIRE DEFAULT exists, and
	// resource limits can be reset (WITH MAX_..._PER_HOUR 0).
	accountOptions bool
	// defaultRoles: how SET DEFAULT ROLE NONE names the account ("TO" on
	// MySQL, "FOR" on MariaDB); empty where default roles do not exist.
	defaultRoles string
	// sessionAdmin is the narrowest global privilege that lets a login
	// end another account's session ("" where only SUPER does).
	sessionAdmin string
	// routineReader is the global privilege that shows every routine's
	// definer in information_schema (MySQL 8's SHOW_ROUTINE), or
	// routineTable the mysql table whose SELECT does (mysql.proc).
	routineReader, routineTable string
	// nameLimit is the longest user name, in characters (bytes when
	// nameInBytes); hostLimit the longest host name.
	nameLimit   int
	nameInBytes bool
	hostLimit   int
	// grantTables are the tables of the mysql schema that hold accounts
	// and grants on this flavor. mysqlstate reads each one in bulk and
	// adminsql grants SELECT on each, so the two cannot drift apart.
	grantTables []string
	// wildcardDatabaseNames reports whether GRANT reads _ and % in a
	// database name as wildcards, given partial_revokes.
	wildcardDatabaseNames func(partialRevokes bool) bool
	// engines are the cluster-file engine names that run this flavor.
	engines []Engine
}

// specs lists every flavor; Detect asks them in this order.
var specs = []*spec{&mariadb, &embedded, &mysql57, &mysql80, &mysql84}

func (f Flavor) spec() *spec {
	for _, s := range specs {
		if s.name == f {
			return s
		}
	}
	return &unknown
}

// unknown answers for a flavor name no spec has: nothing is supported, so
// rendering and planning refuse rather than guess.
var unknown = spec{
	product: "unknown server", nameLimit: 32, hostLimit: 60,
	wildcardDatabaseNames: func(bool) bool { return false },
}

// All returns every known flavor, in a stable order.
func All() []Flavor {
	out := make([]Flavor, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	slices.Sort(out)
	return out
}

// Known reports whether f is a flavor dbusers can read and render for.
func (f Flavor) Known() bool { return f.spec() != &unknown }

// Product names the server software for people: "MySQL", "MariaDB".
func (f Flavor) Product() string { return f.spec().product }

// Server names a server of this flavor for people, from what it reports:
// "MySQL 8.0.36", "MariaDB 10.11.19-MariaDB".
func (f Flavor) Server(version, comment string) string {
	if f == Embedded {
		return fmt.Sprintf("the embedded go-mysql-server (version %s, version_comment %s)", version, comment)
	}
	return f.Product() + " " + version
}

// Detect returns the flavor of a server from its VERSION() and
// @@version_comment.
func Detect(version, comment string) (Flavor, error) {
	for _, s := range specs {
		if s.detect(version, comment) {
			return s.name, nil
		}
	}
	var names []string
	for _, s := range specs {
		if s.series != "" {
			names = append(names, s.product+" "+s.series)
		}
	}
	return "", fmt.Errorf("unsupported server version %q (version_comment %q): dbusers supports %s and the embedded go-mysql-server",
		version, comment, strings.Join(names, ", "))
}

// Engine describes one value of a cluster file's "engine" field.
type Engine struct {
	Name   string
	Flavor Flavor
	// Series is the release series the engine pins ("5.7", "8.0",
	// "10.11"); the live server must report a version in it. Empty for
	// the embedded server.
	Series string
	// IAM is true when the engine accepts AWSAuthenticationPlugin (RDS and
	// Aurora). Self-managed servers do not have the plugin.
	IAM bool
	// Aurora is true when the server reports @@aurora_version.
	Aurora bool
	// PartialRevokes is true when the engine always runs with MySQL 8's
	// partial_revokes on (Aurora MySQL 3), which makes database names in
	// GRANT literal.
	PartialRevokes bool
	// RDS is true on RDS and Aurora, where the admin login has no SUPER or
	// CONNECTION_ADMIN and ends another account's session with CALL
	// mysql.rds_kill(id) rather than KILL.
	RDS bool
}

// EmbeddedEngine is the engine name the demo and tests give the embedded
// server. It is not accepted in cluster files.
const EmbeddedEngine = "go-mysql-server"

// Engines lists the engine names a cluster file may declare, in a stable order.
func Engines() []string {
	var names []string
	for _, s := range specs {
		for _, e := range s.engines {
			if e.Name != EmbeddedEngine {
				names = append(names, e.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// LookupEngine returns the engine with that name.
func LookupEngine(name string) (Engine, bool) {
	for _, s := range specs {
		for _, e := range s.engines {
			if e.Name == name {
				return e, true
			}
		}
	}
	return Engine{}, false
}

// Describe says in words what the engine promises, e.g. "MySQL 8.0 on
// Aurora".
func (e Engine) Describe() string {
	if e.Flavor == Embedded {
		return "the embedded go-mysql-server"
	}
	s := e.Flavor.Product()
	if e.Series != "" {
		s += " " + e.Series
	}
	switch {
	case e.Aurora:
		s += " on Aurora"
	case e.IAM:
		s += " on RDS"
	}
	return s
}

// AllPrivileges is the spelling a role template uses for "every database
// privilege". It is expanded per flavor and never granted on *.*.
const AllPrivileges = "ALL PRIVILEGES"

// DatabasePrivileges returns the sorted database-level privileges of f.
func (f Flavor) DatabasePrivileges() []string {
	return slices.Clone(f.spec().databasePrivileges)
}

// KnownDatabasePrivilege reports whether p names a database-level privilege on
// at least one flavor (or is ALL PRIVILEGES). Role templates are checked with
// it before any cluster is known.
func KnownDatabasePrivilege(p string) bool {
	if p == AllPrivileges {
		return true
	}
	for _, s := range specs {
		if slices.Contains(s.databasePrivileges, p) {
			return true
		}
	}
	return false
}

// Supports reports whether f has database-level privilege p.
func (f Flavor) Supports(p string) bool {
	return p == AllPrivileges || slices.Contains(f.spec().databasePrivileges, p)
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
			for _, q := range f.spec().databasePrivileges {
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
	return f.Known() && slices.Equal(privs, f.spec().databasePrivileges)
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

// IAMPlugin reports whether f understands IDENTIFIED WITH
// AWSAuthenticationPlugin, which exists only on RDS and Aurora MySQL builds.
func (f Flavor) IAMPlugin() bool { return f.spec().iamPlugin }

// PasswordPlugin is the authentication plugin dbusers creates and rotates
// password accounts with on f.
func (f Flavor) PasswordPlugin() string { return f.spec().passwordPlugin }

// PasswordClause is the clause, up to the password literal, that sets a
// password with PasswordPlugin: "IDENTIFIED WITH mysql_native_password BY "
// on MySQL, "IDENTIFIED BY " where that already means the plugin (MariaDB
// rejects WITH ... BY).
func (f Flavor) PasswordClause() string { return f.spec().passwordClause }

// AcceptsCachingSHA2 reports whether an account that holds the declared
// password under caching_sha2_password (MySQL 8's default) needs no change.
func (f Flavor) AcceptsCachingSHA2() bool { return f.spec().acceptsCachingSHA2 }

// EnforcesRequireSSL reports whether f stores and enforces REQUIRE SSL, so
// that dbusers sets it and compares it with what it reads.
func (f Flavor) EnforcesRequireSSL() bool { return f.spec().enforcesRequireSSL }

// Roles returns how f stores roles.
func (f Flavor) Roles() RoleModel { return f.spec().roles }

// AccountLock reports whether f has ALTER USER ... ACCOUNT LOCK, which
// dbusers uses to keep an account that still owns stored objects from
// logging in instead of dropping it.
func (f Flavor) AccountLock() bool { return f.spec().accountLock }

// AccountOptions reports whether f can reset an account's password expiry
// policy (PASSWORD EXPIRE DEFAULT) and resource limits (WITH
// MAX_..._PER_HOUR 0) with ALTER USER.
func (f Flavor) AccountOptions() bool { return f.spec().accountOptions }

// SessionAdminPrivilege is the narrowest global privilege with which a
// login may end another account's session (KILL): CONNECTION_ADMIN on
// MySQL 8, CONNECTION ADMIN on MariaDB; "" where only SUPER does (MySQL
// 5.7).
func (f Flavor) SessionAdminPrivilege() string { return f.spec().sessionAdmin }

// RoutineReader says what lets a login see every stored routine's definer
// in information_schema.ROUTINES: a global privilege (MySQL 8.0.20+'s
// SHOW_ROUTINE), or SELECT on a table of the mysql schema (proc).
func (f Flavor) RoutineReader() (privilege, mysqlTable string) {
	return f.spec().routineReader, f.spec().routineTable
}

// DefaultRolesClause is the word SET DEFAULT ROLE NONE puts before the
// account: "TO" on MySQL 8, "FOR" on MariaDB; "" where default roles do
// not exist.
func (f Flavor) DefaultRolesClause() string { return f.spec().defaultRoles }

// ColumnPrivileges reports whether f has column-level grants.
func (f Flavor) ColumnPrivileges() bool { return f.spec().columnPrivileges }

// GrantTables returns the tables of the mysql schema that hold accounts and
// grants on f, sorted. Reading the live state reads exactly these, and the
// bot's management account is granted SELECT on exactly these.
func (f Flavor) GrantTables() []string { return slices.Clone(f.spec().grantTables) }

// WildcardDatabaseNames reports whether the server treats _ and % in the
// database name of a GRANT as wildcards, so that dbusers must escape them to
// grant on exactly one database. MySQL 8 stops doing so when
// partial_revokes is on (always on Aurora MySQL 3); the embedded server never
// does.
func (f Flavor) WildcardDatabaseNames(partialRevokes bool) bool {
	return f.spec().wildcardDatabaseNames(partialRevokes)
}

// AccountNameLimit is the longest account name the flavor stores. dbusers
// validates against the smallest (32, MySQL 5.7 and Aurora 2) so a user can
// move between clusters.
func (f Flavor) AccountNameLimit() int { return f.spec().nameLimit }

// AccountNameInBytes reports whether the flavor counts AccountNameLimit in
// bytes, not characters: go-mysql-server refuses a 32-character name of 33
// bytes (fuzzing found it), where MySQL and MariaDB count characters.
func (f Flavor) AccountNameInBytes() bool { return f.spec().nameInBytes }

// HostNameLimit is the longest host part of an account the flavor stores.
func (f Flavor) HostNameLimit() int { return f.spec().hostLimit }

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

// Shared privilege lists: the flavors differ in few names.
var (
	mysqlDatabasePrivileges = []string{"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
		"DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES", "SELECT",
		"SHOW VIEW", "TRIGGER", "UPDATE"}
	// mysqlPasswordClause sets mysql_native_password explicitly: MySQL 8's
	// default plugin is caching_sha2_password.
	mysqlPasswordClause = "IDENTIFIED WITH mysql_native_password BY "
	nativePassword      = "mysql_native_password"
)

// alwaysWildcard is how MySQL 5.7 and MariaDB read GRANT database names.
func alwaysWildcard(bool) bool { return true }
