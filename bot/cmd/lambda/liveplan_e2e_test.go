package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/dbusers/dbusers/bot/internal/adminsql"
	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/fleet"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/gittest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// TestLivePlanE2E runs the live plan of a pull request the way the PR
// workflow does: bootstrap under the runtime interface emulator, kumo for
// AWS, MariaDB for the cluster, and the dbusers CLI (`plan --live`) on a
// git repository whose pull request adds carol and removes bob, on a
// server where someone granted alice PROCESS by hand. The function's
// answer has all three with statements, the hand-made grant as drift; the
// server's general log shows the plan sent only SELECT and SHOW (no lock
// taken); a plan invoke that asks to apply is refused; without AWS
// credentials the CLI still reviews, and says why there is no live plan.
func TestLivePlanE2E(t *testing.T) {
	maria := mysqltest.MariaDB(t, "the live plan was NOT run under the runtime interface emulator")
	if testing.Short() {
		t.Skip("SKIPPING THE LIVE PLAN END-TO-END TEST in -short mode")
	}
	repo := gittest.New(t, "`dbusers plan --live` was NOT run end to end")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var port int
	var skipNetworking bool
	if err := maria.DB.QueryRowContext(ctx, "SELECT @@port, @@skip_networking").Scan(&port, &skipNetworking); err != nil {
		t.Fatalf("MariaDB: %v", err)
	}
	if skipNetworking {
		t.Skipf("SKIPPING THE LIVE PLAN END-TO-END TEST: MariaDB at %s runs with skip_networking; the Lambda needs TCP", mysqltest.MariaDBEnv)
	}
	tmp := t.TempDir()
	bootstrap, rie := buildBinaries(ctx, t, tmp)
	cli := buildCLI(ctx, t, tmp)

	// MariaDB: an admin login, the plan login admin-sql --plan creates.
	prefix := mysqltest.Name("l")
	db := prefix + "_orders"
	adminUser, adminPassword := "adm_"+mysqltest.Name("l"), mysqltest.Password("admin")
	planUser, planPassword := "pln_"+mysqltest.Name("l"), mysqltest.Password("plan")
	maria.Scratch(t, func(u string) bool { return strings.HasPrefix(u, prefix+"_") || u == adminUser || u == planUser }, db)
	maria.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", adminUser, adminPassword))
	maria.Exec(t, fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", adminUser))
	script, err := adminsql.PlanScript(adminsql.Input{Engine: "mariadb-10.11", User: planUser, Databases: []string{db}, TLS: "disabled"})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range sqlStatements(strings.ReplaceAll(script, adminsql.PlanPasswordPlaceholder, planPassword)) {
		maria.Exec(t, stmt)
	}

	kumoURL := awstest.EmulatorURL()
	awsCfg := awstest.Config(kumoURL)
	sm := secretsmanager.NewFromConfig(awsCfg)
	secret := func(name string, v any) string {
		data, _ := json.Marshal(v)
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(data))}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	secret(prefix+"/local/admin", map[string]string{"username": adminUser, "password": adminPassword})
	secret(prefix+"/local/plan", map[string]string{"username": planUser, "password": planPassword})
	for _, u := range []string{"alice", "bob", "carol"} {
		secret(prefix+"/"+u, map[string]string{"password": mysqltest.Password(u)})
	}

	// The repository: main declares alice and bob; the pull request adds
	// carol and removes bob.
	pointer := "/" + prefix + "/config"
	userFile := func(name, role string) string {
		return fmt.Sprintf(`{"name": %q, "owner": "team@acme.example", "kind": "service", "auth": {"type": "password", "secret": %q},
  "access": [{"clusters": ["local"], "databases": ["*"], "role": %q}]}`, name, prefix+"/"+name, role)
	}
	repo.Write(map[string]string{
		"dbusers.json": fmt.Sprintf(`{"prefix": %q, "removal_limit": {"count": 5, "fraction": 1},
  "ssm": {"parameter": %q}, "aws": {"management_role": "dbusers-management", "external_id": "dbusers-e2e"}}`, prefix, pointer),
		"clusters/local.json": fmt.Sprintf(`{"name": "local", "environment": "dev", "account_id": "222222222222", "region": "eu-west-1",
  "endpoint": "127.0.0.1", "port": %d, "engine": "mariadb-10.11", "admin_secret": %q, "plan_secret": %q,
  "databases": [%q], "tls": "disabled"}`, port, prefix+"/local/admin", prefix+"/local/plan", db),
		"users/alice.json": userFile("alice", "read"),
		"users/bob.json":   userFile("bob", "write"),
	})
	repo.Commit("base")
	repo.Git("checkout", "-q", "-b", "pr")
	repo.Write(map[string]string{"users/bob.json": "", "users/carol.json": userFile("carol", "read")})
	headID := repo.Commit("add carol, remove bob")

	// Publish main, signed, and apply it.
	repo.Git("checkout", "-q", "main")
	loaded, diags, err := config.LoadDir(repo.Dir, time.Now())
	if err != nil || len(diags.Errors()) > 0 {
		t.Fatalf("load main: %v %v", err, diags)
	}
	mainCfg := &loaded.Config
	repo.Git("checkout", "-q", "pr")
	keys := kms.NewFromConfig(awsCfg)
	signingKey := awstest.DBusersSigningKey(t, keys)
	pub, err := ssmbundle.Publish(ctx, ssm.NewFromConfig(awsCfg), ssmbundle.Target{Pointer: pointer, Tier: "Standard", Keep: 3,
		Signer: &ssmbundle.Signer{API: keys, KeyARN: signingKey}}, ssmbundle.ContentOf(mainCfg), ssmbundle.Origin{Commit: "main0001", Time: time.Now()}, false)
	if err != nil {
		t.Fatal(err)
	}
	rieAddr, apiAddr := freeAddr(t), freeAddr(t)
	env := append(awstest.Environ(kumoURL),
		"PATH="+os.Getenv("PATH"), "HOME="+tmp, "AWS_SESSION_TOKEN=e2e-token",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=120", "AWS_LAMBDA_FUNCTION_NAME=dbusers-reconcile",
		fleet.EnvPointer+"="+pointer, fleet.EnvLockTimeout+"=20s", fleet.EnvSigningKey+"="+signingKey,
		fleet.EnvManagedAccounts+"=222222222222")
	var out lockedBuffer
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", rieAddr, "--runtime-api-address", apiAddr, "--log-level", "error", bootstrap)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, tmp, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulator and bootstrap output:\n%s", out.String())
		}
	}()
	waitListening(ctx, t, rieAddr)
	if status, body := invoke(ctx, t, rieAddr, `{"dry_run": false}`); status != http.StatusOK || !strings.Contains(string(body), `"status":"applied"`) {
		t.Fatalf("apply main: HTTP %d: %s", status, body)
	}
	maria.Exec(t, "GRANT PROCESS ON *.* TO '"+prefix+"_alice'@'%'")
	before := maria.ManagedAccounts(t, prefix)

	// The general log records every statement the plan login sends.
	since := generalLog(ctx, t, maria)

	// dbusers plan --live, as the PR workflow runs it.
	cliEnv := append(awstest.Environ(kumoURL), "PATH="+os.Getenv("PATH"), "HOME="+tmp,
		"AWS_ENDPOINT_URL_LAMBDA=http://"+rieAddr, "DBUSERS_PLAN_FUNCTION=function")
	stdout, stderr, code := runCLI(ctx, t, cli, cliEnv, "plan", "--root", repo.Dir, "--base", "main", "--head", "pr", "--live", "--format", "json")
	if code != 1 {
		t.Fatalf("plan --live: exit %d, want 1 (changes)\n%s\n%s", code, stdout, stderr)
	}
	var review struct {
		Live     *liveplan.Report `json:"live"`
		LiveNote string           `json:"live_note"`
	}
	if err := json.Unmarshal([]byte(stdout), &review); err != nil || review.Live == nil {
		t.Fatalf("plan --live has no live plan (%v, note %q):\n%s\n%s", err, review.LiveNote, stdout, stderr)
	}
	if len(review.Live.Clusters) != 1 || review.Live.Clusters[0].Status != liveplan.Planned || review.Live.Commit != headID {
		t.Fatalf("live plan: %s", stdout)
	}
	got := map[string]bool{}
	for _, c := range review.Live.Clusters[0].Changes {
		if c.Statement == "" {
			t.Errorf("%s: no statement", c.Summary)
		}
		got[c.Account.User+" "+string(c.Action())] = c.Drift
	}
	for change, drift := range map[string]bool{
		prefix + "_carol create_user": false, prefix + "_bob drop_user": false, prefix + "_alice revoke": true,
	} {
		if d, ok := got[change]; !ok || d != drift {
			t.Errorf("%s: present %v, drift %v, want drift %v (%v)", change, ok, d, drift, got)
		}
	}
	for _, pw := range []string{planPassword, adminPassword, mysqltest.Password("carol")} {
		if strings.Contains(stdout, pw) || strings.Contains(out.String(), pw) {
			t.Error("a password reached the review or the function's output")
		}
	}
	// The markdown a reviewer reads: the live plan, drift marked.
	md, stderr, code := runCLI(ctx, t, cli, cliEnv, "plan", "--root", repo.Dir, "--base", "main", "--head", "pr", "--live", "--format", "markdown")
	for _, want := range []string{"#### Live plan", "DROP USER '" + prefix + "_bob'@'%'", "**drift:**", "REVOKE PROCESS ON *.* FROM '" + prefix + "_alice'@'%'",
		"CREATE USER '" + prefix + "_carol'@'%' IDENTIFIED BY '<redacted>'"} {
		if code != 1 || !strings.Contains(md, want) {
			t.Errorf("plan --live --format markdown (exit %d) lacks %q:\n%s\n%s", code, want, md, stderr)
		}
	}

	// What the plan login sent: reads only, and no lock.
	stmts := loggedStatements(ctx, t, maria, since, planUser)
	if len(stmts) < 5 {
		t.Fatalf("the general log has %d statement(s) of the plan login: %v", len(stmts), stmts)
	}
	for _, s := range stmts {
		if !engine.IsRead(s) || strings.Contains(strings.ToUpper(s), "GET_LOCK") {
			t.Errorf("the plan sent %q", s)
		}
	}
	if after := maria.ManagedAccounts(t, prefix); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("accounts %v after the plan, %v before", after, before)
	}
	// The plan wrote no rollout record: the published version's has the
	// apply's run alone, and no other version has one.
	if rec, _, err := rollout.Read(ctx, ssm.NewFromConfig(awsCfg), pointer, pub.Version); err != nil || len(rec.Runs) != 1 || rec.Runs[0].DryRun {
		t.Errorf("the published version's record after the plan: %+v, %v", rec, err)
	}
	if names := statusParameters(ctx, t, ssm.NewFromConfig(awsCfg), pointer); len(names) != 2 {
		t.Errorf("status parameters after the plan: %v, want the apply's head and chunk", names)
	}

	// A plan invoke that asks to apply is refused.
	_, bundle, err := ssmbundle.NewCandidate(ssmbundle.ContentOf(mainCfg), ssmbundle.Origin{Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	_, body := invoke(ctx, t, rieAddr, `{"plan": {"bundle": "`+bundle+`"}, "dry_run": false}`)
	if !strings.Contains(string(body), `"errorMessage"`) || !strings.Contains(string(body), `next to \"plan\"`) {
		t.Errorf("plan with dry_run false: %s", body)
	}

	// Without AWS credentials: the declarations-only review, one line why.
	noCreds := append(slicesWithout(cliEnv, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="), "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	stdout, stderr, code = runCLI(ctx, t, cli, noCreds, "plan", "--root", repo.Dir, "--base", "main", "--head", "pr", "--live", "--format", "json")
	review.Live, review.LiveNote = nil, ""
	if err := json.Unmarshal([]byte(stdout), &review); code != 1 || err != nil || review.Live != nil || !strings.Contains(review.LiveNote, "no AWS credentials") {
		t.Errorf("without credentials: exit %d, live %v, note %q\n%s", code, review.Live, review.LiveNote, stderr)
	}
	md, _, code = runCLI(ctx, t, cli, noCreds, "plan", "--root", repo.Dir, "--base", "main", "--head", "pr", "--live", "--format", "markdown")
	if code != 1 || strings.Contains(md, "#### Live plan") || strings.Count(md, "no AWS credentials") != 1 || !strings.Contains(md, "carol") {
		t.Errorf("without credentials, the markdown is not the declarations-only review with one line:\n%s", md)
	}
}

// buildCLI builds the dbusers command.
func buildCLI(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	bin := filepath.Join(dir, "dbusers")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "../dbusers")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build dbusers: %v\n%s", err, out)
	}
	return bin
}

func runCLI(ctx context.Context, t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func slicesWithout(env []string, prefixes ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, p := range prefixes {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// generalLog turns MariaDB's general log on, into mysql.general_log, and
// returns the server's time; it is put back as it was when the test ends.
func generalLog(ctx context.Context, t *testing.T, maria *mysqltest.Server) string {
	t.Helper()
	var on, output string
	if err := maria.DB.QueryRowContext(ctx, "SELECT @@general_log, @@log_output").Scan(&on, &output); err != nil {
		t.Fatal(err)
	}
	maria.Exec(t, "SET GLOBAL log_output = 'TABLE'")
	maria.Exec(t, "SET GLOBAL general_log = 1")
	t.Cleanup(func() {
		_, _ = maria.DB.Exec("SET GLOBAL general_log = " + on)
		_, _ = maria.DB.Exec("SET GLOBAL log_output = '" + output + "'")
	})
	var now string
	if err := maria.DB.QueryRowContext(ctx, "SELECT NOW(6)").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// loggedStatements are the statements (queries and executed prepared
// statements) that user sent since then, by the general log.
func loggedStatements(ctx context.Context, t *testing.T, maria *mysqltest.Server, since, user string) []string {
	t.Helper()
	rows, err := maria.DB.QueryContext(ctx, "SELECT command_type, CONVERT(argument USING utf8mb4) FROM mysql.general_log "+
		"WHERE event_time >= ? AND user_host LIKE ? AND command_type IN ('Query', 'Execute', 'Prepare') ORDER BY event_time", since, user+"[%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, arg string
		if err := rows.Scan(&typ, &arg); err != nil {
			t.Fatal(err)
		}
		out = append(out, arg)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sqlStatements splits an admin-sql script into statements.
func sqlStatements(script string) []string {
	var out []string
	for _, line := range strings.Split(script, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
			out = append(out, strings.TrimSuffix(line, ";"))
		}
	}
	return out
}

// statusParameters lists the parameters under the pointer's status path.
func statusParameters(ctx context.Context, t *testing.T, api *ssm.Client, pointer string) []string {
	t.Helper()
	out, err := api.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String(rollout.Path(pointer)), Recursive: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range out.Parameters {
		names = append(names, aws.ToString(p.Name))
	}
	return names
}
