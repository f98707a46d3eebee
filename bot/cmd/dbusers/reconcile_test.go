package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// reconcileRepo is a repository with one MariaDB cluster, "local", whose
// prefix and databases belong to one test on a shared server.
type reconcileRepo struct {
	root    string
	prefix  string
	dbs     []string
	secrets string // path of the --secrets file
	// passwords are the secrets file's passwords by user name.
	passwords map[string]string
	dsn       string // admin DSN
	server    *mysqltest.Server
}

// newReconcileRepo creates the databases and writes the repository: app
// (write on the first database) and viewer (read on both), both with
// password secrets. The CLI refuses a server that is not the declared
// engine, and cluster files cannot declare the embedded server, so these
// tests need a real MariaDB and skip loudly without one.
func newReconcileRepo(t *testing.T) *reconcileRepo {
	t.Helper()
	s := mysqltest.MariaDB(t, "dbusers reconcile was NOT tested against a server")
	r := &reconcileRepo{prefix: mysqltest.Name("c"), dsn: s.DSN, server: s, passwords: map[string]string{}}
	r.dbs = []string{r.prefix + "_orders", r.prefix + "_billing"}
	s.Scratch(t, func(u string) bool { return strings.HasPrefix(u, r.prefix) }, r.dbs...)
	for _, u := range []string{"app", "viewer"} {
		r.passwords[u] = mysqltest.Password(u)
	}
	files := map[string]string{
		"dbusers.json": fmt.Sprintf(`{
  "prefix": %q,
  "removal_limit": {"count": 5, "fraction": 0.2},
  "ssm": {"parameter": "/dbusers/config"},
  "aws": {"management_role": "dbusers-management"}
}
`, r.prefix),
		"clusters/local.json": fmt.Sprintf(`{
  "name": "local",
  "environment": "dev",
  "account_id": "222222222222",
  "region": "eu-west-1",
  "endpoint": "127.0.0.1",
  "engine": "mariadb-10.11",
  "admin_secret": "dbusers/local/admin",
  "databases": [%q, %q],
  "tls": "disabled"
}
`, r.dbs[0], r.dbs[1]),
		"users/app.json": fmt.Sprintf(`{
  "name": "app",
  "owner": "orders-team@acme.example",
  "kind": "service",
  "auth": {"type": "password", "secret": "dbusers/app"},
  "access": [{"clusters": ["local"], "databases": [%q], "role": "write"}]
}
`, r.dbs[0]),
		"users/viewer.json": `{
  "name": "viewer",
  "owner": "bi-team@acme.example",
  "kind": "service",
  "auth": {"type": "password", "secret": "dbusers/viewer"},
  "access": [{"clusters": ["local"], "databases": ["*"], "role": "read"}]
}
`,
	}
	r.root = writeRepo(t, files)
	r.secrets = filepath.Join(t.TempDir(), "secrets.json")
	data, err := json.Marshal(map[string]map[string]string{
		"dbusers/app":    {"password": r.passwords["app"]},
		"dbusers/viewer": {"password": r.passwords["viewer"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.secrets, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// exists reports whether <prefix>_<user>@'%' exists.
func (r *reconcileRepo) exists(t *testing.T, user string) bool {
	t.Helper()
	var n int
	if err := r.server.DB.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = '%'", r.prefix+"_"+user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// canLogin logs in as <prefix>_<user> with password.
func (r *reconcileRepo) canLogin(user, password string) error {
	return r.server.CanLogin(context.Background(), r.prefix+"_"+user, password)
}

// runCLI runs dbusers in-process with env as its environment.
func runCLI(t *testing.T, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: time.Now, getenv: func(k string) string { return environ[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, e, args)
	return code, out.String(), errOut.String()
}

// TestReconcileCLI walks one cluster through dry run, apply and a clean
// second look, with every way of passing the DSN and the secrets.
func TestReconcileCLI(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	base := []string{"reconcile", "--root", r.root, "--cluster", "local", "--lock-timeout", "20s"}
	withDSN := append(base[:len(base):len(base)], "--dsn", r.dsn, "--secrets", r.secrets)

	// Dry run with changes: exit 1, nothing applied.
	code, out, errOut := runCLI(t, nil, withDSN...)
	if code != exitChanges {
		t.Fatalf("dry run: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitChanges, out, errOut)
	}
	if !strings.Contains(out, "change(s) planned (dry run: nothing applied)") || !strings.Contains(out, "create "+r.prefix+"_app") {
		t.Errorf("dry run output does not show the plan:\n%s", out)
	}
	if r.exists(t, "app") {
		t.Fatalf("the dry run created %s_app", r.prefix)
	}

	// JSON on a dry run parses and says the same.
	code, out, _ = runCLI(t, nil, append(withDSN, "--format", "json")...)
	var res struct {
		Cluster string `json:"cluster"`
		Status  string `json:"status"`
		Writes  int    `json:"writes"`
		Plan    struct {
			Changes []struct {
				Action  string `json:"action"`
				Summary string `json:"summary"`
			} `json:"changes"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--format json: %v\n%s", err, out)
	}
	// app: create + 1 grant; viewer: create + 2 grants.
	if code != exitChanges || res.Cluster != "local" || res.Status != "planned" || res.Writes != 0 || len(res.Plan.Changes) != 5 {
		t.Errorf("--format json: exit %d, %+v; want exit 1, planned, 5 changes, 0 writes", code, res)
	}

	// Apply: exit 0, audit lines on stderr, passwords from the secrets file.
	code, out, errOut = runCLI(t, nil, append(withDSN, "--confirm")...)
	if code != exitOK {
		t.Fatalf("--confirm: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "applied and verified") {
		t.Errorf("--confirm output:\n%s", out)
	}
	if n := strings.Count(errOut, `"outcome":"applied"`); n != 5 {
		t.Errorf("%d audit lines on stderr, want 5:\n%s", n, errOut)
	}
	for user, pw := range r.passwords {
		if err := r.canLogin(user, pw); err != nil {
			t.Errorf("log in as %s_%s with the secrets file's password: %v", r.prefix, user, err)
		}
		if strings.Contains(out+errOut, pw) {
			t.Errorf("the password of %s appears in the output", user)
		}
	}

	// Converged: a dry run exits 0, with the DSN from DBUSERS_DSN.
	code, out, errOut = runCLI(t, map[string]string{"DBUSERS_DSN": r.dsn}, append(base, "--secrets", r.secrets)...)
	if code != exitOK || !strings.Contains(out, "no changes") {
		t.Errorf("dry run after apply with DBUSERS_DSN: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// Without the secrets file the password users are skipped, not dropped.
	code, out, _ = runCLI(t, nil, append(base, "--dsn", r.dsn, "--format", "json", "--confirm")...)
	if code != exitOK || !strings.Contains(out, `"skipped"`) || !r.exists(t, "app") {
		t.Errorf("without --secrets: exit %d, app exists %v; want 0, skipped users, app kept:\n%s", code, r.exists(t, "app"), out)
	}
}

// TestReconcileCLIDatabaseErrors: a login the server refuses is an error
// (exit 2), and the DSN's password never reaches the output.
func TestReconcileCLIDatabaseErrors(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	cfg, err := mysql.ParseDSN(r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	const pw = "Wr0ng-Admin-Passw0rd"
	cfg.User, cfg.Passwd = r.prefix+"_nobody", pw
	code, out, errOut := runCLI(t, nil, "reconcile", "--root", r.root, "--cluster", "local", "--dsn", cfg.FormatDSN())
	if code != exitError {
		t.Errorf("refused login: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	if strings.Contains(out+errOut, pw) {
		t.Errorf("the DSN's password appears in the output:\n%s\n%s", out, errOut)
	}
}

// TestReconcileCLIUsageErrors needs no server: every usage error exits 2
// before connecting, and no error repeats a DSN's password.
func TestReconcileCLIUsageErrors(t *testing.T) {
	t.Parallel()
	root := writeRepo(t, validRepo())
	const pw = "S3cret-In-The-DSN"
	unreachable := "admin:" + pw + "@tcp(127.0.0.1:1)/?timeout=2s"
	cases := []struct {
		name    string
		environ map[string]string
		args    []string
		want    string // in stderr
	}{
		{"missing cluster", nil, []string{"--root", root, "--dsn", unreachable}, "--cluster is required"},
		{"unknown cluster", nil, []string{"--root", root, "--cluster", "nope", "--dsn", unreachable}, `unknown cluster "nope"`},
		{"no dsn", nil, []string{"--root", root, "--cluster", "prod-orders"}, "no database"},
		{"dsn does not parse", nil, []string{"--root", root, "--cluster", "prod-orders", "--dsn", "admin:" + pw + "@tcp(127.0.0.1:1"}, "does not parse"},
		{"DBUSERS_DSN does not parse", map[string]string{"DBUSERS_DSN": "admin:" + pw + "@nowhere"}, []string{"--root", root, "--cluster", "prod-orders"}, "does not parse"},
		{"server unreachable", nil, []string{"--root", root, "--cluster", "prod-orders", "--dsn", unreachable}, "FAILED"},
		{"unknown format", nil, []string{"--root", root, "--cluster", "prod-orders", "--dsn", unreachable, "--format", "yaml"}, "unknown format"},
		{"secrets file missing", nil, []string{"--root", root, "--cluster", "prod-orders", "--dsn", unreachable, "--secrets", filepath.Join(root, "nope.json")}, "secrets file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.environ, append([]string{"reconcile"}, tc.args...)...)
			if code != exitError {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
			}
			if !strings.Contains(errOut+out, tc.want) {
				t.Errorf("output does not say %q\nstdout:\n%s\nstderr:\n%s", tc.want, out, errOut)
			}
			if strings.Contains(out+errOut, pw) {
				t.Errorf("the DSN's password appears in the output:\nstdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
}

// TestReconcileAuditLog: --audit-log FILE keeps the audit's JSON lines out
// of the terminal; - (the default off a terminal) sends them to stderr.
func TestReconcileAuditLog(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	code, out, errOut := runCLI(t, nil, "reconcile", "--root", r.root, "--cluster", "local", "--dsn", r.dsn, "--secrets", r.secrets,
		"--confirm", "--audit-log", path)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["outcome"] != "applied" {
			t.Errorf("audit line %q: %v", l, err)
		}
	}
	if len(lines) < 3 || strings.Contains(errOut, `"outcome"`) || !strings.Contains(errOut, "audit log: "+path) {
		t.Errorf("%d audit line(s); stderr %q", len(lines), errOut)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, %v; want 0600", st.Mode(), err)
	}
	// Off a terminal, by default, the lines go to stderr.
	r.server.Exec(t, "DROP USER '"+r.prefix+"_viewer'@'%'")
	code, _, errOut = runCLI(t, nil, "reconcile", "--root", r.root, "--cluster", "local", "--dsn", r.dsn, "--secrets", r.secrets, "--confirm")
	if code != exitOK || !strings.Contains(errOut, `"outcome":"applied"`) {
		t.Errorf("default audit: exit %d, stderr %q", code, errOut)
	}
}
