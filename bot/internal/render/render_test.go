package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenPassword holds a quote and a backslash so that the golden files show
// how a password is escaped.
const goldenPassword = `hunter2-'quoted'-\back`

func acct(user string) mysqlstate.AccountID { return mysqlstate.AccountID{User: user, Host: "%"} }

// goldenChanges covers every action and every branch of each.
func goldenChanges() []plan.Change {
	all := flavor.MariaDB.DatabasePrivileges()
	return []plan.Change{
		{Action: plan.CreateUser, Account: acct("acme_alice"), Auth: &plan.Auth{Method: "iam", RequireSSL: true},
			Summary: "create acme_alice (iam)"},
		{Action: plan.CreateUser, Account: acct("acme_svc"), Auth: &plan.Auth{Method: "password", SecretRef: "svc", Password: goldenPassword},
			Summary: "create acme_svc (password)"},
		{Action: plan.CreateUser, Account: acct("acme_tls"), Auth: &plan.Auth{Method: "password", SecretRef: "tls", Password: goldenPassword, RequireSSL: true},
			Summary: "create acme_tls (password, TLS required)"},
		{Action: plan.AlterAuth, Account: acct("acme_svc"), Auth: &plan.Auth{Method: "password", SecretRef: "svc", Password: goldenPassword, Rotate: true},
			Summary: "rotate the password of acme_svc"},
		{Action: plan.AlterAuth, Account: acct("acme_tls"), Auth: &plan.Auth{Method: "password", SecretRef: "tls", Password: goldenPassword, RequireSSL: true},
			Summary: "require TLS for acme_tls"},
		{Action: plan.AlterAuth, Account: acct("acme_alice"), Auth: &plan.Auth{Method: "iam", RequireSSL: true},
			Summary: "switch acme_alice to iam"},
		{Action: plan.Grant, Account: acct("acme_alice"), Database: "app_db", Pattern: `app\_db`, Privileges: []string{"UPDATE", "SELECT", "INSERT"},
			Summary: "grant write on app_db to acme_alice"},
		{Action: plan.Grant, Account: acct("acme_alice"), Database: "orders", Pattern: "orders", Privileges: all,
			Summary: "grant trusted_admin on orders to acme_alice"},
		{Action: plan.Grant, Account: acct("acme_o'brien"), Database: "we`ird 'db'", Pattern: "we`ird 'db'", Privileges: []string{"SELECT"},
			Summary: "grant read on a database with a hostile name"},
		{Action: plan.Revoke, Account: acct("acme_alice"), Privileges: []string{"REPLICATION CLIENT", "PROCESS", "BINLOG_ADMIN"},
			Summary: "revoke global privileges from acme_alice"},
		{Action: plan.Revoke, Account: acct("acme_alice"), Database: "app_db", Pattern: `app\_db`, Privileges: []string{"INSERT", "UPDATE"},
			Summary: "downgrade acme_alice on app_db: write → read"},
		{Action: plan.Revoke, Account: acct("acme_alice"), Database: "orders", Pattern: "orders", Table: "t1", Privileges: []string{"SELECT", "GRANT OPTION"},
			Summary: "revoke a table grant from acme_alice"},
		{Action: plan.Revoke, Account: acct("acme_alice"), Database: "orders", Pattern: "orders", Table: "t1", Column: "c", Privileges: []string{"UPDATE", "SELECT"},
			Summary: "revoke a column grant from acme_alice"},
		{Action: plan.RevokeRole, Account: acct("acme_alice"), Role: &mysqlstate.AccountID{User: "acme_role", Host: "%"},
			Summary: "revoke role acme_role from acme_alice"},
		{Action: plan.DropUser, Account: acct("acme_gone"),
			Summary: "drop acme_gone"},
	}
}

func TestGolden(t *testing.T) {
	for _, f := range flavors {
		t.Run(string(f), func(t *testing.T) {
			var b strings.Builder
			fmt.Fprintf(&b, "# render.Statements for flavor %s.\n# Regenerate: go test ./bot/internal/render -run TestGolden -update\n", f)
			for _, c := range goldenChanges() {
				fmt.Fprintf(&b, "\n## %s %s: %s\n", c.Action, c.Account, c.Summary)
				stmts, err := Statements(c, f)
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
					continue
				}
				for _, st := range stmts {
					fmt.Fprintf(&b, "redacted: %s\nsql:      %s\n", st.Redacted, st.SQL)
				}
			}
			path := filepath.Join("testdata", string(f)+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("%s differs (-want +got); run with -update if the change is intended:\n%s", path, diff)
			}
		})
	}
}

// secretForms are the ways a password could show in text.
func secretForms(pw string) []string {
	return []string{pw, strings.Trim(Literal(pw), "'"), fmt.Sprintf("%x", pw), fmt.Sprintf("%X", pw)}
}

func TestRedactedNeverHoldsThePassword(t *testing.T) {
	passwords := []string{goldenPassword, "plain-password-42", `'`, "a'b\\c\x00d\ne"}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%20s", "%-v", "%d", "%.300q"}
	for _, f := range flavors {
		for _, pw := range passwords {
			for _, c := range goldenChanges() {
				if c.Auth == nil || c.Auth.Method != "password" {
					continue
				}
				c.Auth.Password = pw
				stmts, err := Statements(c, f)
				if err != nil {
					t.Fatalf("%s %s: %v", f, c.Summary, err)
				}
				for _, st := range stmts {
					if !strings.Contains(st.SQL, Literal(pw)) {
						t.Errorf("%s: SQL %q does not carry the password", c.Summary, st.SQL)
					}
					if !st.HasSecret() {
						t.Errorf("%s: HasSecret is false", c.Summary)
					}
					var outputs []string
					for _, v := range verbs {
						outputs = append(outputs,
							fmt.Sprintf(v, st), fmt.Sprintf(v, &st), fmt.Sprintf(v, []Statement{st}),
							fmt.Sprintf(v, struct{ S Statement }{st}), fmt.Sprintf(v, map[string]Statement{"k": st}),
							fmt.Sprintf(v, []any{st}))
					}
					outputs = append(outputs, st.Redacted, st.String(), st.GoString(), fmt.Sprint(st), fmt.Sprintln(st))
					j, err := json.Marshal(map[string]any{"s": st, "p": &st, "l": []Statement{st}})
					if err != nil {
						t.Fatal(err)
					}
					outputs = append(outputs, string(j))
					for _, h := range []func(*bytes.Buffer) slog.Handler{
						func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
						func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
					} {
						var buf bytes.Buffer
						slog.New(h(&buf)).Info("apply", "statement", st, "group", slog.GroupValue(slog.Any("s", st)))
						outputs = append(outputs, buf.String())
					}
					for _, out := range outputs {
						if !strings.Contains(out, "<redacted>") && !strings.Contains(out, "3c72656461637465643e") &&
							!strings.Contains(out, "3C72656461637465643E") && !strings.Contains(out, `\u003credacted\u003e`) {
							t.Errorf("%s: output %q shows no redaction marker", c.Summary, out)
						}
						if len(pw) < 3 {
							continue // too short to tell apart from the rest of the text
						}
						for _, form := range secretForms(pw) {
							if strings.Contains(out, form) {
								t.Errorf("%s on %s: output %q shows the password (%q)", c.Summary, f, out, form)
							}
						}
					}
				}
			}
		}
	}
}

func TestErrorsNeverHoldThePassword(t *testing.T) {
	pw := "never-in-an-error-" + goldenPassword
	bad := []plan.Change{
		{Action: plan.CreateUser, Account: acct("acme_x\x00"), Auth: &plan.Auth{Method: "password", Password: pw}},
		{Action: plan.CreateUser, Account: acct(strings.Repeat("x", 200)), Auth: &plan.Auth{Method: "password", Password: pw}},
		{Action: plan.AlterAuth, Account: acct("acme_x"), Auth: &plan.Auth{Method: "iam", Password: pw}},
		{Action: plan.Action("bogus"), Account: acct("acme_x"), Auth: &plan.Auth{Method: "password", Password: pw}},
		{Action: plan.Grant, Account: acct("acme_x"), Auth: &plan.Auth{Method: "password", Password: pw}},
	}
	failures := 0
	for _, c := range bad {
		for _, f := range append(flavors, flavor.Flavor("mysql-9")) {
			if _, err := Statements(c, f); err != nil {
				failures++
				if strings.Contains(err.Error(), "never-in-an-error") {
					t.Errorf("Statements(%s, %s) error shows the password: %v", c.Action, f, err)
				}
			}
		}
	}
	if want := 5*5 - 2; failures != want {
		t.Errorf("%d changes failed to render, want %d (all but IAM on the two MySQL flavors)", failures, want)
	}
}

func TestStatementsRejects(t *testing.T) {
	role := &mysqlstate.AccountID{User: "acme_role", Host: "%"}
	tests := []struct {
		name   string
		c      plan.Change
		flavor flavor.Flavor
		want   string
	}{
		{"iam on mariadb", plan.Change{Action: plan.CreateUser, Account: acct("a"), Auth: &plan.Auth{Method: "iam"}}, flavor.MariaDB, "no IAM authentication"},
		{"iam on embedded", plan.Change{Action: plan.AlterAuth, Account: acct("a"), Auth: &plan.Auth{Method: "iam"}}, flavor.Embedded, "no IAM authentication"},
		{"no auth", plan.Change{Action: plan.CreateUser, Account: acct("a")}, flavor.MySQL80, "no authentication"},
		{"empty password", plan.Change{Action: plan.CreateUser, Account: acct("a"), Auth: &plan.Auth{Method: "password"}}, flavor.MySQL80, "empty password"},
		{"unknown method", plan.Change{Action: plan.CreateUser, Account: acct("a"), Auth: &plan.Auth{Method: "kerberos", Password: "x"}}, flavor.MySQL80, "unknown authentication"},
		{"grant on *.*", plan.Change{Action: plan.Grant, Account: acct("a"), Privileges: []string{"SELECT"}}, flavor.MySQL80, "never grants on *.*"},
		{"grant on a table", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db", Table: "t", Privileges: []string{"SELECT"}}, flavor.MySQL80, "per database only"},
		{"grant no privileges", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db"}, flavor.MySQL80, "no privileges"},
		{"grant global privilege", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db", Privileges: []string{"SUPER"}}, flavor.MySQL80, "not a database privilege"},
		{"grant option", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db", Privileges: []string{"SELECT", "GRANT OPTION"}}, flavor.MySQL80, "not a database privilege"},
		{"grant mariadb-only privilege", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db", Privileges: []string{"DELETE HISTORY"}}, flavor.MySQL80, "not a database privilege"},
		{"grant ALL PRIVILEGES unexpanded", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db", Privileges: []string{"ALL PRIVILEGES"}}, flavor.MySQL80, "expand it"},
		{"grant injected privilege", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db", Privileges: []string{"SELECT ON *.* TO x; --"}}, flavor.MySQL80, "not a known privilege"},
		{"grant lower-case privilege", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "db", Privileges: []string{"select"}}, flavor.MySQL80, "not a known privilege"},
		{"grant pattern too long", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: strings.Repeat(`a\_`, 22), Privileges: []string{"SELECT"}}, flavor.MariaDB, "longer than 64"},
		{"grant pattern with NUL", plan.Change{Action: plan.Grant, Account: acct("a"), Pattern: "d\x00b", Privileges: []string{"SELECT"}}, flavor.MariaDB, "NUL"},
		{"revoke ALL", plan.Change{Action: plan.Revoke, Account: acct("a"), Privileges: []string{"ALL"}}, flavor.MySQL57, "expand it"},
		{"revoke ALL PRIVILEGES", plan.Change{Action: plan.Revoke, Account: acct("a"), Privileges: []string{"SELECT", "ALL PRIVILEGES"}}, flavor.MySQL57, "expand it"},
		{"revoke USAGE", plan.Change{Action: plan.Revoke, Account: acct("a"), Privileges: []string{"USAGE"}}, flavor.MySQL57, "not a known privilege"},
		{"revoke nothing", plan.Change{Action: plan.Revoke, Account: acct("a"), Pattern: "db"}, flavor.MySQL57, "no privileges"},
		{"revoke table without database", plan.Change{Action: plan.Revoke, Account: acct("a"), Table: "t", Privileges: []string{"SELECT"}}, flavor.MySQL57, "without a database"},
		{"revoke column without table", plan.Change{Action: plan.Revoke, Account: acct("a"), Pattern: "db", Column: "c", Privileges: []string{"SELECT"}}, flavor.MySQL57, "without a table"},
		{"revoke column privilege that columns lack", plan.Change{Action: plan.Revoke, Account: acct("a"), Pattern: "db", Table: "t", Column: "c", Privileges: []string{"DELETE"}}, flavor.MySQL57, "does not exist on a column"},
		{"revoke column on embedded", plan.Change{Action: plan.Revoke, Account: acct("a"), Pattern: "db", Table: "t", Column: "c", Privileges: []string{"SELECT"}}, flavor.Embedded, "no column privileges"},
		{"revoke bad table name", plan.Change{Action: plan.Revoke, Account: acct("a"), Pattern: "db", Table: "t ", Privileges: []string{"SELECT"}}, flavor.MySQL57, "table"},
		{"revoke bad column name", plan.Change{Action: plan.Revoke, Account: acct("a"), Pattern: "db", Table: "t", Column: "c\x00", Privileges: []string{"SELECT"}}, flavor.MySQL57, "column"},
		{"revoke role without role", plan.Change{Action: plan.RevokeRole, Account: acct("a")}, flavor.MySQL80, "without a role"},
		{"revoke role on 5.7", plan.Change{Action: plan.RevokeRole, Account: acct("a"), Role: role}, flavor.MySQL57, "has no roles"},
		{"revoke bad role", plan.Change{Action: plan.RevokeRole, Account: acct("a"), Role: &mysqlstate.AccountID{User: "r\x00"}}, flavor.MariaDB, "role"},
		{"drop anonymous", plan.Change{Action: plan.DropUser, Account: acct("")}, flavor.MySQL80, "empty user"},
		{"drop too long", plan.Change{Action: plan.DropUser, Account: acct(strings.Repeat("u", 33))}, flavor.MySQL80, "longer than 32"},
		{"unknown action", plan.Change{Action: "truncate", Account: acct("a")}, flavor.MySQL80, "unknown action"},
		{"unknown flavor", plan.Change{Action: plan.DropUser, Account: acct("a")}, flavor.Flavor("oracle"), "unknown server flavor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := Statements(tt.c, tt.flavor)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Statements = %v, %v; want an error saying %q", stmts, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), string(tt.c.Action)+" ") {
				t.Errorf("error %q does not name the action", err)
			}
		})
	}
}

func TestSanitizeError(t *testing.T) {
	c := plan.Change{Action: plan.CreateUser, Account: acct("acme_svc"), Auth: &plan.Auth{Method: "password", Password: "s3cret'pass\\word-long-enough"}}
	stmts, err := Statements(c, flavor.MySQL80)
	if err != nil {
		t.Fatal(err)
	}
	st := stmts[0]
	body := strings.Trim(Literal(c.Auth.Password), "'")
	near := func(excerpt string) error {
		return errors.New("Error 1064 (42000): You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '" + excerpt + "' at line 1")
	}
	leaky := []error{
		near("BY '" + body + "' REQUIRE NONE"),
		near("BY '" + body[:10]),
		errors.New("Error 1300 (HY000): Invalid utf8mb4 character string: '" + body + "'"),
		errors.New("password " + c.Auth.Password + " rejected"),
		errors.New("a fragment: " + c.Auth.Password[3:9]),
		fmt.Errorf("wrapped: %w", near(body)),
	}
	for _, in := range leaky {
		out := st.SanitizeError(in)
		for _, form := range []string{c.Auth.Password, body, c.Auth.Password[3:9]} {
			if strings.Contains(out.Error(), form) {
				t.Errorf("SanitizeError(%q) = %q, still shows %q", in, out, form)
			}
		}
		if errors.Is(out, in) {
			t.Errorf("SanitizeError(%q) still wraps the leaky error", in)
		}
	}
	if got := st.SanitizeError(leaky[0]).Error(); !strings.HasPrefix(got, "Error 1064 (42000): You have an error in your SQL syntax") {
		t.Errorf("SanitizeError dropped the useful part of the message: %q", got)
	}
	clean := errors.New("Error 1396 (HY000): Operation CREATE USER failed for 'acme_svc'@'%'")
	if got := st.SanitizeError(clean); got != clean {
		t.Errorf("SanitizeError(%q) = %q, want the same error back", clean, got)
	}
	if st.SanitizeError(nil) != nil {
		t.Error("SanitizeError(nil) != nil")
	}
	drop := plain("DROP USER 'acme_svc'@'%'")
	if got := drop.SanitizeError(near("hunter2")); got.Error() != near("hunter2").Error() {
		t.Errorf("a statement without a secret changed its error: %q", got)
	}
}

func TestSecretLiteralWithHostileAccount(t *testing.T) {
	// An account whose name is the redaction marker must not confuse the
	// recovery of the password literal.
	for _, user := range []string{"<redacted>", "'<redacted>'", "x'@'<redacted>"} {
		c := plan.Change{Action: plan.AlterAuth, Account: mysqlstate.AccountID{User: user, Host: "<redacted>"},
			Auth: &plan.Auth{Method: "password", Password: "<redacted>-ish pw"}}
		stmts, err := Statements(c, flavor.MariaDB)
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := stmts[0].secretLiteral()
		if !ok || lit != Literal(c.Auth.Password) {
			t.Errorf("user %q: secretLiteral = %q, %v; want %q", user, lit, ok, Literal(c.Auth.Password))
		}
	}
}
