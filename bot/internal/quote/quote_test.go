package quote

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tt := range []struct {
		in, value, ascii string
	}{
		{"bob", `"bob"`, `"bob"`},
		{"bоb", `"bоb"`, `"b\u043eb"`}, // Cyrillic о
		{"a\"b\n", `"a\"b\n"`, `"a\"b\n"`},
		{strings.Repeat("x", 65), `"` + strings.Repeat("x", 64) + `"… (65 characters)`, `"` + strings.Repeat("x", 64) + `"… (65 characters)`},
		{strings.Repeat("é", 70), `"` + strings.Repeat("é", 64) + `"… (70 characters)`, `"` + strings.Repeat(`\u00e9`, 64) + `"… (70 characters)`},
	} {
		if got := Value(tt.in); got != tt.value {
			t.Errorf("Value(%q) = %s, want %s", tt.in, got, tt.value)
		}
		if got := ASCII(tt.in); got != tt.ascii {
			t.Errorf("ASCII(%q) = %s, want %s", tt.in, got, tt.ascii)
		}
	}
}
