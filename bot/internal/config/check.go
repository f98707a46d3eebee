package config

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/jsonpos"
	"github.com/dbusers/dbusers/bot/internal/quote"
)

// MaxAccountName is the account-name limit of MySQL 5.7 and Aurora MySQL 2,
// the smallest of the supported engines; every account is checked against
// it so that a user can be granted on any cluster.
const MaxAccountName = 32

// DateLayout is how expiry dates are written.
const DateLayout = desired.DateLayout

// RolePrivileges resolves every role's privileges (built-ins overlaid with
// dbusers.json's, extends followed): per role, the sorted canonical
// privilege names (ALL PRIVILEGES stays as written; flavors expand it), and
// the problems found.
func (s Settings) RolePrivileges() (map[string][]string, []string) {
	roles, problems := desired.ResolveRoles(s.roleTemplates())
	var msgs []string
	for _, p := range problems.Errors() {
		msgs = append(msgs, p.Message)
	}
	return roles, msgs
}

func (s Settings) roleTemplates() map[string]desired.RoleTemplate {
	out := make(map[string]desired.RoleTemplate, len(s.Roles))
	for name, r := range s.Roles {
		out[name] = desired.RoleTemplate{Extends: slices.Clone(r.Extends), Privileges: slices.Clone(r.Privileges)}
	}
	return out
}

// AccountName is the MySQL account name of a user.
func (s Settings) AccountName(user string) string {
	return desired.Prefix(s.Prefix).Account(user)
}

// Declarations returns the meaning of the configuration, for
// desired.Resolve. It shares no slice or map with c.
func (c *Config) Declarations() desired.Declarations {
	d := desired.Declarations{
		Prefix:       desired.Prefix(c.Settings.Prefix),
		Protected:    slices.Clone(c.Settings.ProtectedAccounts),
		RemovalLimit: desired.RemovalLimit{Count: c.Settings.RemovalLimit.Count, Fraction: c.Settings.RemovalLimit.Fraction},
		Sessions:     c.Settings.EndSessions.Policy(),
		Roles:        c.Settings.roleTemplates(),
		Clusters:     make([]desired.ClusterDecl, len(c.Clusters)),
		Users:        make([]desired.UserDecl, len(c.Users)),
	}
	for i, cl := range c.Clusters {
		d.Clusters[i] = desired.ClusterDecl{Name: cl.Name, Environment: cl.Environment, Engine: cl.Engine, TLS: cl.TLS,
			Databases: slices.Clone(cl.Databases)}
	}
	for i, u := range c.Users {
		ud := desired.UserDecl{Name: u.Name, Owner: u.Owner, Kind: u.Kind,
			Auth:   desired.Auth{Method: u.Auth.Type, Secret: u.Auth.Secret},
			Access: make([]desired.AccessDecl, len(u.Access))}
		for j, a := range u.Access {
			ud.Access[j] = desired.AccessDecl{Clusters: slices.Clone(a.Clusters), Environments: slices.Clone(a.Environments),
				Databases: slices.Clone(a.Databases), Role: a.Role, Expires: a.Expires}
		}
		d.Users[i] = ud
	}
	return d
}

// Desired resolves a configuration that has already been validated (a
// published bundle) into the desired state on the given day. It fails on
// any problem validation would report as an error, rather than guess.
func Desired(c *Config, today time.Time) (*desired.State, error) {
	st, problems := desired.Resolve(c.Declarations(), today)
	if err := problems.Err(); err != nil {
		return nil, err
	}
	return st, nil
}

// Check runs the semantic rules over decoded declarations; today is the
// date expiry is judged against. The access entries are checked by the
// resolver of package desired, which Desired then builds the state with.
func (l *Loaded) Check(today time.Time) diag.List { return l.check(today, false) }

// check is Check, building l.Desired on the way when resolve is set.
func (l *Loaded) check(today time.Time, resolve bool) diag.List {
	var out diag.List
	c := &checker{l: l}
	c.clusters(&out)
	c.users(&out)
	var problems desired.Problems
	if resolve {
		l.Desired, problems = desired.Resolve(l.Config.Declarations(), today)
	} else {
		problems = desired.Check(l.Config.Declarations(), today)
	}
	for _, p := range problems {
		if d, ok := l.place(p); ok {
			out = append(out, d)
		}
	}
	out.Sort()
	return out
}

// place puts a resolver problem at the file, line and column of the value
// it concerns.
func (l *Loaded) place(p desired.Problem) (diag.Diagnostic, bool) {
	var src *Source
	switch p.In {
	case desired.InSettings:
		src = l.Settings
	case desired.InCluster:
		src = l.Clusters[p.Name]
	case desired.InUser:
		src = l.Users[p.Name]
	}
	sev := diag.Error
	if p.Severity == desired.Warning {
		sev = diag.Warning
	}
	if src == nil {
		// A problem with a declaration that was not read from a file (the
		// settings of a repository without dbusers.json, which Load has
		// reported already).
		if p.In == desired.InSettings {
			return diag.Diagnostic{}, false
		}
		return diag.Diagnostic{File: string(p.In) + "s/" + p.Name + ".json", Severity: sev, Message: p.Message}, true
	}
	return src.at(jsonpos.Pointer(p.Path...), sev, "%s", p.Message), true
}

type checker struct {
	l *Loaded
}

func (c *checker) clusters(out *diag.List) {
	// File names and duplicate names are checked by Load, which knows
	// which file each declaration came from.
	for _, cl := range c.l.Config.Clusters {
		src := c.l.Clusters[cl.Name]
		// A warning, not an error: the examples, the demo and the tests
		// live in these accounts. publish refuses them; saying so on the
		// pull request spares a fork the failed publish after the merge.
		if PlaceholderAccount(cl.AccountID) {
			*out = append(*out, src.at("/account_id", diag.Warning,
				"account_id %s is a placeholder, as in the example declarations: publish refuses to publish this cluster; put the cluster's own account id here",
				cl.AccountID))
		}
		if cl.TLS == "disabled" && engineIAM(cl.Engine) {
			*out = append(*out, src.at("/tls", diag.Error,
				"tls disabled on %s: AWS-managed clusters are always reached over verified TLS", cl.Engine))
		}
		// The role decides which account the Lambda acts in: a role in
		// another account would read that account's secrets and reach its
		// databases under this cluster's name.
		if acct, ok := RoleAccount(cl.RoleARN); ok && acct != cl.AccountID {
			*out = append(*out, src.at("/role_arn", diag.Error,
				"role_arn is in account %s, but the cluster is in account %s: the role must be in the cluster's own account", acct, cl.AccountID))
		}
		for _, k := range sortedKeys(cl.Tags) {
			if len(k) > maxTagKey {
				*out = append(*out, src.at(jsonpos.Pointer("tags", k), diag.Error,
					"tag key %s is longer than %d characters", quote.Value(k), maxTagKey))
			}
		}
		for i, db := range cl.Databases {
			// Servers that read _ and % in GRANT as wildcards store the
			// escaped name, which must fit their 64-character limit too.
			if p := flavor.DatabasePattern(db, true); len(p) > maxIdentifier {
				*out = append(*out, src.at(jsonpos.Pointer("databases", strconv.Itoa(i)), diag.Error,
					"database %s is %d characters once its _ and %% are escaped for GRANT; MySQL allows %d", quote.ASCII(db), len(p), maxIdentifier))
			}
		}
	}
}

// RoleAccount returns the account id of an IAM role ARN
// (arn:aws:iam::123456789012:role/name, in any partition); ok is false for
// anything else. Validation and the Lambda both use it to keep a cluster's
// role in the cluster's own account.
func RoleAccount(roleARN string) (account string, ok bool) {
	a, err := arn.Parse(roleARN)
	if err != nil || !strings.HasPrefix(a.Partition, "aws") || a.Service != "iam" || a.Region != "" ||
		!strings.HasPrefix(a.Resource, "role/") || a.Resource == "role/" || !IsAccountID(a.AccountID) {
		return "", false
	}
	return a.AccountID, true
}

// PlaceholderAccount reports whether an account id is one nobody deploys
// to: one digit twelve times (the example declarations use 111111111111
// and 222222222222) or 123456789012, the documentation's. publish refuses
// to publish a cluster in one.
func PlaceholderAccount(id string) bool {
	return IsAccountID(id) && (strings.Count(id, id[:1]) == len(id) || id == "123456789012")
}

// IsAccountID reports whether s is an AWS account id: 12 decimal digits.
func IsAccountID(s string) bool { return accountIDRE.MatchString(s) }

var accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)

// maxTagKey bounds tag keys, which reports and logs repeat.
const maxTagKey = 128

// maxIdentifier is MySQL's limit on database names.
const maxIdentifier = 64

func engineIAM(engine string) bool {
	e, ok := flavor.LookupEngine(engine)
	return ok && e.IAM
}

// users checks what the resolver does not: that names are safe account
// names, short enough after the prefix on every engine, and not accounts
// that dbusers never touches.
//
// A declaration the plan would skip must not validate: the pull request's
// review would show its grants as changes, and a reviewer would approve
// access that is never given. plan.Diff skips the system accounts
// (desired.SystemAccounts and mysql.*), the protected_accounts of
// dbusers.json, and the admin account the bot logs in as; that last one
// is known only at run time, from the cluster's admin secret, so the plan
// alone skips it and says so in its report.
func (c *checker) users(out *diag.List) {
	cfg := c.l.Config
	for _, u := range cfg.Users {
		src := c.l.Users[u.Name]
		if !desired.DeclarableName(u.Name) {
			*out = append(*out, src.at("/name", diag.Error,
				"name %s is not a safe MySQL account name: use lowercase letters, digits and _, starting with a letter", quote.ASCII(u.Name)))
		}
		if cfg.Settings.Prefix == "" {
			continue // no dbusers.json: Load reports it, and there is no account name
		}
		acct := cfg.Settings.AccountName(u.Name)
		if len(acct) > MaxAccountName {
			*out = append(*out, src.at("/name", diag.Error,
				"account name %s is %d characters; MySQL 5.7 and Aurora MySQL 2 allow %d, so shorten the name by %d",
				acct, len(acct), MaxAccountName, len(acct)-MaxAccountName))
		}
		switch {
		case desired.SystemAccount(acct):
			*out = append(*out, src.at("/name", diag.Error,
				"account %s is a system account of MySQL or RDS, which dbusers never creates, changes or drops; choose another name",
				quote.ASCII(acct)))
		case slices.Contains(cfg.Settings.ProtectedAccounts, acct):
			*out = append(*out, src.at("/name", diag.Error,
				"account %s is in protected_accounts of dbusers.json: dbusers never creates, changes or drops it, so this file would grant nothing; "+
					"remove the file, or the account from protected_accounts for dbusers to manage it", quote.ASCII(acct)))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
