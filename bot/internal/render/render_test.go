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
		{Account: acct("acme_alice"), Summary: "create acme_alice (iam)", Op: plan.NewAccount{Auth: plan.Auth{Method: "iam", RequireSSL: true}}},
		{Account: acct("acme_svc"), Summary: "create acme_svc (password)", Op: plan.NewAccount{Auth: plan.Auth{Method: "password", SecretRef: "svc", Password: goldenPassword}}},
		{Account: acct("acme_tls"), Summary: "create acme_tls (password, TLS required)", Op: plan.NewAccount{Auth: plan.Auth{Method: "password", SecretRef: "tls", Password: goldenPassword, RequireSSL: true}}},
		{Account: acct("acme_svc"), Summary: "rotate the password of acme_svc", Op: plan.SetAuth{Auth: plan.Auth{Method: "password", SecretRef: "svc", Password: goldenPassword, Rotate: true}}},
		{Account: acct("acme_tls"), Summary: "require TLS for acme_tls", Op: plan.SetAuth{Auth: plan.Auth{Method: "password", SecretRef: "tls", Password: goldenPassword, RequireSSL: true}}},
		{Account: acct("acme_alice"), Summary: "switch acme_alice to iam", Op: plan.SetAuth{Auth: plan.Auth{Method: "iam", RequireSSL: true}}},
		{Account: acct("acme_alice"), Summary: "grant write on app_db to acme_alice", Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Database: "app_db", Pattern: `app\_db`}, Privileges: []string{"UPDATE", "SELECT", "INSERT"}}},
		{Account: acct("acme_alice"), Summary: "grant trusted_admin on orders to acme_alice", Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Database: "orders", Pattern: "orders"}, Privileges: all}},
		{Account: acct("acme_o'brien"), Summary: "grant read on a database with a hostile name", Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Database: "we`ird 'db'", Pattern: "we`ird 'db'"}, Privileges: []string{"SELECT"}}},
		{Account: acct("acme_alice"), Summary: "revoke global privileges from acme_alice", Op: plan.RevokeGlobal{Privileges: []string{"REPLICATION CLIENT", "PROCESS", "BINLOG_ADMIN"}}},
		{Account: acct("acme_alice"), Summary: "downgrade acme_alice on app_db: write → read", Op: plan.RevokeDatabase{DatabaseRef: plan.DatabaseRef{Database: "app_db", Pattern: `app\_db`}, Privileges: []string{"INSERT", "UPDATE"}}},
		{Account: acct("acme_alice"), Summary: "revoke a table grant from acme_alice", Op: plan.RevokeTable{DatabaseRef: plan.DatabaseRef{Database: "orders", Pattern: "orders"}, Table: "t1", Privileges: []string{"SELECT", "GRANT OPTION"}}},
		{Account: acct("acme_alice"), Summary: "revoke a column grant from acme_alice", Op: plan.RevokeColumn{DatabaseRef: plan.DatabaseRef{Database: "orders", Pattern: "orders"}, Table: "t1", Column: "c", Privileges: []string{"UPDATE", "SELECT"}}},
		{Account: acct("acme_alice"), Summary: "revoke role acme_role from acme_alice", Op: plan.RevokeRoleGrant{Role: mysqlstate.AccountID{User: "acme_role", Host: "%"}}},
		{Account: acct("acme_gone"), Summary: "drop acme_gone", Op: plan.Drop{}},
		{Account: acct("acme_alice"), Summary: "revoke a routine grant", Op: plan.RevokeRoutine{Database: "orders", Routine: "re`fund", Type: "PROCEDURE", Privileges: []string{"EXECUTE", "ALTER ROUTINE"}}},
		{Account: acct("acme_alice"), Summary: "revoke a proxy grant", Op: plan.RevokeProxy{Proxied: mysqlstate.AccountID{User: "root", Host: "localhost"}}},
		{Account: acct("acme_alice"), Summary: "reset limits and lifetime", Op: plan.Reset{Limits: true, PasswordLifetime: true}},
		{Account: acct("acme_alice"), Summary: "reset the lifetime", Op: plan.Reset{PasswordLifetime: true}},
		{Account: acct("acme_alice"), Summary: "clear default roles", Op: plan.ClearDefaults{}},
		{Account: acct("acme_dba"), Summary: "lock a definer", Op: plan.Lock{Objects: []mysqlstate.StoredObject{{Kind: "view", Database: "orders", Name: "v", Definer: acct("acme_dba")}}}},
		{Account: acct("acme_gone"), Summary: "end a session", Op: plan.Disconnect{Session: mysqlstate.Session{ID: 42, User: "acme_gone"}, Via: plan.KillConnection}},
		{Account: acct("acme_gone"), Summary: "end a session on RDS", Op: plan.Disconnect{Session: mysqlstate.Session{ID: 43, User: "acme_gone"}, Via: plan.RDSKill}},
	}
}

func TestGolden(t *testing.T) {
	for _, f := range flavor.All() {
		t.Run(string(f), func(t *testing.T) {
			var b strings.Builder
			fmt.Fprintf(&b, "# render.Change for flavor %s.\n# Regenerate: go test ./bot/internal/render -run TestGolden -update\n", f)
			for _, c := range goldenChanges() {
				fmt.Fprintf(&b, "\n## %s %s: %s\n", c.Action(), c.Account, c.Summary)
				st, err := Change(c, f)
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
					continue
				}
				fmt.Fprintf(&b, "redacted: %s\nsql:      %s\n", st.Redacted, st.SQL)
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
	for _, f := range flavor.All() {
		for _, pw := range passwords {
			for _, c := range goldenChanges() {
				c, ok := withPassword(c, pw)
				if !ok {
					continue
				}
				st, err := Change(c, f)
				if err != nil {
					t.Fatalf("%s %s: %v", f, c.Summary, err)
				}
				{
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
		{Account: acct("acme_x\x00"), Op: plan.NewAccount{Auth: plan.Auth{Method: "password", Password: pw}}},
		{Account: acct(strings.Repeat("x", 200)), Op: plan.NewAccount{Auth: plan.Auth{Method: "password", Password: pw}}},
		{Account: acct("acme_x"), Op: plan.SetAuth{Auth: plan.Auth{Method: "iam", Password: pw}}},
		{Account: acct("acme_x"), Summary: pw},
		{Account: acct("acme_x"), Op: plan.GrantDatabase{}},
	}
	failures, flavors, iam := 0, append(flavor.All(), flavor.Flavor("mysql-9")), 0
	for _, f := range flavors {
		if f.IAMPlugin() {
			iam++
		}
	}
	for _, c := range bad {
		for _, f := range flavors {
			if _, err := Change(c, f); err != nil {
				failures++
				if strings.Contains(err.Error(), "never-in-an-error") {
					t.Errorf("Change(%s, %s) error shows the password: %v", c.Action(), f, err)
				}
			}
		}
	}
	if want := len(bad)*len(flavors) - iam; failures != want {
		t.Errorf("%d changes failed to render, want %d (all but IAM on the MySQL flavors)", failures, want)
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
		{"iam on mariadb", plan.Change{Account: acct("a"), Op: plan.NewAccount{Auth: plan.Auth{Method: "iam"}}}, flavor.MariaDB, "no IAM authentication"},
		{"iam on embedded", plan.Change{Account: acct("a"), Op: plan.SetAuth{Auth: plan.Auth{Method: "iam"}}}, flavor.Embedded, "no IAM authentication"},
		{"no auth", plan.Change{Account: acct("a"), Op: plan.NewAccount{Auth: plan.Auth{}}}, flavor.MySQL80, "unknown authentication"},
		{"empty password", plan.Change{Account: acct("a"), Op: plan.NewAccount{Auth: plan.Auth{Method: "password"}}}, flavor.MySQL80, "empty password"},
		{"unknown method", plan.Change{Account: acct("a"), Op: plan.NewAccount{Auth: plan.Auth{Method: "kerberos", Password: "x"}}}, flavor.MySQL80, "unknown authentication"},
		{"grant on *.*", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{Privileges: []string{"SELECT"}}}, flavor.MySQL80, "never grants on *.*"},
		{"grant no privileges", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}}}, flavor.MySQL80, "no privileges"},
		{"grant global privilege", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Privileges: []string{"SUPER"}}}, flavor.MySQL80, "not a database privilege"},
		{"grant option", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Privileges: []string{"SELECT", "GRANT OPTION"}}}, flavor.MySQL80, "not a database privilege"},
		{"grant mariadb-only privilege", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Privileges: []string{"DELETE HISTORY"}}}, flavor.MySQL80, "not a database privilege"},
		{"grant ALL PRIVILEGES unexpanded", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Privileges: []string{"ALL PRIVILEGES"}}}, flavor.MySQL80, "expand it"},
		{"grant injected privilege", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Privileges: []string{"SELECT ON *.* TO x; --"}}}, flavor.MySQL80, "not a known privilege"},
		{"grant lower-case privilege", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Privileges: []string{"select"}}}, flavor.MySQL80, "not a known privilege"},
		{"grant pattern too long", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: strings.Repeat(`a\_`, 22)}, Privileges: []string{"SELECT"}}}, flavor.MariaDB, "longer than 64"},
		{"grant pattern with NUL", plan.Change{Account: acct("a"), Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "d\x00b"}, Privileges: []string{"SELECT"}}}, flavor.MariaDB, "NUL"},
		{"revoke ALL", plan.Change{Account: acct("a"), Op: plan.RevokeGlobal{Privileges: []string{"ALL"}}}, flavor.MySQL57, "expand it"},
		{"revoke ALL PRIVILEGES", plan.Change{Account: acct("a"), Op: plan.RevokeGlobal{Privileges: []string{"SELECT", "ALL PRIVILEGES"}}}, flavor.MySQL57, "expand it"},
		{"revoke USAGE", plan.Change{Account: acct("a"), Op: plan.RevokeGlobal{Privileges: []string{"USAGE"}}}, flavor.MySQL57, "not a known privilege"},
		{"revoke nothing", plan.Change{Account: acct("a"), Op: plan.RevokeDatabase{DatabaseRef: plan.DatabaseRef{Pattern: "db"}}}, flavor.MySQL57, "no privileges"},
		{"revoke table without database", plan.Change{Account: acct("a"), Op: plan.RevokeTable{Table: "t", Privileges: []string{"SELECT"}}}, flavor.MySQL57, "without a database"},
		{"revoke column without table", plan.Change{Account: acct("a"), Op: plan.RevokeColumn{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Column: "c", Privileges: []string{"SELECT"}}}, flavor.MySQL57, "without a table"},
		{"revoke column privilege that columns lack", plan.Change{Account: acct("a"), Op: plan.RevokeColumn{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Table: "t", Column: "c", Privileges: []string{"DELETE"}}}, flavor.MySQL57, "does not exist on a column"},
		{"revoke column on embedded", plan.Change{Account: acct("a"), Op: plan.RevokeColumn{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Table: "t", Column: "c", Privileges: []string{"SELECT"}}}, flavor.Embedded, "no column privileges"},
		{"revoke bad table name", plan.Change{Account: acct("a"), Op: plan.RevokeTable{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Table: "t ", Privileges: []string{"SELECT"}}}, flavor.MySQL57, "table"},
		{"revoke bad column name", plan.Change{Account: acct("a"), Op: plan.RevokeColumn{DatabaseRef: plan.DatabaseRef{Pattern: "db"}, Table: "t", Column: "c\x00", Privileges: []string{"SELECT"}}}, flavor.MySQL57, "column"},
		{"revoke role without role", plan.Change{Account: acct("a"), Op: plan.RevokeRoleGrant{Role: mysqlstate.AccountID{}}}, flavor.MySQL80, "without a role"},
		{"revoke role on 5.7", plan.Change{Account: acct("a"), Op: plan.RevokeRoleGrant{Role: *role}}, flavor.MySQL57, "has no roles"},
		{"revoke bad role", plan.Change{Account: acct("a"), Op: plan.RevokeRoleGrant{Role: mysqlstate.AccountID{User: "r\x00"}}}, flavor.MariaDB, "role"},
		{"drop anonymous", plan.Change{Account: acct(""), Op: plan.Drop{}}, flavor.MySQL80, "empty user"},
		{"drop too long", plan.Change{Account: acct(strings.Repeat("u", 33)), Op: plan.Drop{}}, flavor.MySQL80, "longer than 32"},
		{"no operation", plan.Change{Account: acct("a")}, flavor.MySQL80, "no operation"},
		{"unknown flavor", plan.Change{Account: acct("a"), Op: plan.Drop{}}, flavor.Flavor("oracle"), "unknown server flavor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Change(tt.c, tt.flavor)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Change = %v, %v; want an error saying %q", st, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), string(tt.c.Action())+" ") {
				t.Errorf("error %q does not name the action", err)
			}
		})
	}
}

func TestSanitizeError(t *testing.T) {
	c := plan.Change{Account: acct("acme_svc"), Op: plan.NewAccount{Auth: plan.Auth{Method: "password", Password: "s3cret'pass\\word-long-enough"}}}
	st, err := Change(c, flavor.MySQL80)
	if err != nil {
		t.Fatal(err)
	}
	pw := c.Op.(plan.NewAccount).Auth.Password
	body := strings.Trim(Literal(pw), "'")
	near := func(excerpt string) error {
		return errors.New("Error 1064 (42000): You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '" + excerpt + "' at line 1")
	}
	leaky := []error{
		near("BY '" + body + "' REQUIRE NONE"),
		near("BY '" + body[:10]),
		errors.New("Error 1300 (HY000): Invalid utf8mb4 character string: '" + body + "'"),
		errors.New("password " + pw + " rejected"),
		errors.New("a fragment: " + pw[3:9]),
		fmt.Errorf("wrapped: %w", near(body)),
	}
	for _, in := range leaky {
		out := st.SanitizeError(in)
		for _, form := range []string{pw, body, pw[3:9]} {
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
		c := plan.Change{Account: mysqlstate.AccountID{User: user, Host: "<redacted>"}, Op: plan.SetAuth{Auth: plan.Auth{Method: "password", Password: "<redacted>-ish pw"}}}
		st, err := Change(c, flavor.MariaDB)
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := st.secretLiteral()
		if pw := c.Op.(plan.SetAuth).Auth.Password; !ok || lit != Literal(pw) {
			t.Errorf("user %q: secretLiteral = %q, %v; want %q", user, lit, ok, Literal(pw))
		}
	}
}

// withPassword returns c with its password set, and whether c sets a
// password at all.
func withPassword(c plan.Change, pw string) (plan.Change, bool) {
	switch op := c.Op.(type) {
	case plan.NewAccount:
		if op.Auth.Method == "password" {
			op.Auth.Password = pw
			c.Op = op
			return c, true
		}
	case plan.SetAuth:
		if op.Auth.Method == "password" {
			op.Auth.Password = pw
			c.Op = op
			return c, true
		}
	}
	return c, false
}
