// Adversarial declarations: names that look like SQL, look-alike
// characters, NUL, huge values, deep nesting, huge files and huge counts.
// Each must end in a clear diagnostic at the right place or in a correct
// result, never in a crash, a hang or a message as large as the input; and
// whatever is accepted must reach SQL only through render.Ident and
// render.Literal.
//
// This file is package config_test, unlike the package's other tests,
// because the SQL proof needs desired, plan and render, which import config.

package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/render"
)

// advToday is the date of the package's other tests.
var advToday = time.Date(2026, 3, 1, 15, 4, 5, 0, time.UTC)

// maxMessage bounds every diagnostic message: a message quotes at most a
// short piece of any value it is about.
const maxMessage = 600

// baseRepo is testdata/base, the clean repository the other tests overlay.
func baseRepo(t testing.TB) fstest.MapFS {
	t.Helper()
	root := os.DirFS(filepath.Join("testdata", "base"))
	out := fstest.MapFS{}
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, p)
		out[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// js is s as a JSON string, with <, > and & left alone.
func js(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// jsList is a JSON array of strings.
func jsList(items ...string) string {
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = js(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// accessLine is the one access entry of userDoc, on line 7.
func accessLine(clusters, databases, role string) string {
	return `    {"clusters": ` + clusters + `, "databases": ` + databases + `, "role": ` + role + `}`
}

// userDoc is a password user file: name (raw JSON) on line 2 at column 11,
// owner on line 3 at column 12, the access entry on line 7.
func userDoc(name, owner, access string) string {
	return "{\n" +
		`  "name": ` + name + ",\n" +
		`  "owner": ` + owner + ",\n" +
		`  "kind": "service",` + "\n" +
		`  "auth": {"type": "password", "secret": "dbusers/adv"},` + "\n" +
		`  "access": [` + "\n" +
		access + "\n" +
		"  ]\n}\n"
}

// plainUser is a valid user file of name with read on orders of dev-maria.
func plainUser(name string) string {
	return userDoc(js(name), `"team@acme.example"`, accessLine(`["dev-maria"]`, `["orders"]`, `"read"`))
}

// col is the 1-based column (in characters) of needle's first occurrence
// in line; it places expected diagnostics without the code under test.
func col(t testing.TB, line, needle string) int {
	t.Helper()
	i := strings.Index(line, needle)
	if i < 0 {
		t.Fatalf("%q not in %q", needle, line)
	}
	return utf8.RuneCountInString(line[:i]) + 1
}

func dg(file string, line, col int, msg string) diag.Diagnostic {
	return diag.Diagnostic{File: file, Line: line, Col: col, Severity: diag.Error, Message: msg}
}

// clusterDoc is dev-maria's file with other databases (raw JSON) on line
// 9 at column 16, and extra raw members after them.
func clusterDoc(databases, extra string) string {
	return "{\n" +
		`  "name": "dev-maria",` + "\n" +
		`  "environment": "dev",` + "\n" +
		`  "account_id": "310987654321",` + "\n" +
		`  "region": "eu-west-1",` + "\n" +
		`  "endpoint": "127.0.0.1",` + "\n" +
		`  "engine": "mariadb-10.11",` + "\n" +
		`  "admin_secret": "dbusers/dev-maria/admin",` + "\n" +
		`  "databases": ` + databases + ",\n" +
		`  "tls": "disabled"` + extra + "\n}\n"
}

// load runs config.Load, fails the test on an I/O error, and checks that
// every message is short and every position is inside its file.
func load(t testing.TB, fsys fs.FS) (*config.Loaded, diag.List) {
	t.Helper()
	l, diags, err := config.Load(fsys, advToday)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, d := range diags {
		if len(d.Message) > maxMessage {
			t.Errorf("%s:%d:%d: a %d-byte message: %.200s…", d.File, d.Line, d.Col, len(d.Message), d.Message)
		}
	}
	return l, diags
}

// advCase is one adversarial repository: the base with files replaced.
type advCase struct {
	files map[string]string
	// want are the diagnostics, exactly; none means the repository is
	// accepted, and then its SQL is checked.
	want diag.List
	// check inspects what was loaded.
	check func(t *testing.T, l *config.Loaded)
}

func (c advCase) run(t *testing.T) {
	fsys := baseRepo(t)
	for p, data := range c.files {
		fsys[p] = &fstest.MapFile{Data: []byte(data)}
	}
	l, got := load(t, fsys)
	if diff := cmp.Diff(c.want, got); diff != "" {
		t.Fatalf("diagnostics (-want +got):\n%s", diff)
	}
	if c.check != nil {
		c.check(t, l)
	}
	if len(c.want.Errors()) == 0 {
		proveSQL(t, &l.Config)
	}
}

const (
	nameRule = "name must be 1 to 31 lowercase letters, digits or _, starting with a letter (it becomes part of a MySQL account name)"
	dbRule   = "database names may use letters, digits, _, $ and - (at most 64 characters)"
)

// TestAdversarialUserNames: a user name is the one declared value that
// becomes part of an account name, so only the safe alphabet passes, and
// a look-alike is refused at the name.
func TestAdversarialUserNames(t *testing.T) {
	refused := map[string]string{
		"single quote":          `o'hara`,
		"double quote":          `o"hara`,
		"backtick":              "o`hara",
		"backslash":             `o\hara`,
		"percent":               `pct%`,
		"percent underscore":    `a%_`,
		"at sign":               `a@b`,
		"space":                 `a b`,
		"trailing space":        `alice `,
		"semicolon":             `a;drop`,
		"comment":               `a--`,
		"upper case":            `Alice`,
		"leading underscore":    `_alice`,
		"leading digit":         `1alice`,
		"empty":                 ``,
		"cyrillic a":            "\u0430lice",
		"fullwidth":             "\uff41\uff4c\uff49\uff43\uff45",
		"zero-width joiner":     "al\u200dice",
		"zero-width space":      "al\u200bice",
		"combining accent":      "ali\u0301ce",
		"dotless i":             "al\u0131ce",
		"NUL":                   "al\x00ice",
		"NUL at the end":        "alice\x00",
		"line separator":        "al\u2028ice",
		"32 characters":         strings.Repeat("a", 32),
		"1 MB":                  strings.Repeat("a", 1_000_000),
		"replacement character": "al\ufffdice",
	}
	for label, name := range refused {
		t.Run(label, func(t *testing.T) {
			advCase{
				files: map[string]string{"users/adv.json": plainUser(name)},
				want:  diag.List{dg("users/adv.json", 2, 11, nameRule)},
			}.run(t)
		})
	}

	// A valid name in a look-alike or SQL-looking file name: the file name
	// is quoted with escapes, so the difference is visible.
	for label, file := range map[string]string{
		"cyrillic file name":  "\u0430lice",
		"quote in file name":  "o'hara",
		"NBSP in file name":   "alice\u00a0",
		"ZWJ in file name":    "al\u200dice",
		"fullwidth file name": "\uff41lice",
	} {
		t.Run(label, func(t *testing.T) {
			advCase{
				files: map[string]string{"users/" + file + ".json": plainUser("ohara")},
				want: diag.List{dg("users/"+file+".json", 2, 11,
					fmt.Sprintf("name \"ohara\" must equal the file name %s", asciiQuote(file)))},
			}.run(t)
		})
	}

	// Underscores are fine anywhere after the first letter.
	t.Run("underscores", func(t *testing.T) {
		advCase{files: map[string]string{
			"users/a_b__c_.json": plainUser("a_b__c_"),
			"users/x_9.json":     plainUser("x_9"),
		}}.run(t)
	})
}

// asciiQuote is how a diagnostic quotes a short value: Go syntax with
// every non-ASCII character escaped.
func asciiQuote(s string) string { return fmt.Sprintf("%+q", s) }

// TestAdversarialAccountBoundary: <prefix>_<name> may be exactly 32
// characters, the MySQL 5.7 limit, and not one more.
func TestAdversarialAccountBoundary(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		name   int // characters
		over   int // characters over 32; 0 means accepted
	}{
		{"acme", 27, 0},
		{"acme", 28, 1},
		{"acme", 31, 4},
		{"ab", 29, 0},
		{"ab", 30, 1},
		{"abcdefghij", 21, 0},
		{"abcdefghij", 22, 1},
	} {
		name := "u" + strings.Repeat("_", tt.name-2) + "z"
		t.Run(fmt.Sprintf("%s+%d", tt.prefix, tt.name), func(t *testing.T) {
			c := advCase{files: map[string]string{
				"dbusers.json":            settingsDoc(tt.prefix, ""),
				"users/" + name + ".json": plainUser(name),
				"users/orders_api.json":   plainUser("orders_api"), // its role etl is gone
			}}
			acct := tt.prefix + "_" + name
			if tt.over > 0 {
				c.want = diag.List{dg("users/"+name+".json", 2, 11, fmt.Sprintf(
					"account name %s is %d characters; MySQL 5.7 and Aurora MySQL 2 allow 32, so shorten the name by %d",
					acct, 32+tt.over, tt.over))}
			} else {
				c.check = func(t *testing.T, l *config.Loaded) {
					if got := l.Config.Settings.AccountName(name); got != acct || len(got) != 32 {
						t.Errorf("account %q (%d characters), want %q, 32", got, len(got), acct)
					}
				}
			}
			c.run(t)
		})
	}
}

// settingsDoc is dbusers.json with a prefix and extra raw members.
func settingsDoc(prefix, extra string) string {
	return "{\n" +
		`  "prefix": ` + js(prefix) + ",\n" +
		`  "removal_limit": {"count": 5, "fraction": 0.2},` + "\n" +
		`  "ssm": {"parameter": "/dbusers/config"},` + "\n" +
		`  "aws": {"management_role": "dbusers-management"}` + extra + "\n}\n"
}

// TestAdversarialDatabaseNames: a cluster may manage databases named with
// _, $ and -, which reach SQL as quoted (and, where GRANT reads
// wildcards, escaped) identifiers; anything else is refused where it is
// written, and a user may only name databases the cluster lists, exactly.
func TestAdversarialDatabaseNames(t *testing.T) {
	sixtyFour := strings.Repeat("d", 64)
	accepted := []string{"orders", "analytics", "my_db", "my$db", "my-db", "_", "$", "-", "__", "a_b$c-d", "$_-", "9", sixtyFour,
		strings.Repeat("x", 62) + "_"} // 63 characters, 64 once escaped
	t.Run("accepted", func(t *testing.T) {
		advCase{files: map[string]string{
			"clusters/dev-maria.json": clusterDoc(jsList(accepted...), ""),
			"users/dbs.json":          userDoc(`"dbs"`, `"o"`, accessLine(`["dev-maria"]`, jsList(accepted[2:]...), `"write"`)),
			"users/star.json":         userDoc(`"star"`, `"o"`, accessLine(`["dev-maria"]`, `["*"]`, `"read"`)),
		}}.run(t)
	})

	for label, db := range map[string]string{
		"percent":        "my%db",
		"lone percent":   "%",
		"backtick":       "my`db",
		"single quote":   "my'db",
		"double quote":   `my"db`,
		"backslash":      `my\db`,
		"dot":            "my.db",
		"slash":          "my/db",
		"space":          "my db",
		"trailing space": "mydb ",
		"star":           "*",
		"empty":          "",
		"NUL":            "my\x00db",
		"cyrillic":       "my_d\u0431",
		"fullwidth":      "\uff4d\uff59db",
		"ZWJ":            "my\u200ddb",
		"65 characters":  strings.Repeat("d", 65),
		"1 MB":           strings.Repeat("d", 1_000_000),
	} {
		t.Run("cluster "+label, func(t *testing.T) {
			list := jsList("orders", "analytics", db)
			line := `  "databases": ` + list + ","
			advCase{
				files: map[string]string{"clusters/dev-maria.json": clusterDoc(list, "")},
				want: diag.List{
					dg("clusters/dev-maria.json", 9, col(t, line, js(db)), dbRule),
					// The cluster is refused as a whole, so references to it
					// are unknown.
					dg("users/orders_api.json", 7, 19, `unknown cluster "dev-maria" (known: prod-orders, staging-main)`),
				},
			}.run(t)
		})
	}

	// 63 characters and one _ are 64 once escaped, and accepted above.
	t.Run("65 characters once escaped", func(t *testing.T) {
		db := strings.Repeat("x", 63) + "_"
		list := jsList("orders", "analytics", db)
		line := `  "databases": ` + list + ","
		advCase{
			files: map[string]string{"clusters/dev-maria.json": clusterDoc(list, "")},
			want: diag.List{dg("clusters/dev-maria.json", 9, col(t, line, js(db)), fmt.Sprintf(
				"database %q is 65 characters once its _ and %% are escaped for GRANT; MySQL allows 64", db))},
		}.run(t)
	})

	// What a user names must be exactly what the cluster lists.
	for label, db := range map[string]string{
		"case":          "ORDERS",
		"percent":       "order%",
		"underscore":    "order_",
		"backtick":      "orders`",
		"trailing NUL":  "orders\x00",
		"trailing ZWJ":  "orders\u200d",
		"cyrillic o":    "\u043erders",
		"fullwidth":     "\uff4frders",
		"quote":         "orders'; DROP DATABASE orders; --",
		"1 MB":          strings.Repeat("o", 1_000_000),
		"star and more": "*orders",
	} {
		t.Run("user "+label, func(t *testing.T) {
			dbs := jsList(db)
			line := accessLine(`["dev-maria"]`, dbs, `"read"`)
			advCase{
				files: map[string]string{"users/adv.json": userDoc(`"adv"`, `"o"`, line)},
				want: diag.List{dg("users/adv.json", 7, col(t, line, dbs)+1,
					fmt.Sprintf("database %s is not managed by cluster dev-maria (it manages: orders, analytics)", asciiQuoteShort(db)))},
			}.run(t)
		})
	}
}

// asciiQuoteShort is asciiQuote with a long value cut to 64 characters and
// its length.
func asciiQuoteShort(s string) string {
	if n := utf8.RuneCountInString(s); n > 64 {
		return asciiQuote(string([]rune(s)[:64])) + fmt.Sprintf("… (%d characters)", n)
	}
	return asciiQuote(s)
}

// TestAdversarialReferences: look-alike, NUL-laden and huge names of
// roles, clusters and environments are unknown, shown with their odd
// characters escaped so that a reviewer sees why.
func TestAdversarialReferences(t *testing.T) {
	known := map[string]string{
		"role":        "admin, etl, read, trusted_admin, write",
		"cluster":     "dev-maria, prod-orders, staging-main",
		"environment": "dev, prod, staging",
	}
	for _, tt := range []struct{ what, value string }{
		{"role", "re\u0430d"},
		{"role", "\uff52\uff45\uff41\uff44"},
		{"role", "read\x00"},
		{"role", "read "},
		{"role", "READ"},
		{"role", "read' OR '1'='1"},
		{"role", strings.Repeat("r", 1_000_000)},
		{"cluster", "dev-m\u0430ria"},
		{"cluster", "dev-maria\u200d"},
		{"cluster", "dev-maria\x00"},
		{"cluster", "dev_maria"},
		{"cluster", strings.Repeat("c", 1_000_000)},
		{"environment", "d\u0435v"},
		{"environment", "dev\u200b"},
		{"environment", "%"},
		{"environment", strings.Repeat("e", 1_000_000)},
	} {
		t.Run(tt.what+" "+asciiQuoteShort(tt.value), func(t *testing.T) {
			clusters, role, needle := `["dev-maria"]`, `"read"`, ""
			switch tt.what {
			case "role":
				role, needle = js(tt.value), js(tt.value)
			case "cluster":
				clusters = jsList(tt.value)
				needle = js(tt.value)
			case "environment":
				clusters = jsList()
				needle = js(tt.value)
			}
			line := accessLine(clusters, `["orders"]`, role)
			if tt.what == "environment" {
				line = `    {"environments": ` + jsList(tt.value) + `, "databases": ["orders"], "role": "read"}`
			}
			want := diag.List{dg("users/adv.json", 7, col(t, line, needle),
				fmt.Sprintf("unknown %s %s (known: %s)", tt.what, asciiQuoteShort(tt.value), known[tt.what]))}
			advCase{
				files: map[string]string{"users/adv.json": userDoc(`"adv"`, `"o"`, line)},
				want:  want,
			}.run(t)
		})
	}
}

// TestAdversarialFreeText: owner, description, reason, tags and protected
// account names are data that never reaches SQL: odd characters pass,
// limits hold where the schema sets them, and nothing crashes.
func TestAdversarialFreeText(t *testing.T) {
	odd := "o'h\"a`r\\a %_ \x00 \u0430\uff41\u200d\u2028 \U0001F600 \t\r\n; DROP USER root; --"
	t.Run("accepted", func(t *testing.T) {
		advCase{
			files: map[string]string{
				"users/adv.json": userDoc(`"adv"`, js(odd), `    {"clusters": ["dev-maria"], "databases": ["orders"], "role": "read", "reason": `+js(odd)+`}`),
				"clusters/dev-maria.json": clusterDoc(`["orders", "analytics"]`,
					`, "description": `+js(odd)+`, "tags": {`+js(odd)+`: `+js(odd)+`, "": ""}`),
				"dbusers.json": settingsDoc("acme", `, "protected_accounts": `+jsList("acme_"+odd, "acme_adv\x00", "acme_x' OR 1=1 --")+
					`, "roles": {"etl": {"description": `+js(odd)+`, "extends": ["write"], "privileges": ["DELETE"]}}`),
			},
			check: func(t *testing.T, l *config.Loaded) {
				i := slices.IndexFunc(l.Config.Users, func(u config.User) bool { return u.Name == "adv" })
				if i < 0 || l.Config.Users[i].Owner != odd || l.Config.Users[i].Access[0].Reason != odd {
					t.Errorf("owner or reason did not survive exactly")
				}
				if len(l.Config.Clusters[0].Tags) != 2 || l.Config.Clusters[0].Tags[odd] != odd {
					t.Errorf("tags %d, want 2 with the odd one intact", len(l.Config.Clusters[0].Tags))
				}
			},
		}.run(t)
	})

	// Limits the schema sets hold at the value, whatever it holds.
	for _, tt := range []struct {
		label, file, doc, needle, msg string
		line                          int
	}{
		{"owner 1 MB", "users/adv.json", userDoc(`"adv"`, js(strings.Repeat("\x00", 1000)+strings.Repeat("o", 1_000_000)), accessLine(`["dev-maria"]`, `["orders"]`, `"read"`)),
			`"\u0000`, "owner: String length must be less than or equal to 200", 3},
		{"owner empty", "users/adv.json", userDoc(`"adv"`, `""`, accessLine(`["dev-maria"]`, `["orders"]`, `"read"`)),
			`""`, "owner: String length must be greater than or equal to 1", 3},
		{"tag key 1 MB", "clusters/dev-maria.json", clusterDoc(`["orders", "analytics"]`, `, "tags": {`+js(strings.Repeat("k", 1_000_000))+`: ""}`),
			`""}`, `tag key "` + strings.Repeat("k", 64) + `"… (1000000 characters) is longer than 128 characters`, 10},
		{"tag value 1 MB", "clusters/dev-maria.json", clusterDoc(`["orders", "analytics"]`, `, "tags": {"team": `+js(strings.Repeat("t", 1_000_000))+`}`),
			`"ttt`, "tags.team: String length must be less than or equal to 256", 10},
		{"secret with a quote", "users/adv.json", strings.Replace(plainUser("adv"), `"dbusers/adv"`, `"dbusers/adv'--"`, 1),
			`"dbusers/adv'--"`, "secret must be a Secrets Manager ARN or name (letters, digits and /_+=.@-)", 5},
		{"secret with NUL", "users/adv.json", strings.Replace(plainUser("adv"), `"dbusers/adv"`, `"dbusers/adv\u0000"`, 1),
			`"dbusers/adv\u0000"`, "secret must be a Secrets Manager ARN or name (letters, digits and /_+=.@-)", 5},
	} {
		t.Run(tt.label, func(t *testing.T) {
			line := strings.Split(tt.doc, "\n")[tt.line-1]
			want := diag.List{dg(tt.file, tt.line, col(t, line, tt.needle), tt.msg)}
			// A schema error drops the cluster, so its users name an
			// unknown one; a semantic error (the tag key) keeps it.
			if tt.file == "clusters/dev-maria.json" && !strings.HasPrefix(tt.msg, "tag key") {
				want = append(want, dg("users/orders_api.json", 7, 19, `unknown cluster "dev-maria" (known: prod-orders, staging-main)`))
			}
			advCase{files: map[string]string{tt.file: tt.doc}, want: want}.run(t)
		})
	}
}

// TestAdversarialRoles: privilege names cannot be quoted in SQL, so a role
// may hold only known privileges; anything else is refused at the role.
func TestAdversarialRoles(t *testing.T) {
	// Roles go on line 5 of settingsDoc, after "aws"; problems are placed
	// at the role.
	aws := `  "aws": {"management_role": "dbusers-management"}`
	rolesCol := len(aws+`, "roles": {"etl": `) + 1
	for label, priv := range map[string]string{
		"NUL":            "SELECT\x00",
		"SQL":            "SELECT ON *.* TO x; --",
		"backtick":       "SELECT`",
		"global":         "SUPER",
		"grant option":   "GRANT OPTION",
		"fullwidth":      "\uff33\uff25\uff2c\uff25\uff23\uff34",
		"cyrillic":       "S\u0415LECT",
		"all on star":    "ALL ON *.*",
		"40 characters":  strings.Repeat("S", 40),
		"zero-width":     "SEL\u200bECT",
		"usage":          "USAGE",
		"proxy":          "PROXY",
		"file privilege": "FILE",
	} {
		t.Run(label, func(t *testing.T) {
			advCase{
				files: map[string]string{"dbusers.json": settingsDoc("acme",
					`, "roles": {"etl": {"extends": ["write"], "privileges": `+jsList(priv)+`}}`)},
				want: diag.List{dg("dbusers.json", 5, rolesCol, fmt.Sprintf("role etl: %s is not a database-level privilege", asciiQuote(priv)))},
			}.run(t)
		})
	}
	t.Run("extends a 1 MB name", func(t *testing.T) {
		parent := strings.Repeat("w", 1_000_000)
		advCase{
			files: map[string]string{"dbusers.json": settingsDoc("acme",
				`, "roles": {"etl": {"extends": `+jsList(parent)+`, "privileges": ["DELETE"]}}`)},
			want: diag.List{dg("dbusers.json", 5, rolesCol, "role etl extends unknown role "+asciiQuoteShort(parent))},
		}.run(t)
	})
	// A role name is checked by the schema's propertyNames, which
	// gojsonschema reports twice, at the roles object.
	t.Run("role name with a quote", func(t *testing.T) {
		at := len(aws+`, "roles": `) + 1
		advCase{
			files: map[string]string{"dbusers.json": settingsDoc("acme",
				`, "roles": {"etl": {"privileges": ["DELETE"]}, "o'hara": {"privileges": ["SELECT"]}}`)},
			want: diag.List{
				dg("dbusers.json", 5, at, "roles: Does not match pattern '^[a-z][a-z0-9_]{0,31}$'"),
				dg("dbusers.json", 5, at, `roles: Property name of "o'hara" does not match`),
				dg("users/orders_api.json", 7, 97, `unknown role "etl" (known: admin, read, trusted_admin, write)`)},
		}.run(t)
	})
	// Case and white space are how people write privileges; the SQL only
	// ever holds the canonical name.
	t.Run("lower case and spaces", func(t *testing.T) {
		advCase{files: map[string]string{"dbusers.json": settingsDoc("acme",
			`, "roles": {"etl": {"extends": ["write"], "privileges": ["delete", "  create   temporary\ttables "]}}`)}}.run(t)
	})
}

// TestAdversarialNesting: 10,000 levels of arrays or objects are refused at
// the 33rd level, without recursing 10,000 times.
func TestAdversarialNesting(t *testing.T) {
	const depth = 10_000
	for label, doc := range map[string]string{
		"arrays":  `{"name": ` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
		"objects": `{"name": ` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + `}`,
		"mixed":   `{"name": ` + strings.Repeat(`[{"a":`, depth/2) + "1" + strings.Repeat("}]", depth/2) + `}`,
		// Unterminated: the depth limit, not the end of file, is reported.
		"unterminated": `{"name": ` + strings.Repeat("[", depth),
	} {
		t.Run(label, func(t *testing.T) {
			// The root is level 1; the 32nd container below it, the 33rd
			// level, is refused where it opens: after 31 containers of 1
			// ([), 5 ({"a":) or alternately 1 and 5 characters, from
			// column 10.
			c := map[string]int{"arrays": 10 + 31, "objects": 10 + 31*5, "mixed": 10 + 15*6 + 1, "unterminated": 10 + 31}[label]
			start := time.Now()
			advCase{
				files: map[string]string{"users/adv.json": doc},
				want:  diag.List{dg("users/adv.json", 1, c, "invalid JSON: nesting deeper than 32 levels")},
			}.run(t)
			if took := time.Since(start); took > time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// countingFS counts the bytes read from its files. The loader reads files
// on several goroutines, so the count is atomic.
type countingFS struct {
	fs.FS
	read *atomic.Int64
}

func (c countingFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.read}, nil
}

// ReadDir hides os.DirFS's own, so that every read goes through Open.
func (c countingFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(c.FS, name) }

type countingFile struct {
	fs.File
	read *atomic.Int64
}

func (f countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.read.Add(int64(n))
	return n, err
}

// TestAdversarialHugeFile: a 50 MB declaration is refused from its first
// megabyte, quickly and without holding it in memory.
func TestAdversarialHugeFile(t *testing.T) {
	dir := t.TempDir()
	write := func(p string, data []byte) {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, f := range baseRepo(t) {
		write(p, f.Data)
	}
	// A valid user file followed by 50 MB of spaces: if it were read
	// whole, it would be accepted.
	const size = 50 << 20
	f, err := os.Create(filepath.Join(dir, "users", "big.json"))
	if err != nil {
		t.Fatal(err)
	}
	head := plainUser("big")
	if _, err := io.WriteString(f, head); err != nil {
		t.Fatal(err)
	}
	pad := bytes.Repeat([]byte(" "), 1<<20)
	for written := len(head); written < size; written += len(pad) {
		if _, err := f.Write(pad[:min(len(pad), size-written)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	var counter atomic.Int64
	fsys := countingFS{os.DirFS(dir), &counter}
	load(t, fsys) // compiles the schemas, once per process
	counter.Store(0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	l, got := load(t, fsys)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	read := counter.Load()

	want := diag.List{{File: "users/big.json", Severity: diag.Error,
		Message: "file is larger than 1048576 bytes; a declaration is a few kilobytes"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if _, ok := l.Users["big"]; ok {
		t.Error("the huge file was decoded")
	}
	t.Logf("a 50 MB file refused in %s, %d bytes read in all, %d bytes allocated", took, read, allocated)
	if read > 2<<20 {
		t.Errorf("read %d bytes of a 50 MB repository, want under 2 MB", read)
	}
	if allocated > 10<<20 {
		t.Errorf("allocated %d bytes, want under 10 MB", allocated)
	}
	if took > 2*time.Second {
		t.Errorf("took %s to refuse one huge file", took)
	}
}

// TestAdversarialManyEntries: 100,000 of anything either fits in a file and
// loads in linear time, or is refused for its size.
func TestAdversarialManyEntries(t *testing.T) {
	t.Run("100,000 access entries", func(t *testing.T) {
		// The smallest entry that means something is 51 bytes: 100,000
		// cannot fit under the 1 MiB file limit.
		entry := `{"clusters":["dev-maria"],"databases":["*"],"role":"read"}`
		var b strings.Builder
		b.WriteString(`{"name":"many","owner":"o","kind":"service","auth":{"type":"password","secret":"s"},"access":[`)
		for i := range 100_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(entry)
		}
		b.WriteString("]}")
		if b.Len() <= config.MaxFileSize {
			t.Fatalf("the file is %d bytes; the test expects it over the limit", b.Len())
		}
		advCase{
			files: map[string]string{"users/many.json": b.String()},
			want: diag.List{{File: "users/many.json", Severity: diag.Error,
				Message: "file is larger than 1048576 bytes; a declaration is a few kilobytes"}},
		}.run(t)
	})

	t.Run("100,000 tags", func(t *testing.T) {
		var b strings.Builder
		for i := range 100_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%s":""`, base62(i, 3))
		}
		doc := clusterDoc(`["orders", "analytics"]`, `, "tags": {`+b.String()+`}`)
		if len(doc) > config.MaxFileSize {
			t.Fatalf("the file is %d bytes, over the limit", len(doc))
		}
		// The schema caps tags at 50: refused at the object, quickly.
		start := time.Now()
		advCase{
			files: map[string]string{"clusters/dev-maria.json": doc},
			want: diag.List{
				dg("clusters/dev-maria.json", 10, 30, "tags: Must have at most 50 properties"),
				dg("users/orders_api.json", 7, 19, `unknown cluster "dev-maria" (known: prod-orders, staging-main)`),
			},
		}.run(t)
		t.Logf("100,000 tags in %d bytes: refused in %s", len(doc), time.Since(start))
		// The same with the last key repeated: refused at the repeat.
		dup := clusterDoc(`["orders", "analytics"]`, `, "tags": {`+b.String()+`,"`+base62(99_999, 3)+`":"x"}`)
		line := strings.Split(dup, "\n")[9]
		advCase{
			files: map[string]string{"clusters/dev-maria.json": dup},
			want: diag.List{
				dg("clusters/dev-maria.json", 10, utf8.RuneCountInString(line)-len(`"`+base62(99_999, 3)+`":"x"}`)+1,
					fmt.Sprintf("invalid JSON: key %q appears twice in one object", base62(99_999, 3))),
				dg("users/orders_api.json", 7, 19, `unknown cluster "dev-maria" (known: prod-orders, staging-main)`),
			},
		}.run(t)
	})

	// 100,000 databases on a cluster and a user naming every one: checking
	// the names is a set lookup each (it was 100,000² string comparisons,
	// 40 s).
	dbs := make([]string, 100_000)
	for i := range dbs {
		dbs[i] = "d" + base62(i, 3)
	}
	cluster := clusterDoc(`["orders","analytics",`+strings.TrimPrefix(compactList(dbs), "["), "")
	t.Run("100,000 databases", func(t *testing.T) {
		user := userDoc(`"many"`, `"o"`, accessLine(`["dev-maria"]`, compactList(dbs), `"read"`))
		start := time.Now()
		fsys := baseRepo(t)
		fsys["clusters/dev-maria.json"] = &fstest.MapFile{Data: []byte(cluster)}
		fsys["users/many.json"] = &fstest.MapFile{Data: []byte(user)}
		l, got := load(t, fsys)
		took := time.Since(start)
		if len(got) != 0 || len(l.Config.Clusters[0].Databases) != 100_002 {
			t.Fatalf("%d diagnostics (first %v), %d databases", len(got), got[:min(1, len(got))], len(l.Config.Clusters[0].Databases))
		}
		t.Logf("a %d-byte cluster and a %d-byte user naming 100,000 databases: loaded in %s", len(cluster), len(user), took)
		if took > 10*time.Second {
			t.Errorf("loading took %s", took)
		}
		// desired.Build is not timed here: it still checks each name with
		// a linear search (see the report of this change).
	})
	t.Run("100,000 unknown databases", func(t *testing.T) {
		unknown := make([]string, len(dbs))
		for i := range unknown {
			unknown[i] = "x" + base62(i, 3)
		}
		fsys := baseRepo(t)
		fsys["clusters/dev-maria.json"] = &fstest.MapFile{Data: []byte(cluster)}
		fsys["users/many.json"] = &fstest.MapFile{Data: []byte(userDoc(`"many"`, `"o"`, accessLine(`["dev-maria"]`, compactList(unknown), `"read"`)))}
		start := time.Now()
		_, got := load(t, fsys)
		total := 0
		for _, d := range got {
			total += len(d.Message)
		}
		t.Logf("100,000 unknown databases: %d diagnostics, %d bytes of messages, in %s", len(got), total, time.Since(start))
		if len(got) != 100_000 {
			t.Fatalf("%d diagnostics, want one per unknown database", len(got))
		}
		// Each message lists a few of the cluster's 100,002 databases, not
		// all of them (which would be 100,000 × 600 kB).
		want := `database "x000" is not managed by cluster dev-maria (it manages: orders, analytics, d000, d001, d002, d003, d004, d005, d006, d007, d008, d009, d00A, d00B, d00C, d00D, d00E, d00F, d00G, d00H, … (100002 in all))`
		if got[0].Message != want {
			t.Errorf("first message\n%s\nwant\n%s", got[0].Message, want)
		}
	})

	t.Run("100,000 user files", func(t *testing.T) {
		if testing.Short() {
			t.Skip("SKIPPING 100,000 user files under -short (about 5 s of CPU)")
		}
		const n = 100_000
		fsys := baseRepo(t)
		for i := range n {
			name := fmt.Sprintf("u%06d", i)
			fsys["users/"+name+".json"] = &fstest.MapFile{Data: []byte(plainUser(name))}
		}
		start := time.Now()
		l, got := load(t, fsys)
		took := time.Since(start)
		if len(got) != 0 || len(l.Config.Users) != n+3 {
			t.Fatalf("%d diagnostics (first %v), %d users", len(got), got[:min(1, len(got))], len(l.Config.Users))
		}
		st, err := config.Desired(&l.Config, advToday)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := st.Find("dev-maria")
		p := plan.Diff(plan.Input{Cluster: *c, Server: emptyServer(flavor.MariaDB, false), Prefix: st.Prefix,
			Protected: st.Protected, Limit: st.RemovalLimit, Roles: st.Roles, Passwords: passwordsFor(&l.Config)})
		creates := 0
		for _, ch := range p.Changes {
			if ch.Action() == plan.CreateUser {
				creates++
			}
		}
		t.Logf("100,000 user files: loaded and checked in %s, built and planned in %s more", took, time.Since(start)-took)
		if creates != n+1 { // and orders_api
			t.Errorf("%d CREATE USER planned, want %d", creates, n+1)
		}
	})
}

// base62 writes i in at least width digits of 0-9A-Za-z.
func base62(i, width int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b []byte
	for i > 0 || len(b) < width {
		b = append(b, digits[i%62])
		i /= 62
	}
	slices.Reverse(b)
	return string(b)
}

// compactList is a JSON array of strings without spaces.
func compactList(items []string) string {
	data, err := json.Marshal(items)
	if err != nil {
		panic(err)
	}
	return string(data)
}

func emptyServer(f flavor.Flavor, partialRevokes bool) *mysqlstate.Server {
	return &mysqlstate.Server{Flavor: f, PartialRevokes: partialRevokes, Accounts: map[mysqlstate.AccountID]*mysqlstate.Account{}}
}

// hostilePasswords are what secrets may hold: SQL, quotes, escapes, NUL.
var hostilePasswords = []string{
	`it's`, `back\slash\`, "nul\x00byte", "new\nline\r", "ctrl\x1az", `"double"`, "`backtick`",
	"'); DROP USER root; --", `\'; DROP USER root; --`, "\u00fcn\u00efc\u00f8d\u00e9 \U0001F511", "%_", "''''",
}

// passwordsFor gives every password secret of cfg a password made of every
// hostile one.
func passwordsFor(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for i, u := range cfg.Users {
		if u.Auth.Method() == "password" {
			out[u.Auth.Secret] = strings.Join(hostilePasswords, "|") + fmt.Sprint(i)
		}
	}
	return out
}

// Statement shapes an empty server's plan renders. A literal is '…' with
// quotes doubled or backslash-escaped; an identifier is `…` with
// backticks doubled.
var (
	literalRE    = `('(?:[^'\\]|''|\\.)*')`
	identRE      = "(`(?:[^`]|``)*`)"
	createUserRE = regexp.MustCompile(`(?s)^CREATE USER ` + literalRE + `@` + literalRE + ` ` +
		`(?:IDENTIFIED BY ` + literalRE + `|IDENTIFIED WITH mysql_native_password BY ` + literalRE +
		`|(IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'))( REQUIRE SSL| REQUIRE NONE)?$`)
	grantRE = regexp.MustCompile(`(?s)^GRANT ([A-Z][A-Z ,]*) ON ` + identRE + `\.\* TO ` + literalRE + `@` + literalRE + `$`)
)

// unliteral reads a literal back the way MySQL does with backslash escapes
// on (the engine makes sure they are).
func unliteral(t testing.TB, lit string) string {
	t.Helper()
	s := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			b.WriteByte('\'')
			i++ // the second of a doubled quote
		case c == '\\':
			i++
			switch s[i] {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 'Z':
				b.WriteByte(0x1a)
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unident(ident string) string {
	return strings.ReplaceAll(ident[1:len(ident)-1], "``", "`")
}

// proveSQL renders everything an accepted configuration asks for on an
// empty server, for every flavor (each cluster's own engine and then every
// cluster as each other engine), with hostile passwords, and checks that
// each statement is one of the known shapes whose every name and value
// reads back as exactly the declared one, produced by render.Ident or
// render.Literal.
func proveSQL(t *testing.T, cfg *config.Config) {
	t.Helper()
	passwords := passwordsFor(cfg)
	variants := []string{""} // the declared engines
	variants = append(variants, "aurora-mysql-2", "aurora-mysql-3", "mariadb-10.11", flavor.EmbeddedEngine)
	statements := 0
	for _, engine := range variants {
		c := *cfg
		c.Clusters = slices.Clone(cfg.Clusters)
		if engine != "" {
			for i := range c.Clusters {
				c.Clusters[i].Engine = engine
			}
		}
		// Swapping an engine in can put an IAM user on a server without
		// IAM, which the resolver refuses (and leaves out of that
		// cluster); every other problem is a failure of the proof.
		st, problems := desired.Resolve(c.Declarations(), advToday)
		for _, p := range problems.Errors() {
			if engine == "" || !strings.Contains(p.Message, "which has no IAM authentication") {
				t.Fatalf("engine %q: resolve: %s", engine, p)
			}
		}
		for _, cl := range st.Clusters {
			for _, partial := range []bool{false, true} {
				if partial && cl.Flavor() != flavor.MySQL80 {
					continue
				}
				srv := emptyServer(cl.Flavor(), partial)
				p := plan.Diff(plan.Input{Cluster: cl, Server: srv, Prefix: st.Prefix, Protected: st.Protected,
					Limit: st.RemovalLimit, Roles: st.Roles, Passwords: passwords})
				statements += checkPlan(t, st, cl, srv, p, passwords)
			}
		}
	}
	if statements == 0 {
		t.Errorf("no statement was rendered: the proof proved nothing")
	}
}

// checkPlan checks one cluster's plan against its desired state and
// returns how many statements it rendered.
func checkPlan(t *testing.T, st *desired.State, cl desired.Cluster, srv *mysqlstate.Server, p *plan.Plan, passwords map[string]string) int {
	t.Helper()
	where := fmt.Sprintf("cluster %s as %s (partial_revokes %v)", cl.Name, cl.Flavor(), srv.PartialRevokes)
	accounts := map[string]desired.Account{}
	for _, a := range cl.Accounts {
		accounts[a.Name] = a
	}
	skipped := map[string]bool{}
	for _, s := range p.Skipped {
		skipped[st.Prefix.Account(s.User)] = true
	}
	created := map[string]bool{}
	granted := map[string]bool{} // account + "\x00" + database
	n := 0
	for _, ch := range p.Changes {
		acct, ok := accounts[ch.Account.User]
		if !ok || ch.Account.Host != "%" {
			t.Errorf("%s: a change to %s, which is not declared", where, ch.Account)
			continue
		}
		s, err := render.Change(ch, cl.Flavor())
		if err != nil {
			if acct.Auth.Method == "iam" && strings.Contains(err.Error(), "has no IAM authentication") {
				continue // an IAM user on an engine without IAM, swapped in here
			}
			t.Errorf("%s: render %s: %v", where, ch.Summary, err)
			continue
		}
		{
			n++
			switch ch.Action() {
			case plan.CreateUser:
				m := createUserRE.FindStringSubmatch(s.SQL)
				if m == nil {
					t.Errorf("%s: not a CREATE USER of the known shape: %q", where, s.SQL)
					continue
				}
				if m[1] != render.Literal(acct.Name) || unliteral(t, m[1]) != acct.Name || m[2] != render.Literal("%") {
					t.Errorf("%s: %q does not name %s@'%%' as render.Literal does", where, s.SQL, acct.Name)
				}
				pw := m[3] + m[4]
				switch acct.Auth.Method {
				case "password":
					if want := passwords[acct.Auth.Secret]; pw != render.Literal(want) || unliteral(t, pw) != want {
						t.Errorf("%s: the password of %s reads back as %q, want %q", where, acct.Name, unliteral(t, pw), want)
					}
				case "iam":
					if m[5] == "" || m[6] != " REQUIRE SSL" {
						t.Errorf("%s: %q is not IAM with TLS", where, s.SQL)
					}
				}
				created[acct.Name] = true
			case plan.Grant:
				m := grantRE.FindStringSubmatch(s.SQL)
				if m == nil {
					t.Errorf("%s: not a GRANT of the known shape: %q", where, s.SQL)
					continue
				}
				privs := strings.Split(m[1], ", ")
				if m[1] != flavor.AllPrivileges {
					for _, p := range privs {
						if !flavor.KnownDatabasePrivilege(p) || !cl.Flavor().Supports(p) {
							t.Errorf("%s: %q grants %q", where, s.SQL, p)
						}
					}
				}
				pattern := unident(m[2])
				db, exact := pattern, true
				if srv.WildcardDatabaseNames() {
					db, exact = flavor.UnescapeDatabasePattern(pattern)
				}
				if !exact || pattern != flavor.DatabasePattern(db, srv.WildcardDatabaseNames()) {
					t.Errorf("%s: %q grants on a pattern that matches more than %q", where, s.SQL, db)
				}
				if m[2] != render.Ident(pattern) || !slices.Contains(cl.Databases, db) {
					t.Errorf("%s: %q names database %q, not one the cluster lists, quoted by render.Ident", where, s.SQL, db)
				}
				if m[3] != render.Literal(acct.Name) || unliteral(t, m[3]) != acct.Name || m[4] != render.Literal("%") {
					t.Errorf("%s: %q does not name %s@'%%' as render.Literal does", where, s.SQL, acct.Name)
				}
				if !slices.ContainsFunc(acct.Grants, func(g desired.Grant) bool { return g.Database == db }) {
					t.Errorf("%s: %q grants on %s, which %s is not granted", where, s.SQL, db, acct.Name)
				}
				granted[acct.Name+"\x00"+db] = true
			default:
				t.Errorf("%s: an empty server needs only CREATE USER and GRANT, got %s: %q", where, ch.Action(), s.SQL)
			}
		}
	}
	// And everything declared is there.
	for _, a := range cl.Accounts {
		if skipped[a.Name] || (a.Auth.Method == "iam" && !cl.Flavor().IAMPlugin()) {
			continue
		}
		if !created[a.Name] {
			t.Errorf("%s: %s is declared but not created", where, a.Name)
		}
		for _, g := range a.Grants {
			if !granted[a.Name+"\x00"+g.Database] {
				t.Errorf("%s: %s is not granted on %s", where, a.Name, g.Database)
			}
		}
	}
	return n
}
