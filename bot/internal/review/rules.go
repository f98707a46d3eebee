package review

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/privset"
	"github.com/dbusers/dbusers/bot/internal/rdstls"
)

// comparison is what the risk rules look at.
type comparison struct {
	review     *Review
	base, head Side
	// baseGrants and headGrants index each side's state:
	// user → (cluster, database) → grant.
	baseGrants, headGrants map[string]map[grantKey]grantInfo
	roleWhy                map[string]string
	clusters               map[string]clusterDiff
}

// rule calls out one kind of risky change, with a code (its Kind in the
// review's JSON) and a level; atlas's sqlcheck analyzers are the model.
// A rule looks at one grant line, at one user, at dbusers.json, or at the
// whole comparison: set exactly one of line, user, settings and all.
//
// Rules judge what a change does, never what it is called: a role's
// privileges on the cluster's engine, not its name; a setting's new value
// against its old one, not the fact that it changed.
type rule struct {
	kind  string
	level Level
	line  func(g grantChange) (string, bool)
	user  func(u User) (string, bool)
	// settings compares dbusers.json at base and head. It is not asked when
	// the base has no dbusers.json: adopting dbusers weakens nothing.
	settings func(b, h config.Settings) (string, bool)
	all      func(c *comparison) []Risk
}

// The codes that the cluster-file rules share with clusterChanges, which
// tags each part of a cluster file's change with the rule that calls it
// out.
const (
	kindClusterChange   = "cluster_change"
	kindClusterEndpoint = "cluster_endpoint"
	kindClusterAccount  = "cluster_account"
	kindClusterTLS      = "cluster_tls"
)

// rules are every risk the review calls out, in the order the comment
// lists them within a level (high first): per user, its line rules and
// then its user rules; then the rules about role templates, cluster files
// and dbusers.json. README.md's "Pull-request review" section lists them too, and a
// test keeps the two in step.
var rules = []rule{
	// Grants, by the privileges they carry on the cluster's engine. A line
	// is flagged once, for the strongest reach it gains.
	{kind: "all_privileges", level: High, line: func(g grantChange) (string, bool) {
		if !g.gained().all {
			return "", false
		}
		return fmt.Sprintf("every privilege (ALL PRIVILEGES) for %s on %s (%s)", g.User.Name, g.where(), g.through(g.head.flavor.IsAll)), true
	}},
	{kind: "production_drop", level: High, line: func(g grantChange) (string, bool) {
		if r := g.gained(); !g.production() || !r.drop || r.all {
			return "", false
		}
		return fmt.Sprintf("DROP on production for %s on %s (%s): it can drop the database and its tables",
			g.User.Name, g.where(), g.through(holdsAny(dropPrivileges))), true
	}},
	{kind: "production_admin", level: High, line: func(g grantChange) (string, bool) {
		if r := g.gained(); !g.production() || !r.schema || r.all || r.drop {
			return "", false
		}
		return fmt.Sprintf("ALTER and CREATE ROUTINE on production for %s on %s (%s): it can change the schema and add stored routines",
			g.User.Name, g.where(), g.through(holdsAny(schemaPrivileges))), true
	}},
	// Temporary access made permanent, whether or not the role changed
	// with it.
	{kind: "expiry_removed", level: High, line: func(g grantChange) (string, bool) {
		l := g.Line
		return fmt.Sprintf("expiry removed for %s on %s (was %s): the access becomes permanent", g.User.Name, g.where(), l.ExpiresFrom),
			l.Kind != Revoke && l.ExpiresFrom != "" && l.ExpiresTo == ""
	}},
	{kind: "user_removed", level: Notice, user: func(u User) (string, bool) {
		return fmt.Sprintf("user %s is removed: %s", u.Name, u.dropSentence()), u.Status == Removed
	}},
	{kind: "access_removed", level: Notice, user: func(u User) (string, bool) {
		n := countKind(u.Lines, Revoke)
		return fmt.Sprintf("%s loses access to %d database(s)", u.Name, n), u.Status != Removed && n > 0
	}},
	{kind: "authentication", level: Notice, user: func(u User) (string, bool) {
		return fmt.Sprintf("%s: %s", u.Name, u.Auth), u.Auth != ""
	}},

	// Role templates reach every holder: each changed role is called out
	// once, listing them. A change that gives the role more reach is
	// role_escalation; any other change is role_template. The holders'
	// grant lines that the template changes are judged here, not line by
	// line (see grantChange.gained): a template held by thousands would
	// otherwise bury the risks under one entry per holder and database.
	{kind: "role_escalation", level: High, all: func(c *comparison) []Risk { return c.roleRisks(true) }},
	{kind: "role_template", level: High, all: func(c *comparison) []Risk { return c.roleRisks(false) }},

	// Cluster files. A change of endpoint, account or region, or a weaker
	// tls mode, has a rule of its own that says what moved; cluster_change
	// lists the rest of the file's change (environment, engine,
	// databases, admin secret, assumed role, a stronger tls mode, a
	// cluster added or removed). Each part of a change is called out by
	// exactly one of them, so no change is listed twice. The configuration
	// changes still show the file's whole change in one line.
	{kind: kindClusterEndpoint, level: High, all: clusterRisks(kindClusterEndpoint)},
	{kind: kindClusterAccount, level: High, all: clusterRisks(kindClusterAccount)},
	{kind: kindClusterTLS, level: High, all: clusterRisks(kindClusterTLS)},
	{kind: kindClusterChange, level: High, all: clusterRisks(kindClusterChange)},

	// The safety rails of dbusers.json: loosening any of them is what a
	// hostile pull request would do first.
	{kind: "prefix_change", level: High, settings: func(b, h config.Settings) (string, bool) {
		return fmt.Sprintf("prefix changes from %q to %q: every managed account on every cluster would be dropped and recreated (the removal limit will hold the drops back)",
			b.Prefix, h.Prefix), b.Prefix != h.Prefix
	}},
	// Tightening the limit is no risk; raising either the count or the
	// fraction raises what one run may drop on some cluster (the limit is
	// the larger of the two).
	{kind: "removal_limit", level: High, settings: func(b, h config.Settings) (string, bool) {
		bl, hl := b.RemovalLimit, h.RemovalLimit
		return fmt.Sprintf("removal limit loosened from count %d, fraction %g to count %d, fraction %g: one run may drop more managed accounts per cluster before the limit holds the drops back",
			bl.Count, bl.Fraction, hl.Count, hl.Fraction), hl.Count > bl.Count || hl.Fraction > bl.Fraction
	}},
	{kind: "protected_accounts", level: High, settings: func(b, h config.Settings) (string, bool) {
		removed := privset.Minus(b.ProtectedAccounts, h.ProtectedAccounts)
		if len(removed) == 0 {
			return "", false
		}
		text := fmt.Sprintf("protected accounts shrink from %s to %s", names(b.ProtectedAccounts), names(h.ProtectedAccounts))
		owned := slices.DeleteFunc(slices.Clone(removed), func(a string) bool { return !desired.Prefix(h.Prefix).Owns(a) })
		if len(owned) == 0 {
			return text + fmt.Sprintf(": the names removed are outside %s*, which dbusers never touches", desired.Prefix(h.Prefix).Namespace()), true
		}
		if len(owned) == 1 {
			return text + fmt.Sprintf(": dbusers now manages %s, and drops it from every cluster unless a user file declares it", owned[0]), true
		}
		return text + fmt.Sprintf(": dbusers now manages %s, and drops each from every cluster unless a user file declares it", strings.Join(owned, ", ")), true
	}},
	// The Lambda reads the pointer parameter its deployment names, not
	// dbusers.json's.
	{kind: "ssm_parameter", level: High, settings: func(b, h config.Settings) (string, bool) {
		return fmt.Sprintf("SSM parameter changes from %s to %s: publish writes the configuration there, but the Lambda reads the parameter its deployment names; "+
				"unless the deployment moves with it, later merges (revocations included) stop reaching the databases",
				b.SSM.Parameter, h.SSM.Parameter),
			b.SSM.Parameter != h.SSM.Parameter
	}},
	{kind: "management_role", level: High, settings: func(b, h config.Settings) (string, bool) {
		return fmt.Sprintf("management role changes from %s to %s: the Lambda assumes it in the account of every cluster that names no role_arn of its own",
				describeAWS(b.AWS), describeAWS(h.AWS)),
			b.AWS.ManagementRole != h.AWS.ManagementRole || b.AWS.ExternalID != h.AWS.ExternalID
	}},
}

// grantChange is what a line rule looks at: one line of one user, with
// that user's grant on each side (zero where there is none).
type grantChange struct {
	User       User
	Line       Line
	base, head grantInfo
	// roles are the head's role templates (ALL PRIVILEGES unexpanded), to
	// name the roles that carry a privilege.
	roles map[string][]string
}

// where is the line's cluster/database.
func (g grantChange) where() string { return g.Line.Cluster + "/" + g.Line.Database }

func (g grantChange) production() bool { return desired.IsProduction(g.Line.Environment) }

// gained is the reach the head's grant has and the base's lacked.
//
// A line whose roles stayed the same changed because a role template did
// (or a cluster's engine, whose expansion of ALL PRIVILEGES differs): the
// role rules and cluster_change judge those once per role or cluster, so
// gained is empty for them.
func (g grantChange) gained() reach {
	if g.Line.From == g.Line.To {
		return reach{}
	}
	return reachOf(g.head.flavor, g.head.grant.Privileges).minus(reachOf(g.base.flavor, g.base.grant.Privileges))
}

// through names the line's roles at head whose privileges, expanded for
// the cluster's engine, carry what a rule flags; when no role carries it
// alone, the roles together do, and all are named.
func (g grantChange) through(carries func(privs []string) bool) string {
	var carriers []string
	for _, role := range g.Line.ToRoles {
		if expanded, err := g.head.flavor.Expand(g.roles[role]); err == nil && carries(expanded) {
			carriers = append(carriers, role)
		}
	}
	if len(carriers) == 0 {
		carriers = g.Line.ToRoles
	}
	if len(carriers) == 1 {
		return "role " + carriers[0]
	}
	return "roles " + strings.Join(carriers, ", ")
}

// holdsAny reports whether a privilege set holds any of want.
func holdsAny(want []string) func(privs []string) bool {
	return func(privs []string) bool {
		return slices.ContainsFunc(privs, func(p string) bool { return slices.Contains(want, p) })
	}
}

// The privileges that the grant rules watch besides ALL PRIVILEGES.
var (
	dropPrivileges   = []string{"DROP"}
	schemaPrivileges = []string{"ALTER", "CREATE ROUTINE"}
)

// reach is what a set of database privileges lets an account do that a
// reviewer must see, judged by the privileges on one engine and never by
// a role's name: a role called ops that expands to every privilege is
// trusted_admin in all but name. GRANT OPTION, the one privilege that
// would reach further still (handing privileges on), is none a role may
// hold: flavor.KnownDatabasePrivilege refuses it, so validation does.
type reach struct {
	all    bool // every database privilege of the engine: what ALL PRIVILEGES stores
	drop   bool // DROP: the database and its tables can go
	schema bool // ALTER and CREATE ROUTINE: the schema and stored code can change, which the admin role is for
}

// reachOf is the reach of privs, sorted and expanded for f.
func reachOf(f flavor.Flavor, privs []string) reach {
	has := func(want []string) bool {
		return !slices.ContainsFunc(want, func(p string) bool { return !slices.Contains(privs, p) })
	}
	return reach{all: f.IsAll(privs), drop: has(dropPrivileges), schema: has(schemaPrivileges)}
}

// minus is the reach r has and o lacks.
func (r reach) minus(o reach) reach {
	return reach{all: r.all && !o.all, drop: r.drop && !o.drop, schema: r.schema && !o.schema}
}

func (r reach) or(o reach) reach {
	return reach{all: r.all || o.all, drop: r.drop || o.drop, schema: r.schema || o.schema}
}

func (r reach) any() bool { return r.all || r.drop || r.schema }

// String names the reach for a risk's text: "every privilege (ALL
// PRIVILEGES)", or the privileges watched, "DROP, ALTER and CREATE ROUTINE".
func (r reach) String() string {
	if r.all {
		return "every privilege (ALL PRIVILEGES)"
	}
	var privs []string
	if r.drop {
		privs = append(privs, dropPrivileges...)
	}
	if r.schema {
		privs = append(privs, schemaPrivileges...)
	}
	return andList(privs)
}

// roleGain is the reach a role's template change adds on any engine the
// head's clusters run. A role added in the pull request has holders only
// through user files that the pull request changes, whose lines the grant
// rules judge; a role removed grants nothing.
func (c *comparison) roleGain(role string) reach {
	b, inBase := c.base.State.Roles[role]
	h, inHead := c.head.State.Roles[role]
	var gain reach
	if !inBase || !inHead {
		return gain
	}
	seen := map[flavor.Flavor]bool{}
	for _, cl := range c.head.State.Clusters {
		f := cl.Flavor()
		if seen[f] {
			continue
		}
		seen[f] = true
		bp, errB := f.Expand(b)
		hp, errH := f.Expand(h)
		if errB != nil || errH != nil {
			continue // a privilege the engine lacks: validation refuses its grants there
		}
		gain = gain.or(reachOf(f, hp).minus(reachOf(f, bp)))
	}
	return gain
}

// roleRisks calls out the changed roles whose change adds reach
// (escalation) or, without escalation, every other changed role; each
// lists every holder, at base or head.
func (c *comparison) roleRisks(escalation bool) []Risk {
	var out []Risk
	for _, rc := range c.review.Roles {
		if (rc.Gains != "") != escalation {
			continue
		}
		text := fmt.Sprintf("%s: changes every holder of the role (%d user(s))", rc.Change, len(rc.Holders))
		if escalation {
			text = fmt.Sprintf("%s: the role now grants %s to every holder (%d user(s), %d of them on production)",
				rc.Change, rc.Gains, len(rc.Holders), rc.ProductionHolders)
		}
		out = append(out, Risk{Affected: rc.Holders, Text: text, Role: rc.Role})
	}
	return out
}

// roleChange describes one changed role: what changed, its holders and
// the reach the change gives them.
func (c *comparison) roleChange(role string) RoleChange {
	holds := func(_ grantKey, g grantInfo) bool { return slices.Contains(g.grant.Roles, role) }
	onProd := c.holders(func(k grantKey, g grantInfo) bool { return holds(k, g) && desired.IsProduction(g.env) })
	rc := RoleChange{Role: role, Change: c.roleWhy[role], Holders: c.holders(holds), ProductionHolders: len(onProd)}
	if gain := c.roleGain(role); gain.any() {
		rc.Gains = gain.String()
	}
	return rc
}

// clusterRisks calls out, per cluster, the parts of its change tagged
// kind: cluster_change as one risk for the whole rest of the change,
// every other rule one risk per part, with what it does.
func clusterRisks(kind string) func(c *comparison) []Risk {
	return func(c *comparison) []Risk {
		var out []Risk
		for _, name := range slices.Sorted(maps.Keys(c.clusters)) {
			d := c.clusters[name]
			var mine []clusterPart
			for _, p := range d.parts {
				if p.kind == kind {
					mine = append(mine, p)
				}
			}
			if len(mine) == 0 {
				continue
			}
			affected := c.holders(func(k grantKey, _ grantInfo) bool { return k.cluster == name })
			tail := fmt.Sprintf("affects every user of the cluster (%d user(s))", len(affected))
			if kind != kindClusterChange {
				for _, p := range mine {
					out = append(out, Risk{Affected: affected, Text: fmt.Sprintf("cluster %s: %s: %s; %s", name, p.text, p.effect, tail)})
				}
				continue
			}
			what := d.why
			if len(mine) < len(d.parts) {
				texts := make([]string, len(mine))
				for i, p := range mine {
					texts[i] = p.text
				}
				what = fmt.Sprintf("cluster %s changed: %s", name, strings.Join(texts, "; "))
			}
			out = append(out, Risk{Affected: affected, Text: what + ": " + tail})
		}
		return out
	}
}

// tlsMode is a cluster file's tls mode, with the default applied.
func tlsMode(mode string) string { return cmp.Or(mode, rdstls.VerifyIdentity) }

// weaker reports whether tls mode a checks less than b. A mode rdstls does
// not know counts as the weakest.
func weaker(a, b string) bool {
	rank := func(m string) int {
		if i := slices.Index(rdstls.Modes, m); i >= 0 {
			return i
		}
		return len(rdstls.Modes)
	}
	return rank(a) > rank(b)
}

// tlsLoss says what the bot stops checking when it connects with mode.
func tlsLoss(mode string) string {
	switch mode {
	case rdstls.VerifyCA:
		return "the bot no longer checks that the server's certificate names the endpoint"
	case rdstls.Required:
		return "the bot no longer checks who answers before it sends the admin login"
	case rdstls.Disabled:
		return "the admin login and every statement cross the network unencrypted"
	}
	return "the bot checks less of who answers"
}

// holders returns the users, at base or head, that hold a grant matching.
func (c *comparison) holders(match func(k grantKey, g grantInfo) bool) []string {
	set := map[string]bool{}
	for _, side := range []map[string]map[grantKey]grantInfo{c.baseGrants, c.headGrants} {
		for user, grants := range side {
			for k, g := range grants {
				if match(k, g) {
					set[user] = true
					break
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// risks runs every rule.
func risks(c *comparison) []Risk {
	var out []Risk
	add := func(ru rule, r Risk) {
		r.Kind, r.Level = ru.kind, ru.level
		out = append(out, r)
	}
	for _, u := range c.review.Users {
		for _, l := range u.Lines {
			k := grantKey{l.Cluster, l.Database}
			g := grantChange{User: u, Line: l, base: c.baseGrants[u.Name][k], head: c.headGrants[u.Name][k], roles: c.head.State.Roles}
			for _, ru := range rules {
				if ru.line == nil {
					continue
				}
				if text, ok := ru.line(g); ok {
					add(ru, Risk{Text: text, Affected: []string{u.Name}})
				}
			}
		}
		for _, ru := range rules {
			if ru.user == nil {
				continue
			}
			if text, ok := ru.user(u); ok {
				add(ru, Risk{Text: text, Affected: []string{u.Name}})
			}
		}
	}
	for _, ru := range rules {
		switch {
		case ru.all != nil:
			for _, r := range ru.all(c) {
				add(ru, r)
			}
		case ru.settings != nil && c.base.Config.Settings.Prefix != "":
			if text, ok := ru.settings(c.base.Config.Settings, c.head.Config.Settings); ok {
				add(ru, Risk{Text: text})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Risk) int {
		if a.Level != b.Level {
			if a.Level == High {
				return -1
			}
			return 1
		}
		return 0
	})
	return out
}

// andList joins words for a sentence: "a", "a and b", "a, b and c".
func andList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// names lists account names for a sentence: "none" when there are none.
func names(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// describeAWS names the management role and its external id.
func describeAWS(a config.AWS) string {
	role := cmp.Or(a.ManagementRole, "none")
	if a.ExternalID == "" {
		return role + " (no external id)"
	}
	return role + " (external id " + a.ExternalID + ")"
}
