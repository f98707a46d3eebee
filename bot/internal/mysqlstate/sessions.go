package mysqlstate

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/desired"
)

// sessionsQuery lists the other sessions of managed user names. The
// processlist shows every session to a login with PROCESS, and only its
// own to one without (then nothing is found, and nothing is ended: adminsql
// grants PROCESS for this).
const sessionsQuery = "SELECT ID, USER, HOST, DB FROM information_schema.PROCESSLIST " +
	"WHERE USER LIKE ? ESCAPE '!' AND ID <> CONNECTION_ID()"

// ReadSessions reads the open sessions of the user names the prefix owns,
// other than this one, in one query, into srv.Sessions.
func ReadSessions(ctx context.Context, q Querier, srv *Server, prefix desired.Prefix) error {
	if prefix == "" {
		return fmt.Errorf("read sessions: empty prefix")
	}
	rows, err := q.QueryContext(ctx, sessionsQuery, likePrefix(prefix.Namespace()))
	if err != nil {
		return fmt.Errorf("read sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var s Session
		var client, db sql.NullString
		if err := rows.Scan(&s.ID, &s.User, &client, &db); err != nil {
			return fmt.Errorf("read sessions: %w", err)
		}
		if !prefix.Owns(s.User) {
			continue // the collation matched what the prefix does not own
		}
		s.Client, s.DB = client.String, db.String
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read sessions: %w", err)
	}
	slices.SortFunc(out, func(a, b Session) int { return cmp.Compare(a.ID, b.ID) })
	srv.Sessions, srv.SessionsRead = out, true
	return nil
}

// objectsQuery lists, in one query, the views, triggers, events and
// routines whose definer may be a managed account. DEFINER reads user@host
// (MariaDB, MySQL) or `user`@`host` (the embedded server's events), so the
// LIKE (the prefix anywhere) only narrows the rows; the prefix is checked
// again in Go. The parts with a literal kind come first, and CONCAT turns
// ROUTINES' enum ROUTINE_TYPE into text: the embedded server types a UNION
// by its first part and panics converting an enum there.
const objectsQuery = "SELECT 'view', TABLE_SCHEMA, TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE DEFINER LIKE ? ESCAPE '!' " +
	"UNION ALL SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS WHERE DEFINER LIKE ? ESCAPE '!' " +
	"UNION ALL SELECT 'event', EVENT_SCHEMA, EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE DEFINER LIKE ? ESCAPE '!' " +
	"UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ''), ROUTINE_SCHEMA, ROUTINE_NAME, DEFINER FROM information_schema.ROUTINES WHERE DEFINER LIKE ? ESCAPE '!'"

// ReadObjects reads the stored objects whose definer is an account the
// prefix owns, in one query, into srv.Objects. It sees what the login may
// see: information_schema shows a routine, view, trigger or event only to
// a login with a privilege on it (adminsql grants what makes every one of
// the managed databases visible).
func ReadObjects(ctx context.Context, q Querier, srv *Server, prefix desired.Prefix) error {
	if prefix == "" {
		return fmt.Errorf("read stored objects: empty prefix")
	}
	anywhere := "%" + likePrefix(prefix.Namespace())
	args := []any{anywhere, anywhere, anywhere, anywhere}
	rows, err := q.QueryContext(ctx, objectsQuery, args...)
	if err != nil {
		return fmt.Errorf("read stored objects: %w", err)
	}
	defer rows.Close()
	var out []StoredObject
	for rows.Next() {
		var o StoredObject
		var definer string
		if err := rows.Scan(&o.Kind, &o.Database, &o.Name, &definer); err != nil {
			return fmt.Errorf("read stored objects: %w", err)
		}
		o.Definer = parseDefiner(definer)
		if !prefix.Owns(o.Definer.User) {
			continue
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read stored objects: %w", err)
	}
	slices.SortFunc(out, func(a, b StoredObject) int {
		return cmp.Or(compareAccounts(a.Definer, b.Definer), cmp.Compare(a.Database, b.Database),
			cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
	srv.Objects, srv.ObjectsRead = slices.Compact(out), true
	return nil
}

// parseDefiner reads a DEFINER value: user@host, or `user`@`host` with
// doubled backticks inside.
func parseDefiner(s string) AccountID {
	if user, rest, ok := backquoted(s); ok && strings.HasPrefix(rest, "@") {
		if host, tail, ok := backquoted(rest[1:]); ok && tail == "" {
			return AccountID{User: user, Host: host}
		}
	}
	return parseAccount(s)
}

// backquoted reads one backquoted identifier (a doubled backquote inside
// stands for one) at the start of s and returns it and what follows.
func backquoted(s string) (ident, rest string, ok bool) {
	if !strings.HasPrefix(s, "`") {
		return "", "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '`' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '`' {
			b.WriteByte('`')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", "", false
}

// OwnedBy returns the stored objects whose definer is id.
func (s *Server) OwnedBy(id AccountID) []StoredObject {
	var out []StoredObject
	for _, o := range s.Objects {
		if o.Definer == id {
			out = append(out, o)
		}
	}
	return out
}

// SessionsOf returns the open sessions of the user name user.
func (s *Server) SessionsOf(user string) []Session {
	var out []Session
	for _, x := range s.Sessions {
		if x.User == user {
			out = append(out, x)
		}
	}
	return out
}
