// Package plan compares the desired state of one cluster with the live state
// of its server and returns the changes that make them equal. It is pure:
// values in, a plan out, no I/O and no clock, so that the same inputs always
// give the same plan and every rule can be tested without a server.
package plan

import (
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

// Action is the kind of one change.
type Action string

// The actions a plan may contain, in the order they are applied for one
// account.
const (
	CreateUser Action = "create_user" // CREATE USER with its authentication
	AlterAuth  Action = "alter_auth"  // ALTER USER: plugin, password or TLS requirement
	RevokeRole Action = "revoke_role" // REVOKE role FROM account
	Revoke     Action = "revoke"      // REVOKE an explicit privilege list
	Grant      Action = "grant"       // GRANT an explicit privilege list on one database
	DropUser   Action = "drop_user"   // DROP USER
)

// Auth is the authentication an account must end up with.
type Auth struct {
	Method     string `json:"method"` // "iam" or "password"
	SecretRef  string `json:"secret,omitempty"`
	RequireSSL bool   `json:"require_ssl"`
	// Password is the clear-text password from the secret. It never leaves
	// the process except inside the statement sent to the server.
	Password string `json:"-"`
	// Rotate is true when only the password changes.
	Rotate bool `json:"rotate,omitempty"`
}

// Change is one statement's worth of difference, with the sentence a
// reviewer reads.
type Change struct {
	Action  Action               `json:"action"`
	Account mysqlstate.AccountID `json:"account"`
	// User is the declared user name (without prefix), empty for an account
	// the configuration no longer declares.
	User string `json:"user,omitempty"`
	// Database is the database name as declared (for people); Pattern is the
	// name as the server stores it in GRANT (escaped where _ and % are
	// wildcards), which is what the statement uses. Both are empty for a
	// global (*.*) privilege.
	Database string `json:"database,omitempty"`
	Pattern  string `json:"pattern,omitempty"`
	// Table and Column narrow a revoke to one table or column.
	Table      string                `json:"table,omitempty"`
	Column     string                `json:"column,omitempty"`
	Privileges []string              `json:"privileges,omitempty"`
	Role       *mysqlstate.AccountID `json:"role,omitempty"`
	Auth       *Auth                 `json:"auth,omitempty"`
	// Summary is one sentence for reviewers, e.g.
	// "downgrade acme_bob on orders: write → read".
	Summary string `json:"summary"`
}

// Plan is every change for one cluster, in apply order.
type Plan struct {
	Cluster string   `json:"cluster"`
	Changes []Change `json:"changes"`
	// Held lists drops that the removal limit withheld; they are not applied.
	Held []Change `json:"held,omitempty"`
	// LimitTripped explains why Held is not empty.
	LimitTripped string `json:"limit_tripped,omitempty"`
	// Notes are things an operator should know that are not changes: a
	// locked account left alone, a user skipped for a missing secret.
	Notes []string `json:"notes,omitempty"`
	// Skipped lists declared users that were not reconciled at all, with why.
	Skipped []Skip `json:"skipped,omitempty"`
}

// Skip is a declared user that the plan leaves alone, and why.
type Skip struct {
	User   string `json:"user"`
	Reason string `json:"reason"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }
