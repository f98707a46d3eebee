package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// readPlanFile decodes a saved plan loosely, for the tests' checks.
func readPlanFile(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("plan file: %v\n%s", err, data)
	}
	return m
}

// editPlanFile rewrites one field of a saved plan, as a hand would.
func editPlanFile(t *testing.T, from, to string, edit func(m map[string]any)) {
	t.Helper()
	m := readPlanFile(t, from)
	edit(m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReconcilePlanFile: --plan-file saves the dry run's plan, and
// --confirm --plan-file applies it only while the server and the plan are
// as they were, refusing before the first write otherwise, with what
// differs.
func TestReconcilePlanFile(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	dir := t.TempDir()
	planPath := filepath.Join(dir, "local.plan.json")
	base := []string{"reconcile", "--root", r.root, "--cluster", "local", "--lock-timeout", "20s", "--dsn", r.dsn, "--secrets", r.secrets}
	confirm := append(base[:len(base):len(base)], "--confirm", "--plan-file", planPath)

	// The dry run saves what it showed.
	code, out, errOut := runCLI(t, nil, append(base, "--plan-file", planPath)...)
	if code != exitChanges || !strings.Contains(errOut, "plan saved to "+planPath) {
		t.Fatalf("dry run --plan-file: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitChanges, out, errOut)
	}
	fi, err := os.Stat(planPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("plan file mode %v, want 0600", fi.Mode().Perm())
	}
	saved := readPlanFile(t, planPath)
	if changes, _ := saved["changes"].([]any); len(changes) != 5 || saved["cluster"] != "local" || saved["dbusers_plan_format"] != 1.0 {
		t.Errorf("plan file: %d changes, cluster %v, format %v; want 5, local, 1", len(changes), saved["cluster"], saved["dbusers_plan_format"])
	}
	data, _ := os.ReadFile(planPath)
	for user, pw := range r.passwords {
		if strings.Contains(string(data), pw) {
			t.Errorf("the password of %s is in the plan file", user)
		}
	}
	if !strings.Contains(string(data), "CREATE USER '"+r.prefix+"_app'@'%'") {
		t.Errorf("the plan file does not hold the redacted statements:\n%s", data)
	}

	// Someone creates a managed account by hand after the plan was
	// shown: applying the saved plan would now also drop it, which
	// nobody saw. Refused, nothing sent, and the difference named.
	r.server.Exec(t, "CREATE USER '"+r.prefix+"_rogue'@'%'")
	auditPath := filepath.Join(dir, "audit.jsonl")
	code, out, errOut = runCLI(t, nil, append(confirm, "--audit-log", auditPath)...)
	if code != exitError {
		t.Fatalf("stale plan: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	for _, want := range []string{"is stale", "nothing was changed", "the server's managed accounts changed", "the plan made now differs", "+ DROP USER '" + r.prefix + "_rogue'@'%'"} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("stale plan output does not say %q\nstdout:\n%s\nstderr:\n%s", want, out, errOut)
		}
	}
	if r.exists(t, "app") || r.exists(t, "viewer") {
		t.Fatal("a stale saved plan applied changes")
	}
	if data, _ := os.ReadFile(auditPath); len(data) != 0 {
		t.Errorf("a stale saved plan wrote audit records:\n%s", data)
	}

	// Put back, the server is as it was when the plan was made: applied.
	r.server.Exec(t, "DROP USER '"+r.prefix+"_rogue'@'%'")
	code, out, errOut = runCLI(t, nil, confirm...)
	if code != exitOK || !strings.Contains(out, "applied and verified") || !strings.Contains(errOut, "applying the plan saved in") {
		t.Fatalf("saved plan on an unchanged server: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !r.exists(t, "app") || !r.exists(t, "viewer") {
		t.Fatal("the saved plan did not create the accounts")
	}

	// Applying it twice is refused: the server is no longer the one the
	// plan was made from (the plan would now be empty).
	code, out, errOut = runCLI(t, nil, confirm...)
	if code != exitError || !strings.Contains(errOut, "- CREATE USER") {
		t.Errorf("saved plan applied twice: exit %d, want %d and the saved changes listed as gone\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
}

// TestReconcilePlanFileDeclarationsChange: a user file edited between the
// dry run and --confirm changes the plan; the saved one is refused and the
// statements that differ are listed.
func TestReconcilePlanFileDeclarationsChange(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	planPath := filepath.Join(t.TempDir(), "plan.json")
	base := []string{"reconcile", "--root", r.root, "--cluster", "local", "--lock-timeout", "20s", "--dsn", r.dsn, "--secrets", r.secrets}
	if code, out, errOut := runCLI(t, nil, append(base, "--plan-file", planPath)...); code != exitChanges {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	appFile := filepath.Join(r.root, "users", "app.json")
	data, err := os.ReadFile(appFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(appFile, []byte(strings.Replace(string(data), `"role": "write"`, `"role": "read"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, append(base, "--confirm", "--plan-file", planPath)...)
	if code != exitError || !strings.Contains(out, "the plan made now differs") || strings.Contains(out+errOut, "managed accounts changed") {
		t.Fatalf("edited declarations: exit %d, want %d, the plan (not the server) differing\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	minus, plus := 0, 0
	for _, l := range strings.Split(errOut, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "- GRANT") && strings.Contains(l, r.prefix+"_app") {
			minus++
		}
		if strings.HasPrefix(l, "+ GRANT") && strings.Contains(l, r.prefix+"_app") {
			plus++
		}
	}
	if minus != 1 || plus != 1 {
		t.Errorf("difference: %d removed and %d added grants of app, want 1 and 1:\n%s", minus, plus, errOut)
	}
	if r.exists(t, "app") {
		t.Error("a stale plan created app")
	}
}

// TestReconcilePlanFileSessions: the sessions a saved plan shows are a
// preview: the run ends the ones open when it applies. A session that
// closed and another that opened after the dry run do not make the plan
// stale, and the new one is ended.
func TestReconcilePlanFileSessions(t *testing.T) {
	t.Parallel()
	r := newReconcileRepo(t)
	planPath := filepath.Join(t.TempDir(), "plan.json")
	base := []string{"reconcile", "--root", r.root, "--cluster", "local", "--lock-timeout", "20s", "--dsn", r.dsn, "--secrets", r.secrets}
	if code, out, errOut := runCLI(t, nil, append(base, "--confirm")...); code != exitOK {
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errOut)
	}
	session := func() (*sql.DB, *sql.Conn) {
		t.Helper()
		cfg, err := mysql.ParseDSN(r.dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Passwd = r.prefix+"_viewer", r.passwords["viewer"]
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatalf("log in as viewer: %v", err)
		}
		if err := conn.PingContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db, conn
	}
	oldDB, oldConn := session()

	// viewer is no longer declared: the plan drops it and ends its session.
	if err := os.Remove(filepath.Join(r.root, "users", "viewer.json")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, append(base, "--plan-file", planPath)...)
	if code != exitChanges || !strings.Contains(out, "KILL") {
		t.Fatalf("dry run: exit %d, want 1 and a session to end\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	oldConn.Close()
	oldDB.Close()
	_, newConn := session()

	code, out, errOut = runCLI(t, nil, append(base, "--confirm", "--plan-file", planPath)...)
	if code != exitOK {
		t.Fatalf("saved plan after the sessions changed: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if r.exists(t, "viewer") {
		t.Error("viewer was not dropped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := newConn.PingContext(ctx); err == nil {
		t.Error("the session opened after the dry run is still open")
	}
}

// TestReconcilePlanFileRefused: a plan file that is not this cluster's
// plan as dbusers wrote it is refused before anything connects (the DSN
// here reaches no server), and a fingerprint edited by hand only ever
// stops a run.
func TestReconcilePlanFileRefused(t *testing.T) {
	t.Parallel()
	root := writeRepo(t, validRepo())
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	digest := strings.Repeat("ab", 32)
	goodPlan := `{"dbusers_plan_format": 1, "dbusers_version": "(devel)", "cluster": "prod-orders", "server": "MariaDB 10.11.19",
  "made_at": "2026-12-04T05:00:00Z", "fingerprint": {"state_sha256": "` + digest + `", "plan_sha256": "` + digest + `"}, "changes": []}`
	if err := os.WriteFile(good, []byte(goodPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edited := func(name string, edit func(m map[string]any)) string {
		p := filepath.Join(dir, name)
		editPlanFile(t, good, p, edit)
		return p
	}
	cases := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.json"), "no such file"},
		{"not JSON", write("garbage.json", "CREATE USER x"), "not JSON"},
		{"not a plan", write("other.json", `{"cluster": "prod-orders"}`), "no dbusers_plan_format"},
		{"later format", edited("v2.json", func(m map[string]any) { m["dbusers_plan_format"] = 2 }), "format 2, this dbusers reads format 1"},
		{"other cluster", edited("other-cluster.json", func(m map[string]any) { m["cluster"] = "staging-main" }), `plan of cluster "staging-main", not "prod-orders"`},
		{"unknown field", edited("extra.json", func(m map[string]any) { m["apply"] = []string{"DROP DATABASE orders"} }), `unknown field "apply"`},
		{"no fingerprint", edited("nofp.json", func(m map[string]any) { delete(m, "fingerprint") }), "fingerprint is missing"},
		{"short fingerprint", edited("shortfp.json", func(m map[string]any) {
			m["fingerprint"] = map[string]string{"state_sha256": "ab", "plan_sha256": digest}
		}), "fingerprint is missing or malformed"},
		{"trailing data", write("trailing.json", goodPlan+"\n{}"), "after top-level value"},
		{"a change no kind has", edited("badchange.json", func(m map[string]any) {
			m["changes"] = []any{map[string]any{"action": "grant", "account": map[string]string{"user": "acme_x", "host": "%"}, "summary": "x"}}
		}), "wants a database pattern"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "reconcile", "--root", root, "--cluster", "prod-orders", "--confirm",
				"--dsn", "admin:pw@tcp(127.0.0.1:1)/?timeout=2s", "--plan-file", tc.path)
			if code != exitError || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", code, exitError, tc.want, out, errOut)
			}
			if strings.Contains(out+errOut, "FAILED") || strings.Contains(out+errOut, "connect") {
				t.Errorf("the run connected before refusing the plan file:\n%s\n%s", out, errOut)
			}
		})
	}
	// A well-formed file is read, and then the run goes to the server.
	code, out, errOut := runCLI(t, nil, "reconcile", "--root", root, "--cluster", "prod-orders", "--confirm",
		"--dsn", "admin:pw@tcp(127.0.0.1:1)/?timeout=2s", "--plan-file", good)
	if code != exitError || !strings.Contains(out, "FAILED") {
		t.Errorf("a good plan file on an unreachable server: exit %d, want %d and a failed run\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
}
