package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/privset"
)

// Host is the host part of every account dbusers creates. People and
// services connect from changing addresses; network policy, not the account
// name, decides who can reach a cluster.
const Host = "%"

// IAMPlugin and IAMAuthString are what RDS stores for an IAM account.
const (
	IAMPlugin     = "AWSAuthenticationPlugin"
	IAMAuthString = "RDS"
	// PasswordPlugin is what most flavors create password accounts with;
	// flavor.Flavor.PasswordPlugin says which one a server uses.
	PasswordPlugin = "mysql_native_password"
)

// BuiltinProtected are accounts no run ever touches, whatever the prefix:
// the RDS and MySQL system accounts.
var BuiltinProtected = []string{"rdsadmin", "rds_superuser_role", "rdsrepladmin", "root"}

// Input is everything Diff compares.
type Input struct {
	Cluster desired.Cluster
	Server  *mysqlstate.Server
	// Prefix says which accounts are managed.
	Prefix desired.Prefix
	// Protected are account names never touched, beyond BuiltinProtected,
	// mysql.* and the account the session logged in as.
	Protected []string
	Limit     desired.RemovalLimit
	// Roles are the role templates' privileges (ALL PRIVILEGES unexpanded),
	// used to name a live privilege set in sentences ("write → read").
	Roles map[string][]string
	// Passwords maps a password secret reference to the password it holds.
	// A password user whose secret is absent is skipped, never created
	// without a password.
	Passwords map[string]string
}

// Diff returns the changes that make the server match the cluster's desired
// state, in apply order. It never plans a change to an account outside the
// prefix or to a protected account, and it withholds drops past the removal
// limit.
func Diff(in Input) *Plan {
	p := &Plan{Cluster: in.Cluster.Name}
	d := differ{in: in, flavor: in.Server.Flavor, wildcard: in.Server.WildcardDatabaseNames()}
	d.names = d.roleNames()

	declared := map[mysqlstate.AccountID]bool{}
	for _, acct := range in.Cluster.Accounts {
		id := mysqlstate.AccountID{User: acct.Name, Host: Host}
		declared[id] = true
		if reason := d.protected(acct.Name); reason != "" {
			p.Skipped = append(p.Skipped, Skip{User: acct.User, Reason: reason})
			continue
		}
		if !in.Prefix.Owns(acct.Name) {
			p.Skipped = append(p.Skipped, Skip{User: acct.User, Reason: fmt.Sprintf("account %s does not start with %s", acct.Name, in.Prefix.Namespace())})
			continue
		}
		changes, skip, notes := d.account(acct, in.Server.Accounts[id])
		if skip != "" {
			p.Skipped = append(p.Skipped, Skip{User: acct.User, Reason: skip})
			continue
		}
		p.Changes = append(p.Changes, changes...)
		p.Notes = append(p.Notes, notes...)
	}

	// Every managed account that is not declared here goes, unless the
	// removal limit says this run would remove too much at once.
	var drops []Change
	managed := 0
	for _, id := range sortedIDs(in.Server.Accounts) {
		if !in.Prefix.Owns(id.User) || d.protected(id.User) != "" {
			continue
		}
		managed++
		if declared[id] {
			continue
		}
		c := Change{Account: id, User: in.Prefix.User(id.User), Op: Drop{}}
		if id.Host == Host {
			c.Summary = fmt.Sprintf("drop %s: the configuration grants it nothing on %s", id.User, in.Cluster.Name)
		} else {
			c.Summary = fmt.Sprintf("drop %s: dbusers manages only host '%%'", id)
		}
		drops = append(drops, c)
	}
	if allowed := in.Limit.Allowed(managed); len(drops) > allowed {
		p.Held = drops
		p.LimitTripped = fmt.Sprintf("removal limit tripped on %s: %d of %d managed accounts would be dropped, the limit allows %d (max of %d and %.0f%%); nothing is dropped, everything else applies",
			in.Cluster.Name, len(drops), managed, allowed, in.Limit.Count, in.Limit.Fraction*100)
	} else {
		p.Changes = append(p.Changes, drops...)
	}
	return p
}

type differ struct {
	in       Input
	flavor   flavor.Flavor
	wildcard bool
	// names maps a sorted privilege list (joined with ",") to the role
	// names whose templates expand to it on this flavor.
	names map[string]string
}

// protected returns why an account must not be touched, or "".
func (d *differ) protected(name string) string {
	switch {
	case slices.Contains(BuiltinProtected, name), strings.HasPrefix(name, "mysql."):
		return fmt.Sprintf("%s is a system account", name)
	case name == d.in.Server.CurrentUser.User:
		return fmt.Sprintf("%s is the admin account dbusers logs in as", name)
	case slices.Contains(d.in.Protected, name):
		return fmt.Sprintf("%s is protected in dbusers.json", name)
	}
	return ""
}

func (d *differ) roleNames() map[string]string {
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(d.in.Roles)) {
		privs, err := d.flavor.Expand(d.in.Roles[name])
		if err != nil {
			continue
		}
		key := strings.Join(privs, ",")
		if prev, ok := out[key]; ok {
			out[key] = prev + "/" + name
		} else {
			out[key] = name
		}
	}
	return out
}

// describe names a privilege set by its role when one matches exactly.
func (d *differ) describe(privs []string) string {
	if len(privs) == 0 {
		return "none"
	}
	if name, ok := d.names[strings.Join(privs, ",")]; ok {
		return name
	}
	return strings.Join(privs, ", ")
}

// wantAuth returns the authentication an account must have, or why it
// cannot be reconciled.
func (d *differ) wantAuth(acct desired.Account) (*Auth, string) {
	switch acct.Auth.Method {
	case "iam":
		if !d.in.Cluster.Engine.IAM {
			return nil, fmt.Sprintf("iam authentication is not available on %s", d.in.Cluster.Engine.Name)
		}
		return &Auth{Method: "iam", RequireSSL: true}, ""
	case "password":
		pw, ok := d.in.Passwords[acct.Auth.Secret]
		if !ok || pw == "" {
			return nil, fmt.Sprintf("password secret %s is missing or has no password; the account is left as it is", acct.Auth.Secret)
		}
		// A cluster the bot reaches over TLS can serve TLS to everyone:
		// service passwords then never cross the network in clear.
		requireSSL := !d.in.Cluster.TLSDisabled() && d.flavor.EnforcesRequireSSL()
		return &Auth{Method: "password", SecretRef: acct.Auth.Secret, Password: pw, RequireSSL: requireSSL}, ""
	}
	return nil, fmt.Sprintf("unknown authentication %q", acct.Auth.Method)
}

// authMatches reports whether the live account authenticates as want, and
// whether only the password differs.
func (d *differ) authMatches(want *Auth, live *mysqlstate.Account) (match, rotate bool) {
	// A server that does not enforce REQUIRE has nothing to compare.
	sslOK := !d.flavor.EnforcesRequireSSL() || live.RequireSSL == want.RequireSSL
	switch want.Method {
	case "iam":
		return live.Plugin == IAMPlugin && live.AuthString == IAMAuthString && sslOK, false
	default:
		// MySQL 8 may hold the account with its default plugin already:
		// with the declared password, that is as good as ours.
		if d.flavor.AcceptsCachingSHA2() && live.Plugin == mysqlstate.CachingSHA2Plugin &&
			mysqlstate.CachingSHA2Matches(live.AuthString, want.Password) {
			return sslOK, false
		}
		// Where dbusers sets caching_sha2_password itself, a mismatch
		// above is a password to rotate.
		samePlugin := live.Plugin == d.flavor.PasswordPlugin()
		samePassword := samePlugin && live.AuthString == mysqlstate.NativePasswordHash(want.Password)
		return samePassword && sslOK, samePlugin && !samePassword && sslOK
	}
}

func (d *differ) account(acct desired.Account, live *mysqlstate.Account) (changes []Change, skip string, notes []string) {
	id := mysqlstate.AccountID{User: acct.Name, Host: Host}
	want, skip := d.wantAuth(acct)
	if skip != "" {
		return nil, skip, nil
	}
	add := func(summary string, op Op) {
		changes = append(changes, Change{Account: id, User: acct.User, Summary: summary, Op: op})
	}
	if live == nil {
		add(fmt.Sprintf("create %s (%s, %s authentication) for %s", acct.Name, acct.Kind, want.Method, acct.Owner), NewAccount{Auth: *want})
		live = &mysqlstate.Account{ID: id}
	} else {
		if match, rotate := d.authMatches(want, live); !match {
			auth := *want
			var summary string
			if rotate {
				auth.Rotate = true
				summary = fmt.Sprintf("rotate the password of %s (secret %s changed)", acct.Name, want.SecretRef)
			} else if d.sameMethod(live, want) && live.RequireSSL != want.RequireSSL {
				if want.RequireSSL {
					summary = fmt.Sprintf("require TLS for %s (REQUIRE SSL)", acct.Name)
				} else {
					summary = fmt.Sprintf("drop the TLS requirement of %s (REQUIRE NONE)", acct.Name)
				}
			} else {
				summary = fmt.Sprintf("change authentication of %s: %s → %s", acct.Name, liveAuth(live), describeAuth(want))
			}
			add(summary, SetAuth{Auth: auth})
		}
		if live.Locked {
			notes = append(notes, fmt.Sprintf("%s is locked on %s; dbusers leaves lock state to operators", acct.Name, d.in.Cluster.Name))
		}
	}

	// Anything the configuration cannot express goes: roles, global
	// privileges, table and column grants.
	for _, role := range live.Roles {
		add(fmt.Sprintf("revoke role %s from %s: roles are not managed by dbusers", role, acct.Name), RevokeRoleGrant{Role: role})
	}
	if len(live.Global) > 0 {
		add(fmt.Sprintf("revoke global %s from %s: dbusers grants per database only", strings.Join(live.Global, ", "), acct.Name),
			RevokeGlobal{Privileges: live.Global})
	}
	for _, t := range live.Tables {
		ref := DatabaseRef{Database: d.unescape(t.Database), Pattern: t.Database}
		what := t.Database + "." + t.Table
		var op Op = RevokeTable{DatabaseRef: ref, Table: t.Table, Privileges: t.Privileges}
		if t.Column != "" {
			what += "." + t.Column
			op = RevokeColumn{DatabaseRef: ref, Table: t.Table, Column: t.Column, Privileges: t.Privileges}
		}
		add(fmt.Sprintf("revoke %s on %s from %s: dbusers grants per database only", strings.Join(t.Privileges, ", "), what, acct.Name), op)
	}

	wantDB := map[string]desired.Grant{}
	for _, g := range acct.Grants {
		wantDB[flavor.DatabasePattern(g.Database, d.wildcard)] = g
	}
	patterns := slices.Sorted(maps.Keys(live.Databases))
	for p := range wantDB {
		if _, ok := live.Databases[p]; !ok {
			patterns = append(patterns, p)
		}
	}
	slices.Sort(patterns)
	for _, pattern := range patterns {
		have := live.Databases[pattern]
		g, wanted := wantDB[pattern]
		ref := DatabaseRef{Database: g.Database, Pattern: pattern}
		if !wanted {
			ref.Database = d.unescape(pattern)
		}
		delta := privset.Compare(have, g.Privileges)
		if delta.Empty() {
			continue
		}
		from, to := d.describe(have), d.describe(g.Privileges)
		if wanted {
			to = strings.Join(g.Roles, "+")
		}
		db := ref.Database
		var verb string
		switch delta.Kind {
		case privset.Grant:
			verb = fmt.Sprintf("grant %s on %s to %s", to, db, acct.Name)
		case privset.Revoke:
			verb = fmt.Sprintf("revoke %s on %s from %s: no longer granted", from, db, acct.Name)
		default: // elevate, downgrade, change
			verb = fmt.Sprintf("%s %s on %s: %s → %s", delta.Kind, acct.Name, db, from, to)
		}
		if g.Expires != "" && len(delta.Added) > 0 {
			verb += fmt.Sprintf(" (until %s)", g.Expires)
		}
		if len(delta.Removed) > 0 {
			add(verb, RevokeDatabase{DatabaseRef: ref, Privileges: delta.Removed})
		}
		if len(delta.Added) > 0 {
			add(verb, GrantDatabase{DatabaseRef: ref, Privileges: delta.Added})
		}
	}
	return changes, "", notes
}

func liveAuth(a *mysqlstate.Account) string {
	switch a.Plugin {
	case IAMPlugin:
		return "iam"
	case PasswordPlugin:
		if a.RequireSSL {
			return "password with REQUIRE SSL"
		}
		return "password"
	case "":
		return "no plugin"
	}
	return a.Plugin
}

// sameMethod reports whether the live account already uses the wanted
// method (the password itself may still differ).
func (d *differ) sameMethod(live *mysqlstate.Account, want *Auth) bool {
	switch want.Method {
	case "iam":
		return live.Plugin == IAMPlugin && live.AuthString == IAMAuthString
	default:
		return live.Plugin == d.flavor.PasswordPlugin()
	}
}

func describeAuth(a *Auth) string {
	if a.Method == "iam" {
		return "iam"
	}
	return "password from " + a.SecretRef
}

// unescape turns a stored database pattern back into the name people read.
func (d *differ) unescape(pattern string) string {
	if !d.wildcard {
		return pattern
	}
	name, _ := flavor.UnescapeDatabasePattern(pattern)
	return name
}

func sortedIDs(m map[mysqlstate.AccountID]*mysqlstate.Account) []mysqlstate.AccountID {
	ids := slices.Collect(maps.Keys(m))
	slices.SortFunc(ids, func(a, b mysqlstate.AccountID) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Host, b.Host)
	})
	return ids
}
