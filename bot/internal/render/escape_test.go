package render

import (
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/google/go-cmp/cmp"
)

// nasty are inputs that break naive quoting; every escaping test runs them.
var nasty = []string{
	"", "plain", "acme_bob", "o'brien", "''", "'", "`", "``", "a`b", "`; DROP DATABASE x; --",
	`\`, `\\`, `a\`, `\'`, `\''`, `'\`, `a\'b`, "\\`", `%`, `_`, `a_b%c`, `\_`, `\%`,
	"nul\x00byte", "\x00", "line\nfeed", "carriage\rreturn", "ctrl\x1az", "tab\tstop", "\b",
	"é", "日本語", "😀", "x😀`'\\%_", "\u202e", "\ufeff", "trailing ", " leading",
	"\xff\xfe invalid utf-8", "'); DROP USER 'root'@'%'; --", `"double"`, "a'@'%",
}

func TestIdent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"orders", "`orders`"},
		{"a`b", "`a``b`"},
		{"``", "``````"},
		{"app_db", "`app_db`"},
		{`a\b`, "`a\\b`"},
		{"o'brien", "`o'brien`"},
		{"日本", "`日本`"},
		{"", "``"},
	}
	for _, tt := range tests {
		if got := Ident(tt.in); got != tt.want {
			t.Errorf("Ident(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, s := range nasty {
		got, err := readIdent(Ident(s))
		if err != nil || got != s {
			t.Errorf("readIdent(Ident(%q)) = %q, %v; want the input back", s, got, err)
		}
	}
}

func TestLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pw", `'pw'`},
		{"o'brien", `'o''brien'`},
		{`a\b`, `'a\\b'`},
		{"a\x00b", `'a\0b'`},
		{"a\nb\rc", `'a\nb\rc'`},
		{"a\x1ab", `'a\Zb'`},
		{`\'`, `'\\'''`},
		{"%_", `'%_'`},
		{"tab\t", "'tab\t'"},
		{"日本", `'日本'`},
		{"", `''`},
	}
	for _, tt := range tests {
		if got := Literal(tt.in); got != tt.want {
			t.Errorf("Literal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, s := range nasty {
		lit := Literal(s)
		got, err := readLiteral(lit)
		if err != nil || got != s {
			t.Errorf("readLiteral(Literal(%q)) = %q, %v; want the input back", s, got, err)
		}
		if end := literalEndNoBackslash(lit); end != len(lit) {
			t.Errorf("under NO_BACKSLASH_ESCAPES, Literal(%q) = %q ends at byte %d of %d", s, lit, end, len(lit))
		}
		if strings.ContainsAny(lit, "\n\r\x00") {
			t.Errorf("Literal(%q) = %q holds a raw NUL, CR or LF", s, lit)
		}
	}
}

func TestAccount(t *testing.T) {
	if got, want := Account(mysqlstate.AccountID{User: "acme_bob", Host: "%"}), `'acme_bob'@'%'`; got != want {
		t.Errorf("Account = %s, want %s", got, want)
	}
	for _, u := range nasty {
		for _, h := range []string{"%", "10.0.0.%", "a'@'b", `\`, ""} {
			user, host, err := readAccount(Account(mysqlstate.AccountID{User: u, Host: h}))
			if err != nil || user != u || host != h {
				t.Errorf("Account(%q, %q) reads back as %q, %q, %v", u, h, user, host, err)
			}
		}
	}
}

func TestDatabasePattern(t *testing.T) {
	tests := []struct {
		name     string
		wildcard bool
		want     string
	}{
		{"orders", true, "orders"},
		{"app_db", true, `app\_db`},
		{"app_db", false, "app_db"},
		{"50%off", true, `50\%off`},
		{`a\b`, true, `a\\b`},
		{`a\b`, false, `a\b`},
		{"a`b_", true, "a`b\\_"},
		{"日本_db", true, `日本\_db`},
	}
	for _, tt := range tests {
		if got := flavor.DatabasePattern(tt.name, tt.wildcard); got != tt.want {
			t.Errorf("flavor.DatabasePattern(%q, %v) = %q, want %q", tt.name, tt.wildcard, got, tt.want)
		}
	}
	for _, s := range nasty {
		name, exact := flavor.UnescapeDatabasePattern(flavor.DatabasePattern(s, true))
		if name != s || !exact {
			t.Errorf("flavor.UnescapeDatabasePattern(flavor.DatabasePattern(%q, true)) = %q, %v; want %q, true", s, name, exact, s)
		}
	}
}

func TestUnescapeDatabasePattern(t *testing.T) {
	tests := []struct {
		pattern string
		name    string
		exact   bool
	}{
		{`app\_db`, "app_db", true},
		{"app_db", "app_db", false},
		{"app%", "app%", false},
		{`a\\b`, `a\b`, true},
		{`a\\_`, `a\_`, false},
		{`a\b`, "ab", true},
		{`trailing\`, `trailing\`, true},
		{"", "", true},
		{`\%\_\\`, `%_\`, true},
	}
	for _, tt := range tests {
		name, exact := flavor.UnescapeDatabasePattern(tt.pattern)
		if name != tt.name || exact != tt.exact {
			t.Errorf("flavor.UnescapeDatabasePattern(%q) = %q, %v; want %q, %v", tt.pattern, name, exact, tt.name, tt.exact)
		}
	}
}

func TestCheckIdent(t *testing.T) {
	ok := []string{"orders", "app_db", "a`b", "o'brien", `a\b`, "日本", strings.Repeat("x", 64), strings.Repeat("é", 64), " leading", "%"}
	bad := map[string]string{
		"":                            "empty",
		"nul\x00":                     "NUL",
		strings.Repeat("x", 65):       "longer than 64",
		strings.Repeat("é", 65):       "longer than 64",
		"\xff":                        "UTF-8",
		"emoji😀":                      "Basic Multilingual Plane",
		"trailing ":                   "ends with white space",
		"form feed\f":                 "ends with white space",
		"tab\t":                       "ends with white space",
		strings.Repeat("x", 63) + " ": "ends with white space",
	}
	for _, s := range ok {
		if err := CheckIdent(s); err != nil {
			t.Errorf("CheckIdent(%q) = %v, want nil", s, err)
		}
	}
	for s, want := range bad {
		if err := CheckIdent(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckIdent(%q) = %v, want an error saying %q", s, err, want)
		}
	}
}

func TestCheckAccount(t *testing.T) {
	id := func(u, h string) mysqlstate.AccountID { return mysqlstate.AccountID{User: u, Host: h} }
	tests := []struct {
		id     mysqlstate.AccountID
		flavor flavor.Flavor
		want   string // empty for no error
	}{
		{id("acme_bob", "%"), flavor.MySQL57, ""},
		{id("o'brien`x", "10.0.%"), flavor.MySQL80, ""},
		{id("role", ""), flavor.MariaDB, ""},
		{id(strings.Repeat("u", 32), "%"), flavor.MySQL57, ""},
		{id(strings.Repeat("u", 33), "%"), flavor.MySQL57, "longer than 32"},
		{id(strings.Repeat("u", 33), "%"), flavor.MariaDB, ""},
		{id(strings.Repeat("u", 129), "%"), flavor.MariaDB, "longer than 128"},
		{id("é"+strings.Repeat("u", 31), "%"), flavor.MySQL80, ""},
		{id("é"+strings.Repeat("u", 31), "%"), flavor.Embedded, "33 bytes, longer than the embedded server's 32"},
		{id(strings.Repeat("u", 32), "%"), flavor.Embedded, ""},
		{id("", "%"), flavor.MySQL80, "empty user"},
		{id("a\x00b", "%"), flavor.MySQL80, "NUL"},
		{id("bob ", "%"), flavor.MariaDB, "ends with white space"},
		{id("bob", "% "), flavor.MariaDB, "ends with white space"},
		{id("bob😀", "%"), flavor.MariaDB, "Basic Multilingual Plane"},
		{id("bob", "\xff"), flavor.MySQL80, "UTF-8"},
		{id("bob", strings.Repeat("h", 61)), flavor.MySQL57, "longer than 60"},
		{id("bob", strings.Repeat("h", 61)), flavor.MySQL80, ""},
		{id("bob", strings.Repeat("h", 256)), flavor.MySQL80, "longer than 255"},
	}
	for _, tt := range tests {
		err := CheckAccount(tt.id, tt.flavor)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckAccount(%q, %q, %s) = %v, want %q", tt.id.User, tt.id.Host, tt.flavor, err, tt.want)
		}
	}
}

func TestCheckPrivilege(t *testing.T) {
	for _, p := range []string{"SELECT", "DELETE HISTORY", "CREATE TEMPORARY TABLES", "PROCESS", "REPLICATION CLIENT",
		"GRANT OPTION", "BINLOG MONITOR", "SUPER", "BINLOG_ADMIN", "SYSTEM_VARIABLES_ADMIN", "LOAD FROM S3"} {
		if err := CheckPrivilege(p); err != nil {
			t.Errorf("CheckPrivilege(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "ALL", "ALL PRIVILEGES", "USAGE", "select", "SELECT ", "SELECT, DROP", "SELECT;",
		"SELECT ON *.* TO x", "PROXY", "FOO", "_", "A_", "BINLOG_ADMIN2", "SELECT\x00", "ＳＥＬＥＣＴ"} {
		if err := CheckPrivilege(p); err == nil {
			t.Errorf("CheckPrivilege(%q) = nil, want an error", p)
		}
	}
}

func TestLockStatements(t *testing.T) {
	got := []string{GetLock("dbusers", 10), ReleaseLock("dbusers"), GetLock("it's", 0), ReleaseLock(`a\b`)}
	want := []string{
		"SELECT GET_LOCK('dbusers', 10)",
		"SELECT RELEASE_LOCK('dbusers')",
		"SELECT GET_LOCK('it''s', 0)",
		`SELECT RELEASE_LOCK('a\\b')`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lock statements (-want +got):\n%s", diff)
	}
}
