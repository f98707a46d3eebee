// Package desired is the state the declarations ask for, expanded into what
// the reconciler compares with a server: per cluster, every managed account
// with its authentication and its privileges per database. Resolve builds it
// once from the declarations' meaning and a date, reporting every problem
// with the declaration and JSON path it belongs to; afterwards it is only
// read.
//
// The package knows nothing of files, JSON Schemas or AWS: package config
// reads the files and places Resolve's problems at file:line:col, and the
// Lambda adds where each cluster lives. Planning sees only what it needs to
// compare.
package desired

import (
	"regexp"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// Prefix is the company prefix that marks the accounts dbusers manages:
// every account named <prefix>_<something>, at any host, is dbusers'. It is
// the one place that knows how an account name is made from a user name.
type Prefix string

// separator joins the prefix and the user name.
const separator = "_"

// Account returns the account name of a declared user: <prefix>_<user>.
func (p Prefix) Account(user string) string { return string(p) + separator + user }

// Namespace is the start of every managed account name: <prefix>_.
func (p Prefix) Namespace() string { return string(p) + separator }

// Owns reports whether an account name is in the managed namespace. The
// match is exact and case-sensitive: acme_bob is ours, Acme_bob is not.
// An empty prefix owns nothing.
func (p Prefix) Owns(account string) bool {
	return p != "" && strings.HasPrefix(account, p.Namespace())
}

// User returns the part of a managed account name after the namespace, or
// "" for an account the prefix does not own. It is a name on the server,
// not necessarily a user any declaration could have.
func (p Prefix) User(account string) string {
	if !p.Owns(account) {
		return ""
	}
	return account[len(p.Namespace()):]
}

// DeclarableName reports whether name can be a user file's name, and so the
// part of a managed account's name after the prefix: lowercase letters,
// digits and _, starting with a letter. It ends up in account names, file
// names and log lines, so it is kept to a small alphabet; an account named
// otherwise (acme_Bob, acme_bоb with a Cyrillic о) is one no user file can
// own.
func DeclarableName(name string) bool { return declarable.MatchString(name) }

var declarable = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// SystemAccounts are accounts no run ever touches, whatever the prefix:
// the RDS and MySQL system accounts (and every mysql.* account).
// (mariadb.sys owns MariaDB's system views; mysql@localhost is MariaDB's
// socket-authenticated service account.)
var SystemAccounts = []string{"rdsadmin", "rds_superuser_role", "rdsrepladmin", "root", "mariadb.sys", "mysql"}

// SystemAccount reports whether an account name is one of the server's
// own, which dbusers never creates, changes or drops.
func SystemAccount(name string) bool {
	return slices.Contains(SystemAccounts, name) || strings.HasPrefix(name, "mysql.")
}

// SessionPolicy says which removals end the open sessions of the account
// that loses access (dbusers.json "end_sessions"; every one by default):
// MySQL and MariaDB keep a connected session's database privileges until
// it changes database, and DROP USER closes nothing.
type SessionPolicy struct {
	OnDrop, OnLock, OnRevoke bool
}

// DefaultSessionPolicy ends sessions on every removal.
var DefaultSessionPolicy = SessionPolicy{OnDrop: true, OnLock: true, OnRevoke: true}

// RemovalLimit caps how many managed accounts one run may drop on one
// cluster: at most max(Count, Fraction × managed accounts).
type RemovalLimit struct {
	Count    int
	Fraction float64
}

// Allowed returns how many of managed accounts a run may drop.
func (l RemovalLimit) Allowed(managed int) int {
	return max(l.Count, int(l.Fraction*float64(managed)))
}

// State is the whole fleet's desired state. Treat it as read-only: Resolve
// never shares its maps or slices with the declarations it came from.
type State struct {
	Prefix Prefix
	// Protected are account names never touched, beyond the built-in ones.
	Protected []string
	// RemovalLimit caps drops per cluster and run.
	RemovalLimit RemovalLimit
	// Sessions says which removals end open sessions.
	Sessions SessionPolicy
	// Users are the declared user names, fleet-wide: an account with the
	// prefix and one of these names is that user's, whether or not the
	// user holds anything on a given cluster.
	Users map[string]bool
	// Roles are the role templates' privileges after extends, with ALL
	// PRIVILEGES unexpanded; plans use them to name live privilege sets.
	Roles map[string][]string
	// Date is the day expiry was evaluated on (YYYY-MM-DD).
	Date string
	// Clusters are sorted by name.
	Clusters []Cluster
}

// Cluster is the desired state of one cluster: what planning needs to know
// about it, and nothing about where it is or how to log in.
type Cluster struct {
	Name        string
	Environment string
	Engine      flavor.Engine
	// TLS is the cluster file's tls mode ("verify-identity", "verify-ca",
	// "required" or "disabled").
	TLS string
	// Databases are the databases the cluster file manages, as declared.
	Databases []string
	// Accounts are sorted by Name.
	Accounts []Account
}

// Flavor is the server family the cluster's engine runs.
func (c *Cluster) Flavor() flavor.Flavor { return c.Engine.Flavor }

// TLSDisabled reports whether the bot reaches the cluster without TLS.
func (c *Cluster) TLSDisabled() bool { return c.TLS == "disabled" }

// Account is one managed account on one cluster.
type Account struct {
	Name  string // <prefix>_<user>
	User  string // declared user name
	Owner string
	Kind  string // "human" or "service"
	Auth  Auth
	// Grants are sorted by Database; every database named here is one the
	// cluster file manages.
	Grants []Grant
}

// Auth is how the account authenticates.
type Auth struct {
	Method string // "iam" or "password"
	Secret string // Secrets Manager reference, for "password"
}

// Grant is the privileges an account holds on one database.
type Grant struct {
	Database string
	// Privileges is the sorted union of the roles' privileges, expanded for
	// the cluster's flavor (ALL PRIVILEGES becomes its explicit list).
	Privileges []string
	// Roles are the sorted role names that contributed.
	Roles []string
	// Expires is the latest expiry of the contributing entries (YYYY-MM-DD),
	// empty when any of them never expires.
	Expires string
}

// Find returns the cluster with that name.
func (s *State) Find(name string) (*Cluster, bool) {
	for i := range s.Clusters {
		if s.Clusters[i].Name == name {
			return &s.Clusters[i], true
		}
	}
	return nil, false
}

// IsProduction reports whether an environment name means production, where
// powerful grants are called out for review.
func IsProduction(env string) bool {
	return env == "prod" || env == "production"
}
