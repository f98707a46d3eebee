package mysqlstate

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// Unmanaged is an account outside the prefix: dbusers never touches it,
// and reports it, because shared accounts nobody owns are what dbusers is
// there to end.
type Unmanaged struct {
	Account AccountID `json:"account"`
	// Plugin is its authentication plugin.
	Plugin string `json:"plugin,omitempty"`
	// Databases are the managed databases it holds database-level grants
	// on (a grant whose pattern matches one counts), sorted.
	Databases []string `json:"databases,omitempty"`
}

// unmanagedQuery lists every account outside the prefix with its
// database-level grants, in one query. The prefix is checked again in Go:
// a collation may match what the prefix does not own.
// On MariaDB it reads mysql.global_priv, as the account read does: that is
// the table the management and plan logins may read (mysql.user is a view
// over it there), and it marks roles.
const (
	unmanagedQuery = "SELECT u.User, u.Host, u.plugin, d.Db FROM mysql.user u " +
		"LEFT JOIN mysql.db d ON d.User = u.User AND d.Host = u.Host WHERE u.User NOT LIKE ? ESCAPE '!'"
	mariaDBUnmanagedQuery = "SELECT u.User, u.Host, JSON_VALUE(u.Priv, '$.plugin'), d.Db FROM mysql.global_priv u " +
		"LEFT JOIN mysql.db d ON d.User = u.User AND d.Host = u.Host " +
		"WHERE u.User NOT LIKE ? ESCAPE '!' AND COALESCE(JSON_VALUE(u.Priv, '$.is_role'), 'false') <> 'true'"
)

// ReadUnmanaged reads the accounts the prefix does not own, but for those
// skip says to leave out (system and protected accounts, the session's
// own), with the managed databases each holds grants on. wildcard says
// whether the server reads _ and % in a grant's database as wildcards.
func ReadUnmanaged(ctx context.Context, q Querier, f flavor.Flavor, prefix desired.Prefix, wildcard bool, databases []string, skip func(AccountID) bool) ([]Unmanaged, error) {
	if prefix == "" {
		return nil, fmt.Errorf("read unmanaged accounts: empty prefix")
	}
	query := unmanagedQuery
	if slices.Contains(f.GrantTables(), "global_priv") {
		query = mariaDBUnmanagedQuery
	}
	rows, err := q.QueryContext(ctx, query, likePrefix(prefix.Namespace()))
	if err != nil {
		return nil, fmt.Errorf("read unmanaged accounts: %w", err)
	}
	defer rows.Close()
	byID := map[AccountID]*Unmanaged{}
	for rows.Next() {
		var user, host string
		var plugin, db sql.NullString
		if err := rows.Scan(&user, &host, &plugin, &db); err != nil {
			return nil, fmt.Errorf("read unmanaged accounts: %w", err)
		}
		id := AccountID{User: user, Host: host}
		// A MariaDB role is a row with an empty host: not an account that
		// can log in.
		if prefix.Owns(user) || host == "" || (skip != nil && skip(id)) {
			continue
		}
		u, ok := byID[id]
		if !ok {
			u = &Unmanaged{Account: id, Plugin: plugin.String}
			byID[id] = u
		}
		if !db.Valid {
			continue
		}
		for _, name := range databases {
			if (wildcard && likeMatch(db.String, name)) || (!wildcard && db.String == name) {
				if !slices.Contains(u.Databases, name) {
					u.Databases = append(u.Databases, name)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unmanaged accounts: %w", err)
	}
	out := make([]Unmanaged, 0, len(byID))
	for _, u := range byID {
		slices.Sort(u.Databases)
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b Unmanaged) int {
		return cmp.Or(strings.Compare(a.Account.User, b.Account.User), strings.Compare(a.Account.Host, b.Account.Host))
	})
	return out, nil
}

// likeMatch reports whether name matches a LIKE pattern with \ as its
// escape, as the server matches a grant's database pattern. It is a
// dynamic program, O(len(pattern) × len(name)): a pattern of many % from
// the server must not cost a run exponential time.
func likeMatch(pattern, name string) bool {
	type tok struct {
		r   rune
		any bool // %
		one bool // _
	}
	var p []tok
	pr := []rune(pattern)
	for i := 0; i < len(pr); i++ {
		switch c := pr[i]; {
		case c == '\\' && i+1 < len(pr):
			i++
			p = append(p, tok{r: pr[i]})
		case c == '%':
			p = append(p, tok{any: true})
		case c == '_':
			p = append(p, tok{one: true})
		default:
			p = append(p, tok{r: c})
		}
	}
	s := []rune(name)
	// m[j]: p[:i] matches s[:j].
	m := make([]bool, len(s)+1)
	m[0] = true
	for _, t := range p {
		next := make([]bool, len(s)+1)
		for j := 0; j <= len(s); j++ {
			switch {
			case t.any:
				next[j] = m[j] || (j > 0 && next[j-1])
			case j > 0 && (t.one || s[j-1] == t.r):
				next[j] = m[j-1]
			}
		}
		m = next
	}
	return m[len(s)]
}
