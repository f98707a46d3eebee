// Package plan compares the desired state of one cluster with the live state
// of its server and returns the changes that make them equal. It is pure:
// values in, a plan out, no I/O and no clock, so that the same inputs always
// give the same plan and every rule can be tested without a server.
//
// A Change is the account it concerns, the sentence a reviewer reads, and
// an Op: one of a closed set of types (CreateUser, GrantDatabase,
// RevokeTable, DropUser, ...), each holding exactly the data its statement
// needs. A combination that makes no sense (a grant on a column, a role
// revoke without a role) cannot be written down, and package render turns
// each type into its statement.
package plan

import (
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

// Action names the kind of a change in audit lines, metrics and JSON.
type Action string

// The actions a plan may contain, in the order they are applied for one
// account.
const (
	CreateUser Action = "create_user" // CREATE USER with its authentication
	AlterAuth  Action = "alter_auth"  // ALTER USER: plugin, password or TLS requirement
	RevokeRole Action = "revoke_role" // REVOKE role FROM account
	Revoke     Action = "revoke"      // REVOKE an explicit privilege list
	Grant      Action = "grant"       // GRANT an explicit privilege list on one database
	// ResetOptions and ClearDefaultRoles undo account settings made by
	// hand (password expiry policy, resource limits, default roles).
	ResetOptions      Action = "reset_options"
	ClearDefaultRoles Action = "clear_default_roles"
	DropUser          Action = "drop_user"    // DROP USER
	LockAccount       Action = "lock_account" // ACCOUNT LOCK: an account that still owns stored objects
	// EndSession ends one open session of an account that lost access,
	// after the statements that took it away.
	EndSession Action = "end_session"
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

// Op is what a change does. The types that implement it are the kinds of
// change a plan can hold; the set is closed (isOp is unexported) so that
// every renderer and reader handles every kind.
type Op interface {
	// Action names the kind of change.
	Action() Action
	isOp()
}

// NewAccount creates an account with its authentication.
type NewAccount struct {
	Auth Auth
}

// SetAuth changes an existing account's plugin, password or TLS
// requirement.
type SetAuth struct {
	Auth Auth
}

// RevokeRoleGrant revokes a role granted to the account (MySQL 8's roles are
// accounts; a MariaDB role has Host "").
type RevokeRoleGrant struct {
	Role mysqlstate.AccountID
}

// RevokeGlobal revokes global (*.*) privileges, by explicit list.
type RevokeGlobal struct {
	Privileges []string
}

// DatabaseRef names one database both ways: Database as declared (for
// people), Pattern as the server stores it in GRANT (escaped where _ and %
// are wildcards), which is what the statement uses.
type DatabaseRef struct {
	Database string
	Pattern  string
}

// RevokeDatabase revokes privileges on one database.
type RevokeDatabase struct {
	DatabaseRef
	Privileges []string
}

// RevokeTable revokes privileges on one table.
type RevokeTable struct {
	DatabaseRef
	Table      string
	Privileges []string
}

// RevokeColumn revokes privileges on one column of one table.
type RevokeColumn struct {
	DatabaseRef
	Table, Column string
	Privileges    []string
}

// GrantDatabase grants privileges on one database: dbusers never grants on
// *.*, a table or a column.
type GrantDatabase struct {
	DatabaseRef
	Privileges []string
}

// RevokeRoutine revokes privileges on one stored procedure or function.
type RevokeRoutine struct {
	Database   string // the routine's database (routine grants take no wildcards)
	Routine    string
	Type       string // PROCEDURE or FUNCTION
	Privileges []string
}

// RevokeProxy revokes the right to proxy as another account.
type RevokeProxy struct {
	Proxied mysqlstate.AccountID
}

// Reset puts account options set by hand back to what dbusers creates:
// the server's password expiry policy, and no resource limits.
type Reset struct {
	PasswordLifetime bool
	Limits           bool
}

// ClearDefaults clears the account's default roles (SET DEFAULT ROLE NONE).
type ClearDefaults struct{}

// Drop drops the account.
type Drop struct{}

// Lock locks an account that dbusers would drop but cannot: it is the
// DEFINER of stored objects that would break (MariaDB) or whose DROP USER
// the server refuses (MySQL 8.0.22+). It can no longer log in; its
// privileges stay, so that its objects go on working.
type Lock struct {
	Objects []mysqlstate.StoredObject
}

// Kill names how a session is ended: KILL CONNECTION, or RDS's and
// Aurora's mysql.rds_kill procedure for an admin without CONNECTION_ADMIN.
type Kill string

// The ways to end a session.
const (
	KillConnection Kill = "kill"
	RDSKill        Kill = "rds_kill"
)

// Disconnect ends one open session of the account.
type Disconnect struct {
	Session mysqlstate.Session
	Via     Kill
}

// Action implementations: the audit trail and metrics group the revokes.
func (NewAccount) Action() Action      { return CreateUser }
func (SetAuth) Action() Action         { return AlterAuth }
func (RevokeRoleGrant) Action() Action { return RevokeRole }
func (RevokeGlobal) Action() Action    { return Revoke }
func (RevokeDatabase) Action() Action  { return Revoke }
func (RevokeTable) Action() Action     { return Revoke }
func (RevokeColumn) Action() Action    { return Revoke }
func (GrantDatabase) Action() Action   { return Grant }
func (RevokeRoutine) Action() Action   { return Revoke }
func (RevokeProxy) Action() Action     { return Revoke }
func (Reset) Action() Action           { return ResetOptions }
func (ClearDefaults) Action() Action   { return ClearDefaultRoles }
func (Drop) Action() Action            { return DropUser }
func (Lock) Action() Action            { return LockAccount }
func (Disconnect) Action() Action      { return EndSession }

func (NewAccount) isOp()      {}
func (SetAuth) isOp()         {}
func (RevokeRoleGrant) isOp() {}
func (RevokeGlobal) isOp()    {}
func (RevokeDatabase) isOp()  {}
func (RevokeTable) isOp()     {}
func (RevokeColumn) isOp()    {}
func (GrantDatabase) isOp()   {}
func (RevokeRoutine) isOp()   {}
func (RevokeProxy) isOp()     {}
func (Reset) isOp()           {}
func (ClearDefaults) isOp()   {}
func (Drop) isOp()            {}
func (Lock) isOp()            {}
func (Disconnect) isOp()      {}

// TakesAccess reports whether the change takes access away from its
// account: after it, the account's open sessions must end.
func (c Change) TakesAccess() bool {
	switch c.Op.(type) {
	case RevokeRoleGrant, RevokeGlobal, RevokeDatabase, RevokeTable, RevokeColumn, RevokeRoutine, RevokeProxy, Drop, Lock:
		return true
	}
	return false
}

// Change is one statement's worth of difference, with the sentence a
// reviewer reads.
type Change struct {
	Account mysqlstate.AccountID
	// User is the declared user name (without prefix), empty for an account
	// no user file declares.
	User string
	// Summary is one sentence for reviewers, e.g.
	// "downgrade acme_bob on orders: write → read".
	Summary string
	Op      Op
}

// Action names the kind of the change.
func (c Change) Action() Action {
	if c.Op == nil {
		return ""
	}
	return c.Op.Action()
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
