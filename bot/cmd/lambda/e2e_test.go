package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/fleet"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/bundletest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// rieModule is the Lambda runtime interface emulator the end-to-end test
// runs the real bootstrap under, at the version the module proxy serves
// here.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// TestLambdaE2E builds bootstrap and the runtime interface emulator, runs
// the one under the other with AWS_ENDPOINT_URL pointing at kumo, publishes
// a bundle with ssmbundle.Publish, invokes the function with an EventBridge
// "Parameter Store Change" event over the emulator's HTTP API, and checks
// MariaDB's accounts afterwards.
func TestLambdaE2E(t *testing.T) {
	maria := mysqltest.MariaDB(t, "bootstrap was NOT run under the runtime interface emulator")
	if testing.Short() {
		t.Skip("SKIPPING THE LAMBDA END-TO-END TEST in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	var port int
	var skipNetworking bool
	if err := maria.DB.QueryRowContext(ctx, "SELECT @@port, @@skip_networking").Scan(&port, &skipNetworking); err != nil {
		t.Fatalf("MariaDB: %v", err)
	}
	if skipNetworking {
		t.Skipf("SKIPPING THE LAMBDA END-TO-END TEST: MariaDB at %s runs with skip_networking; the Lambda needs TCP", mysqltest.MariaDBEnv)
	}
	// The Lambda reaches MariaDB over TCP, whatever the root DSN uses.
	overTCP := mysql.NewConfig()
	overTCP.Net, overTCP.Addr = "tcp", fmt.Sprintf("127.0.0.1:%d", port)

	tmp := t.TempDir()
	bootstrap, rie := buildBinaries(ctx, t, tmp)

	// MariaDB: the test's prefix, database, admin login, and one departed
	// account the bundle no longer declares.
	prefix := mysqltest.Name("e")
	db := prefix + "_orders"
	adminUser, adminPassword := "adm_"+mysqltest.Name("e"), mysqltest.Password("admin")
	maria.Scratch(t, func(u string) bool { return strings.HasPrefix(u, prefix+"_") || u == adminUser }, db)
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", adminUser, adminPassword),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", adminUser),
		fmt.Sprintf("CREATE USER '%s_departed'@'%%' IDENTIFIED BY 'gone'", prefix),
	} {
		maria.Exec(t, q)
	}
	// Prove the admin login works over TCP, as the Lambda will use it.
	if err := mysqltest.CanLogin(ctx, overTCP, adminUser, adminPassword); err != nil {
		t.Fatalf("the admin account cannot log in over TCP 127.0.0.1:%d: %v", port, err)
	}

	// AWS: kumo in this process.
	kumoURL := awstest.EmulatorURL()
	awsCfg := awstest.Config(kumoURL)
	sm := secretsmanager.NewFromConfig(awsCfg)
	appPassword := mysqltest.Password("app")
	for name, value := range map[string]string{
		prefix + "/local/admin": fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPassword),
		prefix + "/app":         fmt.Sprintf(`{"password":%q}`, appPassword),
	} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	topic, err := sns.NewFromConfig(awsCfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(prefix + "-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	pointer := "/" + prefix + "/config"
	content := ssmbundle.Content{
		Settings: config.Settings{
			Prefix: prefix, RemovalLimit: config.RemovalLimit{Count: 5, Fraction: 0.2},
			SSM: config.SSM{Parameter: pointer, Tier: "Standard"},
			AWS: config.AWS{ManagementRole: "dbusers-management", ExternalID: "dbusers-e2e"},
		},
		Clusters: []config.Cluster{{
			Name: "local", Environment: "dev", AccountID: "222222222222", Region: "eu-west-1",
			Endpoint: "127.0.0.1", Port: port, Engine: "mariadb-10.11", AdminSecret: prefix + "/local/admin",
			Databases: []string{db}, TLS: "disabled",
		}},
		Users: []config.User{{
			Name: "app", Owner: "team@acme.example", Kind: "service",
			Auth:   config.UserAuth{Type: "password", Secret: prefix + "/app"},
			Access: []config.Access{{Clusters: []string{"local"}, Databases: []string{"*"}, Role: "write"}},
		}},
	}
	// Signed with a KMS key of the emulator's, which the function is
	// configured with, as the control-plane stack wires it.
	keys := kms.NewFromConfig(awsCfg)
	signingKey := awstest.DBusersSigningKey(t, keys)
	ssmc := ssm.NewFromConfig(awsCfg)
	pub, err := ssmbundle.Publish(ctx, ssmc, ssmbundle.Target{Pointer: pointer, Tier: "Standard", Keep: 3,
		Signer: &ssmbundle.Signer{API: keys, KeyARN: signingKey}}, content, ssmbundle.Origin{Commit: "e2e0001", Time: time.Now()}, false)
	if err != nil {
		t.Fatal(err)
	}

	// The emulator runs bootstrap with this environment, as Lambda would.
	rieAddr, apiAddr := freeAddr(t), freeAddr(t)
	// (The session token comes after awstest's empty one, and wins.)
	env := append(awstest.Environ(kumoURL),
		"PATH="+os.Getenv("PATH"), "HOME="+tmp, "AWS_SESSION_TOKEN=e2e-token",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=120", "AWS_LAMBDA_FUNCTION_NAME=dbusers-reconcile",
		fleet.EnvPointer+"="+pointer, fleet.EnvSNSTopic+"="+aws.ToString(topic.TopicArn),
		fleet.EnvConcurrency+"=4", fleet.EnvLockTimeout+"=20s", fleet.EnvSigningKey+"="+signingKey,
		// As the control-plane stack sets it: the cluster's account is managed.
		fleet.EnvManagedAccounts+"=111111111111,222222222222",
	)
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

	event := strings.ReplaceAll(string(must(os.ReadFile("../../internal/fleet/testdata/events/parameter_store_change_update.json"))),
		`"/dbusers/config"`, `"`+pointer+`"`)
	status, body := invoke(ctx, t, rieAddr, event)
	if status != http.StatusOK {
		t.Fatalf("invoke: HTTP %d: %s", status, body)
	}
	var rep fleet.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("response is not a report: %v: %s", err, body)
	}
	if len(rep.Clusters) != 1 || rep.Clusters[0].Status != "applied" || rep.ConfigVersion != pub.Version || rep.Commit != "e2e0001" ||
		rep.SignedBy != signingKey {
		t.Fatalf("report: %s", body)
	}

	// The real bootstrap wrote the rollout record of the version, with the
	// runtime's request id, which its log lines carry too; dbusers rollout
	// reads it with what the publish role may read.
	if rep.Record != rollout.HeadName(pointer, pub.Version) || rep.RecordError != "" {
		t.Fatalf("report: rollout record %q, error %q", rep.Record, rep.RecordError)
	}
	rec, _, err := rollout.Read(ctx, ssmc, pointer, pub.Version)
	if err != nil {
		t.Fatalf("rollout record: %v", err)
	}
	if rec.Outcome() != rollout.OK || rec.Commit != "e2e0001" || len(rec.Runs) != 1 || len(rec.Clusters) != 1 {
		t.Fatalf("rollout record: %+v", rec)
	}
	requestID := rec.Runs[0].RequestID
	if run := rec.Runs[0]; requestID == "" || run.Trigger != "publish" || run.SignedBy != signingKey || !strings.Contains(run.Function, "dbusers-reconcile") {
		t.Errorf("the record's run: %+v", run)
	}
	if c := rec.Clusters[0]; c.Name != "local" || c.Status != rollout.Applied || c.Created != 1 || c.Dropped != 1 || !strings.HasPrefix(c.Server, "MariaDB") {
		t.Errorf("the record's cluster: %+v", c)
	}
	var events []string
	for _, a := range rec.Accounts {
		events = append(events, a.Account+" "+string(a.Event))
	}
	if want := []string{prefix + "_app created", prefix + "_departed dropped"}; !slices.Equal(events, want) {
		t.Errorf("the record's accounts %v, want %v", events, want)
	}
	if !strings.Contains(out.String(), `"request_id":"`+requestID+`"`) {
		t.Errorf("no log line carries the request id %s", requestID)
	}
	raw, _ := json.Marshal(rec)
	for _, secret := range []string{appPassword, adminPassword} {
		if strings.Contains(string(raw), secret) {
			t.Error("a password reached the rollout record")
		}
	}

	// MariaDB now has the declared account, which logs in with the
	// secret's password, and no longer the departed one.
	accounts := maria.ManagedAccounts(t, prefix)
	if want := []string{prefix + "_app"}; !slices.Equal(accounts, want) {
		t.Errorf("accounts %v, want %v", accounts, want)
	}
	if err := mysqltest.CanLogin(ctx, overTCP, prefix+"_app", appPassword); err != nil {
		t.Errorf("log in as %s_app: %v", prefix, err)
	}

	// The function's stdout carried the audit lines and the EMF document.
	logs := out.String()
	for _, want := range []string{`"_aws":{`, `"Namespace":"dbusers"`, `"audit":{`, `"config_version":"` + pub.Version + `"`, `"commit":"e2e0001"`,
		`"msg":"bundle signature verified"`, `"UnsignedBundles":0`} {
		if !strings.Contains(logs, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	for _, secret := range []string{appPassword, adminPassword} {
		if strings.Contains(logs, secret) || strings.Contains(string(body), secret) {
			t.Error("a password reached the output")
		}
	}

	// A direct invoke naming an unknown cluster comes back as a function
	// error (what the Errors alarm counts), and nothing changes.
	status, body = invoke(ctx, t, rieAddr, `{"dry_run": true, "clusters": ["nope"]}`)
	var fnErr struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if err := json.Unmarshal(body, &fnErr); err != nil || !strings.Contains(fnErr.ErrorMessage, `unknown cluster(s) "nope"`) {
		t.Errorf("unknown cluster: HTTP %d: %s", status, body)
	}
	// So does one that does not say "dry_run", or says it twice: nothing
	// applies because a field was left out or a decoder kept one value.
	for _, tc := range []struct{ event, want string }{
		{`{"clusters": ["local"]}`, `direct invoke: say "dry_run": true to plan or "dry_run": false to apply; nothing was changed`},
		{`{"dry_run": true, "clusters": ["local"], "dry_run": false}`, `key "dry_run" appears twice in one object`},
	} {
		status, body = invoke(ctx, t, rieAddr, tc.event)
		fnErr.ErrorMessage = ""
		if err := json.Unmarshal(body, &fnErr); err != nil || !strings.Contains(fnErr.ErrorMessage, tc.want) {
			t.Errorf("%s: HTTP %d: %s", tc.event, status, body)
		}
	}
	// A second publish event finds nothing to do.
	_, body = invoke(ctx, t, rieAddr, event)
	if err := json.Unmarshal(body, &rep); err != nil || rep.Clusters[0].Status != "unchanged" || rep.Clusters[0].Writes != 0 {
		t.Errorf("second run: %s", body)
	}

	// Someone with ssm:PutParameter, but not kms:Sign on the key, writes a
	// consistent bundle that makes app an admin: the function refuses it
	// and nothing changes.
	escalated := content
	escalated.Users = []config.User{content.Users[0]}
	escalated.Users[0].Access = []config.Access{{Clusters: []string{"local"}, Databases: []string{"*"}, Role: "trusted_admin"}}
	bundletest.Forge(t, ssmc, pointer, escalated, ssmbundle.Origin{Commit: "e2e0bad", Time: time.Now()}, nil)
	status, body = invoke(ctx, t, rieAddr, event)
	fnErr.ErrorMessage = ""
	if err := json.Unmarshal(body, &fnErr); err != nil || !strings.Contains(fnErr.ErrorMessage, "is unsigned") ||
		!strings.Contains(fnErr.ErrorMessage, "nothing was changed") {
		t.Errorf("unsigned bundle: HTTP %d: %s", status, body)
	}
	var grants int
	if err := maria.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.db WHERE User = ? AND Delete_priv = 'Y'", prefix+"_app").Scan(&grants); err != nil || grants != 0 {
		t.Errorf("after the unsigned bundle %s_app has %d grant(s) with DELETE (%v)", prefix, grants, err)
	}
	if logs := out.String(); !strings.Contains(logs, `"BundleErrors":1`) {
		t.Error("the refused bundle did not count in BundleErrors")
	}
	// The second run added itself to the record; the refused bundle has
	// its own, which says it was refused and names no cluster.
	if rec, _, err = rollout.Read(ctx, ssmc, pointer, pub.Version); err != nil || len(rec.Runs) != 2 || rec.Clusters[0].Status != rollout.Unchanged {
		t.Errorf("record after the second run: %+v, %v", rec, err)
	}
	forged, err := rollout.CurrentVersion(ctx, ssmc, pointer)
	if err != nil {
		t.Fatal(err)
	}
	if rec, _, err = rollout.Read(ctx, ssmc, pointer, forged); err != nil || rec.Outcome() != rollout.NotOK || len(rec.Clusters) != 0 ||
		!strings.Contains(rec.Runs[0].BundleError, "is unsigned") {
		t.Errorf("record of the refused bundle: %+v, %v", rec, err)
	}
	if logs := out.String(); !strings.Contains(logs, `"RolloutRecordErrors":0`) || strings.Contains(logs, `"RolloutRecordErrors":1`) {
		t.Error("RolloutRecordErrors is not 0 in every run's metrics")
	}
}

// buildBinaries builds bootstrap (this package, for the host) and the
// emulator (outside this module, from the module proxy or its cache).
func buildBinaries(ctx context.Context, t *testing.T, dir string) (bootstrap, rie string) {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	bootstrap = filepath.Join(dir, "bootstrap")
	build := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-tags", "lambda.norpc", "-o", bootstrap, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build bootstrap: %v\n%s", err, out)
	}
	// The emulator is built once per machine and version: it takes longer
	// to build than the whole test takes to run.
	version := rieModule[strings.LastIndex(rieModule, "@")+1:]
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		cacheDir = dir
	}
	rie = filepath.Join(cacheDir, "dbusers-test", "aws-lambda-rie-"+version)
	if _, err := os.Stat(rie); err == nil {
		return bootstrap, rie
	}
	gobin := filepath.Join(dir, "bin")
	install := exec.CommandContext(ctx, goBin, "install", rieModule)
	install.Dir = dir // outside this module: the emulator has its own go.mod
	install.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install %s (needs the Go module proxy or a warm module cache): %v\n%s", rieModule, err, out)
	}
	built := filepath.Join(gobin, "aws-lambda-rie")
	if err := os.MkdirAll(filepath.Dir(rie), 0o755); err != nil {
		return bootstrap, built
	}
	// Copy, then rename: a concurrent run never sees half a binary.
	tmp := fmt.Sprintf("%s.%d", rie, os.Getpid())
	if data, err := os.ReadFile(built); err == nil && os.WriteFile(tmp, data, 0o755) == nil && os.Rename(tmp, rie) == nil {
		return bootstrap, rie
	}
	_ = os.Remove(tmp)
	return bootstrap, built
}

func invoke(ctx context.Context, t *testing.T, addr, event string) (int, []byte) {
	t.Helper()
	ictx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ictx, http.MethodPost, "http://"+addr+"/2015-03-31/functions/function/invocations", strings.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func waitListening(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("the emulator does not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// lockedBuffer collects the emulator's output, written from its pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
