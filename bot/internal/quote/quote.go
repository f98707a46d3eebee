// Package quote quotes values from declarations for messages: as %q does,
// but cut to a readable length, so that a hostile megabyte-long name cannot
// turn one error into a megabyte, and (for names) with every character
// outside ASCII escaped, so that a look-alike shows as what it is.
package quote

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxQuoted is how many characters of a value a quote keeps.
const maxQuoted = 64

// Value quotes s as %q does. A value longer than 64 characters is cut there
// and its length added.
func Value(s string) string { return shorten(s, strconv.Quote) }

// ASCII is Value with every character outside ASCII escaped, for values
// that must be ASCII (names): a look-alike (Cyrillic а for a, a zero-width
// joiner) then shows as what it is.
func ASCII(s string) string { return shorten(s, strconv.QuoteToASCII) }

func shorten(s string, quote func(string) string) string {
	n := utf8.RuneCountInString(s)
	if n <= maxQuoted {
		return quote(s)
	}
	end := 0
	for range maxQuoted {
		_, size := utf8.DecodeRuneInString(s[end:])
		end += size
	}
	return fmt.Sprintf("%s… (%d characters)", quote(s[:end]), n)
}
