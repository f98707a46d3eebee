package render

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// redactedLiteral stands in for a password literal in Statement.Redacted.
const redactedLiteral = "'<redacted>'"

// Statement is one SQL statement ready to send. SQL is what the server
// receives and may hold a password; Redacted is the same statement with the
// password replaced by '<redacted>', and is what every person, log line and
// error sees. Every way of printing a Statement (String, fmt verbs including
// %#v, slog, encoding/json and other text encoders) yields Redacted, so
// only code that reads the SQL field by name can see a secret. (fmt cannot
// apply these methods to a Statement stored in an unexported struct field:
// keep Statements in exported fields or local variables.)
type Statement struct {
	SQL      string
	Redacted string
}

// String returns the redacted statement, so that printing never leaks.
func (s Statement) String() string { return s.Redacted }

// GoString returns Go syntax for the statement without its SQL, so that %#v
// never leaks.
func (s Statement) GoString() string {
	return fmt.Sprintf("render.Statement{Redacted: %q}", s.Redacted)
}

// Format prints the redacted statement for every verb and flag, so that %v,
// %+v, %s, %q and friends never print the SQL field.
func (s Statement) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.Redacted)
}

// LogValue makes slog log the redacted statement.
func (s Statement) LogValue() slog.Value { return slog.StringValue(s.Redacted) }

// MarshalText makes encoding/json (and other text encoders) write the
// redacted statement as a string.
func (s Statement) MarshalText() ([]byte, error) { return []byte(s.Redacted), nil }

// HasSecret reports whether SQL differs from Redacted, that is whether the
// statement carries a password.
func (s Statement) HasSecret() bool { return s.SQL != s.Redacted }

// SanitizeError returns err fit for logs and messages when it came from
// sending s. Servers quote statement text in their errors (MariaDB: "near
// 'BY 'hunter2” at line 1", cut at 80 characters), so for a statement that
// carries a password it drops any quoted excerpt of the statement, replaces
// the password, and withholds the server's message altogether if a piece of
// the password (4 bytes or more) would still show. The result does not wrap
// err when its text changed, since err's own text holds the secret; when
// nothing needed hiding, err is returned as is, so errors.As still finds the
// driver's error.
func (s Statement) SanitizeError(err error) error {
	if err == nil {
		return nil
	}
	lit, ok := s.secretLiteral()
	if !ok {
		return err
	}
	msg := err.Error()
	clean := msg
	if i := strings.Index(clean, "near '"); i >= 0 {
		clean = clean[:i] + "near <statement text withheld>"
	}
	secrets := []string{lit[1 : len(lit)-1], unliteral(lit)}
	for _, secret := range secrets {
		if secret != "" {
			clean = strings.ReplaceAll(clean, secret, "<redacted>")
		}
	}
	for _, secret := range secrets {
		for i := 0; i+4 <= len(secret); i++ {
			if strings.Contains(clean, secret[i:i+4]) {
				clean = "server error withheld: its message may contain the password"
			}
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// secretLiteral recovers the quoted password literal of SQL by lining it up
// with Redacted: SQL is Redacted with one redactedLiteral replaced.
func (s Statement) secretLiteral() (string, bool) {
	if !s.HasSecret() {
		return "", false
	}
	for off := 0; ; {
		i := strings.Index(s.Redacted[off:], redactedLiteral)
		if i < 0 {
			return "", false
		}
		i += off
		prefix, suffix := s.Redacted[:i], s.Redacted[i+len(redactedLiteral):]
		if len(s.SQL) >= len(prefix)+len(suffix)+2 && strings.HasPrefix(s.SQL, prefix) && strings.HasSuffix(s.SQL, suffix) {
			lit := s.SQL[len(prefix) : len(s.SQL)-len(suffix)]
			if lit[0] == '\'' && lit[len(lit)-1] == '\'' {
				return lit, true
			}
		}
		off = i + 1
	}
}

// unliteral undoes Literal.
func unliteral(lit string) string {
	lit = lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c == '\'' && i+1 < len(lit) && lit[i+1] == '\'':
			i++
		case c == '\\' && i+1 < len(lit):
			i++
			switch lit[i] {
			case '0':
				c = 0
			case 'r':
				c = '\r'
			case 'n':
				c = '\n'
			case 'Z':
				c = 0x1a
			default:
				c = lit[i]
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
