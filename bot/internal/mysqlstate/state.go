// Package mysqlstate reads the live account and privilege state of one
// MySQL-compatible server in a constant number of queries, normalized so that
// MySQL 5.7, MySQL 8.0 (Aurora 3), MariaDB and the embedded server compare
// alike. It returns plain values; planning happens elsewhere.
package mysqlstate

import (
	"fmt"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// AccountID names one MySQL account: a user name and a host pattern.
type AccountID struct {
	User string `json:"user"`
	Host string `json:"host"`
}

// String renders the account the way people read it: 'user'@'host'. It is
// for messages only; SQL is built by the render package.
func (a AccountID) String() string {
	return fmt.Sprintf("'%s'@'%s'", a.User, a.Host)
}

// Server is everything dbusers needs to know about one server.
type Server struct {
	Flavor         flavor.Flavor
	Version        string // VERSION()
	VersionComment string // @@version_comment
	AuroraVersion  string // @@aurora_version, empty off Aurora
	// PartialRevokes is MySQL 8.0's partial_revokes; when on, database names
	// in GRANT are literal rather than LIKE patterns.
	PartialRevokes bool
	// CurrentUser is the account this session authenticated as; it is
	// protected whatever its name.
	CurrentUser AccountID
	// ReadOnly is true when the server refuses writes (read_only,
	// super_read_only or innodb_read_only: a replica, or an Aurora reader
	// after a failover).
	ReadOnly bool
	// Accounts holds every account whose user name starts with the managed
	// prefix (an exact, case-sensitive prefix match), keyed by account.
	// On MySQL 8.0 and the embedded server a role is an account (locked,
	// without password) and is included; a MariaDB role is not an account
	// and is left out.
	Accounts map[AccountID]*Account
	// Sessions are the open sessions of managed user names, other than
	// this one, sorted by ID; read by ReadSessions when a plan needs them
	// (SessionsRead).
	Sessions     []Session
	SessionsRead bool
	// Objects are the stored objects whose definer is a managed account,
	// sorted; read by ReadObjects when a plan would drop an account
	// (ObjectsRead).
	Objects     []StoredObject
	ObjectsRead bool
}

// WildcardDatabaseNames reports whether GRANT treats _ and % in database
// names as wildcards on this server.
func (s *Server) WildcardDatabaseNames() bool {
	return s.Flavor.WildcardDatabaseNames(s.PartialRevokes)
}

// Account is the live state of one account.
type Account struct {
	ID     AccountID
	Plugin string // authentication plugin, e.g. mysql_native_password
	// AuthString is the stored credential (a hash for password plugins, "RDS"
	// for IAM). It is compared, never printed.
	AuthString string
	Locked     bool
	// RequireSSL is true when ssl_type is set (REQUIRE SSL or stronger).
	// The embedded server accepts REQUIRE SSL without storing it, so it
	// always reads false there.
	RequireSSL bool
	// Global holds sorted global (*.*) privileges, without USAGE.
	Global []string
	// Databases maps a database name pattern exactly as the server stores
	// it (escaped where GRANT uses wildcards) to its sorted privileges.
	Databases map[string][]string
	// Tables holds table- and column-level grants, sorted.
	Tables []TableGrant
	// Roles holds the roles granted to the account, sorted. A MariaDB role
	// has Host "".
	Roles []AccountID
	// DefaultRoles are the roles activated at login (SET DEFAULT ROLE),
	// sorted.
	DefaultRoles []AccountID
	// Routines holds grants on single stored procedures and functions.
	Routines []RoutineGrant
	// Proxies holds the accounts this one may proxy as (GRANT PROXY).
	Proxies []AccountID
	// PasswordExpired is true when PASSWORD EXPIRE was set (MariaDB: the
	// password's last change is 0): the next login may only change it.
	PasswordExpired bool
	// PasswordLifetime is the account's own password lifetime as stored
	// ("" for the server default, "0" for never, else days).
	PasswordLifetime string
	// Limits are the account's resource limits; zero means none.
	Limits Limits
}

// Limits are an account's resource limits (WITH MAX_..._PER_HOUR,
// MAX_USER_CONNECTIONS).
type Limits struct {
	Queries, Updates, Connections, UserConnections int64
}

// RoutineGrant is a privilege set on one stored routine.
type RoutineGrant struct {
	Database   string // the routine's database, as stored (never a pattern)
	Name       string
	Type       string   // PROCEDURE or FUNCTION
	Privileges []string // sorted
}

// Session is one open connection of a managed account, as the processlist
// shows it. The processlist names the user, not the account: MySQL does not
// say which of several accounts of one user name (hosts) a session logged
// in as.
type Session struct {
	ID   int64  `json:"id"`
	User string `json:"user"`
	// Client is where the session comes from (host:port), as the server
	// reports it.
	Client string `json:"client,omitempty"`
	// DB is the session's current database, empty when none.
	DB string `json:"db,omitempty"`
}

// StoredObject is a view, routine, trigger or event and the account it
// runs as (DEFINER).
type StoredObject struct {
	Kind     string    `json:"kind"` // view, procedure, function, trigger, event
	Database string    `json:"database"`
	Name     string    `json:"name"`
	Definer  AccountID `json:"definer"`
}

// String names the object as people read it: orders.v_refunds (view).
func (o StoredObject) String() string {
	return o.Database + "." + o.Name + " (" + o.Kind + ")"
}

// TableGrant is a privilege set on one table, or on columns of it.
type TableGrant struct {
	Database   string // as stored
	Table      string
	Column     string   // empty for a table-level grant
	Privileges []string // sorted
}
