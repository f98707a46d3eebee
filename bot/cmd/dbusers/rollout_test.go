package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/fleet"
	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// pipeline is the publish workflow's world on one machine: a declarations
// repository, kumo (SSM, KMS, STS, Secrets Manager), the reconciling
// Lambda's handler, and the fake GitHub the rollout is told on.
type pipeline struct {
	t       *testing.T
	dir     string
	pointer string
	prefix  string
	aws     aws.Config
	ssm     *ssm.Client
	kms     *kms.Client
	key     string
	gh      *ghcommenttest.Server
	// servers route each cluster's connection to a local server.
	servers map[string]*mysql.Config
	// summary is the step summary file, output the step outputs file.
	summary, output string
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	cfg := awstest.Config(awstest.EmulatorURL())
	p := &pipeline{t: t, prefix: mysqltest.Name("r"), aws: cfg, ssm: ssm.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg),
		gh: ghcommenttest.NewServer(t), servers: map[string]*mysql.Config{}}
	p.key = awstest.DBusersSigningKey(t, p.kms)
	p.pointer = "/" + p.prefix + "/config"
	tmp := t.TempDir()
	p.summary, p.output = filepath.Join(tmp, "summary.md"), filepath.Join(tmp, "output")
	return p
}

// repo writes the declarations: dbusers.json with the pipeline's prefix
// and pointer, and the given cluster and user files.
func (p *pipeline) repo(removalCount int, clusters, users map[string]string) {
	files := map[string]string{"dbusers.json": fmt.Sprintf(`{
  "prefix": %q,
  "removal_limit": {"count": %d, "fraction": 0},
  "ssm": {"parameter": %q, "keep_versions": 3},
  "aws": {"management_role": "dbusers-management", "external_id": "dbusers-rollout-test"}
}
`, p.prefix, removalCount, p.pointer)}
	for name, body := range clusters {
		files["clusters/"+name+".json"] = body
	}
	for name, body := range users {
		files["users/"+name+".json"] = body
	}
	if p.dir == "" {
		p.dir = writeRepo(p.t, files)
		return
	}
	if err := os.RemoveAll(filepath.Join(p.dir, "users")); err != nil {
		p.t.Fatal(err)
	}
	for path, body := range files {
		full := filepath.Join(p.dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

func (p *pipeline) secret(name string, v any) string {
	p.t.Helper()
	data, _ := json.Marshal(v)
	if _, err := secretsmanager.NewFromConfig(p.aws).CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(string(data))}); err != nil {
		p.t.Fatal(err)
	}
	return name
}

// environ is what the publish workflow's steps see.
func (p *pipeline) environ() map[string]string {
	return map[string]string{
		"GITHUB_TOKEN": ghcommenttest.Token, "GITHUB_API_URL": p.gh.URL, "GITHUB_REPOSITORY": ghcommenttest.Owner + "/" + ghcommenttest.Repo,
		"GITHUB_SHA": ghcommenttest.MergeCommit, "GITHUB_SERVER_URL": "https://github.example.com", "GITHUB_RUN_ID": "4242",
		"GITHUB_STEP_SUMMARY": p.summary, "GITHUB_OUTPUT": p.output, envSigningKey: p.key,
	}
}

// cli runs dbusers in-process as the workflow would.
func (p *pipeline) cli(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut lockedBuf
	environ := p.environ()
	e := env{stdout: &out, stderr: &errOut, now: time.Now, getenv: func(k string) string { return environ[k] },
		newSSM: func(context.Context) (ssmbundle.API, error) { return p.ssm, nil },
		newKMS: func(context.Context) (ssmbundle.KMSAPI, error) { return p.kms, nil }}
	code := run(ctx, e, args)
	return code, out.String(), errOut.String()
}

// publish runs dbusers publish and returns the version it wrote to the
// step outputs.
func (p *pipeline) publish() string {
	p.t.Helper()
	_ = os.Remove(p.output)
	code, stdout, stderr := p.cli(context.Background(), "publish", "--allow-placeholder-accounts", "--root", p.dir)
	if code != exitOK {
		p.t.Fatalf("publish: exit %d\n%s%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(p.output)
	if err != nil {
		p.t.Fatal(err)
	}
	version, ok := strings.CutPrefix(strings.Split(string(data), "\n")[0], "version=")
	if !ok || !rollout.ValidVersion(version) || !strings.Contains(stdout, "published version "+version) {
		p.t.Fatalf("step outputs %q, stdout %q", data, stdout)
	}
	return version
}

// lambda hands the real handler the EventBridge event the pointer write
// raises, as the Lambda would get it.
func (p *pipeline) lambda() *fleet.Report {
	p.t.Helper()
	var logs bytes.Buffer
	deps := fleet.NewDeps(p.aws, &logs)
	deps.Connect = func(ctx context.Context, l dbconn.Login) (*sql.DB, error) {
		cfg, ok := p.servers[l.Cluster]
		if !ok {
			cfg = mysql.NewConfig()
			cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(l.Host, fmt.Sprint(l.Port))
		}
		cfg = cfg.Clone()
		cfg.User, cfg.Passwd, cfg.Timeout = l.User, l.Password, 2*time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(conn), nil
	}
	event, _ := json.Marshal(map[string]any{"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "Parameter Store Change",
		"source": "aws.ssm", "account": "123456789012", "time": time.Now().UTC().Format(time.RFC3339), "region": awstest.Region,
		"resources": []string{"arn:aws:ssm:eu-west-1:123456789012:parameter" + p.pointer},
		"detail":    map[string]string{"name": p.pointer, "type": "String", "operation": "Update"}})
	ctx := fleet.WithInvocation(context.Background(), fleet.Invocation{RequestID: "0e9f8d7c-6b5a-4f3e-9d2c-1b0a99887766", LogGroup: "/aws/lambda/dbusers"})
	rep, _ := fleet.Handle(ctx, deps, fleet.Config{Pointer: p.pointer, SigningKeyARN: p.key, LockTimeout: 10 * time.Second}, event)
	if rep == nil {
		p.t.Fatalf("the handler ran nothing:\n%s", logs.String())
	}
	if rep.RecordError != "" {
		p.t.Fatalf("the handler wrote no record: %s", rep.RecordError)
	}
	return rep
}

// rolloutAsync starts `dbusers rollout` as the workflow's rollout step
// runs it, and returns a function that waits for its result.
func (p *pipeline) rolloutAsync(version string, args ...string) func() (int, string, string) {
	var wg sync.WaitGroup
	var code int
	var stdout, stderr string
	wg.Go(func() {
		code, stdout, stderr = p.cli(context.Background(), append([]string{"rollout", "--version", version, "--root", p.dir, "--poll", "50ms"}, args...)...)
	})
	return func() (int, string, string) { wg.Wait(); return code, stdout, stderr }
}

// waitFor polls until cond holds, for the pending status.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func clusterFile(name, engine, endpoint string, port int, admin string, dbs ...string) string {
	quoted, _ := json.Marshal(dbs)
	return fmt.Sprintf(`{"name": %q, "environment": "dev", "account_id": "222222222222", "region": "eu-west-1",
  "endpoint": %q, "port": %d, "engine": %q, "admin_secret": %q, "databases": %s, "tls": "disabled"}
`, name, endpoint, port, engine, admin, quoted)
}

func userFile(name, secret string, clusters ...string) string {
	quoted, _ := json.Marshal(clusters)
	return fmt.Sprintf(`{"name": %q, "owner": "team@acme.example", "kind": "service", "auth": {"type": "password", "secret": %q},
  "access": [{"clusters": %s, "databases": ["*"], "role": "write"}]}
`, name, secret, quoted)
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestRolloutEndToEnd is the publish workflow after a merge, on MariaDB:
// dbusers publish writes the bundle and names its version in the step
// outputs; `dbusers rollout --wait --comment --status` sets the commit
// status pending and waits; the Lambda's handler runs on the pointer's
// event, applies and writes the record; rollout reads it, prints it, and
// the fake GitHub receives the pull request's comment and a success
// status. Then a second merge removes three users while the removal limit
// allows one: the run holds the drops back, rollout exits 1, the status
// fails naming the cluster, and the comment (edited, not duplicated)
// says what to do.
func TestRolloutEndToEnd(t *testing.T) {
	maria := mysqltest.MariaDB(t, "the rollout was NOT tested end to end against a real server")
	p := newPipeline(t)
	db := p.prefix + "_orders"
	admin, adminPassword := "adm_"+mysqltest.Name("r"), mysqltest.Password("admin")
	maria.Scratch(t, func(u string) bool { return strings.HasPrefix(u, p.prefix+"_") || u == admin }, db)
	host := "%"
	if maria.Config().Net == "unix" {
		host = "localhost"
	}
	maria.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'", admin, host, adminPassword))
	maria.Exec(t, fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%s' WITH GRANT OPTION", admin, host))
	p.servers["local"] = maria.Config()
	adminSecret := p.secret(p.prefix+"/local/admin", map[string]string{"username": admin, "password": adminPassword})
	appPassword := mysqltest.Password("app")
	for _, u := range []string{"app", "etl", "bi", "ops"} {
		p.secret(p.prefix+"/"+u, map[string]string{"password": appPassword})
	}
	clusters := map[string]string{"local": clusterFile("local", "mariadb-10.11", "127.0.0.1", 3306, adminSecret, db)}
	users := map[string]string{}
	for _, u := range []string{"app", "etl", "bi", "ops"} {
		users[u] = userFile(u, p.prefix+"/"+u, "local")
	}
	p.repo(1, clusters, users)

	// The merge: publish, then the rollout step waits while the Lambda runs.
	version := p.publish()
	wait := p.rolloutAsync(version, "--wait", "1m", "--comment", "--status")
	waitFor(t, "the pending status", func() bool { return len(p.gh.Statuses()) == 1 })
	if st := p.gh.Statuses()[0]; st.State != "pending" || st.Context != "dbusers/rollout" || st.SHA != ghcommenttest.MergeCommit ||
		st.Description != "waiting for the Lambda's run of "+version || st.TargetURL != "https://github.example.com/acme/dbaccess/actions/runs/4242" {
		t.Errorf("pending status %+v", st)
	}
	rep := p.lambda()
	if len(rep.Clusters) != 1 || rep.Clusters[0].Status != "applied" || rep.Clusters[0].UsersCreated != 4 {
		t.Fatalf("the run: %+v", rep.Clusters)
	}
	code, stdout, stderr := wait()
	if code != exitOK {
		t.Fatalf("rollout: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"rollout of version " + version, "applied on 1 of 1 cluster(s)", p.prefix + "_app (app, password): created on local; now on local",
		"request id 0e9f8d7c-6b5a-4f3e-9d2c-1b0a99887766"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("rollout's output lacks %q:\n%s", want, stdout)
		}
	}
	comments := p.gh.BotComments()
	if len(comments) != 1 {
		t.Fatalf("%d comments", len(comments))
	}
	body := comments[0].Body
	for _, want := range []string{"<!-- dbusers:rollout part 1/1 -->\n### ✅ dbusers rollout: applied on 1 of 1 cluster(s)",
		"Version `" + version + "` of commit `" + ghcommenttest.MergeCommit[:12] + "`",
		"- ➕ **app** `" + p.prefix + "_app` (password): created on local; now on local",
		"| ✅ | local | applied | 8 | 4 | 0 | MariaDB", "[workflow run](https://github.example.com/acme/dbaccess/actions/runs/4242)"} {
		if !strings.Contains(body, want) {
			t.Errorf("the comment lacks %q:\n%s", want, body)
		}
	}
	if err := ghcommenttest.CheckRenders(body); err != nil {
		t.Error(err)
	}
	statuses := p.gh.Statuses()
	if len(statuses) != 2 || statuses[1].State != "success" || statuses[1].Description != "applied on 1 of 1 cluster(s)" ||
		!strings.HasPrefix(statuses[1].TargetURL, "https://github.example.com/acme/dbaccess/pull/42#issuecomment-") {
		t.Errorf("statuses %+v", statuses)
	}
	if summary, _ := os.ReadFile(p.summary); !strings.Contains(string(summary), "### ✅ dbusers rollout") {
		t.Errorf("step summary:\n%s", summary)
	}
	for _, secret := range []string{appPassword, adminPassword} {
		if strings.Contains(body, secret) || strings.Contains(stdout, secret) {
			t.Error("a password reached GitHub or the output")
		}
	}

	// The next merge removes three users; the removal limit allows one.
	delete(users, "etl")
	delete(users, "bi")
	delete(users, "ops")
	p.repo(1, clusters, users)
	version = p.publish()
	wait = p.rolloutAsync(version, "--wait", "1m", "--comment", "--status", "--format", "json")
	waitFor(t, "the second pending status", func() bool { return len(p.gh.Statuses()) == 3 })
	rep = p.lambda()
	if c := rep.Clusters[0]; c.Held != 3 || c.UsersDropped != 0 {
		t.Fatalf("the second run: %+v", c)
	}
	code, stdout, stderr = wait()
	if code != exitChanges {
		t.Fatalf("rollout with drops held back: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	var out rolloutJSON
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Outcome != "failed" || out.State != "failure" || out.Record == nil {
		t.Fatalf("json %v: %s", err, stdout)
	}
	last := p.gh.Statuses()[3]
	if last.State != "failure" || last.Description != "not applied everywhere: 1 of 1 cluster(s) need attention: local (drops held back)" {
		t.Errorf("status %+v", last)
	}
	comments = p.gh.BotComments()
	if len(comments) != 1 {
		t.Fatalf("%d comments: the rollout comment is edited, not added", len(comments))
	}
	for _, want := range []string{"### ❌ dbusers rollout: 1 of 1 cluster(s) need attention", "🛑 **local**: the removal limit held 3 drop(s) back",
		"raise `removal_limit` in a pull request", "drop held back by the removal limit on local"} {
		if !strings.Contains(comments[0].Body, want) {
			t.Errorf("the second comment lacks %q:\n%s", want, comments[0].Body)
		}
	}
}

// TestRolloutFailedCluster: a cluster the Lambda cannot reach fails the
// rollout: exit 1, a failure status naming the cluster and the stage,
// and a comment that says what to do.
func TestRolloutFailedCluster(t *testing.T) {
	p := newPipeline(t)
	adminSecret := p.secret(p.prefix+"/down/admin", map[string]string{"username": "admin", "password": mysqltest.Password("admin")})
	p.secret(p.prefix+"/app", map[string]string{"password": mysqltest.Password("app")})
	p.repo(5, map[string]string{"down": clusterFile("down", "mariadb-10.11", "127.0.0.1", closedPort(t), adminSecret, "orders")},
		map[string]string{"app": userFile("app", p.prefix+"/app", "down")})
	version := p.publish()
	if rep := p.lambda(); len(rep.Failed) != 1 {
		t.Fatalf("the run: %+v", rep)
	}
	code, stdout, stderr := p.cli(context.Background(), "rollout", "--version", version, "--root", p.dir, "--comment", "--status")
	if code != exitChanges {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "down (failed at connect)") || !strings.Contains(stdout, "what to do:") {
		t.Errorf("output:\n%s", stdout)
	}
	st := p.gh.Statuses()
	if len(st) != 2 || st[1].State != "failure" || st[1].Description != "not applied everywhere: 1 of 1 cluster(s) need attention: down (failed at connect)" {
		t.Errorf("statuses %+v", st)
	}
	body := p.gh.BotComments()[0].Body
	for _, want := range []string{"### ❌ dbusers rollout: 1 of 1 cluster(s) need attention", "❌ **down**: failed at `connect`: ",
		"**What to do:** the server could not be reached", `filter request_id = "0e9f8d7c-6b5a-4f3e-9d2c-1b0a99887766"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the comment lacks %q:\n%s", want, body)
		}
	}
}

// TestRolloutTimeout: a record that never comes (no run happened) ends
// the wait with exit 2 and a message that says what to check; the status
// is error, not failure (nothing is known to be wrong), and the comment
// says the result is not known.
func TestRolloutTimeout(t *testing.T) {
	p := newPipeline(t)
	p.repo(5, map[string]string{"local": clusterFile("local", "mariadb-10.11", "127.0.0.1", 3306, "x", "orders")}, nil)
	version := p.publish()
	start := time.Now()
	code, stdout, stderr := p.cli(context.Background(), "rollout", "--version", version, "--root", p.dir, "--wait", "400ms", "--poll", "50ms",
		"--comment", "--status", "--format", "json")
	if code != exitError || time.Since(start) > 10*time.Second {
		t.Fatalf("exit %d after %s, want 2\n%s%s", code, time.Since(start), stdout, stderr)
	}
	for _, want := range []string{"no rollout record came in time: no run of version " + version + " finished within", "the pointer names it", "dbusers-errors"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	var out rolloutJSON
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Outcome != "timeout" || out.Record != nil {
		t.Errorf("json %v: %s", err, stdout)
	}
	st := p.gh.Statuses()
	if len(st) != 2 || st[0].State != "pending" || st[1].State != "error" || !strings.Contains(st[1].Description, "came in time") {
		t.Errorf("statuses %+v", st)
	}
	if c := p.gh.BotComments(); len(c) != 1 || !strings.Contains(c[0].Body, "is not known yet") {
		t.Errorf("comments %+v", c)
	}
}

// TestRolloutOversizeRecord: a record far over one parameter, as the
// Lambda fits it, reads back whole enough to judge, and says what it left
// out.
func TestRolloutOversizeRecord(t *testing.T) {
	p := newPipeline(t)
	p.repo(5, map[string]string{"local": clusterFile("local", "mariadb-10.11", "127.0.0.1", 3306, "x", "orders")}, nil)
	version := p.publish()
	u := rollout.Update{Version: version, Run: rollout.Run{Trigger: "publish", FinishedAt: time.Now(), Clusters: 300}}
	for i := range 300 {
		// Notes as varied as random text: gzip cannot shrink them.
		var note strings.Builder
		for j := range 12 {
			fmt.Fprintf(&note, "%x", sha256.Sum256([]byte(fmt.Sprint(i, j))))
		}
		u.Clusters = append(u.Clusters, rollout.Cluster{Name: fmt.Sprintf("cluster-%03d", i), Status: rollout.Applied, Created: 40,
			Notes: []string{note.String()}})
		for j := range 40 {
			u.Accounts = append(u.Accounts, rollout.Account{User: fmt.Sprintf("u%03d%02d", i, j), Account: fmt.Sprintf("acme_u%03d%02d", i, j),
				Cluster: fmt.Sprintf("cluster-%03d", i), Event: rollout.Created})
		}
	}
	u.Clusters[7].Status, u.Clusters[7].Stage, u.Clusters[7].Error = rollout.Failed, "tls", strings.Repeat("x509: certificate signed by unknown authority ", 30)
	w, err := rollout.Write(context.Background(), p.ssm, p.pointer, u, 3)
	if err != nil {
		t.Fatal(err)
	}
	if w.Chunks < 2 || len(w.Cut) == 0 {
		t.Fatalf("written %+v: want several chunks and a cut", w)
	}
	code, stdout, stderr := p.cli(context.Background(), "rollout", "--version", version, "--root", p.dir)
	if code != exitChanges {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"cluster-007 (failed at tls)", "more account event(s), left out of the record to fit", "left out of the record to fit SSM: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%.3000s", want, stdout)
		}
	}
}

func TestRolloutRefuses(t *testing.T) {
	p := newPipeline(t)
	p.repo(5, nil, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--version is required"},
		{[]string{"--version", "../x"}, "is not a version name"},
		{[]string{"--version", "20260301T090000Z-ad6aa65e5287", "--wait", "2h"}, "--wait 2h0m0s: want 0 to 1h0m0s"},
		{[]string{"--version", "20260301T090000Z-ad6aa65e5287", "--format", "yaml"}, `unknown format "yaml"`},
		{[]string{"--version", "20260301T090000Z-ad6aa65e5287", "--status", "--commit", "abc"}, "need the merge commit's full id"},
	} {
		code, _, stderr := p.cli(context.Background(), append([]string{"rollout", "--root", p.dir}, tc.args...)...)
		if code != exitError || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	// Read once, before any run: exit 2 and how to wait.
	code, _, stderr := p.cli(context.Background(), "rollout", "--root", p.dir, "--version", "20260301T090000Z-ad6aa65e5287")
	if code != exitError || !strings.Contains(stderr, "wait for one with --wait") {
		t.Errorf("no record: exit %d, %q", code, stderr)
	}
}

// lockedBuf is a buffer written by one goroutine and read by another.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
