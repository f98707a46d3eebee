package desired

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/quote"
)

// DateLayout is how expiry dates are written.
const DateLayout = "2006-01-02"

// Declarations is what Resolve reads: the meaning of a repository's
// declarations, without their file format (package config reads the files
// and fills it in).
type Declarations struct {
	Prefix       Prefix
	Protected    []string
	RemovalLimit RemovalLimit
	// Sessions says which removals end sessions; the zero value is
	// DefaultSessionPolicy's opposite, so callers set it.
	Sessions SessionPolicy
	// Roles are dbusers.json's role templates; they add to or redefine
	// BuiltinRoles.
	Roles    map[string]RoleTemplate
	Clusters []ClusterDecl
	Users    []UserDecl
}

// RoleTemplate is a named privilege set as declared.
type RoleTemplate struct {
	// Extends names roles whose privileges this one inherits.
	Extends    []string
	Privileges []string
}

// BuiltinRoles are the role templates every repository has unless
// dbusers.json redefines them.
func BuiltinRoles() map[string]RoleTemplate {
	return map[string]RoleTemplate{
		"read":  {Privileges: []string{"SELECT"}},
		"write": {Privileges: []string{"SELECT", "INSERT", "UPDATE"}},
		"admin": {Privileges: []string{
			"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "REFERENCES", "INDEX", "ALTER",
			"CREATE TEMPORARY TABLES", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE",
			"EXECUTE", "EVENT", "TRIGGER"}},
		"trusted_admin": {Privileges: []string{flavor.AllPrivileges}},
	}
}

// ClusterDecl is one cluster as declared, as far as access is concerned.
type ClusterDecl struct {
	Name, Environment, Engine, TLS string
	Databases                      []string
}

// UserDecl is one user as declared.
type UserDecl struct {
	Name, Owner, Kind string
	// Auth.Method "" means the default, iam.
	Auth   Auth
	Access []AccessDecl
}

// AccessDecl grants one role on some databases of some clusters.
type AccessDecl struct {
	Clusters, Environments, Databases []string
	Role                              string
	// Expires is the last day (YYYY-MM-DD, UTC) the entry grants anything.
	Expires string
}

// Severity says whether a problem stops the declarations from being used.
type Severity string

// Errors refuse the declarations; warnings are for people.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// DeclKind is the kind of declaration a problem belongs to.
type DeclKind string

// The kinds of declaration.
const (
	InSettings DeclKind = "settings"
	InCluster  DeclKind = "cluster"
	InUser     DeclKind = "user"
)

// Problem is one thing wrong with (or worth saying about) a declaration,
// with the JSON path of the value it concerns so that package config can
// place it at file:line:col.
type Problem struct {
	Severity Severity
	In       DeclKind
	// Name is the cluster's or user's name; empty for the settings.
	Name string
	// Path is the value's path inside the declaration, e.g. access, 0,
	// role; empty for the whole declaration.
	Path    []string
	Message string
}

// String names the declaration, the path and the problem.
func (p Problem) String() string {
	where := string(p.In)
	if p.Name != "" {
		where += " " + p.Name
	}
	if len(p.Path) > 0 {
		where += " at /" + strings.Join(p.Path, "/")
	}
	return where + ": " + p.Message
}

// Problems is every problem Resolve found.
type Problems []Problem

// Errors returns the problems of severity Error.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == Error {
			out = append(out, p)
		}
	}
	return out
}

// Err returns nil when no problem is an error, and otherwise an error that
// lists the first few.
func (ps Problems) Err() error {
	errs := ps.Errors()
	if len(errs) == 0 {
		return nil
	}
	var msgs []string
	for _, p := range errs[:min(len(errs), maxListed)] {
		msgs = append(msgs, p.String())
	}
	if len(errs) > maxListed {
		msgs = append(msgs, fmt.Sprintf("… %d more", len(errs)-maxListed))
	}
	return fmt.Errorf("the declarations have %d error(s): %s", len(errs), strings.Join(msgs, "; "))
}

// Resolve expands declarations into the desired state on the given day:
// role templates become privilege sets for each cluster's flavor, "*"
// becomes the cluster's databases, environments become their clusters, and
// entries whose expiry date has passed are left out. The day is passed in,
// never read from a clock, so a plan is reproducible.
//
// Every problem is reported, not only the first. The state holds what
// could be resolved; a caller that acts on it first checks that
// problems.Err() is nil.
func Resolve(d Declarations, today time.Time) (*State, Problems) {
	return resolve(d, today, false)
}

// Check reports the problems Resolve would, without building the state:
// validation of a large repository must not pay for millions of grants it
// never looks at.
func Check(d Declarations, today time.Time) Problems {
	_, problems := resolve(d, today, true)
	return problems
}

func resolve(d Declarations, today time.Time, checkOnly bool) (*State, Problems) {
	r := &resolver{date: today.UTC().Format(DateLayout), checkOnly: checkOnly}
	st := &State{
		Prefix:       d.Prefix,
		Protected:    slices.Clone(d.Protected),
		RemovalLimit: d.RemovalLimit,
		Sessions:     d.Sessions,
		Users:        make(map[string]bool, len(d.Users)),
		Date:         r.date,
	}
	for _, u := range d.Users {
		st.Users[u.Name] = true
	}
	if d.Prefix == "" {
		r.add(Error, InSettings, "", []string{"prefix"}, "prefix is empty")
	}
	st.Roles = r.resolveRoles(d.Roles)
	st.Clusters = r.clusters(d.Clusters)
	r.users(st, d.Users)
	return st, r.problems
}

type resolver struct {
	date string
	// checkOnly leaves the grants out: only the problems are wanted.
	checkOnly bool
	problems  Problems
	roles     map[string][]string // resolved templates, ALL PRIVILEGES unexpanded
	// byName and envs index the state's clusters; managed holds each
	// cluster's databases as a set, so that an entry naming n databases
	// of a cluster managing m costs n lookups, not n×m comparisons.
	byName  map[string]int
	envs    map[string][]int
	managed []map[string]bool
	// expanded caches a role's privileges per flavor: 10,000 users share
	// a handful of roles.
	expanded map[roleOn]expansion
	// targets is reused by every access entry.
	targets []target
}

type roleOn struct {
	role string
	f    flavor.Flavor
}

type expansion struct {
	privs []string
	err   error
}

func (r *resolver) add(sev Severity, in DeclKind, name string, path []string, format string, args ...any) {
	r.problems = append(r.problems, Problem{Severity: sev, In: in, Name: name, Path: path, Message: fmt.Sprintf(format, args...)})
}

// ResolveRoles returns every role's privileges, built-ins overlaid with
// templates and extends followed: the sorted canonical privilege names
// (ALL PRIVILEGES stays as written; flavors expand it), and the problems
// found (unknown parents, cycles, unknown privileges, empty roles). A role
// with a problem keeps the privileges that resolved.
func ResolveRoles(templates map[string]RoleTemplate) (map[string][]string, Problems) {
	r := &resolver{}
	return r.resolveRoles(templates), r.problems
}

func (r *resolver) resolveRoles(templates map[string]RoleTemplate) map[string][]string {
	roles := BuiltinRoles()
	maps.Copy(roles, templates)
	out := map[string][]string{}
	var visit func(name string, stack []string) []string
	visit = func(name string, stack []string) []string {
		if p, ok := out[name]; ok {
			return p
		}
		at := []string{"roles", name}
		if slices.Contains(stack, name) {
			r.add(Error, InSettings, "", at, "role %s extends itself: %s", name, strings.Join(append(stack, name), " → "))
			return nil
		}
		t := roles[name]
		set := map[string]bool{}
		for _, parent := range t.Extends {
			if _, ok := roles[parent]; !ok {
				r.add(Error, InSettings, "", at, "role %s extends unknown role %s", name, quote.ASCII(parent))
				continue
			}
			for _, p := range visit(parent, append(stack, name)) {
				set[p] = true
			}
		}
		for _, p := range t.Privileges {
			c := flavor.Canonical(p)
			if !flavor.KnownDatabasePrivilege(c) {
				r.add(Error, InSettings, "", at, "role %s: %s is not a database-level privilege", name, quote.ASCII(p))
				continue
			}
			set[c] = true
		}
		privs := slices.Sorted(maps.Keys(set))
		out[name] = privs
		return privs
	}
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		visit(name, nil)
	}
	// A cycle is found once per role on it, and a bad parent once per
	// role that reaches it: say each once.
	slices.SortFunc(r.problems, func(a, b Problem) int { return strings.Compare(a.Message, b.Message) })
	r.problems = slices.CompactFunc(r.problems, func(a, b Problem) bool { return a.Message == b.Message })

	for _, name := range slices.Sorted(maps.Keys(templates)) {
		t := templates[name]
		if len(t.Privileges) == 0 && len(t.Extends) == 0 {
			r.add(Error, InSettings, "", []string{"roles", name}, "role %s grants nothing: give it privileges or extends", name)
		}
		if len(t.Privileges) > 1 && slices.ContainsFunc(t.Privileges, func(p string) bool { return flavor.Canonical(p) == flavor.AllPrivileges }) {
			r.add(Warning, InSettings, "", []string{"roles", name, "privileges"},
				"role %s lists ALL PRIVILEGES and more; ALL PRIVILEGES already includes every database privilege", name)
		}
	}
	r.roles = out
	return out
}

func (r *resolver) clusters(decls []ClusterDecl) []Cluster {
	var out []Cluster
	for _, c := range decls {
		eng, ok := flavor.LookupEngine(c.Engine)
		if !ok {
			r.add(Error, InCluster, c.Name, []string{"engine"}, "unknown engine %s (want one of %s)", quote.ASCII(c.Engine), strings.Join(flavor.Engines(), ", "))
			continue
		}
		out = append(out, Cluster{Name: c.Name, Environment: c.Environment, Engine: eng, TLS: c.TLS, Databases: slices.Clone(c.Databases)})
	}
	slices.SortFunc(out, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })
	r.byName = make(map[string]int, len(out))
	r.envs = map[string][]int{}
	r.managed = make([]map[string]bool, len(out))
	for i, c := range out {
		r.byName[c.Name] = i
		r.envs[c.Environment] = append(r.envs[c.Environment], i)
		r.managed[i] = make(map[string]bool, len(c.Databases))
		for _, db := range c.Databases {
			r.managed[i][db] = true
		}
	}
	return out
}

// grantAcc accumulates one user's entries on one database of one cluster.
type grantAcc struct {
	privs   map[string]bool
	roles   map[string]bool
	expires string
	forever bool
}

// userGrants is one user's grants: cluster index → database → grant.
type userGrants map[int]map[string]*grantAcc

func (r *resolver) users(st *State, decls []UserDecl) {
	for _, u := range decls {
		at := func(sev Severity, path []string, format string, args ...any) {
			r.add(sev, InUser, u.Name, path, format, args...)
		}
		method := u.Auth.Method
		if method == "" {
			method = "iam"
		}
		switch {
		case method == "password" && u.Auth.Secret == "":
			at(Error, []string{"auth"}, "password authentication needs auth.secret, the Secrets Manager secret that holds the password")
		case method == "iam" && u.Auth.Secret != "":
			at(Error, []string{"auth", "secret"}, "auth.secret is only used with password authentication; remove it or set type to password")
		}
		if len(u.Access) == 0 {
			at(Warning, []string{"access"}, "user %s has no access entries: its accounts will be dropped from every cluster", u.Name)
		}
		grants := userGrants{}
		live := 0
		for i, a := range u.Access {
			if r.access(st, u, method, i, a, grants) {
				live++
			}
		}
		if len(u.Access) > 0 && live == 0 {
			at(Warning, []string{"access"}, "user %s has no access left after expiry: its accounts will be dropped from every cluster", u.Name)
		}
		for ci, dbs := range grants {
			account := Account{
				Name: st.Prefix.Account(u.Name), User: u.Name, Owner: u.Owner, Kind: u.Kind,
				Auth: Auth{Method: method, Secret: u.Auth.Secret},
			}
			for _, db := range slices.Sorted(maps.Keys(dbs)) {
				g := dbs[db]
				grant := Grant{Database: db, Privileges: slices.Sorted(maps.Keys(g.privs)), Roles: slices.Sorted(maps.Keys(g.roles))}
				if !g.forever {
					grant.Expires = g.expires
				}
				account.Grants = append(account.Grants, grant)
			}
			st.Clusters[ci].Accounts = append(st.Clusters[ci].Accounts, account)
		}
	}
	for i := range st.Clusters {
		slices.SortFunc(st.Clusters[i].Accounts, func(a, b Account) int { return strings.Compare(a.Name, b.Name) })
	}
}

// target is a cluster an access entry reaches, with the element that
// named it (clusters or environments, and its index), so that per-cluster
// problems point at the right place. The path is built only for a
// problem: 10,000 users reach hundreds of thousands of clusters.
type target struct {
	ci    int
	field string
	j     int
}

// access resolves one access entry into grants and reports whether it is
// still in force.
func (r *resolver) access(st *State, u UserDecl, method string, i int, a AccessDecl, grants userGrants) bool {
	path := func(more ...string) []string { return append([]string{"access", strconv.Itoa(i)}, more...) }
	at := func(sev Severity, p []string, format string, args ...any) {
		r.add(sev, InUser, u.Name, p, format, args...)
	}

	inForce := true
	if a.Expires != "" {
		d, err := time.Parse(DateLayout, a.Expires)
		switch {
		case err != nil || d.Format(DateLayout) != a.Expires:
			at(Error, path("expires"), "expires %s is not a real date (YYYY-MM-DD)", quote.ASCII(a.Expires))
		case a.Expires < r.date:
			at(Warning, path("expires"), "access expired on %s: it grants nothing and will be revoked; remove the entry", a.Expires)
			inForce = false
		}
	}
	if len(a.Clusters) == 0 && len(a.Environments) == 0 {
		at(Error, path(), "access entry names no clusters and no environments; add \"clusters\" or \"environments\"")
	}
	rolePrivs, roleKnown := r.roles[a.Role]
	if !roleKnown {
		at(Error, path("role"), "unknown role %s (known: %s)", quote.ASCII(a.Role), someOf(slices.Sorted(maps.Keys(r.roles))))
	}
	targets := r.targets[:0]
	defer func() { r.targets = targets[:0] }()
	for j, name := range a.Clusters {
		ci, ok := r.byName[name]
		if !ok {
			at(Error, path("clusters", strconv.Itoa(j)), "unknown cluster %s (known: %s)", quote.ASCII(name), someOf(slices.Sorted(maps.Keys(r.byName))))
			continue
		}
		targets = append(targets, target{ci, "clusters", j})
	}
	for j, env := range a.Environments {
		cis, ok := r.envs[env]
		if !ok {
			at(Error, path("environments", strconv.Itoa(j)), "unknown environment %s (known: %s)", quote.ASCII(env), someOf(slices.Sorted(maps.Keys(r.envs))))
			continue
		}
		for _, ci := range cis {
			targets = append(targets, target{ci, "environments", j})
		}
	}
	all := false
	for j, db := range a.Databases {
		if db == "*" {
			all = true
			if len(a.Databases) > 1 {
				at(Warning, path("databases", strconv.Itoa(j)), "\"*\" already means every database of the cluster; the other names are redundant")
			}
			continue
		}
		for _, t := range targets {
			if c := &st.Clusters[t.ci]; !r.managed[t.ci][db] {
				at(Error, path("databases", strconv.Itoa(j)), "database %s is not managed by cluster %s (it manages: %s)",
					quote.ASCII(db), c.Name, someOf(c.Databases))
			}
		}
	}
	// Per cluster: what the engine cannot do refuses the entry there.
	var usable map[int]bool
	if !r.checkOnly {
		usable = make(map[int]bool, len(targets))
	}
	for _, t := range targets {
		c := &st.Clusters[t.ci]
		ok := true
		if method == "iam" && !c.Engine.IAM {
			at(Error, path(t.field, strconv.Itoa(t.j)), "user %s uses iam authentication, but cluster %s runs %s, which has no IAM authentication; use password authentication",
				u.Name, c.Name, c.Engine.Name)
			ok = false
		}
		if roleKnown {
			for _, p := range rolePrivs {
				if !c.Flavor().Supports(p) {
					at(Error, path("role"), "role %s grants %s, which %s (cluster %s) does not have", a.Role, p, c.Engine.Name, c.Name)
					ok = false
				}
			}
		}
		if usable != nil {
			usable[t.ci] = ok // the same for every path that names the cluster
		}
	}
	if !inForce {
		return false
	}
	// Reviewer call-outs: powerful grants are legal but must be seen.
	switch a.Role {
	case "trusted_admin":
		at(Warning, path("role"), "trusted_admin grants every privilege on %s to %s: make sure a second reviewer approves", describeTargets(a), u.Name)
	case "admin":
		var prod []string
		for _, t := range targets {
			if c := st.Clusters[t.ci]; IsProduction(c.Environment) && !slices.Contains(prod, c.Name) {
				prod = append(prod, c.Name)
			}
		}
		if len(prod) > 0 {
			slices.Sort(prod)
			at(Warning, path("role"), "admin on production cluster(s) %s for %s: make sure a second reviewer approves", strings.Join(prod, ", "), u.Name)
		}
	}
	if !roleKnown || r.checkOnly {
		return true
	}
	for _, ci := range slices.Sorted(maps.Keys(usable)) {
		if !usable[ci] {
			continue
		}
		c := &st.Clusters[ci]
		privs, err := r.expand(a.Role, rolePrivs, c.Flavor())
		if err != nil {
			continue // reported above, as a privilege the engine lacks
		}
		dbs := a.Databases
		if all {
			dbs = c.Databases
		}
		for _, db := range dbs {
			if !r.managed[ci][db] {
				continue // reported above
			}
			if grants[ci] == nil {
				grants[ci] = map[string]*grantAcc{}
			}
			g := grants[ci][db]
			if g == nil {
				g = &grantAcc{privs: map[string]bool{}, roles: map[string]bool{}}
				grants[ci][db] = g
			}
			for _, p := range privs {
				g.privs[p] = true
			}
			g.roles[a.Role] = true
			if a.Expires == "" {
				g.forever = true
			} else if a.Expires > g.expires {
				g.expires = a.Expires
			}
		}
	}
	return true
}

func (r *resolver) expand(role string, privs []string, f flavor.Flavor) ([]string, error) {
	k := roleOn{role, f}
	if e, ok := r.expanded[k]; ok {
		return e.privs, e.err
	}
	if r.expanded == nil {
		r.expanded = map[roleOn]expansion{}
	}
	p, err := f.Expand(privs)
	r.expanded[k] = expansion{p, err}
	return p, err
}

func describeTargets(a AccessDecl) string {
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
