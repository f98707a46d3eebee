package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/jsonpos"
)

// MaxAccountName is the account-name limit of MySQL 5.7 and Aurora MySQL 2,
// the smallest of the supported engines; every account is checked against
// it so that a user can be granted on any cluster.
const MaxAccountName = 32

// DateLayout is how expiry dates are written.
const DateLayout = "2006-01-02"

// safeName is what a user name may be: it ends up inside a MySQL account
// name, a file name and log lines, so it is kept to a small alphabet.
var safeName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// BuiltinRoles are the role templates every repository has unless
// dbusers.json redefines them.
func BuiltinRoles() map[string]Role {
	return map[string]Role{
		"read":  {Description: "read data", Privileges: []string{"SELECT"}},
		"write": {Description: "read and change rows", Privileges: []string{"SELECT", "INSERT", "UPDATE"}},
		"admin": {Description: "own the schema, short of dropping it", Privileges: []string{
			"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "REFERENCES", "INDEX", "ALTER",
			"CREATE TEMPORARY TABLES", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE",
			"EXECUTE", "EVENT", "TRIGGER"}},
		"trusted_admin": {Description: "every privilege on the database, never global", Privileges: []string{flavor.AllPrivileges}},
	}
}

// EffectiveRoles returns the effective role templates: the built-ins
// overlaid with those of dbusers.json.
func (s Settings) EffectiveRoles() map[string]Role {
	roles := BuiltinRoles()
	for name, r := range s.Roles {
		roles[name] = r
	}
	return roles
}

// RolePrivileges resolves every role's privileges, following extends. It
// returns, per role, the sorted canonical privilege names (ALL PRIVILEGES
// stays as written; flavors expand it), and the problems found: unknown
// parents, cycles and unknown privileges.
func (s Settings) RolePrivileges() (map[string][]string, []string) {
	roles := s.EffectiveRoles()
	out := map[string][]string{}
	var problems []string
	var visit func(name string, stack []string) []string
	visit = func(name string, stack []string) []string {
		if p, ok := out[name]; ok {
			return p
		}
		if slices.Contains(stack, name) {
			problems = append(problems, fmt.Sprintf("role %s extends itself: %s", name, strings.Join(append(stack, name), " → ")))
			return nil
		}
		r := roles[name]
		set := map[string]bool{}
		for _, parent := range r.Extends {
			if _, ok := roles[parent]; !ok {
				problems = append(problems, fmt.Sprintf("role %s extends unknown role %s", name, jsonpos.QuoteASCII(parent)))
				continue
			}
			for _, p := range visit(parent, append(stack, name)) {
				set[p] = true
			}
		}
		for _, p := range r.Privileges {
			c := flavor.Canonical(p)
			if !flavor.KnownDatabasePrivilege(c) {
				problems = append(problems, fmt.Sprintf("role %s: %s is not a database-level privilege", name, jsonpos.QuoteASCII(p)))
				continue
			}
			set[c] = true
		}
		privs := make([]string, 0, len(set))
		for p := range set {
			privs = append(privs, p)
		}
		slices.Sort(privs)
		out[name] = privs
		return privs
	}
	names := make([]string, 0, len(roles))
	for name := range roles {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		visit(name, nil)
	}
	slices.Sort(problems)
	return out, slices.Compact(problems)
}

// IsProduction reports whether an environment name means production, where
// admin grants are called out for review.
func IsProduction(env string) bool {
	return env == "prod" || env == "production"
}

// AccountName is the MySQL account name of a user.
func (s Settings) AccountName(user string) string {
	return s.Prefix + "_" + user
}

// Check runs the semantic rules over decoded declarations; today is the
// date expiry is judged against.
func (l *Loaded) Check(today time.Time) diag.List {
	var out diag.List
	c := &checker{l: l, today: today.UTC().Format(DateLayout)}
	c.settings(&out)
	c.clusters(&out)
	c.users(&out)
	out.Sort()
	return out
}

type checker struct {
	l     *Loaded
	today string
	roles map[string][]string
	// targets is reused by every access entry: an environment reaches
	// many clusters, and 10,000 users would allocate it 10,000 times.
	targets []target
	// databases holds each cluster's databases as a set, made on first
	// use: an entry naming n databases of a cluster managing m must cost
	// n lookups, not n×m comparisons.
	databases map[*Cluster]map[string]bool
}

// manages reports whether cl lists db.
func (c *checker) manages(cl *Cluster, db string) bool {
	set, ok := c.databases[cl]
	if !ok {
		if c.databases == nil {
			c.databases = map[*Cluster]map[string]bool{}
		}
		set = make(map[string]bool, len(cl.Databases))
		for _, d := range cl.Databases {
			set[d] = true
		}
		c.databases[cl] = set
	}
	return set[db]
}

// target is a cluster an access entry reaches, with the pointer of the
// element that named it (a cluster or an environment), so per-cluster
// problems point at the right place.
type target struct {
	cl  *Cluster
	ptr string
}

func (c *checker) settings(out *diag.List) {
	s := c.l.Config.Settings
	var problems []string
	c.roles, problems = s.RolePrivileges()
	src := c.l.Settings
	if src == nil {
		return
	}
	for _, p := range problems {
		role, _, _ := strings.Cut(strings.TrimPrefix(p, "role "), " ")
		role = strings.TrimSuffix(role, ":")
		*out = append(*out, src.at(jsonpos.Pointer("roles", role), diag.Error, "%s", p))
	}
	for name, r := range s.Roles {
		if len(r.Privileges) == 0 && len(r.Extends) == 0 {
			*out = append(*out, src.at(jsonpos.Pointer("roles", name), diag.Error,
				"role %s grants nothing: give it privileges or extends", name))
		}
		if slices.ContainsFunc(r.Privileges, func(p string) bool { return flavor.Canonical(p) == flavor.AllPrivileges }) && len(r.Privileges) > 1 {
			*out = append(*out, src.at(jsonpos.Pointer("roles", name, "privileges"), diag.Warning,
				"role %s lists ALL PRIVILEGES and more; ALL PRIVILEGES already includes every database privilege", name))
		}
	}
}

func (c *checker) clusters(out *diag.List) {
	// File names and duplicate names are checked by Load, which knows
	// which file each declaration came from.
	for _, cl := range c.l.Config.Clusters {
		src := c.l.Clusters[cl.Name]
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
					"tag key %s is longer than %d characters", jsonpos.Quote(k), maxTagKey))
			}
		}
		for i, db := range cl.Databases {
			// Servers that read _ and % in GRANT as wildcards store the
			// escaped name, which must fit their 64-character limit too.
			if p := flavor.DatabasePattern(db, true); len(p) > maxIdentifier {
				*out = append(*out, src.at(jsonpos.Pointer("databases", strconv.Itoa(i)), diag.Error,
					"database %s is %d characters once its _ and %% are escaped for GRANT; MySQL allows %d", jsonpos.QuoteASCII(db), len(p), maxIdentifier))
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

func (c *checker) users(out *diag.List) {
	cfg := c.l.Config
	// Pointers, not copies: an environment reaches hundreds of clusters
	// and a Cluster is large.
	clusters := map[string]*Cluster{}
	envs := map[string][]*Cluster{}
	for i := range cfg.Clusters {
		cl := &cfg.Clusters[i]
		clusters[cl.Name] = cl
		envs[cl.Environment] = append(envs[cl.Environment], cl)
	}
	for _, u := range cfg.Users {
		src := c.l.Users[u.Name]
		at := func(sev diag.Severity, format string, args []any, segs ...string) {
			*out = append(*out, src.at(jsonpos.Pointer(segs...), sev, format, args...))
		}
		if !safeName.MatchString(u.Name) {
			at(diag.Error, "name %s is not a safe MySQL account name: use lowercase letters, digits and _, starting with a letter", []any{jsonpos.QuoteASCII(u.Name)}, "name")
		}
		if cfg.Settings.Prefix != "" {
			if acct := cfg.Settings.AccountName(u.Name); len(acct) > MaxAccountName {
				at(diag.Error, "account name %s is %d characters; MySQL 5.7 and Aurora MySQL 2 allow %d, so shorten the name by %d",
					[]any{acct, len(acct), MaxAccountName, len(acct) - MaxAccountName}, "name")
			}
		}
		method := u.Auth.Method()
		switch {
		case method == "password" && u.Auth.Secret == "":
			at(diag.Error, "password authentication needs auth.secret, the Secrets Manager secret that holds the password", nil, "auth")
		case method == "iam" && u.Auth.Secret != "":
			at(diag.Error, "auth.secret is only used with password authentication; remove it or set type to password", nil, "auth", "secret")
		}
		if len(u.Access) == 0 {
			at(diag.Warning, "user %s has no access entries: its accounts will be dropped from every cluster", []any{u.Name}, "access")
		}
		live := 0
		for i, a := range u.Access {
			idx := strconv.Itoa(i)
			if c.access(out, src, u, idx, a, clusters, envs) {
				live++
			}
		}
		if len(u.Access) > 0 && live == 0 {
			at(diag.Warning, "user %s has no access left after expiry: its accounts will be dropped from every cluster", []any{u.Name}, "access")
		}
	}
}

// access checks one access entry and reports whether it is still in force.
func (c *checker) access(out *diag.List, src *Source, u User, idx string, a Access,
	clusters map[string]*Cluster, envs map[string][]*Cluster) bool {
	add := func(sev diag.Severity, ptr string, format string, args ...any) {
		*out = append(*out, src.at(ptr, sev, format, args...))
	}
	base := jsonpos.Pointer("access", idx)
	inForce := true
	if a.Expires != "" {
		d, err := time.Parse(DateLayout, a.Expires)
		switch {
		case err != nil || d.Format(DateLayout) != a.Expires:
			add(diag.Error, base+"/expires", "expires %s is not a real date (YYYY-MM-DD)", jsonpos.QuoteASCII(a.Expires))
		case a.Expires < c.today:
			add(diag.Warning, base+"/expires", "access expired on %s: it grants nothing and will be revoked; remove the entry", a.Expires)
			inForce = false
		}
	}
	if len(a.Clusters) == 0 && len(a.Environments) == 0 {
		add(diag.Error, base, "access entry names no clusters and no environments; add \"clusters\" or \"environments\"")
	}
	_, roleKnown := c.roles[a.Role]
	if !roleKnown {
		add(diag.Error, base+"/role", "unknown role %s (known: %s)", jsonpos.QuoteASCII(a.Role), someOf(sortedKeys(c.roles)))
	}
	// Resolve the clusters this entry reaches, remembering where each was
	// named so per-cluster problems point at the right element.
	targets := c.targets[:0]
	defer func() { c.targets = targets[:0] }()
	for i, name := range a.Clusters {
		ptr := base + "/clusters/" + strconv.Itoa(i)
		cl, ok := clusters[name]
		if !ok {
			add(diag.Error, ptr, "unknown cluster %s (known: %s)", jsonpos.QuoteASCII(name), someOf(sortedKeys(clusters)))
			continue
		}
		targets = append(targets, target{cl, ptr})
	}
	for i, env := range a.Environments {
		ptr := base + "/environments/" + strconv.Itoa(i)
		cls, ok := envs[env]
		if !ok {
			add(diag.Error, ptr, "unknown environment %s (known: %s)", jsonpos.QuoteASCII(env), someOf(sortedKeys(envs)))
			continue
		}
		for _, cl := range cls {
			targets = append(targets, target{cl, ptr})
		}
	}
	for i, db := range a.Databases {
		if db == "*" {
			if len(a.Databases) > 1 {
				add(diag.Warning, base+"/databases/"+strconv.Itoa(i), "\"*\" already means every database of the cluster; the other names are redundant")
			}
			continue
		}
		for _, t := range targets {
			if !c.manages(t.cl, db) {
				add(diag.Error, base+"/databases/"+strconv.Itoa(i), "database %s is not managed by cluster %s (it manages: %s)",
					jsonpos.QuoteASCII(db), t.cl.Name, someOf(t.cl.Databases))
			}
		}
	}
	method := u.Auth.Method()
	for _, t := range targets {
		eng, _ := flavor.LookupEngine(t.cl.Engine)
		if method == "iam" && !eng.IAM {
			add(diag.Error, t.ptr, "user %s uses iam authentication, but cluster %s runs %s, which has no IAM authentication; use password authentication",
				u.Name, t.cl.Name, t.cl.Engine)
		}
		if roleKnown {
			for _, p := range c.roles[a.Role] {
				if !eng.Flavor.Supports(p) {
					add(diag.Error, base+"/role", "role %s grants %s, which %s (cluster %s) does not have", a.Role, p, t.cl.Engine, t.cl.Name)
				}
			}
		}
	}
	if !inForce {
		return false
	}
	// Reviewer call-outs: powerful grants are legal but must be seen.
	if a.Role == "trusted_admin" {
		add(diag.Warning, base+"/role", "trusted_admin grants every privilege on %s to %s: make sure a second reviewer approves",
			describeTargets(a), u.Name)
	}
	if a.Role == "admin" {
		var prod []string
		for _, t := range targets {
			if IsProduction(t.cl.Environment) && !slices.Contains(prod, t.cl.Name) {
				prod = append(prod, t.cl.Name)
			}
		}
		if len(prod) > 0 {
			slices.Sort(prod)
			add(diag.Warning, base+"/role", "admin on production cluster(s) %s for %s: make sure a second reviewer approves",
				strings.Join(prod, ", "), u.Name)
		}
	}
	return true
}

func describeTargets(a Access) string {
	var parts []string
	if len(a.Clusters) > 0 {
		parts = append(parts, "clusters "+strings.Join(a.Clusters, ", "))
	}
	if len(a.Environments) > 0 {
		parts = append(parts, "environments "+strings.Join(a.Environments, ", "))
	}
	return strings.Join(parts, " and ")
}

// maxListed is how many names a message lists before it only counts.
const maxListed = 20

// someOf joins names for a message, listing at most maxListed of them:
// every message about an unknown name lists what is known, and a
// declaration with thousands of unknown names must not multiply a long
// list thousands of times.
func someOf(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d in all)", strings.Join(names[:maxListed], ", "), len(names))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
