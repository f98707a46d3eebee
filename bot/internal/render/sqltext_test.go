package render

import (
	"fmt"
	"strings"
)

// This file holds a small, independent reader of the SQL text that render
// writes: it follows the MySQL manual, not render's code, so the tests can
// check that what render writes is read back as the value it meant.

// readIdent reads one backtick-quoted identifier that must span all of text.
func readIdent(text string) (string, error) {
	if len(text) < 2 || text[0] != '`' {
		return "", fmt.Errorf("identifier %q does not start with a backtick", text)
	}
	var b strings.Builder
	for i := 1; i < len(text); i++ {
		if text[i] != '`' {
			b.WriteByte(text[i])
			continue
		}
		if i+1 < len(text) && text[i+1] == '`' {
			b.WriteByte('`')
			i++
			continue
		}
		if i != len(text)-1 {
			return "", fmt.Errorf("identifier %q ends at byte %d, before the end", text, i)
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("identifier %q is not terminated", text)
}

// readLiteral reads one single-quoted string literal that must span all of
// text, with the escapes of the MySQL manual (sql_mode without
// NO_BACKSLASH_ESCAPES): \0 \' \" \b \n \r \t \Z \\, \% and \_ keep their
// backslash, any other \x is x; ” is one quote.
func readLiteral(text string) (string, error) {
	if len(text) < 2 || text[0] != '\'' {
		return "", fmt.Errorf("literal %q does not start with a quote", text)
	}
	var b strings.Builder
	for i := 1; i < len(text); i++ {
		c := text[i]
		switch c {
		case '\\':
			if i+1 >= len(text) {
				return "", fmt.Errorf("literal %q ends inside an escape", text)
			}
			i++
			switch e := text[i]; e {
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'Z':
				b.WriteByte(0x1a)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
		case '\'':
			if i+1 < len(text) && text[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			if i != len(text)-1 {
				return "", fmt.Errorf("literal %q ends at byte %d, before the end", text, i)
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("literal %q is not terminated", text)
}

// literalEndNoBackslash returns the length of the single-quoted literal
// at the start of text as a server with NO_BACKSLASH_ESCAPES reads it: only
// a doubled quote is special. It returns -1 for an unterminated literal.
func literalEndNoBackslash(text string) int {
	if text == "" || text[0] != '\'' {
		return -1
	}
	for i := 1; i < len(text); i++ {
		if text[i] != '\'' {
			continue
		}
		if i+1 < len(text) && text[i+1] == '\'' {
			i++
			continue
		}
		return i + 1
	}
	return -1
}

// readAccount reads 'user'@'host'.
func readAccount(text string) (user, host string, err error) {
	// The user literal ends at the first quote that is neither doubled nor
	// escaped; find it by trying every @ that follows a quote.
	for i := 1; i < len(text); i++ {
		if text[i] != '@' || text[i-1] != '\'' {
			continue
		}
		u, err1 := readLiteral(text[:i])
		h, err2 := readLiteral(text[i+1:])
		if err1 == nil && err2 == nil {
			return u, h, nil
		}
	}
	return "", "", fmt.Errorf("account %q is not 'user'@'host'", text)
}
