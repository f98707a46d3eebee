package mysqlstate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// Querier runs a query. *sql.DB, *sql.Conn and *sql.Tx satisfy it; tests wrap
// it to count queries. Every function of this package that talks to a
// server takes one.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Identity says what a server is: enough to pick the SQL dialect and to
// refuse a server that is not the engine a cluster file declares.
type Identity struct {
	Flavor         flavor.Flavor
	Version        string // VERSION()
	VersionComment string // @@version_comment
	// AuroraVersion is @@aurora_version; it is empty off Aurora.
	AuroraVersion string
	// PartialRevokes is MySQL 8.0's partial_revokes (always on for Aurora
	// MySQL 3).
	PartialRevokes bool
	// CurrentUser is the account this session authenticated as.
	CurrentUser AccountID
	// SQLMode is the session's sql_mode.
	SQLMode string
	// ReadOnly is true when the server refuses writes: read_only,
	// super_read_only or innodb_read_only is on (a replica, or an Aurora
	// reader, which a cluster endpoint can point at during a failover).
	ReadOnly bool
}

// NoBackslashEscapes reports whether the session's sql_mode makes a
// backslash an ordinary character in string literals.
func (id Identity) NoBackslashEscapes() bool {
	for _, m := range strings.Split(id.SQLMode, ",") {
		if strings.EqualFold(strings.TrimSpace(m), "NO_BACKSLASH_ESCAPES") {
			return true
		}
	}
	return false
}

// Aurora reports whether the server is Aurora MySQL.
func (id Identity) Aurora() bool { return id.AuroraVersion != "" }

// String describes the server for people, e.g. "MySQL 8.0.28 on Aurora
// (aurora_version 3.04.0)".
func (id Identity) String() string {
	s := id.Flavor.Server(id.Version, id.VersionComment)
	if id.Aurora() {
		s += " on Aurora (aurora_version " + id.AuroraVersion + ")"
	}
	return s
}

// Identity returns what Read detected about the server.
func (s *Server) Identity() Identity {
	return Identity{
		Flavor:         s.Flavor,
		Version:        s.Version,
		VersionComment: s.VersionComment,
		AuroraVersion:  s.AuroraVersion,
		PartialRevokes: s.PartialRevokes,
		CurrentUser:    s.CurrentUser,
		ReadOnly:       s.ReadOnly,
	}
}

// Queries Detect sends. Variables that a server does not have (aurora_version
// off Aurora, partial_revokes before MySQL 8.0) are simply absent from the
// result.
const (
	variablesQuery = "SHOW GLOBAL VARIABLES WHERE Variable_name IN " +
		"('version','version_comment','aurora_version','partial_revokes','read_only','super_read_only','innodb_read_only')"
	currentUserQuery = "SELECT CURRENT_USER(), @@SESSION.sql_mode"
)

// Detect reads the server's version, flavor and session account in two
// queries.
func Detect(ctx context.Context, q Querier) (Identity, error) {
	vars, err := queryVariables(ctx, q)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{
		Version:        vars["version"],
		VersionComment: vars["version_comment"],
		AuroraVersion:  vars["aurora_version"],
	}
	on := func(name string) bool {
		switch strings.ToUpper(vars[name]) {
		case "ON", "1", "TRUE":
			return true
		}
		return false
	}
	id.PartialRevokes = on("partial_revokes")
	id.ReadOnly = on("read_only") || on("super_read_only") || on("innodb_read_only")
	if id.Flavor, err = flavor.Detect(id.Version, id.VersionComment); err != nil {
		return Identity{}, err
	}
	if id.CurrentUser, id.SQLMode, err = queryCurrentUser(ctx, q); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func queryVariables(ctx context.Context, q Querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, variablesQuery)
	if err != nil {
		return nil, fmt.Errorf("read global variables: %w", err)
	}
	defer rows.Close()
	vars := map[string]string{}
	for rows.Next() {
		var name, value sql.NullString
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("read global variables: %w", err)
		}
		vars[strings.ToLower(name.String)] = value.String
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read global variables: %w", err)
	}
	if vars["version"] == "" {
		return nil, errors.New("the server reports no version variable")
	}
	return vars, nil
}

// queryCurrentUser returns the session's account and its sql_mode, which
// decides how string literals must be escaped.
func queryCurrentUser(ctx context.Context, q Querier) (AccountID, string, error) {
	rows, err := q.QueryContext(ctx, currentUserQuery)
	if err != nil {
		return AccountID{}, "", fmt.Errorf("read current user: %w", err)
	}
	defer rows.Close()
	var s, mode sql.NullString
	if rows.Next() {
		err = rows.Scan(&s, &mode)
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return AccountID{}, "", fmt.Errorf("read current user: %w", err)
	}
	if !s.Valid {
		return AccountID{}, "", errors.New("read current user: CURRENT_USER() returned no row")
	}
	return parseAccount(s.String), mode.String, nil
}

// parseAccount splits "user@host", as CURRENT_USER() prints an account, at
// its last @ (a host name cannot contain one; a user name can).
// A string without @ is a user with host "" (how MariaDB names roles).
func parseAccount(s string) AccountID {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return AccountID{User: s}
	}
	return AccountID{User: s[:i], Host: s[i+1:]}
}

// CheckEngine refuses a server that is not what the cluster file declares,
// so that a wrong endpoint or a stale engine field stops the run before any
// statement is planned in the wrong dialect.
func CheckEngine(e flavor.Engine, id Identity) error {
	if e.Name == "" || !e.Flavor.Known() {
		return fmt.Errorf("engine mismatch: cluster declares unknown engine %q; refusing to reconcile", e.Name)
	}
	declared := fmt.Sprintf("%s (%s)", e.Name, e.Describe())
	refuse := func(found string) error {
		return fmt.Errorf("engine mismatch: cluster declares %s but the server is %s; refusing to reconcile", declared, found)
	}
	if id.Flavor != e.Flavor {
		return refuse(id.String())
	}
	switch {
	case e.Aurora && !id.Aurora():
		return refuse(id.String() + ", which reports no @@aurora_version (not Aurora)")
	case !e.Aurora && id.Aurora():
		return refuse(id.String() + ", which is Aurora: declare an aurora-mysql engine")
	}
	if e.Series != "" && !strings.HasPrefix(id.Version, e.Series+".") {
		return refuse(fmt.Sprintf("%s, not %s %s.x", id, e.Flavor.Product(), e.Series))
	}
	return nil
}
