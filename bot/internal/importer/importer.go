// Package importer proposes the declarations that reproduce a live
// cluster's managed accounts as they are: one user file per
// <prefix>_<name> account, merged into the files that exist (it adds
// access entries, never removes any), privilege sets named by the role
// templates that match them exactly or, where none does, by a proposed
// role template, and everything a declaration cannot say listed per
// account for a person to decide. It is how a team adopts dbusers on a
// fleet that already has accounts: import, review the pull request, merge,
// and the first run changes nothing it was not told about.
//
// The package is pure: it reads the live state mysqlstate read and the
// repository's declarations, and returns files' contents; the CLI reads
// the server and writes the files.
package importer

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// Input is what an import reads.
type Input struct {
	// Config is the repository's declarations, which must validate; Files
	// maps a user's name to its file's bytes as they are on disk.
	Config *config.Config
	Files  map[string][]byte
	// Settings is dbusers.json as it is on disk (for proposed roles).
	Settings []byte
	// Cluster is the cluster file's name; Server its live state.
	Cluster string
	Server  *mysqlstate.Server
	// Passwords maps password secret references to passwords, when known:
	// the check of what a run would still change compares them.
	Passwords map[string]string
	Today     time.Time
}

// Result is what an import proposes.
type Result struct {
	Cluster string `json:"cluster"`
	// Files are the user files to create or extend, sorted by path.
	Files []File `json:"files"`
	// Roles are role templates to add to dbusers.json, and Settings its
	// new content (nil when no role is proposed).
	Roles    []Role `json:"roles,omitempty"`
	Settings []byte `json:"-"`
	// Secrets are the password secrets the team must create, each with the
	// account's current password.
	Secrets []Secret `json:"secrets,omitempty"`
	// Leftovers are, per account, what no declaration can say: a run
	// leaves some of it (other hosts, unmanaged databases) and revokes the
	// rest (global, table, routine grants); see Remaining.
	Leftovers []Leftover `json:"leftovers,omitempty"`
	// Remaining are the changes a run would still make to the imported
	// accounts once the proposal is merged (the revokes of what cannot be
	// declared, a REQUIRE SSL, reset options), or why it cannot tell.
	Remaining []string `json:"remaining,omitempty"`
	// Covered counts the managed accounts the declarations already
	// reproduce exactly.
	Covered int `json:"covered"`
}

// File is one user file's proposal.
type File struct {
	Path    string `json:"path"`
	User    string `json:"user"`
	Account string `json:"account"`
	// Created is true for a new file; otherwise entries are appended.
	Created bool   `json:"created"`
	Old     []byte `json:"-"`
	New     []byte `json:"-"`
	// Added are the access entries added, as they read in the file.
	Added []string `json:"added"`
}

// Role is a proposed role template.
type Role struct {
	Name       string   `json:"name"`
	Extends    []string `json:"extends,omitempty"`
	Privileges []string `json:"privileges"`
	// Accounts are the accounts whose grants it names.
	Accounts []string `json:"accounts"`
}

// Secret is a password secret to create.
type Secret struct {
	Ref     string `json:"secret"`
	Account string `json:"account"`
}

// Leftover is what a declaration cannot say about one account.
type Leftover struct {
	Account string   `json:"account"`
	What    []string `json:"what"`
}

// builtinOrder is the order role names are preferred in when several
// match one privilege set exactly.
var builtinOrder = []string{"read", "write", "admin", "trusted_admin"}

// Import proposes declarations for the managed accounts of in.Server.
func Import(in Input) (*Result, error) {
	st, err := config.Desired(in.Config, in.Today)
	if err != nil {
		return nil, fmt.Errorf("the declarations do not resolve (run dbusers validate): %w", err)
	}
	want, ok := st.Find(in.Cluster)
	if !ok {
		return nil, fmt.Errorf("no cluster file declares %q", in.Cluster)
	}
	var clusterFile config.Cluster
	for _, c := range in.Config.Clusters {
		if c.Name == in.Cluster {
			clusterFile = c
		}
	}
	im := &importer{in: in, st: st, want: want, flv: want.Flavor(), wildcard: in.Server.WildcardDatabaseNames(),
		res: &Result{Cluster: in.Cluster}, proposed: map[string]*Role{}, users: map[string]config.User{}}
	for _, u := range in.Config.Users {
		im.users[u.Name] = u
	}
	im.names = im.roleNames()
	declared := map[string]desired.Account{}
	for _, a := range want.Accounts {
		declared[a.Name] = a
	}
	ids := slices.SortedFunc(maps.Keys(in.Server.Accounts), func(a, b mysqlstate.AccountID) int {
		return cmp.Or(strings.Compare(a.User, b.User), strings.Compare(a.Host, b.Host))
	})
	for _, id := range ids {
		im.account(in.Server.Accounts[id], declared)
	}
	if err := im.finish(clusterFile); err != nil {
		return nil, err
	}
	return im.res, nil
}

type importer struct {
	in       Input
	st       *desired.State
	want     *desired.Cluster
	flv      flavor.Flavor
	wildcard bool
	res      *Result
	// names maps a sorted privilege list (joined by ",") to the role that
	// grants exactly it on this cluster's engine.
	names    map[string]string
	proposed map[string]*Role // by privilege list
	users    map[string]config.User
	// entries are the access entries to add, by user.
	entries map[string][]config.Access
	imports []string // accounts imported, for the check
}

func (im *importer) roleNames() map[string]string {
	out := map[string]string{}
	names := slices.Sorted(maps.Keys(im.st.Roles))
	slices.SortStableFunc(names, func(a, b string) int {
		ia, ib := slices.Index(builtinOrder, a), slices.Index(builtinOrder, b)
		if ia < 0 {
			ia = len(builtinOrder)
		}
		if ib < 0 {
			ib = len(builtinOrder)
		}
		return ia - ib
	})
	for _, n := range names {
		privs, err := im.flv.Expand(im.st.Roles[n])
		if err != nil {
			continue
		}
		if k := strings.Join(privs, ","); out[k] == "" {
			out[k] = n
		}
	}
	return out
}

func (im *importer) leftover(acct string, format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	for i := range im.res.Leftovers {
		if im.res.Leftovers[i].Account == acct {
			im.res.Leftovers[i].What = append(im.res.Leftovers[i].What, what)
			return
		}
	}
	im.res.Leftovers = append(im.res.Leftovers, Leftover{Account: acct, What: []string{what}})
}

// account proposes the access of one live account.
func (im *importer) account(a *mysqlstate.Account, declared map[string]desired.Account) {
	id := a.ID.String()
	name := im.st.Prefix.User(a.ID.User)
	switch {
	case desired.SystemAccount(a.ID.User) || slices.Contains(im.st.Protected, a.ID.User) || a.ID == im.in.Server.CurrentUser:
		return // never managed: not dbusers' to declare
	case a.Locked && a.AuthString == "" && a.Plugin != plan.IAMPlugin:
		im.leftover(id, "locked and without a password: a role, or a disabled account; not imported")
		return
	case !desired.DeclarableName(name) || len(a.ID.User) > 32:
		im.leftover(id, "its name after the prefix, %q, cannot be a user file's (lowercase letters, digits and _, starting with a letter): not imported, and a run drops it, as it drops every account of the prefix no user file declares; rename it, or protect it in dbusers.json", name)
		return
	case a.ID.Host != plan.Host:
		im.leftover(id, "at host %q: dbusers manages accounts at '%%' only, so it is not imported and a run drops it; its clients must log in as %s@'%%' (declare %s for that)", a.ID.Host, a.ID.User, name)
		return
	}
	// Database grants: a role per managed database.
	byRole := map[string][]string{}
	live := map[string][]string{}
	for _, pattern := range slices.Sorted(maps.Keys(a.Databases)) {
		privs := a.Databases[pattern]
		db, ok := im.managed(pattern)
		if !ok {
			im.leftover(id, "%s on %s, which the cluster file does not manage", strings.Join(privs, ", "), pattern)
			continue
		}
		live[db] = privs
		byRole[im.roleFor(privs, id)] = append(byRole[im.roleFor(privs, id)], db)
	}
	if len(a.Global) > 0 {
		im.leftover(id, "global privileges %s: dbusers grants per database only", strings.Join(a.Global, ", "))
	}
	for _, t := range a.Tables {
		on := t.Database + "." + t.Table
		if t.Column != "" {
			on += " (" + t.Column + ")"
		}
		im.leftover(id, "%s on %s: dbusers grants whole databases only", strings.Join(t.Privileges, ", "), on)
	}
	for _, r := range a.Routines {
		im.leftover(id, "%s on %s %s.%s", strings.Join(r.Privileges, ", "), strings.ToLower(r.Type), r.Database, r.Name)
	}
	for _, p := range a.Proxies {
		im.leftover(id, "PROXY on %s", p)
	}
	for _, r := range a.Roles {
		im.leftover(id, "the role %s", r)
	}
	if a.Locked {
		im.leftover(id, "the account is locked: a run leaves a locked account as it is")
	}

	// What the declarations already grant here is kept; only what is
	// missing is added.
	have := map[string][]string{}
	if d, ok := declared[a.ID.User]; ok {
		for _, g := range d.Grants {
			have[g.Database] = g.Privileges
		}
	}
	var add []config.Access
	for _, role := range slices.Sorted(maps.Keys(byRole)) {
		var dbs []string
		for _, db := range byRole[role] {
			if !slices.Equal(have[db], live[db]) {
				dbs = append(dbs, db)
			}
		}
		if len(dbs) == 0 {
			continue
		}
		if slices.Equal(dbs, slices.Sorted(slices.Values(im.want.Databases))) && len(dbs) > 1 {
			dbs = []string{"*"}
		}
		add = append(add, config.Access{Clusters: []string{im.in.Cluster}, Databases: dbs, Role: role})
	}
	for db, privs := range have {
		if _, ok := live[db]; !ok || !isSubset(privs, live[db]) {
			im.leftover(id, "declared %s on %s, the server has %s: the run grants what is declared (import never removes a declaration)",
				strings.Join(privs, ", "), db, orNone(live[db]))
		}
	}
	im.imports = append(im.imports, a.ID.User)
	if len(add) == 0 {
		if _, ok := im.users[name]; ok {
			im.res.Covered++
			return
		}
	}
	if im.entries == nil {
		im.entries = map[string][]config.Access{}
	}
	u, exists := im.users[name]
	if !exists {
		u = config.User{Schema: "../schema/user.schema.json", Name: name,
			Description: fmt.Sprintf("Imported from %s on %s by dbusers import: check the owner and kind.", im.in.Cluster, im.in.Today.UTC().Format(desired.DateLayout)),
			Owner:       "unknown (imported from " + im.in.Cluster + ")"}
		if a.Plugin == plan.IAMPlugin {
			u.Kind, u.Auth = "human", config.UserAuth{Type: "iam"}
		} else {
			u.Kind, u.Auth = "service", config.UserAuth{Type: "password", Secret: "dbusers/" + name}
		}
		im.users[name] = u
	}
	if u.Auth.Method() == "password" && a.Plugin != plan.IAMPlugin && !slices.ContainsFunc(im.res.Secrets, func(s Secret) bool { return s.Ref == u.Auth.Secret }) {
		if _, known := im.in.Passwords[u.Auth.Secret]; !known {
			im.res.Secrets = append(im.res.Secrets, Secret{Ref: u.Auth.Secret, Account: a.ID.User})
		}
	}
	if a.Plugin == plan.IAMPlugin && u.Auth.Method() != "iam" || a.Plugin != plan.IAMPlugin && u.Auth.Method() == "iam" {
		im.leftover(id, "the server authenticates it with %s, %s declares %s: the run changes it to what is declared", orNone([]string{a.Plugin}), name, u.Auth.Method())
	}
	im.entries[name] = append(im.entries[name], add...)
}

// managed returns the managed database a stored pattern names.
func (im *importer) managed(pattern string) (string, bool) {
	for _, db := range im.want.Databases {
		if flavor.DatabasePattern(db, im.wildcard) == pattern {
			return db, true
		}
	}
	return "", false
}

// roleFor names a live privilege set: the role that grants exactly it,
// or a proposed one that extends the largest role it contains.
func (im *importer) roleFor(privs []string, account string) string {
	key := strings.Join(privs, ",")
	if n, ok := im.names[key]; ok {
		return n
	}
	if r, ok := im.proposed[key]; ok {
		if !slices.Contains(r.Accounts, account) {
			r.Accounts = append(r.Accounts, account)
		}
		return r.Name
	}
	base, baseLen := "", 0
	for k, n := range im.names {
		set := strings.Split(k, ",")
		if isSubset(set, privs) && len(set) > baseLen {
			base, baseLen = n, len(set)
		}
	}
	r := &Role{Privileges: privs, Accounts: []string{account}}
	name := "imported"
	if base != "" {
		name = base
		r.Extends = []string{base}
		b, _ := im.flv.Expand(im.st.Roles[base])
		r.Privileges = minus(privs, b)
	}
	for _, p := range r.Privileges {
		name += "_" + strings.ToLower(strings.NewReplacer(" ", "", "_", "").Replace(p))
	}
	r.Name = im.uniqueRole(name)
	im.proposed[key] = r
	return r.Name
}

// uniqueRole keeps a proposed name within the schema's 32 characters and
// clear of existing and other proposed roles.
func (im *importer) uniqueRole(name string) string {
	if len(name) > 28 {
		name = strings.TrimRight(name[:28], "_")
	}
	taken := func(n string) bool {
		if _, ok := im.st.Roles[n]; ok {
			return true
		}
		for _, r := range im.proposed {
			if r.Name == n {
				return true
			}
		}
		return false
	}
	out := name
	for i := 2; taken(out); i++ {
		out = fmt.Sprintf("%s_%d", name, i)
	}
	return out
}

// finish renders the files, the roles, and checks what a run would still
// change.
func (im *importer) finish(clusterFile config.Cluster) error {
	for _, name := range slices.Sorted(maps.Keys(im.entries)) {
		adds := im.entries[name]
		u := im.users[name]
		old, exists := im.in.Files[name]
		f := File{Path: "users/" + name + ".json", User: name, Account: im.st.Prefix.Account(name), Created: !exists, Old: old}
		for _, a := range adds {
			f.Added = append(f.Added, accessLine(a))
		}
		var err error
		if exists {
			if len(adds) == 0 {
				continue
			}
			if f.New, err = appendAccess(old, adds); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		} else {
			u.Access = adds
			f.New = renderUser(u)
		}
		im.res.Files = append(im.res.Files, f)
	}
	for _, r := range im.proposed {
		im.res.Roles = append(im.res.Roles, *r)
	}
	slices.SortFunc(im.res.Roles, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	if len(im.res.Roles) > 0 {
		var err error
		if im.res.Settings, err = addRoles(im.in.Settings, im.res.Roles); err != nil {
			return fmt.Errorf("dbusers.json: %w", err)
		}
	}
	im.res.Remaining = im.check()
	return nil
}

// check plans the cluster with the proposal merged, and lists the changes
// a run would still make to the imported accounts.
func (im *importer) check() []string {
	cfg := *im.in.Config
	cfg.Users = nil
	for _, name := range slices.Sorted(maps.Keys(im.users)) {
		u := im.users[name]
		u.Access = append(slices.Clone(u.Access), im.entries[name]...)
		cfg.Users = append(cfg.Users, u)
	}
	if len(im.res.Roles) > 0 {
		cfg.Settings.Roles = maps.Clone(cfg.Settings.Roles)
		if cfg.Settings.Roles == nil {
			cfg.Settings.Roles = map[string]config.Role{}
		}
		for _, r := range im.res.Roles {
			cfg.Settings.Roles[r.Name] = config.Role{Extends: r.Extends, Privileges: r.Privileges}
		}
	}
	st, err := config.Desired(&cfg, im.in.Today)
	if err != nil {
		return []string{"the proposal does not resolve: " + err.Error()}
	}
	c, _ := st.Find(im.in.Cluster)
	p := plan.Diff(plan.InputFor(st, *c, im.in.Server, im.in.Passwords))
	var out []string
	for _, ch := range p.Changes {
		if slices.Contains(im.imports, ch.Account.User) {
			out = append(out, ch.Summary)
		}
	}
	for _, s := range p.Skipped {
		if slices.Contains(im.imports, im.st.Prefix.Account(s.User)) {
			out = append(out, fmt.Sprintf("%s: %s (not compared)", s.User, s.Reason))
		}
	}
	return out
}

func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 || len(s) == 1 && s[0] == "" {
		return "nothing"
	}
	return strings.Join(s, ", ")
}
