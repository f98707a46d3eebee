// Package desired is the state the declarations ask for, expanded into what
// the reconciler compares with a server: per cluster, every managed account
// with its authentication and its privileges per database. It is built once
// from a validated configuration and a date, and then only read.
package desired

import (
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// State is the whole fleet's desired state. Treat it as read-only: Build
// never shares its maps or slices with the configuration it came from.
type State struct {
	// Prefix is the company prefix; every managed account starts with
	// Prefix + "_".
	Prefix string
	// Protected are account names never touched, beyond the built-in ones.
	Protected []string
	// RemovalLimit caps drops per cluster and run.
	RemovalLimit config.RemovalLimit
	// Roles are the role templates' privileges after extends, with ALL
	// PRIVILEGES unexpanded; plans use them to name live privilege sets.
	Roles map[string][]string
	// Date is the day expiry was evaluated on (YYYY-MM-DD).
	Date string
	// Clusters are sorted by name.
	Clusters []Cluster
}

// Cluster is the desired state of one cluster.
type Cluster struct {
	config.Cluster
	Flavor flavor.Flavor
	// Accounts are sorted by Name.
	Accounts []Account
}

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
