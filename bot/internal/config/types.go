// Package config reads the declarations of a dbusers repository
// (dbusers.json, clusters/*.json, users/*.json), checks them against the JSON
// Schemas and against the rules a schema cannot express, and reports every
// problem with the file, line and column to fix.
package config

import "github.com/dbusers/dbusers/bot/internal/desired"

// Config is every declaration of one repository, as written.
type Config struct {
	Settings Settings
	// Clusters and Users are sorted by name.
	Clusters []Cluster
	Users    []User
	// Files maps each declaration's name to the path it was read from,
	// relative to the repository root ("users/bob.json").
	Files map[string]string `json:"-"`
}

// Settings is dbusers.json: fleet-wide settings.
type Settings struct {
	Schema string `json:"$schema,omitempty"`
	// Prefix starts every managed account name: <prefix>_<user>.
	Prefix string `json:"prefix"`
	// Roles adds to or redefines the built-in role templates.
	Roles map[string]Role `json:"roles,omitempty"`
	// ProtectedAccounts are never created, altered or dropped, even with
	// the prefix.
	ProtectedAccounts []string     `json:"protected_accounts,omitempty"`
	RemovalLimit      RemovalLimit `json:"removal_limit"`
	SSM               SSM          `json:"ssm"`
	AWS               AWS          `json:"aws"`
	// Concurrency is how many clusters reconcile at once.
	Concurrency int `json:"concurrency,omitempty"`
	// EndSessions says which removals end the open sessions of the
	// account that loses access; nil fields mean true.
	EndSessions *EndSessions `json:"end_sessions,omitempty"`
}

// EndSessions is dbusers.json's "end_sessions".
type EndSessions struct {
	Drop   *bool `json:"drop,omitempty"`
	Lock   *bool `json:"lock,omitempty"`
	Revoke *bool `json:"revoke,omitempty"`
}

// Policy is the session policy the settings ask for.
func (e *EndSessions) Policy() desired.SessionPolicy {
	p := desired.DefaultSessionPolicy
	if e == nil {
		return p
	}
	for _, f := range []struct {
		set *bool
		to  *bool
	}{{e.Drop, &p.OnDrop}, {e.Lock, &p.OnLock}, {e.Revoke, &p.OnRevoke}} {
		if f.set != nil {
			*f.to = *f.set
		}
	}
	return p
}

// Role is a named privilege set.
type Role struct {
	Description string `json:"description,omitempty"`
	// Extends names roles whose privileges this one inherits.
	Extends    []string `json:"extends,omitempty"`
	Privileges []string `json:"privileges,omitempty"`
}

// RemovalLimit caps how many managed accounts one run may drop on one
// cluster: at most max(Count, Fraction × managed accounts).
type RemovalLimit struct {
	Count    int     `json:"count"`
	Fraction float64 `json:"fraction"`
}

// SSM says where the published bundle lives.
type SSM struct {
	// Parameter is the pointer parameter's name; chunks live under
	// Parameter + "/v/<version>/".
	Parameter string `json:"parameter"`
	// Tier is "Standard" (4 KB values) or "Advanced" (8 KB).
	Tier string `json:"tier,omitempty"`
	// KeepVersions is how many published versions to keep.
	KeepVersions int `json:"keep_versions,omitempty"`
}

// AWS holds the cross-account access defaults.
type AWS struct {
	// ManagementRole is the role name the Lambda assumes in each cluster's
	// account.
	ManagementRole string `json:"management_role"`
	// ExternalID is passed to sts:AssumeRole.
	ExternalID string `json:"external_id,omitempty"`
}

// Cluster is clusters/<name>.json.
type Cluster struct {
	Schema      string `json:"$schema,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Environment string `json:"environment"`
	AccountID   string `json:"account_id"`
	Region      string `json:"region"`
	Endpoint    string `json:"endpoint"`
	Port        int    `json:"port,omitempty"`
	Engine      string `json:"engine"`
	// AdminSecret is the Secrets Manager ARN or name of the admin login.
	AdminSecret string `json:"admin_secret"`
	// PlanSecret is the read-only login of the live plan; empty: the
	// live plan logs in with the admin secret.
	PlanSecret string   `json:"plan_secret,omitempty"`
	Databases  []string `json:"databases"`
	// TLS is "verify-identity" (default), "verify-ca", "required" or "disabled".
	TLS        string            `json:"tls,omitempty"`
	RoleARN    string            `json:"role_arn,omitempty"`
	ExternalID string            `json:"external_id,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// User is users/<name>.json.
type User struct {
	Schema      string   `json:"$schema,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Owner       string   `json:"owner"`
	Kind        string   `json:"kind"`
	Auth        UserAuth `json:"auth,omitzero"`
	Access      []Access `json:"access"`
}

// UserAuth is how a user logs in.
type UserAuth struct {
	// Type is "iam" (default) or "password".
	Type string `json:"type,omitempty"`
	// Secret names the Secrets Manager secret holding {"password": ...}.
	Secret string `json:"secret,omitempty"`
}

// Method returns the authentication method, applying the default.
func (a UserAuth) Method() string {
	if a.Type == "" {
		return "iam"
	}
	return a.Type
}

// Access grants one role on some databases of some clusters.
type Access struct {
	Clusters     []string `json:"clusters,omitempty"`
	Environments []string `json:"environments,omitempty"`
	Databases    []string `json:"databases"`
	Role         string   `json:"role"`
	// Expires is the last day (YYYY-MM-DD, UTC) the entry grants anything.
	Expires string `json:"expires,omitempty"`
	Reason  string `json:"reason,omitempty"`
}
