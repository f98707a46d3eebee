package desired

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// Build expands a validated configuration into the desired state on the
// given day: role templates become privilege sets for each cluster's
// flavor, "*" becomes the cluster's databases, environments become their
// clusters, and entries whose expiry date has passed are left out. The day
// is passed in, never read from a clock, so a plan is reproducible.
//
// Build refuses a configuration that validation would reject rather than
// guess; callers validate first.
func Build(cfg *config.Config, today time.Time) (*State, error) {
	date := today.UTC().Format(config.DateLayout)
	roles, problems := cfg.Settings.RolePrivileges()
	if len(problems) > 0 {
		return nil, fmt.Errorf("role templates: %s", strings.Join(problems, "; "))
	}
	st := &State{
		Prefix:       cfg.Settings.Prefix,
		Protected:    slices.Clone(cfg.Settings.ProtectedAccounts),
		RemovalLimit: cfg.Settings.RemovalLimit,
		Roles:        roles,
		Date:         date,
	}
	if st.Prefix == "" {
		return nil, fmt.Errorf("settings: prefix is empty")
	}
	byName := map[string]int{}
	for _, c := range cfg.Clusters {
		eng, ok := flavor.LookupEngine(c.Engine)
		if !ok {
			return nil, fmt.Errorf("cluster %s: unknown engine %q", c.Name, c.Engine)
		}
		cc := c
		cc.Databases = slices.Clone(c.Databases)
		cc.Tags = maps.Clone(c.Tags)
		byName[c.Name] = len(st.Clusters)
		st.Clusters = append(st.Clusters, Cluster{Cluster: cc, Flavor: eng.Flavor})
	}
	slices.SortFunc(st.Clusters, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })
	// managed[i] is cluster i's database set: a cluster may list many
	// databases, and every access entry is checked against it.
	managed := make([]map[string]bool, len(st.Clusters))
	for i, c := range st.Clusters {
		byName[c.Name] = i
		managed[i] = make(map[string]bool, len(c.Databases))
		for _, db := range c.Databases {
			managed[i][db] = true
		}
	}

	for _, u := range cfg.Users {
		// grants[cluster][database] accumulates one user's entries.
		type acc struct {
			privs   map[string]bool
			roles   map[string]bool
			expires string
			forever bool
		}
		grants := map[int]map[string]*acc{}
		for i, a := range u.Access {
			if a.Expires != "" && a.Expires < date {
				continue
			}
			rolePrivs, ok := roles[a.Role]
			if !ok {
				return nil, fmt.Errorf("user %s: access[%d]: unknown role %q", u.Name, i, a.Role)
			}
			targets := map[int]bool{}
			for _, name := range a.Clusters {
				ci, ok := byName[name]
				if !ok {
					return nil, fmt.Errorf("user %s: access[%d]: unknown cluster %q", u.Name, i, name)
				}
				targets[ci] = true
			}
			for _, env := range a.Environments {
				found := false
				for ci, c := range st.Clusters {
					if c.Environment == env {
						targets[ci] = true
						found = true
					}
				}
				if !found {
					return nil, fmt.Errorf("user %s: access[%d]: unknown environment %q", u.Name, i, env)
				}
			}
			for _, ci := range slices.Sorted(maps.Keys(targets)) {
				c := st.Clusters[ci]
				privs, err := c.Flavor.Expand(rolePrivs)
				if err != nil {
					return nil, fmt.Errorf("user %s: access[%d]: cluster %s: role %s: %w", u.Name, i, c.Name, a.Role, err)
				}
				dbs := a.Databases
				if slices.Contains(dbs, "*") {
					dbs = c.Databases
				}
				for _, db := range dbs {
					if !managed[ci][db] {
						return nil, fmt.Errorf("user %s: access[%d]: database %q is not managed by cluster %s", u.Name, i, db, c.Name)
					}
					if grants[ci] == nil {
						grants[ci] = map[string]*acc{}
					}
					g := grants[ci][db]
					if g == nil {
						g = &acc{privs: map[string]bool{}, roles: map[string]bool{}}
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
		}
		for ci, dbs := range grants {
			account := Account{
				Name:  cfg.Settings.AccountName(u.Name),
				User:  u.Name,
				Owner: u.Owner,
				Kind:  u.Kind,
				Auth:  Auth{Method: u.Auth.Method(), Secret: u.Auth.Secret},
			}
			for _, db := range slices.Sorted(maps.Keys(dbs)) {
				g := dbs[db]
				grant := Grant{
					Database:   db,
					Privileges: slices.Sorted(maps.Keys(g.privs)),
					Roles:      slices.Sorted(maps.Keys(g.roles)),
				}
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
	return st, nil
}
