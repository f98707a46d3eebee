// Package review compares the desired state of two revisions of a
// declarations repository (a pull request's base and head) and describes
// the difference the way a reviewer needs it: a summary, the risky changes
// first, then every user's grants and revocations per cluster and database.
// It is pure: two configurations and a date in, a review out.
package review

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/privset"
)

// Kind is the kind of one grant change.
type Kind string

// Kinds of grant change, as a reviewer names them: privset's
// classification (the same words the live plan uses), and expiry.
const (
	Grant          = Kind(privset.Grant)     // new access to a database
	Revoke         = Kind(privset.Revoke)    // access to a database removed
	Elevate        = Kind(privset.Elevate)   // more privileges on a database
	Downgrade      = Kind(privset.Downgrade) // fewer privileges on a database
	Change         = Kind(privset.Change)    // some privileges added, some removed (or only the role names changed)
	Expiry    Kind = "expiry"                // only the expiry date changed
)

// Line is one change of one user's access to one database of one cluster.
type Line struct {
	Cluster     string `json:"cluster"`
	Environment string `json:"environment"`
	Database    string `json:"database"`
	Kind        Kind   `json:"kind"`
	From        string `json:"from,omitempty"` // role names at base joined with +, "" when none
	To          string `json:"to,omitempty"`   // role names at head joined with +
	// FromRoles and ToRoles are the sorted role names at base and head:
	// rules look roles up here, never by matching text.
	FromRoles []string `json:"from_roles,omitempty"`
	ToRoles   []string `json:"to_roles,omitempty"`
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	// ExpiresFrom and ExpiresTo are the expiry dates at base and head ("" =
	// never, or no grant).
	ExpiresFrom string `json:"expires_from,omitempty"`
	ExpiresTo   string `json:"expires_to,omitempty"`
	// Why names the declaration change behind a line that the user's own
	// file did not cause (a role template or a cluster file).
	Why string `json:"why,omitempty"`
	// Template is the role whose template change caused the line, when
	// one did: the comment shows that change once, in the configuration
	// changes, and only points to it from the line.
	Template string `json:"template,omitempty"`
}

// Sentence describes the line in words.
func (l Line) Sentence() string {
	return l.describe(" on "+l.Cluster+"/"+l.Database, l.Why)
}

// Short describes the line without naming the cluster and database, for
// tables that show them in columns of their own. A line that a role
// template change caused only points to it: the comment shows that change
// once, in the configuration changes.
func (l Line) Short() string {
	why := l.Why
	if l.Template != "" {
		why = "via the change to role " + l.Template
	}
	return l.describe("", why)
}

func (l Line) describe(where, why string) string {
	var s string
	switch l.Kind {
	case Grant:
		s = fmt.Sprintf("grant %s%s", l.To, where)
	case Revoke:
		s = fmt.Sprintf("revoke %s%s", l.From, where)
	case Elevate, Downgrade, Change:
		if l.From == l.To {
			s = fmt.Sprintf("%s%s: %s", l.Kind, where, l.To)
		} else {
			s = fmt.Sprintf("%s%s: %s → %s", l.Kind, where, l.From, l.To)
		}
	case Expiry:
		s = describeExpiry(l.ExpiresFrom, l.ExpiresTo) + where
	}
	// Role names explain the change unless they stayed the same (a
	// template changed): then the privileges are the news.
	if l.From == l.To {
		if len(l.Added) > 0 {
			s += " (+" + strings.Join(l.Added, ", +") + ")"
		}
		if len(l.Removed) > 0 {
			s += " (−" + strings.Join(l.Removed, ", −") + ")"
		}
	}
	switch {
	case l.Kind == Expiry || l.Kind == Revoke:
	case l.Kind != Grant && l.ExpiresFrom != l.ExpiresTo:
		// A role change that also changes the expiry says both.
		s += "; " + describeExpiry(l.ExpiresFrom, l.ExpiresTo)
	case l.ExpiresTo != "":
		s += " until " + l.ExpiresTo
	}
	if why != "" {
		s += " — " + why
	}
	return s
}

func describeExpiry(from, to string) string {
	switch {
	case from == "":
		return "expiry added: " + to
	case to == "":
		return "expiry removed (was " + from + ")"
	}
	return "expiry changed: " + from + " → " + to
}

// Status is what happened to a user as a whole.
type Status string

// User statuses.
const (
	Added   Status = "added"
	Removed Status = "removed"
	Changed Status = "changed"
)

// User is one user's changes.
type User struct {
	Name    string `json:"name"`
	Account string `json:"account"`
	Owner   string `json:"owner"`
	Kind    string `json:"kind"`
	Status  Status `json:"status"`
	// Auth describes an authentication change, "" when none.
	Auth  string `json:"auth,omitempty"`
	Lines []Line `json:"lines,omitempty"`
}

// clusters lists the clusters of the user's lines, sorted.
func (u User) clusters() []string {
	var out []string
	for _, l := range u.Lines {
		if !slices.Contains(out, l.Cluster) {
			out = append(out, l.Cluster)
		}
	}
	slices.Sort(out)
	return out
}

// dropSentence says what removing the user does, in one line: its
// account goes from every cluster it was on, whatever it held there.
func (u User) dropSentence() string {
	cs := u.clusters()
	if len(cs) == 0 {
		return u.Account + " had no access left: there is no account to drop"
	}
	return "drop " + u.Account + " on " + strings.Join(cs, ", ")
}

// Level ranks a risk.
type Level string

// Risk levels: High needs a second reviewer; Notice is worth a look.
const (
	High   Level = "high"
	Notice Level = "notice"
)

// Risk is a change called out at the top of the review.
type Risk struct {
	Level Level `json:"level"`
	// Kind is the code of the rule that called it out (see rules).
	Kind string `json:"kind"`
	Text string `json:"text"`
	// Affected lists users whose access the change alters.
	Affected []string `json:"affected,omitempty"`
	// Role names the role of a risk about a role template change
	// (role_escalation, role_template): the comment shows such a risk with
	// the role's change, under the configuration changes.
	Role string `json:"role,omitempty"`
}

// EnvCount counts grant changes in one environment.
type EnvCount struct {
	Environment string   `json:"environment"`
	Clusters    []string `json:"clusters"`
	Added       int      `json:"grants_added"`
	Revoked     int      `json:"grants_revoked"`
	Changed     int      `json:"grants_changed"`
}

// Summary is the review in numbers.
type Summary struct {
	UsersAdded    int        `json:"users_added"`
	UsersRemoved  int        `json:"users_removed"`
	UsersChanged  int        `json:"users_changed"`
	GrantsAdded   int        `json:"grants_added"`
	GrantsRevoked int        `json:"grants_revoked"`
	GrantsChanged int        `json:"grants_changed"`
	Clusters      []string   `json:"clusters_touched"`
	Environments  []EnvCount `json:"environments"`
}

// RoleChange is one role template's change in dbusers.json, with every
// user that holds the role at base or head.
type RoleChange struct {
	Role string `json:"role"`
	// Change says what changed, e.g. "role write changed in dbusers.json:
	// +DELETE".
	Change string `json:"change"`
	// Holders are the users that hold the role, at base or head;
	// ProductionHolders counts those that hold it on production.
	Holders           []string `json:"holders"`
	ProductionHolders int      `json:"production_holders"`
	// Gains names the reach the change gives every holder on some engine
	// of the fleet ("DROP", "every privilege (ALL PRIVILEGES)"): what makes
	// it a role_escalation. "" when it gives none.
	Gains string `json:"gains,omitempty"`
}

// Review is the whole comparison.
type Review struct {
	Base    string  `json:"base"`
	Head    string  `json:"head"`
	Date    string  `json:"date"`
	Summary Summary `json:"summary"`
	// Notes are caveats about the comparison itself.
	Notes []string `json:"notes,omitempty"`
	Risks []Risk   `json:"risks"`
	// Settings lists changes to dbusers.json (other than role templates)
	// and cluster files in words.
	Settings []string `json:"settings_changes,omitempty"`
	// Roles lists the role templates that changed, by name.
	Roles []RoleChange `json:"role_changes,omitempty"`
	Users []User       `json:"users"`

	// The fields below are not the comparison's: the CLI sets them after
	// Compare, from its environment, and the comment shows them.

	// Context says which commit and run the review was made from.
	Context Context `json:"context,omitzero"`
	// Live is what the Lambda's plan mode read on the real databases: the
	// statements merging runs there. Nil when there is no live plan.
	Live *liveplan.Report `json:"live,omitempty"`
	// LiveNote says in one line why there is no live plan (Live nil), e.g.
	// "fork pull request: live plan skipped, this review compares
	// declarations only".
	LiveNote string `json:"live_note,omitempty"`
}

// Context is where and when a review was made: what a reviewer needs to
// tell whether the comment describes their latest push.
type Context struct {
	// HeadSHA is the pull request's head commit (the full id).
	HeadSHA string `json:"head_sha,omitempty"`
	// GeneratedAt is when the review was made.
	GeneratedAt time.Time `json:"generated_at,omitzero"`
	// RunURL links the workflow run that made it, "" outside Actions.
	RunURL string `json:"run_url,omitempty"`
}

// Empty reports whether the declarations change nothing.
func (r *Review) Empty() bool {
	return len(r.Users) == 0 && len(r.Settings) == 0 && len(r.Roles) == 0 && len(r.Risks) == 0
}

// Side is one revision: its declarations and the desired state built from
// them on the review's date.
type Side struct {
	Label  string
	Config *config.Config
	State  *desired.State
}

// Compare describes what merging head into base changes. Callers build
// both sides' states on the same day (the review's date), so an access
// entry that expired before that day and that the pull request leaves
// alone grants nothing on either side and shows nowhere: merging does not
// change it (validate warns about it, and the scheduled run revokes it).
// Renewing such an entry shows as a grant.
func Compare(base, head Side) *Review {
	r := &Review{Base: base.Label, Head: head.Label, Date: head.State.Date}
	bg, hg := index(base.State), index(head.State)
	bu, hu := usersByName(base.Config), usersByName(head.Config)
	roleWhy := roleChanges(base.Config, head.Config)
	clusters := clusterChanges(base.Config, head.Config)
	clusterWhy := make(map[string]string, len(clusters))
	for name, d := range clusters {
		clusterWhy[name] = d.why
	}

	names := slices.Sorted(maps.Keys(union(bu, hu)))
	for _, name := range names {
		b, inBase := bu[name]
		h, inHead := hu[name]
		u := User{Name: name}
		switch {
		case !inBase:
			u.Status, u.Owner, u.Kind = Added, h.Owner, h.Kind
		case !inHead:
			u.Status, u.Owner, u.Kind = Removed, b.Owner, b.Kind
		default:
			u.Status, u.Owner, u.Kind = Changed, h.Owner, h.Kind
			if a := authChange(b.Auth, h.Auth); a != "" {
				u.Auth = a
			}
		}
		u.Account = accountName(head.Config, base.Config, name)
		fileChanged := !inBase || !inHead || !reflect.DeepEqual(b, h)
		u.Lines = lines(bg[name], hg[name], roleWhy, clusterWhy, fileChanged)
		if u.Status == Changed && u.Auth == "" && len(u.Lines) == 0 {
			continue // a description or reason edit: nothing reaches a database
		}
		r.Users = append(r.Users, u)
	}
	r.Settings = settingsChanges(base.Config, head.Config)
	for _, c := range slices.Sorted(maps.Keys(clusterWhy)) {
		r.Settings = append(r.Settings, clusterWhy[c])
	}
	r.summarize()
	c := &comparison{review: r, base: base, head: head, baseGrants: bg, headGrants: hg, roleWhy: roleWhy, clusters: clusters}
	for _, role := range slices.Sorted(maps.Keys(roleWhy)) {
		r.Roles = append(r.Roles, c.roleChange(role))
	}
	r.Risks = risks(c)
	// JSON readers iterate these lists: an empty list, never null.
	if r.Summary.Clusters == nil {
		r.Summary.Clusters = []string{}
	}
	if r.Summary.Environments == nil {
		r.Summary.Environments = []EnvCount{}
	}
	if r.Risks == nil {
		r.Risks = []Risk{}
	}
	if r.Users == nil {
		r.Users = []User{}
	}
	return r
}

// grantKey identifies one user's grant on one database of one cluster.
type grantKey struct{ cluster, database string }

type grantInfo struct {
	env string
	// flavor is the cluster's, on the grant's side: what its privileges
	// mean.
	flavor  flavor.Flavor
	grant   desired.Grant
	account desired.Account
}

// index maps user → (cluster, database) → grant.
func index(st *desired.State) map[string]map[grantKey]grantInfo {
	out := map[string]map[grantKey]grantInfo{}
	if st == nil {
		return out
	}
	for _, c := range st.Clusters {
		for _, a := range c.Accounts {
			if out[a.User] == nil {
				out[a.User] = map[grantKey]grantInfo{}
			}
			for _, g := range a.Grants {
				out[a.User][grantKey{c.Name, g.Database}] = grantInfo{env: c.Environment, flavor: c.Flavor(), grant: g, account: a}
			}
		}
	}
	return out
}

// lines compares one user's grants. fileChanged says whether the user's own
// file changed; when it did not, every line comes from a role template or a
// cluster file, and the line says which.
func lines(base, head map[grantKey]grantInfo, roleWhy, clusterWhy map[string]string, fileChanged bool) []Line {
	keys := slices.SortedFunc(maps.Keys(union(base, head)), func(a, b grantKey) int {
		return cmp.Or(strings.Compare(a.cluster, b.cluster), strings.Compare(a.database, b.database))
	})
	var out []Line
	for _, k := range keys {
		b, inBase := base[k]
		h, inHead := head[k]
		l := Line{Cluster: k.cluster, Database: k.database, Environment: cmp.Or(h.env, b.env)}
		if inBase {
			l.FromRoles, l.ExpiresFrom = slices.Clone(b.grant.Roles), b.grant.Expires
		}
		if inHead {
			l.ToRoles, l.ExpiresTo = slices.Clone(h.grant.Roles), h.grant.Expires
		}
		l.From, l.To = strings.Join(l.FromRoles, "+"), strings.Join(l.ToRoles, "+")
		delta := privset.Compare(b.grant.Privileges, h.grant.Privileges)
		l.Added, l.Removed = delta.Added, delta.Removed
		switch {
		case delta.Kind != privset.Same:
			l.Kind = Kind(delta.Kind)
		case l.ExpiresFrom != l.ExpiresTo:
			l.Kind = Expiry
		case l.From != l.To:
			// Same privileges under another role name: nothing reaches
			// the database, but a reviewer should still see it.
			l.Kind = Change
		default:
			continue
		}
		// Explain a change the user's file did not ask for.
		if inBase && inHead && l.From == l.To && l.Kind != Expiry {
			for _, role := range h.grant.Roles {
				if why, ok := roleWhy[role]; ok {
					l.Why, l.Template = why, role
				}
			}
		}
		if why, ok := clusterWhy[k.cluster]; ok && l.Why == "" && !fileChanged {
			l.Why = why
		}
		out = append(out, l)
	}
	return out
}

func (r *Review) summarize() {
	s := &r.Summary
	envs := map[string]*EnvCount{}
	clusters := map[string]bool{}
	for _, u := range r.Users {
		switch u.Status {
		case Added:
			s.UsersAdded++
		case Removed:
			s.UsersRemoved++
		default:
			s.UsersChanged++
		}
		for _, l := range u.Lines {
			e := envs[l.Environment]
			if e == nil {
				e = &EnvCount{Environment: l.Environment}
				envs[l.Environment] = e
			}
			if !slices.Contains(e.Clusters, l.Cluster) {
				e.Clusters = append(e.Clusters, l.Cluster)
			}
			clusters[l.Cluster] = true
			switch l.Kind {
			case Grant:
				s.GrantsAdded++
				e.Added++
			case Revoke:
				s.GrantsRevoked++
				e.Revoked++
			default:
				s.GrantsChanged++
				e.Changed++
			}
		}
	}
	s.Clusters = slices.Sorted(maps.Keys(clusters))
	for _, name := range slices.Sorted(maps.Keys(envs)) {
		e := envs[name]
		slices.Sort(e.Clusters)
		s.Environments = append(s.Environments, *e)
	}
	// Production first: it is what reviewers look at.
	slices.SortStableFunc(s.Environments, func(a, b EnvCount) int {
		pa, pb := desired.IsProduction(a.Environment), desired.IsProduction(b.Environment)
		switch {
		case pa && !pb:
			return -1
		case pb && !pa:
			return 1
		}
		return 0
	})
}

func countKind(ls []Line, k Kind) int {
	n := 0
	for _, l := range ls {
		if l.Kind == k {
			n++
		}
	}
	return n
}

func authChange(b, h config.UserAuth) string {
	bm, hm := b.Method(), h.Method()
	switch {
	case bm != hm:
		return fmt.Sprintf("authentication changes from %s to %s", bm, hm)
	case bm == "password" && b.Secret != h.Secret:
		return fmt.Sprintf("password secret changes from %s to %s", b.Secret, h.Secret)
	}
	return ""
}

// roleChanges describes, per role, how its template's privileges changed.
func roleChanges(base, head *config.Config) map[string]string {
	out := map[string]string{}
	if base.Settings.Prefix == "" {
		return out // no dbusers.json at the base: no role has holders yet
	}
	bp, _ := base.Settings.RolePrivileges()
	hp, _ := head.Settings.RolePrivileges()
	for role := range union(bp, hp) {
		b, inB := bp[role]
		h, inH := hp[role]
		switch {
		case !inB:
			out[role] = fmt.Sprintf("role %s added to dbusers.json (%s)", role, strings.Join(h, ", "))
		case !inH:
			out[role] = fmt.Sprintf("role %s removed from dbusers.json", role)
		case !slices.Equal(b, h) && (slices.Contains(b, flavor.AllPrivileges) || slices.Contains(h, flavor.AllPrivileges)):
			// ALL PRIVILEGES holds every other privilege: "+ALL
			// PRIVILEGES; −SELECT" would read as a loss of SELECT.
			out[role] = fmt.Sprintf("role %s changed in dbusers.json: %s → %s", role, strings.Join(b, ", "), strings.Join(h, ", "))
		case !slices.Equal(b, h):
			var parts []string
			if add := privset.Minus(h, b); len(add) > 0 {
				parts = append(parts, "+"+strings.Join(add, ", +"))
			}
			if rm := privset.Minus(b, h); len(rm) > 0 {
				parts = append(parts, "−"+strings.Join(rm, ", −"))
			}
			out[role] = fmt.Sprintf("role %s changed in dbusers.json: %s", role, strings.Join(parts, "; "))
		}
	}
	return out
}

// clusterDiff is how one cluster file changed, as far as access and the
// bot's way in are concerned.
type clusterDiff struct {
	// why is the whole change in one sentence: the configuration change
	// listed, and the reason given on every grant line it causes.
	why string
	// parts are its pieces, each with the rule that calls it out.
	parts []clusterPart
}

// clusterPart is one piece of a cluster file's change.
type clusterPart struct {
	// kind is the code of the rule that calls the part out.
	kind string
	// text names the change with its before and after: "tls verify-identity → required".
	text string
	// effect says what the change does, for the rules of their own (kind
	// other than cluster_change).
	effect string
}

// clusterChanges describes changes to cluster files that matter to access.
func clusterChanges(base, head *config.Config) map[string]clusterDiff {
	bc, hc := clustersByName(base), clustersByName(head)
	out := map[string]clusterDiff{}
	for name := range union(bc, hc) {
		b, inB := bc[name]
		h, inH := hc[name]
		whole := func(text string) clusterDiff {
			return clusterDiff{why: text, parts: []clusterPart{{kind: kindClusterChange, text: text}}}
		}
		switch {
		case !inB:
			out[name] = whole(fmt.Sprintf("cluster %s added (%s, %s)", name, h.Environment, h.Engine))
			continue
		case !inH:
			out[name] = whole(fmt.Sprintf("cluster %s removed from the configuration: dbusers stops managing it (its accounts stay as they are)", name))
			continue
		}
		var parts []clusterPart
		add := func(kind, effect, format string, args ...any) {
			parts = append(parts, clusterPart{kind: kind, text: fmt.Sprintf(format, args...), effect: effect})
		}
		if b.Environment != h.Environment {
			add(kindClusterChange, "", "environment %s → %s", b.Environment, h.Environment)
		}
		if b.Engine != h.Engine {
			add(kindClusterChange, "", "engine %s → %s", b.Engine, h.Engine)
		}
		if b.Endpoint != h.Endpoint || b.Port != h.Port {
			add(kindClusterEndpoint, "dbusers will log in there with the cluster's admin secret and keep the cluster's accounts on whatever server answers",
				"endpoint %s:%d → %s:%d", b.Endpoint, b.Port, h.Endpoint, h.Port)
		}
		if b.AccountID != h.AccountID || b.Region != h.Region {
			add(kindClusterAccount, "the Lambda will assume its role and read the admin secret in that account and region instead",
				"account/region %s/%s → %s/%s", b.AccountID, b.Region, h.AccountID, h.Region)
		}
		if dbs := privset.Minus(h.Databases, b.Databases); len(dbs) > 0 {
			add(kindClusterChange, "", "databases added: %s", strings.Join(dbs, ", "))
		}
		if dbs := privset.Minus(b.Databases, h.Databases); len(dbs) > 0 {
			add(kindClusterChange, "", "databases removed: %s", strings.Join(dbs, ", "))
		}
		if b.AdminSecret != h.AdminSecret {
			add(kindClusterChange, "", "admin secret changed")
		}
		if b.PlanSecret != h.PlanSecret {
			// The live plan logs in with it; the merge's run never does.
			add(kindClusterChange, "", "plan secret %s", describeChange(b.PlanSecret, h.PlanSecret))
		}
		if bt, ht := tlsMode(b.TLS), tlsMode(h.TLS); bt != ht {
			kind, effect := kindClusterChange, ""
			if weaker(ht, bt) {
				kind, effect = kindClusterTLS, tlsLoss(ht)
			}
			add(kind, effect, "tls %s → %s", bt, ht)
		}
		if b.RoleARN != h.RoleARN || b.ExternalID != h.ExternalID {
			add(kindClusterChange, "", "assumed role changed")
		}
		if len(parts) > 0 {
			texts := make([]string, len(parts))
			for i, p := range parts {
				texts[i] = p.text
			}
			out[name] = clusterDiff{why: fmt.Sprintf("cluster %s changed: %s", name, strings.Join(texts, "; ")), parts: parts}
		}
	}
	return out
}

// settingsChanges describes dbusers.json changes other than roles.
func settingsChanges(base, head *config.Config) []string {
	b, h := base.Settings, head.Settings
	if b.Prefix == "" && h.Prefix != "" {
		return []string{fmt.Sprintf("dbusers.json added: dbusers starts managing the accounts named %s_* (the base revision has no dbusers.json)", h.Prefix)}
	}
	var out []string
	if b.Prefix != h.Prefix {
		out = append(out, fmt.Sprintf("prefix %s → %s", b.Prefix, h.Prefix))
	}
	if b.RemovalLimit != h.RemovalLimit {
		out = append(out, fmt.Sprintf("removal limit count %d, fraction %g → count %d, fraction %g",
			b.RemovalLimit.Count, b.RemovalLimit.Fraction, h.RemovalLimit.Count, h.RemovalLimit.Fraction))
	}
	if add := privset.Minus(h.ProtectedAccounts, b.ProtectedAccounts); len(add) > 0 {
		out = append(out, "protected accounts added: "+strings.Join(add, ", "))
	}
	if rm := privset.Minus(b.ProtectedAccounts, h.ProtectedAccounts); len(rm) > 0 {
		out = append(out, "protected accounts removed (dbusers may now change or drop them): "+strings.Join(rm, ", "))
	}
	if b.SSM != h.SSM {
		out = append(out, fmt.Sprintf("SSM parameter %s → %s", b.SSM.Parameter, h.SSM.Parameter))
	}
	if b.AWS != h.AWS {
		out = append(out, "cross-account role settings changed")
	}
	return out
}

func accountName(head, base *config.Config, user string) string {
	if head.Settings.Prefix != "" {
		return head.Settings.AccountName(user)
	}
	return base.Settings.AccountName(user)
}

func usersByName(c *config.Config) map[string]config.User {
	out := map[string]config.User{}
	for _, u := range c.Users {
		out[u.Name] = u
	}
	return out
}

func clustersByName(c *config.Config) map[string]config.Cluster {
	out := map[string]config.Cluster{}
	for _, cl := range c.Clusters {
		out[cl.Name] = cl
	}
	return out
}

func union[K comparable, V any](a, b map[K]V) map[K]bool {
	out := make(map[K]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// describeChange says how an optional value changes: set, removed or
// changed.
func describeChange(before, after string) string {
	switch {
	case before == "":
		return "set"
	case after == "":
		return "removed (the live plan then logs in with the admin secret)"
	}
	return "changed"
}
