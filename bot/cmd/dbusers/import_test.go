package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/fleet"
	"github.com/dbusers/dbusers/bot/internal/importer"
)

// TestImportMessyCluster seeds what a team adopting dbusers has: prefixed
// accounts whose privileges match the built-in roles, one declared in part
// already, one that matches no role, one with a table grant, one at
// another host, one whose name no file can have, and shared unprefixed
// accounts. import --write then proposes files that validate, after which
// a dry run plans exactly the changes import listed and nothing else; a
// second import changes nothing.
func TestImportMessyCluster(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	p := r.prefix
	db0, db1 := r.dbs[0], r.dbs[1]
	pw := func(u string) string { return "pw-" + u + "-" + p }
	s := r.server
	s.Exec(t, "CREATE TABLE `"+db0+"`.t (id INT)")
	for _, q := range []string{
		// app is declared with write on db0; it also reads db1.
		fmt.Sprintf("CREATE USER '%s_app'@'%%' IDENTIFIED BY '%s'", p, r.passwords["app"]),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE ON `%s`.* TO '%s_app'@'%%'", pattern(db0), p),
		fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s_app'@'%%'", pattern(db1), p),
		fmt.Sprintf("CREATE USER '%s_reader'@'%%' IDENTIFIED BY '%s'", p, pw("reader")),
		fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s_reader'@'%%'", pattern(db0), p),
		fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s_reader'@'%%'", pattern(db1), p),
		fmt.Sprintf("CREATE USER '%s_deleter'@'%%' IDENTIFIED BY '%s'", p, pw("deleter")),
		fmt.Sprintf("GRANT SELECT, DELETE ON `%s`.* TO '%s_deleter'@'%%'", pattern(db0), p),
		fmt.Sprintf("CREATE USER '%s_tabley'@'%%' IDENTIFIED BY '%s'", p, pw("tabley")),
		fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s_tabley'@'%%'", pattern(db0), p),
		fmt.Sprintf("GRANT INSERT ON `%s`.t TO '%s_tabley'@'%%'", db0, p),
		fmt.Sprintf("CREATE USER '%s_elsewhere'@'10.0.0.%%' IDENTIFIED BY 'x'", p),
		fmt.Sprintf("CREATE USER '%s_Shouty'@'%%' IDENTIFIED BY 'x'", p),
		fmt.Sprintf("CREATE USER '%sshared'@'%%' IDENTIFIED BY 'x'", p), // no separator: not the prefix's
	} {
		s.Exec(t, q)
	}
	secrets := map[string]map[string]string{"dbusers/app": {"password": r.passwords["app"]}, "dbusers/viewer": {"password": r.passwords["viewer"]}}
	for _, u := range []string{"reader", "deleter", "tabley"} {
		secrets["dbusers/"+u] = map[string]string{"password": pw(u)}
	}
	data, _ := json.Marshal(secrets)
	if err := os.WriteFile(r.secrets, data, 0o600); err != nil {
		t.Fatal(err)
	}
	viewerBefore, _ := os.ReadFile(filepath.Join(r.root, "users/viewer.json"))

	args := []string{"import", "--root", r.root, "--cluster", "local", "--dsn", r.dsn, "--secrets", r.secrets}
	code, out, errOut := runCLI(t, nil, append(args, "--format", "json")...)
	if code != exitChanges {
		t.Fatalf("import (dry): exit %d\n%s\n%s", code, out, errOut)
	}
	var res importer.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range res.Files {
		paths = append(paths, f.Path)
	}
	if want := []string{"users/app.json", "users/deleter.json", "users/reader.json", "users/tabley.json"}; !slices.Equal(paths, want) {
		t.Errorf("files %v, want %v", paths, want)
	}
	if len(res.Roles) != 1 || res.Roles[0].Name != "read_delete" || !slices.Equal(res.Roles[0].Extends, []string{"read"}) ||
		!slices.Equal(res.Roles[0].Privileges, []string{"DELETE"}) {
		t.Errorf("proposed roles %+v, want read_delete = read + DELETE", res.Roles)
	}
	left := map[string]string{}
	for _, l := range res.Leftovers {
		left[l.Account] = strings.Join(l.What, "; ")
	}
	for acct, want := range map[string]string{
		"'" + p + "_tabley'@'%'":           "INSERT on " + db0 + ".t",
		"'" + p + "_elsewhere'@'10.0.0.%'": "at host",
		"'" + p + "_Shouty'@'%'":           "cannot be a user file's",
	} {
		if !strings.Contains(left[acct], want) {
			t.Errorf("leftover of %s: %q, want it to say %q", acct, left[acct], want)
		}
	}
	if _, ok := left["'"+p+"shared'@'%'"]; ok || strings.Contains(out, p+"shared") {
		t.Errorf("an account outside the prefix was imported or listed")
	}
	if len(res.Remaining) != 1 || !strings.Contains(res.Remaining[0], "INSERT") {
		t.Errorf("remaining %q, want only the table grant's revoke", res.Remaining)
	}
	if _, err := os.Stat(filepath.Join(r.root, "users/reader.json")); err == nil {
		t.Fatal("a dry import wrote a file")
	}
	_, text, _ := runCLI(t, nil, args...)
	for _, want := range []string{"+++ users/reader.json (new, " + p + "_reader)", "~~~ users/app.json (" + p + "_app): entries added",
		"+   read_delete: read + DELETE (for '" + p + "_deleter'@'%')", "What no declaration can say", "Once this is merged, a run still changes these imported accounts:"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	if testing.Verbose() {
		t.Log(text)
	}

	// --write, then the repository validates and a dry run plans exactly
	// what import listed: the table grant's revoke, and the drops of the
	// accounts no file can declare.
	if code, out, errOut = runCLI(t, nil, append(args, "--write")...); code != exitOK {
		t.Fatalf("import --write: exit %d\n%s\n%s", code, out, errOut)
	}
	if settings, _ := os.ReadFile(filepath.Join(r.root, "dbusers.json")); testing.Verbose() {
		t.Logf("dbusers.json:\n%s", settings)
	}
	if _, diags, err := config.LoadDir(r.root, time.Now()); err != nil || len(diags.Errors()) > 0 {
		t.Fatalf("after import --write the declarations do not validate: %v %v", err, diags)
	}
	reader, _ := os.ReadFile(filepath.Join(r.root, "users/reader.json"))
	if !strings.Contains(string(reader), `{"clusters": ["local"], "databases": ["*"], "role": "read"}`) ||
		!strings.Contains(string(reader), `"auth": {"type": "password", "secret": "dbusers/reader"}`) {
		t.Errorf("users/reader.json:\n%s", reader)
	}
	app, _ := os.ReadFile(filepath.Join(r.root, "users/app.json"))
	if !strings.HasPrefix(string(app), "{\n  \"name\": \"app\",") || !strings.Contains(string(app), `"databases": [`+fmt.Sprintf("%q", db1)+`], "role": "read"}`) ||
		!strings.Contains(string(app), `"role": "write"}`) {
		t.Errorf("users/app.json was not extended in place:\n%s", app)
	}
	if viewerAfter, _ := os.ReadFile(filepath.Join(r.root, "users/viewer.json")); string(viewerAfter) != string(viewerBefore) {
		t.Errorf("users/viewer.json (not on the server) changed")
	}
	code, out, errOut = runCLI(t, nil, "reconcile", "--root", r.root, "--cluster", "local", "--dsn", r.dsn, "--secrets", r.secrets, "--format", "json")
	if code != exitChanges {
		t.Fatalf("reconcile dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	var planned struct {
		Plan struct {
			Changes []struct {
				Account struct{ User, Host string } `json:"account"`
				Action  string                      `json:"action"`
			} `json:"changes"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &planned); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range planned.Plan.Changes {
		if c.Action != "end_session" {
			got = append(got, c.Account.User+"@"+c.Account.Host+" "+c.Action)
		}
	}
	slices.Sort(got)
	want := []string{p + "_Shouty@% drop_user", p + "_elsewhere@10.0.0.% drop_user", p + "_tabley@% revoke",
		// viewer is declared and not on the server: not import's business.
		p + "_viewer@% create_user", p + "_viewer@% grant", p + "_viewer@% grant"}
	if !slices.Equal(got, want) {
		t.Errorf("after import the dry run plans\n%v\nwant\n%v\n%s", got, want, out)
	}

	// Twice is once.
	before := map[string]string{}
	for _, f := range []string{"users/app.json", "users/reader.json", "dbusers.json"} {
		b, _ := os.ReadFile(filepath.Join(r.root, f))
		before[f] = string(b)
	}
	if code, out, errOut = runCLI(t, nil, append(args, "--write")...); code != exitOK || !strings.Contains(out, "0 file(s) written, 4 account(s) already declared as they are") {
		t.Errorf("second import: exit %d\n%s\n%s", code, out, errOut)
	}
	for f, b := range before {
		if after, _ := os.ReadFile(filepath.Join(r.root, f)); string(after) != b {
			t.Errorf("the second import changed %s", f)
		}
	}
	if code, out, _ = runCLI(t, nil, args...); code != exitOK {
		t.Errorf("dry import after the import: exit %d, want 0 (nothing to import)\n%s", code, out)
	}
}

// pattern escapes a database name as MariaDB stores a GRANT's pattern.
func pattern(db string) string { return strings.ReplaceAll(db, "_", `\_`) }

// TestImportFromLambda: the same import, from the function's inventory
// invoke instead of a DSN; and `dbusers inventory` lists the cluster.
func TestImportFromLambda(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	p := r.prefix
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s_reader'@'%%' IDENTIFIED BY 'pw-reader'", p),
		fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s_reader'@'%%'", pattern(r.dbs[0]), p),
		fmt.Sprintf("CREATE USER '%sshared'@'%%' IDENTIFIED BY 'x'", p),
		fmt.Sprintf("GRANT SELECT, INSERT ON `%s`.* TO '%sshared'@'%%'", pattern(r.dbs[1]), p),
	} {
		r.server.Exec(t, q)
	}
	ic, err := dsnInventory(t.Context(), r.dsn, "local", desired.Prefix(p), nil, r.dbs, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(fleet.InventoryReport{Published: "v1", Clusters: []fleet.InventoryCluster{*ic}})
	client := &fakeLambda{out: &lambda.InvokeOutput{Payload: payload}}
	code, out, errOut := liveCLI(t, nil, client, nil, "import", "--root", r.root, "--cluster", "local", "--from-lambda", "dbusers", "--format", "json")
	if code != exitChanges {
		t.Fatalf("import --from-lambda: exit %d\n%s\n%s", code, out, errOut)
	}
	var ev map[string]map[string][]string
	if err := json.Unmarshal(client.got[0].Payload, &ev); err != nil || !slices.Equal(ev["inventory"]["clusters"], []string{"local"}) {
		t.Errorf("invoke payload %s", client.got[0].Payload)
	}
	var res importer.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Files) != 1 || res.Files[0].Path != "users/reader.json" {
		t.Fatalf("%v: %s", err, out)
	}
	if code, _, errOut = liveCLI(t, nil, client, nil, "import", "--root", r.root, "--cluster", "local", "--from-lambda", "dbusers", "--secrets", r.secrets); code != exitError || !strings.Contains(errOut, "never returns password hashes") {
		t.Errorf("--secrets with --from-lambda: exit %d, %s", code, errOut)
	}
	refused := &fakeLambda{out: &lambda.InvokeOutput{FunctionError: aws.String("Unhandled"), Payload: []byte(`{"errorMessage":"this is the plan function"}`)}}
	if code, _, errOut = liveCLI(t, nil, refused, nil, "import", "--root", r.root, "--cluster", "local", "--from-lambda", "dbusers-plan"); code != exitError || !strings.Contains(errOut, "refused the inventory: this is the plan function") {
		t.Errorf("refused: exit %d, %s", code, errOut)
	}

	code, out, errOut = runCLI(t, nil, "inventory", "--root", r.root, "--cluster", "local", "--dsn", r.dsn)
	for _, want := range []string{"cluster local (MariaDB ", "'" + p + "_reader'@'%' (mysql_native_password)", "    " + pattern(r.dbs[0]) + ": SELECT",
		"? '" + p + "shared'@'%' (mysql_native_password): grants on " + r.dbs[1]} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("inventory (exit %d) lacks %q:\n%s\n%s", code, want, out, errOut)
		}
	}
}
