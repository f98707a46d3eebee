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
	"github.com/dbusers/dbusers/bot/internal/quote"
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

// Input is everything Diff compares.
type Input struct {
	Cluster desired.Cluster
	Server  *mysqlstate.Server
	// Prefix says which accounts are managed.
	Prefix desired.Prefix
	// Protected are account names never touched, beyond desired.SystemAccounts,
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
	// Users are the declared user names, fleet-wide: the drop of an
	// account named after one says whose it was.
	Users map[string]bool
	// Sessions says which removals end the sessions of the account that
	// loses access; only sessions the server's state holds
	// (Server.SessionsRead) are planned.
	Sessions desired.SessionPolicy
}

// InputFor is the input of one cluster of a desired state.
func InputFor(st *desired.State, c desired.Cluster, srv *mysqlstate.Server, passwords map[string]string) Input {
	return Input{Cluster: c, Server: srv, Prefix: st.Prefix, Protected: st.Protected, Limit: st.RemovalLimit,
		Roles: st.Roles, Passwords: passwords, Users: st.Users, Sessions: st.Sessions}
}

// Diff returns the changes that make the server match the cluster's desired
// state, in apply order, each account's changes together. It never plans a
// change to an account outside the prefix or to a protected account; it
// locks, rather than drops, an account that still defines stored objects;
// it ends the sessions of an account that loses access after the change
// that takes it; and it withholds removals past the removal limit.
func Diff(in Input) *Plan {
	p := &Plan{Cluster: in.Cluster.Name}
	d := differ{in: in, flavor: in.Server.Flavor, wildcard: in.Server.WildcardDatabaseNames(), ended: map[int64]bool{}}
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
		if slices.ContainsFunc(changes, Change.TakesAccess) && in.Sessions.OnRevoke {
			changes = append(changes, d.endSessions(id, acct.User, "access revoked")...)
		}
		p.Changes = append(p.Changes, changes...)
		p.Notes = append(p.Notes, notes...)
	}

	// Every managed account that is not declared here goes (or is locked,
	// if it still defines objects), unless the removal limit says this run
	// would remove too much at once.
	var removals [][]Change // each: the drop or lock, then its sessions
	locks := 0
	managed := 0
	for _, id := range sortedIDs(in.Server.Accounts) {
		if !in.Prefix.Owns(id.User) || d.protected(id.User) != "" {
			continue
		}
		managed++
		if declared[id] {
			continue
		}
		user := d.owner(id)
		if objects := in.Server.OwnedBy(id); len(objects) > 0 {
			live := in.Server.Accounts[id]
			switch {
			case !d.flavor.AccountLock():
				p.Notes = append(p.Notes, fmt.Sprintf("%s is kept: it is the definer of %s, and %s cannot lock accounts, so it can still log in; give its objects another definer and the next run drops it",
					id, listObjects(objects), d.flavor.Product()))
			case live.Locked:
				p.Notes = append(p.Notes, fmt.Sprintf("%s stays locked: it is still the definer of %s; give them another definer and the next run drops it",
					id, listObjects(objects)))
				if in.Sessions.OnLock {
					p.Changes = append(p.Changes, d.endSessions(id, user, "account locked")...)
				}
			default:
				c := Change{Account: id, User: user, Op: Lock{Objects: objects},
					Summary: fmt.Sprintf("lock %s instead of dropping it: it is the definer of %s; give them another definer (recreate them, or ALTER them with DEFINER = another account) and the next run drops it",
						id, listObjects(objects))}
				group := []Change{c}
				if in.Sessions.OnLock {
					group = append(group, d.endSessions(id, user, "account locked")...)
				}
				removals = append(removals, group)
				locks++
			}
			continue
		}
		group := []Change{{Account: id, User: user, Op: Drop{}, Summary: d.dropSentence(id)}}
		if in.Sessions.OnDrop {
			group = append(group, d.endSessions(id, user, "account dropped")...)
		}
		removals = append(removals, group)
	}
	if allowed := in.Limit.Allowed(managed); len(removals) > allowed {
		what := "dropped"
		if locks > 0 {
			what = "dropped or locked"
		}
		for _, g := range removals {
			p.Held = append(p.Held, g[0]) // its sessions stay: nothing was taken
		}
		p.LimitTripped = fmt.Sprintf("removal limit tripped on %s: %d of %d managed accounts would be %s, the limit allows %d (max of %d and %.0f%%); nothing is %s, everything else applies",
			in.Cluster.Name, len(removals), managed, what, allowed, in.Limit.Count, in.Limit.Fraction*100, what)
	} else {
		for _, g := range removals {
			p.Changes = append(p.Changes, g...)
		}
	}
	return p
}

// owner returns the declared user an account of the prefix belongs to: the
// name after the prefix when a user file declares it and the account is
// at '%', the only host dbusers creates. Otherwise "" (a hand-made account,
// or a shadow at another host, is nobody's).
func (d *differ) owner(id mysqlstate.AccountID) string {
	if u := d.in.Prefix.User(id.User); id.Host == Host && d.in.Users[u] {
		return u
	}
	return ""
}

// dropSentence says why an account of the namespace goes: every
// <prefix>_… account at any host is dbusers', and dbusers keeps only the
// ones the configuration grants something at '%'.
func (d *differ) dropSentence(id mysqlstate.AccountID) string {
	u := d.in.Prefix.User(id.User)
	switch {
	case !desired.DeclarableName(u):
		return fmt.Sprintf("drop %s: %s is not a declarable user name (lowercase letters, digits and _), so no user file can own it", id, quote.ASCII(u))
	case id.Host != Host:
		return fmt.Sprintf("drop %s: dbusers manages %s only at '%%'", id, id.User)
	case d.in.Users[u]:
		return fmt.Sprintf("drop %s: the configuration grants it nothing on %s", id.User, d.in.Cluster.Name)
	}
	return fmt.Sprintf("drop %s: no user file declares %s", id.User, u)
}

// endSessions ends, once per plan, the open sessions of id's user name.
// The processlist names users, not accounts (hosts): every session of the
// name ends, and one of an account that keeps its access reconnects.
func (d *differ) endSessions(id mysqlstate.AccountID, user, why string) []Change {
	via := KillConnection
	if d.in.Cluster.Engine.RDS {
		via = RDSKill
	}
	var out []Change
	for _, s := range d.in.Server.SessionsOf(id.User) {
		if d.ended[s.ID] {
			continue
		}
		d.ended[s.ID] = true
		where := s.Client
		if s.DB != "" {
			where += ", database " + s.DB
		}
		out = append(out, Change{Account: id, User: user, Op: Disconnect{Session: s, Via: via},
			Summary: fmt.Sprintf("end session %d of %s (%s): %s", s.ID, id.User, where, why)})
	}
	return out
}

// SessionsToEnd returns the changes that end the open sessions (in
// srv.Sessions, read after changes were applied) of the accounts that
// changes took access from, as policy says, once per session. The engine
// ends sessions with these rather than with the plan's own: a session
// opened between the plan's read and the revoke holds the old privileges
// too.
func SessionsToEnd(changes []Change, srv *mysqlstate.Server, c desired.Cluster, policy desired.SessionPolicy) []Change {
	d := differ{in: Input{Cluster: c, Server: srv}, ended: map[int64]bool{}}
	var out []Change
	for _, ch := range changes {
		var why string
		var on bool
		switch ch.Op.(type) {
		case Drop:
			why, on = "account dropped", policy.OnDrop
		case Lock:
			why, on = "account locked", policy.OnLock
		default:
			why, on = "access revoked", policy.OnRevoke && ch.TakesAccess()
		}
		if on {
			out = append(out, d.endSessions(ch.Account, ch.User, why)...)
		}
	}
	return out
}

// listObjects names stored objects for a sentence, at most five of them.
func listObjects(objects []mysqlstate.StoredObject) string {
	var names []string
	for _, o := range objects[:min(len(objects), 5)] {
		names = append(names, o.String())
	}
	s := strings.Join(names, ", ")
	if len(objects) > 5 {
		s += fmt.Sprintf(" and %d more", len(objects)-5)
	}
	return s
}

type differ struct {
	in       Input
	flavor   flavor.Flavor
	wildcard bool
	// ended are the sessions the plan ends already.
	ended map[int64]bool
	// names maps a sorted privilege list (joined with ",") to the role
	// names whose templates expand to it on this flavor.
	names map[string]string
}

// protected returns why an account must not be touched, or "".
func (d *differ) protected(name string) string {
	switch {
	case desired.SystemAccount(name):
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
		} else if live.PasswordExpired {
			// Setting the authentication again is what clears it.
			add(fmt.Sprintf("reset the expired password of %s: PASSWORD EXPIRE was set by hand, and the account could only change its password", acct.Name),
				SetAuth{Auth: *want})
		}
		switch r, what := d.reset(live); {
		case what == "":
		case d.flavor.AccountOptions():
			add(fmt.Sprintf("reset %s of %s to what dbusers creates: set by hand", what, acct.Name), r)
		default:
			notes = append(notes, fmt.Sprintf("%s has %s set by hand, which %s cannot reset", acct.Name, what, d.flavor.Product()))
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
	if len(live.DefaultRoles) > 0 && d.flavor.DefaultRolesClause() != "" {
		var names []string
		for _, r := range live.DefaultRoles {
			names = append(names, r.String())
		}
		add(fmt.Sprintf("clear the default roles of %s (%s): roles are not managed by dbusers", acct.Name, strings.Join(names, ", ")), ClearDefaults{})
	}
	for _, r := range live.Routines {
		add(fmt.Sprintf("revoke %s on %s %s.%s from %s: dbusers grants per database only", strings.Join(r.Privileges, ", "),
			strings.ToLower(r.Type), r.Database, r.Name, acct.Name),
			RevokeRoutine{Database: r.Database, Routine: r.Name, Type: r.Type, Privileges: r.Privileges})
	}
	for _, px := range live.Proxies {
		add(fmt.Sprintf("revoke PROXY on %s from %s: dbusers grants no proxy rights", px, acct.Name), RevokeProxy{Proxied: px})
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

// reset returns the Reset that puts an account's password lifetime and
// resource limits back to the defaults dbusers creates accounts with, and
// what it resets in words; "" when nothing needs it.
func (d *differ) reset(live *mysqlstate.Account) (Reset, string) {
	var r Reset
	var what []string
	if live.PasswordLifetime != "" {
		r.PasswordLifetime = true
		what = append(what, fmt.Sprintf("the password lifetime (%s days)", live.PasswordLifetime))
	}
	if live.Limits != (mysqlstate.Limits{}) {
		r.Limits = true
		l := live.Limits
		var set []string
		for _, x := range []struct {
			name string
			v    int64
		}{{"MAX_QUERIES_PER_HOUR", l.Queries}, {"MAX_UPDATES_PER_HOUR", l.Updates}, {"MAX_CONNECTIONS_PER_HOUR", l.Connections}, {"MAX_USER_CONNECTIONS", l.UserConnections}} {
			if x.v != 0 {
				set = append(set, fmt.Sprintf("%s %d", x.name, x.v))
			}
		}
		what = append(what, "the resource limits ("+strings.Join(set, ", ")+")")
	}
	return r, strings.Join(what, " and ")
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
