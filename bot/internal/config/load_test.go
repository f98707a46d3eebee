package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/diag"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/jsonpos"
)

func TestLoadBaseIsValid(t *testing.T) {
	l, diags, err := Load(overlay(t, ""), today)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 0 {
		t.Fatalf("the base repository must be clean, got:\n%s", listString(diags))
	}
	var clusters, users []string
	for _, c := range l.Config.Clusters {
		clusters = append(clusters, c.Name)
	}
	for _, u := range l.Config.Users {
		users = append(users, u.Name)
	}
	if diff := cmp.Diff([]string{"dev-maria", "prod-orders", "staging-main"}, clusters); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alice", "bob", "orders_api"}, users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	wantFiles := map[string]string{
		"clusters/dev-maria":    "clusters/dev-maria.json",
		"clusters/prod-orders":  "clusters/prod-orders.json",
		"clusters/staging-main": "clusters/staging-main.json",
		"users/alice":           "users/alice.json",
		"users/bob":             "users/bob.json",
		"users/orders_api":      "users/orders_api.json",
	}
	if diff := cmp.Diff(wantFiles, l.Config.Files); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
	if l.Settings == nil || l.Settings.Path != SettingsFile {
		t.Errorf("Settings source = %+v, want path %s", l.Settings, SettingsFile)
	}
	if got := l.Users["orders_api"].Path; got != "users/orders_api.json" {
		t.Errorf("Users[orders_api].Path = %q", got)
	}
	// Spot-check decoding, including defaults that stay empty.
	api := l.Config.Users[2]
	want := User{Name: "orders_api", Owner: "team-checkout", Kind: "service",
		Auth: UserAuth{Type: "password", Secret: "dbusers/orders_api"},
		Access: []Access{{Clusters: []string{"dev-maria", "staging-main", "prod-orders"},
			Databases: []string{"orders"}, Role: "etl"}}}
	if diff := cmp.Diff(want, api); diff != "" {
		t.Errorf("orders_api (-want +got):\n%s", diff)
	}
}

// d builds an expected diagnostic.
func d(file string, line, col int, sev diag.Severity, msg string) diag.Diagnostic {
	return diag.Diagnostic{File: file, Line: line, Col: col, Severity: sev, Message: msg}
}

const (
	E = diag.Error
	W = diag.Warning
)

// TestLoadRules runs one broken repository per validation rule: the base
// repository with the files of testdata/broken/<name> laid over it.
func TestLoadRules(t *testing.T) {
	const iamMaria = "user alice uses iam authentication, but cluster dev-maria runs mariadb-10.11, which has no IAM authentication; use password authentication"
	tests := []struct {
		name   string
		remove []string // paths deleted from the base, which then has no overlay
		want   diag.List
	}{
		// Syntax.
		{name: "malformed_json", want: diag.List{
			d("users/alice.json", 4, 3, E, `invalid JSON: unexpected '"', expected ',' or '}'`)}},
		{name: "duplicate_key", want: diag.List{
			d("users/alice.json", 6, 76, E, `invalid JSON: key "role" appears twice in one object`)}},
		{name: "nesting_too_deep", want: diag.List{
			d("users/alice.json", 5, 49, E, "invalid JSON: nesting deeper than 32 levels")}},

		// Schema. A cluster that fails its schema takes no further part, so
		// references to it are unknown: every consequence is reported.
		{name: "unknown_field", want: diag.List{
			d("users/alice.json", 7, 6, E, `unknown field "expiry" in access[0]`)}},
		{name: "missing_required", want: diag.List{
			d("users/bob.json", 1, 1, E, `missing required field "owner"`)}},
		{name: "wrong_type", want: diag.List{
			d("clusters/staging-main.json", 7, 11, E, "port: Invalid type. Expected: integer, given: string"),
			d("users/alice.json", 7, 23, E, `unknown environment "staging" (known: dev, prod)`),
			d("users/orders_api.json", 7, 32, E, `unknown cluster "staging-main" (known: dev-maria, prod-orders)`)}},
		{name: "bad_user_name", want: diag.List{
			d("users/alice.json", 2, 11, E, "name must be 1 to 31 lowercase letters, digits or _, starting with a letter (it becomes part of a MySQL account name)")}},
		{name: "bad_account_id", want: diag.List{
			d("clusters/prod-orders.json", 4, 17, E, "account_id must be the 12-digit AWS account id, as a string"),
			d("users/alice.json", 8, 19, E, `unknown cluster "prod-orders" (known: dev-maria, staging-main)`),
			d("users/bob.json", 6, 19, E, `unknown cluster "prod-orders" (known: dev-maria, staging-main)`),
			d("users/orders_api.json", 7, 48, E, `unknown cluster "prod-orders" (known: dev-maria, staging-main)`)}},
		{name: "expires_not_a_date", want: diag.List{
			d("users/bob.json", 6, 89, E, "expires must be a date written YYYY-MM-DD")}},
		{name: "password_without_secret", want: diag.List{
			d("users/orders_api.json", 5, 11, E, `missing required field "secret" in auth`)}},

		// Names and files.
		{name: "name_mismatch", want: diag.List{
			d("users/alice.json", 2, 11, E, `name "alicia" must equal the file name "alice"`)}},
		{name: "duplicate_user_names", want: diag.List{
			d("users/alice2.json", 2, 11, E, `name "alice" must equal the file name "alice2"`),
			d("users/alice2.json", 2, 11, E, "user alice is also declared in users/alice.json")}},
		{name: "duplicate_cluster_names", want: diag.List{
			d("clusters/orders-copy.json", 2, 11, E, "cluster prod-orders is also declared in clusters/prod-orders.json"),
			d("clusters/orders-copy.json", 2, 11, E, `name "prod-orders" must equal the file name "orders-copy"`)}},
		{name: "account_name_too_long", want: diag.List{
			d("users/a_rather_long_service_name_x.json", 2, 11, E, "account name acme_a_rather_long_service_name_x is 33 characters; MySQL 5.7 and Aurora MySQL 2 allow 32, so shorten the name by 1")}},
		// Accounts the plan would never touch: a review would show their
		// grants as changes that never happen.
		{name: "protected_account", want: diag.List{
			d("users/breakglass.json", 2, 11, E, `account "acme_breakglass" is in protected_accounts of dbusers.json: dbusers never creates, changes or drops it, `+
				`so this file would grant nothing; remove the file, or the account from protected_accounts for dbusers to manage it`)}},
		{name: "system_account", want: diag.List{
			d("users/superuser_role.json", 2, 11, E, `account "rds_superuser_role" is a system account of MySQL or RDS, which dbusers never creates, changes or drops; choose another name`)}},
		{name: "missing_settings", remove: []string{"dbusers.json"}, want: diag.List{
			// Without dbusers.json only the built-in roles exist.
			d("dbusers.json", 0, 0, E, "dbusers.json is missing: every repository needs fleet settings (prefix, removal limit, SSM parameter)"),
			d("users/orders_api.json", 7, 97, E, `unknown role "etl" (known: admin, read, trusted_admin, write)`)}},

		// References.
		{name: "unknown_role", want: diag.List{
			d("users/alice.json", 6, 68, E, `unknown role "reader" (known: admin, etl, read, trusted_admin, write)`)}},
		{name: "unknown_cluster", want: diag.List{
			d("users/alice.json", 6, 35, E, `unknown cluster "prod-order" (known: dev-maria, prod-orders, staging-main)`)}},
		{name: "unknown_environment", want: diag.List{
			d("users/alice.json", 6, 23, E, `unknown environment "stage" (known: dev, prod, staging)`)}},
		{name: "database_not_managed", want: diag.List{
			d("users/alice.json", 6, 67, E, `database "analytics" is not managed by cluster prod-orders (it manages: orders, payments)`)}},
		{name: "access_without_target", want: diag.List{
			d("users/alice.json", 6, 5, E, `access entry names no clusters and no environments; add "clusters" or "environments"`),
			d("users/alice.json", 7, 60, W, `"*" already means every database of the cluster; the other names are redundant`)}},

		// Authentication.
		{name: "iam_on_mariadb", want: diag.List{
			d("users/alice.json", 6, 23, E, iamMaria),
			d("users/alice.json", 7, 19, E, iamMaria)}},
		{name: "secret_with_iam", want: diag.List{
			d("users/alice.json", 5, 37, E, "auth.secret is only used with password authentication; remove it or set type to password")}},
		{name: "tls_disabled_on_aurora", want: diag.List{
			d("clusters/prod-orders.json", 10, 10, E, "tls disabled on aurora-mysql-3: AWS-managed clusters are always reached over verified TLS")}},
		{name: "role_in_other_account", want: diag.List{
			d("clusters/prod-orders.json", 10, 15, E, "role_arn is in account 999999999999, but the cluster is in account 210987654321: the role must be in the cluster's own account")}},

		// Expiry. The second entry of past_expires expires today and still
		// grants.
		{name: "invalid_expires", want: diag.List{
			d("users/bob.json", 6, 89, E, `expires "2026-02-30" is not a real date (YYYY-MM-DD)`)}},
		{name: "past_expires", want: diag.List{
			d("users/bob.json", 6, 89, W, "access expired on 2026-02-28: it grants nothing and will be revoked; remove the entry")}},
		{name: "all_access_expired", want: diag.List{
			d("users/bob.json", 5, 13, W, "user bob has no access left after expiry: its accounts will be dropped from every cluster"),
			d("users/bob.json", 6, 89, W, "access expired on 2026-02-28: it grants nothing and will be revoked; remove the entry")}},
		{name: "no_access", want: diag.List{
			d("users/bob.json", 5, 13, W, "user bob has no access entries: its accounts will be dropped from every cluster")}},

		// Reviewer call-outs; an expired entry is not called out.
		{name: "trusted_admin", want: diag.List{
			d("users/alice.json", 6, 90, W, "trusted_admin grants every privilege on clusters staging-main and environments prod to alice: make sure a second reviewer approves"),
			d("users/alice.json", 7, 96, W, "access expired on 2026-02-01: it grants nothing and will be revoked; remove the entry")}},
		{name: "prod_admin", want: diag.List{
			d("users/alice.json", 6, 76, W, "admin on production cluster(s) prod-orders for alice: make sure a second reviewer approves"),
			d("users/alice.json", 7, 90, W, "access expired on 2026-01-01: it grants nothing and will be revoked; remove the entry")}},

		// Roles.
		{name: "role_extends_unknown", want: diag.List{
			d("dbusers.json", 4, 12, E, `role etl extends unknown role "writer"`)}},
		{name: "role_cycle", want: diag.List{
			d("dbusers.json", 4, 12, E, "role etl extends itself: etl → loader → etl")}},
		{name: "unknown_privilege", want: diag.List{
			d("dbusers.json", 4, 12, E, `role etl: "SUPER" is not a database-level privilege`)}},
		{name: "privilege_missing_on_flavor", want: diag.List{
			// dev-maria (MariaDB) has DELETE HISTORY; the MySQL clusters do not.
			d("users/orders_api.json", 7, 97, E, "role etl grants DELETE HISTORY, which aurora-mysql-3 (cluster prod-orders) does not have"),
			d("users/orders_api.json", 7, 97, E, "role etl grants DELETE HISTORY, which rds-mysql-8.0 (cluster staging-main) does not have")}},
		{name: "role_grants_nothing", want: diag.List{
			d("dbusers.json", 5, 16, E, "role auditor grants nothing: give it privileges or extends"),
			d("dbusers.json", 6, 29, W, "role owner lists ALL PRIVILEGES and more; ALL PRIVILEGES already includes every database privilege")}},

		// Every problem in every file, sorted by file, line, column and
		// message; a non-.json file in users/ is ignored.
		{name: "many_problems", want: diag.List{
			d("clusters/staging-main.json", 5, 13, E, "region must be an AWS region name such as eu-west-1"),
			d("dbusers.json", 4, 12, E, `role etl extends unknown role "writer"`),
			d("users/alice.json", 6, 19, E, `unknown cluster "prod-order" (known: dev-maria, prod-orders)`),
			d("users/alice.json", 6, 67, E, `unknown role "reader" (known: admin, etl, read, trusted_admin, write)`),
			d("users/bob.json", 7, 3, E, "invalid JSON: unexpected ']', expected a value"),
			d("users/orders_api.json", 7, 32, E, `unknown cluster "staging-main" (known: dev-maria, prod-orders)`)}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			var fsys fstest.MapFS
			if tt.remove == nil {
				fsys = overlay(t, tt.name)
			} else {
				fsys = overlay(t, "")
			}
			for _, p := range tt.remove {
				delete(fsys, p)
			}
			_, got, err := Load(fsys, today)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\ngot:\n%s", diff, listString(got))
			}
			errs, warns := tt.want.Count()
			if got.Failed(false) != (errs > 0) {
				t.Errorf("Failed(false) = %v with %d error(s)", got.Failed(false), errs)
			}
			if got.Failed(true) != (errs+warns > 0) {
				t.Errorf("Failed(true) = %v with %d error(s) and %d warning(s)", got.Failed(true), errs, warns)
			}
		})
	}
	// Every case directory is exercised, so none rots unnoticed.
	entries, err := os.ReadDir("testdata/broken")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !covered[e.Name()] {
			t.Errorf("testdata/broken/%s has no test case", e.Name())
		}
	}
}

// TestLoadStrict: a repository with only warnings passes, and fails only
// under --strict.
func TestLoadStrict(t *testing.T) {
	for _, name := range []string{"past_expires", "no_access", "trusted_admin", "prod_admin"} {
		_, got, err := Load(overlay(t, name), today)
		if err != nil {
			t.Fatal(err)
		}
		if errs, warns := got.Count(); errs != 0 || warns == 0 {
			t.Fatalf("%s: %d error(s), %d warning(s); want warnings only", name, errs, warns)
		}
		if got.Failed(false) {
			t.Errorf("%s: warnings fail validation without strict", name)
		}
		if !got.Failed(true) {
			t.Errorf("%s: warnings do not fail validation under strict", name)
		}
	}
}

func TestLoadFileSize(t *testing.T) {
	// A valid user file padded with spaces to exactly n bytes.
	padded := func(n int) []byte {
		doc := []byte(`{"name": "big", "owner": "x", "kind": "human", "access": [` +
			`{"clusters": ["prod-orders"], "databases": ["orders"], "role": "read"}]}`)
		return append(doc, bytes.Repeat([]byte(" "), n-len(doc))...)
	}
	t.Run("at the limit", func(t *testing.T) {
		fsys := overlay(t, "")
		fsys["users/big.json"] = &fstest.MapFile{Data: padded(MaxFileSize)}
		_, got, err := Load(fsys, today)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("a file of exactly MaxFileSize bytes is rejected:\n%s", listString(got))
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		fsys := overlay(t, "")
		fsys["users/big.json"] = &fstest.MapFile{Data: padded(MaxFileSize + 1)}
		l, got, err := Load(fsys, today)
		if err != nil {
			t.Fatal(err)
		}
		want := diag.List{d("users/big.json", 0, 0, E, "file is larger than 1048576 bytes; a declaration is a few kilobytes")}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("diagnostics (-want +got):\n%s", diff)
		}
		if _, ok := l.Users["big"]; ok {
			t.Error("an oversize file was decoded")
		}
	})
}

// failingFS fails to open one path with an I/O error.
type failingFS struct {
	fs.FS
	path string
}

var errDisk = errors.New("disk on fire")

func (f failingFS) Open(name string) (fs.File, error) {
	if name == f.path {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errDisk}
	}
	return f.FS.Open(name)
}

// ReadDir hides fstest.MapFS's own ReadDir so that fs.ReadDir goes through
// Open.
func (f failingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == f.path {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errDisk}
	}
	return fs.ReadDir(f.FS, name)
}

// TestLoadIOError: a file that cannot be read is an error of the run, not a
// problem in the declarations.
func TestLoadIOError(t *testing.T) {
	for _, p := range []string{"dbusers.json", "users/bob.json", "clusters/prod-orders.json", "users"} {
		t.Run(p, func(t *testing.T) {
			l, diags, err := Load(failingFS{overlay(t, ""), p}, today)
			if !errors.Is(err, errDisk) {
				t.Fatalf("err = %v, want one wrapping %v", err, errDisk)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name %s", err, p)
			}
			if l != nil || diags != nil {
				t.Errorf("Load returned results with an error: %v %v", l, diags)
			}
		})
	}
}

// TestLoadMissingDirectories: a repository with dbusers.json alone is valid
// and empty.
func TestLoadMissingDirectories(t *testing.T) {
	fsys := overlay(t, "")
	for p := range fsys {
		if p != SettingsFile {
			delete(fsys, p)
		}
	}
	l, diags, err := Load(fsys, today)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 0 || len(l.Config.Clusters) != 0 || len(l.Config.Users) != 0 {
		t.Errorf("got %d diagnostics, %d clusters, %d users; want none", len(diags), len(l.Config.Clusters), len(l.Config.Users))
	}
}

// checkOne decodes the base repository, lets edit change the user named
// user in ways the schema would refuse, and runs the semantic checks alone:
// the rules that back up the schema must hold without it (a bundle read
// back, a schema relaxed by mistake).
func checkOne(t *testing.T, user string, edit func(*User)) diag.List {
	t.Helper()
	l, diags, err := Load(overlay(t, ""), today)
	if err != nil || len(diags) != 0 {
		t.Fatalf("load base: %v %v", err, diags)
	}
	for i := range l.Config.Users {
		if l.Config.Users[i].Name == user {
			src := l.Users[user]
			edit(&l.Config.Users[i])
			delete(l.Users, user)
			l.Users[l.Config.Users[i].Name] = src
		}
	}
	return l.Check(today)
}

func TestCheckUnsafeAccountName(t *testing.T) {
	got := checkOne(t, "alice", func(u *User) { u.Name = "alice-o'hara" })
	want := diag.List{d("users/alice.json", 2, 11, E,
		`name "alice-o'hara" is not a safe MySQL account name: use lowercase letters, digits and _, starting with a letter`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCheckPasswordWithoutSecret(t *testing.T) {
	got := checkOne(t, "orders_api", func(u *User) { u.Auth.Secret = "" })
	want := diag.List{d("users/orders_api.json", 5, 11, E,
		"password authentication needs auth.secret, the Secrets Manager secret that holds the password")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestEmbeddedSchemasMatchRepository keeps the schemas compiled into the
// binary equal to schema/, which editors use; `go generate` copies them.
func TestEmbeddedSchemasMatchRepository(t *testing.T) {
	repo, err := fs.Glob(os.DirFS("../../../schema"), "*.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := fs.Glob(schemaFS, "schema/*.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range embedded {
		embedded[i] = path.Base(p)
	}
	if diff := cmp.Diff(repo, embedded); diff != "" {
		t.Fatalf("schema files differ (-schema/ +embedded); run go generate ./bot/internal/config:\n%s", diff)
	}
	if len(repo) != 3 {
		t.Errorf("found %d schemas in schema/, want 3", len(repo))
	}
	for _, name := range repo {
		want, err := os.ReadFile("../../../schema/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := schemaFS.ReadFile("schema/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("embedded %s differs from schema/%s; run go generate ./bot/internal/config (-schema/ +embedded):\n%s", name, name, diff)
		}
	}
	if _, err := compiled(); err != nil {
		t.Errorf("embedded schemas do not compile: %v", err)
	}
}

// TestLoadRepositoryExamples: the examples are a working repository.
func TestLoadRepositoryExamples(t *testing.T) {
	l, diags, err := Load(os.DirFS("../../../examples/acme"), today)
	if err != nil {
		t.Fatal(err)
	}
	if errs := diags.Errors(); len(errs) != 0 {
		t.Errorf("the repository's declarations have errors:\n%s", listString(errs))
	}
	if len(l.Config.Clusters) == 0 || len(l.Config.Users) == 0 {
		t.Errorf("found %d clusters and %d users in the repository", len(l.Config.Clusters), len(l.Config.Users))
	}
}

func TestDisplayField(t *testing.T) {
	for pointer, want := range map[string]string{
		"":                      "",
		"/name":                 "name",
		"/access/0/role":        "access[0].role",
		"/roles/a~1b/extends/2": "roles.a/b.extends[2]",
		"/tags/x~0y":            "tags.x~y",
	} {
		if got := displayField(pointer); got != want {
			t.Errorf("displayField(%q) = %q, want %q", pointer, got, want)
		}
	}
}

// TestSchemaKeysWithDots: a key containing "." (a tag name) is still placed
// at the right value.
func TestSchemaKeysWithDots(t *testing.T) {
	data := []byte(`{"name": "c", "environment": "dev", "account_id": "310987654321", "region": "eu-west-1",
 "endpoint": "h", "engine": "mysql-8.0", "admin_secret": "s", "databases": ["a"],
 "tags": {"team.name": 7}}`)
	var c Cluster
	_, got := Decode("clusters/c.json", data, kindCluster, &c)
	want := diag.List{d("clusters/c.json", 3, 24, E, "tags.team.name: Invalid type. Expected: string, given: integer")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if p := jsonpos.Pointer("tags", "team.name"); p != "/tags/team.name" {
		t.Errorf("pointer %q", p)
	}
}

func listString(l diag.List) string {
	var b strings.Builder
	for _, d := range l {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}

// TestDecodeWholeNumbers: JSON Schema counts 3306.0 as an integer, Go's int
// does not; the problem is placed at the number, in the user's words.
func TestDecodeWholeNumbers(t *testing.T) {
	cluster := `{"name": "c", "environment": "dev", "account_id": "310987654321", "region": "eu-west-1",
 "endpoint": "h", "engine": "mysql-8.0", "admin_secret": "s", "databases": ["a"],
 "port": %s}`
	settings := `{"prefix": "acme", "ssm": {"parameter": "/p"}, "aws": {"management_role": "r"},
 "removal_limit": {"fraction": 0.5, "count": %s}}`
	tests := []struct {
		name, doc, num string
		k              kind
		v              any
		want           diag.List
	}{
		{"fraction", cluster, "3306.0", kindCluster, new(Cluster),
			diag.List{d("f.json", 3, 10, E, "port: write 3306.0 as a whole number, without a fraction or exponent")}},
		{"exponent", cluster, "3.306e3", kindCluster, new(Cluster),
			diag.List{d("f.json", 3, 10, E, "port: write 3.306e3 as a whole number, without a fraction or exponent")}},
		{"nested", settings, "2E1", kindSettings, new(Settings),
			diag.List{d("f.json", 2, 46, E, "removal_limit.count: write 2E1 as a whole number, without a fraction or exponent")}},
		{"out of range", settings, "99999999999999999999", kindSettings, new(Settings),
			diag.List{d("f.json", 2, 46, E, "removal_limit.count: 99999999999999999999 is out of range")}},
		{"whole", cluster, "3306", kindCluster, new(Cluster), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, got := Decode("f.json", []byte(fmt.Sprintf(tt.doc, tt.num)), tt.k, tt.v)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if (src == nil) != (tt.want != nil) {
				t.Errorf("source = %v with diagnostics %v", src, got)
			}
		})
	}
}

// TestSchemaEnginesMatchFlavors: the engines editors complete from the
// cluster schema are exactly the ones package flavor knows, so a new
// flavor's engines cannot be forgotten there (or a schema engine lack a
// flavor).
func TestSchemaEnginesMatchFlavors(t *testing.T) {
	data, err := schemaFS.ReadFile("schema/cluster.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties struct {
			Engine struct {
				Enum []string `json:"enum"`
			} `json:"engine"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(s.Properties.Engine.Enum))
	if diff := cmp.Diff(flavor.Engines(), got); diff != "" {
		t.Errorf("cluster schema engines differ from flavor.Engines() (-flavor +schema):\n%s", diff)
	}
}

// TestMaxAccountNameFitsEveryEngine: the one account-name limit that
// validation applies is no longer than any engine's, so that an account
// that validates can be created on every cluster it may be granted on.
func TestMaxAccountNameFitsEveryEngine(t *testing.T) {
	for _, f := range flavor.All() {
		if n := f.AccountNameLimit(); n < MaxAccountName {
			t.Errorf("%s allows %d characters, fewer than MaxAccountName (%d): lower MaxAccountName", f, n, MaxAccountName)
		}
	}
	if n := flavor.MySQL57.AccountNameLimit(); n != MaxAccountName {
		t.Errorf("MySQL 5.7 allows %d characters; MaxAccountName is %d and its message names MySQL 5.7", n, MaxAccountName)
	}
}
