package render

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

// identLimit is the longest database, table or column name MySQL and MariaDB
// accept, in characters.
const identLimit = 64

// Ident quotes s as an identifier (database, table, column or MariaDB role
// name): it wraps s in backticks and doubles every backtick inside. It exists
// so that no statement ever pastes a name into SQL unquoted. Ident never
// fails; names the server cannot store (empty, NUL, too long) are rejected
// by CheckIdent, which callers run first.
func Ident(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// CheckIdent reports why s cannot be a database, table or column name, so
// that a bad name fails with a clear message before any SQL is built rather
// than with a server error or, worse, a name the server silently alters. It
// rejects what MySQL and MariaDB cannot store exactly: the empty name, a NUL
// byte, invalid UTF-8, characters outside the Basic Multilingual Plane
// (identifiers are utf8mb3), trailing white space, and more than 64
// characters. For a GRANT database pattern the limit applies to the escaped
// pattern, which is what the server stores (MariaDB refuses a longer one).
func CheckIdent(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if err := checkName(s, identLimit); err != nil {
		return fmt.Errorf("name %q: %w", s, err)
	}
	return nil
}

// CheckAccount reports why id cannot name an account on f: an empty user
// name (anonymous accounts are never managed), a user name longer than f
// stores, a host longer than f stores, or a character the user and host
// columns cannot hold exactly (NUL, invalid UTF-8, outside the Basic
// Multilingual Plane, trailing white space). An empty host is allowed: it is
// how MariaDB stores roles.
func CheckAccount(id mysqlstate.AccountID, f flavor.Flavor) error {
	return checkAccountRef(id, f, false)
}

// checkAccountRef is CheckAccount, allowing the anonymous user (”) where
// an account is only referred to (the target of a proxy grant).
func checkAccountRef(id mysqlstate.AccountID, f flavor.Flavor, anonymous bool) error {
	if id.User == "" {
		if !anonymous {
			return fmt.Errorf("account %s: empty user name", id)
		}
		if err := checkName(id.Host, f.HostNameLimit()); err != nil {
			return fmt.Errorf("account %s: host: %w", id, err)
		}
		return nil
	}
	if err := checkName(id.User, f.AccountNameLimit()); err != nil {
		return fmt.Errorf("account %s: user name: %w", id, err)
	}
	if f.AccountNameInBytes() && len(id.User) > f.AccountNameLimit() {
		return fmt.Errorf("account %s: user name: %d bytes, longer than the embedded server's %d", id, len(id.User), f.AccountNameLimit())
	}
	if err := checkName(id.Host, f.HostNameLimit()); err != nil {
		return fmt.Errorf("account %s: host: %w", id, err)
	}
	return nil
}

// checkName holds the rules shared by identifiers and account names.
func checkName(s string, limit int) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	n := 0
	for _, r := range s {
		n++
		switch {
		case r == 0:
			return errors.New("contains a NUL byte")
		case r > 0xFFFF:
			return fmt.Errorf("character %U is outside the Basic Multilingual Plane", r)
		}
	}
	if n > limit {
		return fmt.Errorf("%d characters, longer than %d", n, limit)
	}
	// MariaDB refuses names that end with any of C's white space, and the
	// CHAR columns of the grant tables strip trailing spaces.
	if strings.TrimRight(s, " \t\n\v\f\r") != s {
		return errors.New("ends with white space")
	}
	return nil
}

// Literal quotes s as a single-quoted string literal. It exists so that
// every user name, host, password and lock name reaches the server as data,
// never as SQL. It doubles ' (correct in every sql_mode) and escapes \, NUL,
// CR, LF and Ctrl-Z with a backslash (so that a log line of the statement
// stays on one line). No escaping is right under both sql_modes: the
// backslash escapes assume the session's sql_mode excludes
// NO_BACKSLASH_ESCAPES, which the engine must guarantee by running
// EnableBackslashEscapes on its session. Because ' is only ever doubled, the
// literal ends at the same byte in both modes: under NO_BACKSLASH_ESCAPES a
// value holding \, NUL, CR, LF or Ctrl-Z would arrive altered, but never be
// read as SQL. They also assume a utf8mb4
// connection character set (the driver's default): in GBK, Big5 or SJIS a
// backslash can be the second byte of a character and no backslash escaping
// is safe.
func Literal(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		case '\r':
			b.WriteString(`\r`)
		case '\n':
			b.WriteString(`\n`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// EnableBackslashEscapes renders the statement that takes
// NO_BACKSLASH_ESCAPES out of the session's sql_mode and keeps the rest of
// it. Literal relies on backslash escapes, so the engine runs this on every
// connection (sql_mode is per session) before any statement render builds.
// The statement holds no backslash, so it means the same in either mode.
func EnableBackslashEscapes() string {
	return "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))"
}

// Account renders id as 'user'@'host', the form every account statement
// takes, with both parts quoted by Literal.
func Account(id mysqlstate.AccountID) string {
	return Literal(id.User) + "@" + Literal(id.Host)
}

// GetLock renders the statement that takes the named lock which keeps two
// runs from reconciling one server at once. It returns 1 when the lock is
// taken and 0 when timeoutSeconds passed first. Lock names are limited to 64
// characters by the server; a negative timeout waits forever on MySQL, so
// the engine passes a positive one.
func GetLock(name string, timeoutSeconds int) string {
	return "SELECT GET_LOCK(" + Literal(name) + ", " + strconv.Itoa(timeoutSeconds) + ")"
}

// ReleaseLock renders the statement that gives back a lock taken with
// GetLock on the same connection.
func ReleaseLock(name string) string {
	return "SELECT RELEASE_LOCK(" + Literal(name) + ")"
}
