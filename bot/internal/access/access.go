// Package access answers the auditor's first questions from the
// declarations alone: what can this user reach, and who can reach this
// cluster or database, with which role and until when. An entry that has
// expired shows as expired instead of vanishing.
package access

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/desired"
	suggestpkg "github.com/dbusers/dbusers/bot/internal/suggest"
)

// Status says whether an entry grants anything today.
type Status string

// Entry statuses.
const (
	Active  Status = "active"
	Expired Status = "expired"
)

// Entry is one role a user holds on one database of one cluster.
type Entry struct {
	User        string `json:"user"`
	Account     string `json:"account"`
	Owner       string `json:"owner"`
	Kind        string `json:"kind"`
	Cluster     string `json:"cluster"`
	Environment string `json:"environment"`
	Production  bool   `json:"production,omitempty"`
	Database    string `json:"database"`
	Role        string `json:"role"`
	// Privileges are the role's privileges on the cluster's engine.
	Privileges []string `json:"privileges"`
	// Expires is the last day the access holds (YYYY-MM-DD); empty: never.
	Expires string `json:"expires,omitempty"`
	Status  Status `json:"status"`
	// Auth is "iam" or "password".
	Auth string `json:"auth"`
}

// Report is the answer to one question, entries sorted by cluster,
// database, role and user.
type Report struct {
	// Date is the day the entries were judged on.
	Date    string  `json:"date"`
	User    string  `json:"user,omitempty"`
	Cluster string  `json:"cluster,omitempty"`
	DB      string  `json:"database,omitempty"`
	Entries []Entry `json:"entries"`
}

// Index holds every entry ever declared, each judged on one day.
type Index struct {
	date     string
	users    map[string]bool
	clusters map[string]desired.Cluster
	entries  []Entry
}

// epoch is a day before any expiry: resolved on it, every entry is in
// force, so each can be told apart from the others.
var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// New indexes the declarations' entries as of today. Each access entry is
// resolved on its own, through the resolver every run uses (so clusters,
// environments and "*" expand exactly as they do there), so that two
// entries on one database keep their own role and expiry. Declarations
// that do not resolve are an error: validate them first.
func New(d desired.Declarations, today time.Time) (*Index, error) {
	date := today.UTC().Format(desired.DateLayout)
	x := &Index{date: date, users: map[string]bool{}, clusters: map[string]desired.Cluster{}}
	all, problems := desired.Resolve(d, epoch)
	if err := problems.Err(); err != nil {
		return nil, err
	}
	for _, c := range all.Clusters {
		x.clusters[c.Name] = desired.Cluster{Name: c.Name, Environment: c.Environment, Engine: c.Engine, Databases: c.Databases}
	}
	one := d
	for _, u := range d.Users {
		x.users[u.Name] = true
		for _, a := range u.Access {
			single := u
			single.Access = []desired.AccessDecl{a}
			one.Users = []desired.UserDecl{single}
			// Only the clusters the entry can reach: a superset of what
			// it names, by name or environment, so the resolver still
			// decides (10,000 users over 200 clusters: 2.8 s → 0.8 s).
			one.Clusters = slices.DeleteFunc(slices.Clone(d.Clusters), func(c desired.ClusterDecl) bool {
				return !slices.Contains(a.Clusters, c.Name) && !slices.Contains(a.Environments, c.Environment)
			})
			st, problems := desired.Resolve(one, epoch)
			if err := problems.Err(); err != nil {
				return nil, fmt.Errorf("user %s: %w", u.Name, err)
			}
			status := Active
			if a.Expires != "" && a.Expires < date {
				status = Expired
			}
			for _, c := range st.Clusters {
				for _, acct := range c.Accounts {
					for _, g := range acct.Grants {
						x.entries = append(x.entries, Entry{User: acct.User, Account: acct.Name, Owner: acct.Owner, Kind: acct.Kind,
							Cluster: c.Name, Environment: c.Environment, Production: desired.IsProduction(c.Environment),
							Database: g.Database, Role: a.Role, Privileges: g.Privileges, Expires: a.Expires, Status: status,
							Auth: acct.Auth.Method})
					}
				}
			}
		}
	}
	slices.SortFunc(x.entries, func(a, b Entry) int {
		return cmp.Or(strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.Database, b.Database),
			strings.Compare(a.Role, b.Role), strings.Compare(a.User, b.User), strings.Compare(a.Expires, b.Expires))
	})
	return x, nil
}

// ForUser returns every entry of a declared user. An unknown name is an
// error that suggests the nearest declared one.
func (x *Index) ForUser(user string) (*Report, error) {
	if !x.users[user] {
		return nil, fmt.Errorf("no user file declares %q%s", user, suggest(user, x.users))
	}
	r := &Report{Date: x.date, User: user, Entries: []Entry{}}
	for _, e := range x.entries {
		if e.User == user {
			r.Entries = append(r.Entries, e)
		}
	}
	return r, nil
}

// ForCluster returns every entry on a cluster, or on one of its databases.
func (x *Index) ForCluster(cluster, database string) (*Report, error) {
	c, ok := x.clusters[cluster]
	if !ok {
		names := map[string]bool{}
		for n := range x.clusters {
			names[n] = true
		}
		return nil, fmt.Errorf("no cluster file declares %q%s", cluster, suggest(cluster, names))
	}
	if database != "" && !slices.Contains(c.Databases, database) {
		return nil, fmt.Errorf("cluster %s manages no database %q (it manages %s)", cluster, database, strings.Join(c.Databases, ", "))
	}
	r := &Report{Date: x.date, Cluster: cluster, DB: database, Entries: []Entry{}}
	for _, e := range x.entries {
		if e.Cluster == cluster && (database == "" || e.Database == database) {
			r.Entries = append(r.Entries, e)
		}
	}
	return r, nil
}

// suggest names the closest of names to s, when one is close.
func suggest(s string, names map[string]bool) string {
	if best, ok := suggestpkg.Nearest(s, slices.Collect(maps.Keys(names))); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
