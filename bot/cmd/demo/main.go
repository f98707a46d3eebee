// Command demo runs the whole dbusers pipeline in one process with nothing
// but Go: an AWS emulator (kumo: SSM, KMS, STS, Secrets Manager, SNS) and
// one embedded MySQL-compatible server (go-mysql-server) per cluster of the
// repository stand in for AWS and the fleet. It validates the repository's
// declarations and publishes them to SSM signed with a KMS key, hands the
// real Lambda handler the EventBridge event the pointer write would raise,
// prints that it verified the signature, what every cluster did and the
// audit trail, proves a created account works by logging in as it, makes
// a pull request with its review and live plan, merges it and prints the
// rollout comment and commit status that the publish workflow posts (to
// the tests' fake GitHub), shows the handler refusing a bundle written to
// SSM without the key, and runs the scheduled drift repair to show a
// converged fleet needs nothing.
//
// The local cluster is seeded with history: a departed user with a session
// still open (the run ends it: MySQL and MariaDB keep a session's
// privileges after DROP USER), and a departed admin who defined a view (the
// run keeps the account so the view goes on working, and says so).
//
// It is a command of its own so the dbusers CLI, which every pull request
// builds, carries neither the emulator nor the embedded server.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/go-sql-driver/mysql"
	"github.com/sivchari/kumo"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/embedded"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/fleet"
	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
	"github.com/dbusers/dbusers/bot/internal/report"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

const region = "eu-west-1"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := flag.String("root", "", "declarations to run the demo on (default: examples/acme of the repository above the current directory)")
	flag.Parse()
	if err := run(ctx, os.Stdout, *root, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, root string, now func() time.Time) error {
	if root == "" {
		var err error
		if root, err = findRoot(); err != nil {
			return err
		}
	}
	section(out, "1. Validate the declarations of "+root)
	loaded, diags, err := config.LoadDir(root, now())
	if err != nil {
		return err
	}
	_ = diags.Write(out, "text")
	if errs := diags.Errors(); len(errs) > 0 {
		return fmt.Errorf("the declarations have %d error(s)", len(errs))
	}
	cfg := loaded.Config
	fmt.Fprintf(out, "%d cluster(s), %d user(s): valid\n", len(cfg.Clusters), len(cfg.Users))

	section(out, "2. Start the stand-ins: an AWS emulator and one embedded server per cluster")
	aw := kumo.NewServer()
	defer aw.Close()
	awsCfg := aws.Config{Region: region, BaseEndpoint: aws.String(aw.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDDEMO", "demo-secret", "")}
	servers, err := stage(ctx, out, &cfg, awsCfg)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range servers {
			_ = s.srv.Close()
		}
	}()

	section(out, "3. dbusers publish: the bundle goes to SSM, chunks first, pointer last, signed with the KMS key")
	keys := kms.NewFromConfig(awsCfg)
	key, err := keys.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: ssmbundle.SigningKeySpec, KeyUsage: kmstypes.KeyUsageTypeSignVerify,
		Description: aws.String("dbusers signing key (control-plane stack); only the publish role may sign")})
	if err != nil {
		return err
	}
	signingKey := aws.ToString(key.KeyMetadata.Arn)
	fmt.Fprintf(out, "signing key %s (%s, %s)\n", signingKey, ssmbundle.SigningKeySpec, ssmbundle.SigningAlgorithm)
	ssmc := ssm.NewFromConfig(awsCfg)
	pointer := cfg.Settings.SSM.Parameter
	target := ssmbundle.TargetOf(cfg.Settings.SSM)
	target.Signer = &ssmbundle.Signer{API: keys, KeyARN: signingKey}
	pub, err := ssmbundle.Publish(ctx, ssmc, target, ssmbundle.ContentOf(&cfg),
		ssmbundle.Origin{Commit: "0000000000000000000000000000000000demo", PullRequest: "1", MergedBy: "demo", Time: now()}, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published version %s at %s: %d chunk(s), %d bytes, sha256 %s…, signed with %s\n",
		pub.Version, pointer, pub.Chunks, pub.Bytes, pub.SHA256[:12], pub.KeyARN)

	topic, err := sns.NewFromConfig(awsCfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("dbusers-alerts")})
	if err != nil {
		return err
	}
	// As the control-plane stack does with TargetAccountIds: the Lambda
	// acts only in the accounts the declarations name.
	managed := map[string]bool{}
	for _, c := range cfg.Clusters {
		managed[c.AccountID] = true
	}
	lambdaCfg := fleet.Config{Pointer: pointer, SNSTopicARN: aws.ToString(topic.TopicArn), LockTimeout: 30 * time.Second, ManagedAccounts: managed,
		SigningKeyARN: signingKey}
	// The Lambda's own wiring, pointed at the emulator, on the demo's clock.
	deps := fleet.NewDeps(awsCfg, nil)
	deps.Now = now

	section(out, "4. What the merge will do on local: the plan, as `dbusers reconcile` prints it (dry run)")
	if err := previewLocal(ctx, out, &cfg, servers["local"]); err != nil {
		return err
	}

	section(out, "5. EventBridge sees the pointer change and invokes the Lambda handler")
	event := parameterChange(pointer, now())
	fmt.Fprintf(out, "event: %s\n\n", event)
	rep, err := invoke(ctx, out, deps, lambdaCfg, event)
	if err != nil {
		return err
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("clusters failed: %s", strings.Join(rep.Failed, ", "))
	}

	section(out, "6. Log in as a created account and check its privileges")
	local := servers["local"]
	if local == nil {
		return errors.New("the repository has no local cluster to log in to")
	}
	if err := proveAccount(ctx, out, local.srv, cfg.Settings.AccountName("reporting"), local.passwords["reporting"]); err != nil {
		return err
	}

	section(out, "7. The departed: mallory's open session was ended, oscar's view still works")
	if err := proveDeparted(ctx, out, local, rep); err != nil {
		return err
	}

	section(out, "8. A pull request: hana joins on local, gina leaves; someone granted acme_reporting PROCESS by hand. The comment a reviewer sees, with its live plan")
	head, live, err := pullRequest(ctx, out, awsCfg, deps, lambdaCfg, &cfg, local, now)
	if err != nil {
		return err
	}

	section(out, "9. The merge: dbusers publish, then the run does what the live plan showed")
	// The merge commit is the fake GitHub's, which says it merged #42.
	if pub, err = ssmbundle.Publish(ctx, ssmc, target, ssmbundle.ContentOf(head),
		ssmbundle.Origin{Commit: ghcommenttest.MergeCommit, PullRequest: "42", MergedBy: "demo", Time: now()}, false); err != nil {
		return err
	}
	fmt.Fprintf(out, "published version %s, signed with %s\n", pub.Version, pub.KeyARN)
	rep, err = invoke(ctx, out, deps, lambdaCfg, parameterChange(pointer, now()))
	if err != nil {
		return err
	}
	if err := sameAsLive(out, rep, live); err != nil {
		return err
	}
	cfg = *head

	section(out, "10. After the merge: the rollout back on GitHub, as the publish workflow's `dbusers rollout --version "+pub.Version+" --wait 10m --comment --status` posts it")
	if err := reportRollout(ctx, out, ssmc, pointer, pub.Version); err != nil {
		return err
	}

	section(out, "11. Someone with ssm:PutParameter but not kms:Sign writes their own bundle: the Lambda refuses it")
	if err := forgeAndInvoke(ctx, out, ssmc, deps, lambdaCfg, &cfg, now()); err != nil {
		return err
	}
	// The next merge publishes the declarations again, signed.
	if pub, err = ssmbundle.Publish(ctx, ssmc, target, ssmbundle.ContentOf(&cfg),
		ssmbundle.Origin{Commit: demoHead, PullRequest: "3", MergedBy: "demo", Time: now()}, false); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ndbusers publish (the next merge) writes the declarations again: version %s, signed with %s\n", pub.Version, pub.KeyARN)

	section(out, "12. The hourly schedule runs again: drift repair and expiry on a converged fleet")
	rep, err = invoke(ctx, out, deps, lambdaCfg, scheduled(now()))
	if err != nil {
		return err
	}
	for _, c := range rep.Clusters {
		if c.Writes != 0 {
			return fmt.Errorf("cluster %s was not converged: %d writes on the second run", c.Cluster, c.Writes)
		}
	}
	fmt.Fprintf(out, "\ndemo complete: every cluster converged; the scheduled run sent 0 writes\n")
	return nil
}

// demoServer is one cluster's stand-in.
type demoServer struct {
	srv *embedded.Server
	// passwords maps a user name to the password the demo put in its secret.
	passwords map[string]string
	// departed is an open session of acme_mallory, who left the company
	// (local only).
	departed *sql.Conn
	// admin and adminPassword are the login stored in the admin secret.
	admin, adminPassword string
}

// stage starts one embedded server per cluster and rewrites the
// configuration to reach them: the demo's servers have no TLS and no IAM,
// so clusters declare the embedded engine with TLS off, and IAM users get a
// generated password in the emulated Secrets Manager instead. Admin and
// password secrets are created where the Lambda will look for them.
func stage(ctx context.Context, out io.Writer, cfg *config.Config, awsCfg aws.Config) (map[string]*demoServer, error) {
	sm := secretsmanager.NewFromConfig(awsCfg)
	put := func(name string, v any) error {
		data, _ := json.Marshal(v)
		_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(data))})
		return err
	}
	servers := map[string]*demoServer{}
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		srv, err := embedded.Start(c.Databases...)
		if err != nil {
			return servers, err
		}
		ds := &demoServer{srv: srv, passwords: map[string]string{}}
		servers[c.Name] = ds
		readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = srv.Ready(readyCtx)
		cancel()
		if err != nil {
			return servers, err
		}
		admin, adminPassword := "dbusers_admin", randomPassword()
		ds.admin, ds.adminPassword = admin, adminPassword
		root, err := sql.Open("mysql", srv.RootDSN())
		if err != nil {
			return servers, err
		}
		seed := []string{
			fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", admin, adminPassword),
			fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", admin),
		}
		if c.Name == "local" {
			// Some history, so the plan shows more than creations.
			seed = append(seed,
				"CREATE TABLE orders.items (id INT PRIMARY KEY, sku VARCHAR(40))",
				"INSERT INTO orders.items VALUES (1, 'demo-sku')",
				"CREATE USER 'acme_mallory'@'%' IDENTIFIED BY 'left-the-company'",
				"GRANT SELECT, INSERT ON orders.* TO 'acme_mallory'@'%'",
				"CREATE USER 'acme_reporting'@'%' IDENTIFIED BY 'old-password'",
				"GRANT SELECT, INSERT, UPDATE ON orders.* TO 'acme_reporting'@'%'",
				"CREATE USER 'acmex_bob'@'%' IDENTIFIED BY 'not-ours'",
				"CREATE USER 'acme_breakglass'@'%' IDENTIFIED BY 'protected'",
				// oscar, a departed admin, defined a view others use.
				"CREATE USER 'acme_oscar'@'%' IDENTIFIED BY 'left-too'",
				"GRANT SELECT, CREATE VIEW, SHOW VIEW ON orders.* TO 'acme_oscar'@'%'",
				"CREATE DEFINER='acme_oscar'@'%' SQL SECURITY DEFINER VIEW orders.v_items AS SELECT id, sku FROM orders.items",
			)
		}
		for _, q := range seed {
			if _, err := root.ExecContext(ctx, q); err != nil {
				root.Close()
				return servers, fmt.Errorf("seed %s: %w", c.Name, err)
			}
		}
		root.Close()
		if c.Name == "local" {
			// mallory's client is still connected, with orders as its
			// database.
			if ds.departed, err = openSession(ctx, srv, "acme_mallory", "left-the-company", "orders"); err != nil {
				return servers, err
			}
		}
		c.AdminSecret = "demo/" + c.Name + "/admin"
		if err := put(c.AdminSecret, map[string]string{"username": admin, "password": adminPassword}); err != nil {
			return servers, err
		}
		c.Engine, c.Endpoint, c.Port, c.TLS = flavor.EmbeddedEngine, "127.0.0.1", srv.Port(), "disabled"
		fmt.Fprintf(out, "%-15s %-15s → embedded server on %s (declared engine replaced for the demo)\n", c.Name, c.AccountID, srv.Addr())
	}
	fmt.Fprintln(out, "local is seeded with acme_mallory (no longer declared, a session still open), acme_oscar (no")
	fmt.Fprintln(out, "longer declared, the definer of the view orders.v_items), acme_reporting (write, declared read),")
	fmt.Fprintln(out, "acmex_bob (look-alike, not managed) and acme_breakglass (protected in dbusers.json)")

	// Every user's password secret, one per user (the emulator keeps one
	// namespace for all accounts, so the demo names them per user).
	iam := 0
	for i := range cfg.Users {
		u := &cfg.Users[i]
		if u.Auth.Method() == "iam" {
			iam++
			u.Auth = config.UserAuth{Type: "password", Secret: "demo/users/" + u.Name}
		}
		pw := randomPassword()
		if err := put(u.Auth.Secret, map[string]string{"password": pw}); err != nil {
			return servers, err
		}
		for _, s := range servers {
			s.passwords[u.Name] = pw
		}
	}
	fmt.Fprintf(out, "secrets: %d admin secret(s), %d password secret(s) (%d IAM user(s) get a password here: the stand-ins have no IAM)\n",
		len(cfg.Clusters), len(cfg.Users), iam)
	if _, err := config.Desired(cfg, time.Now()); err != nil {
		return servers, fmt.Errorf("demo configuration: %w", err)
	}
	return servers, nil
}

// previewLocal prints the local cluster's plan without applying it.
func previewLocal(ctx context.Context, out io.Writer, cfg *config.Config, local *demoServer) error {
	if local == nil {
		return errors.New("the repository has no local cluster")
	}
	st, err := config.Desired(cfg, time.Now())
	if err != nil {
		return err
	}
	c, _ := st.Find("local")
	passwords := map[string]string{}
	for _, u := range cfg.Users {
		passwords[u.Auth.Secret] = local.passwords[u.Name]
	}
	db, err := dbconn.OpenDSN(ctx, c.Name, local.srv.DSN(local.admin, local.adminPassword), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	res := engine.Reconcile(ctx, db, engine.Options{State: st, Cluster: *c, Passwords: passwords})
	report.Text(out, res, c.Flavor(), true)
	return res.Err
}

// invoke runs the Lambda handler and prints what it did: each cluster's
// outcome and the audit lines among its logs.
func invoke(ctx context.Context, out io.Writer, deps fleet.Deps, cfg fleet.Config, event json.RawMessage) (*fleet.Report, error) {
	var logs bytes.Buffer
	deps.Stdout = &logs
	// As the Lambda runtime would: a request id, on every log line of the
	// run and in its rollout record.
	id := randomPassword()
	ctx = fleet.WithInvocation(ctx, fleet.Invocation{RequestID: id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32],
		LogGroup: "/aws/lambda/dbusers"})
	rep, err := fleet.Handle(ctx, deps, cfg, event)
	printAudit(out, &logs)
	if rep == nil {
		return nil, err
	}
	if rep.BundleError != "" {
		fmt.Fprintf(out, "\n%s run refused the bundle; no cluster was changed: %s\n", rep.Trigger, rep.BundleError)
	} else {
		fmt.Fprintf(out, "\n%s run of config %s (%.0f ms): %s\n", rep.Trigger, rep.ConfigVersion, rep.DurationMS, signature(rep))
	}
	for _, c := range rep.Clusters {
		fmt.Fprintf(out, "  %-15s %-9s %2d change(s), %2d statement(s), %d created, %d dropped, %2d queries",
			c.Cluster, c.Status, c.Changes, c.Statements, c.UsersCreated, c.UsersDropped, c.Queries)
		if c.Error != "" {
			fmt.Fprintf(out, "  error at %s: %s", c.Stage, c.Error)
		}
		fmt.Fprintln(out)
		for _, s := range c.Skipped {
			fmt.Fprintf(out, "      skipped %s: %s\n", s.User, s.Reason)
		}
	}
	if rep.Alerted {
		fmt.Fprintln(out, "  an SNS alert went out")
	}
	return rep, err
}

// signature says what the Lambda established about who published.
func signature(rep *fleet.Report) string {
	if rep.SignedBy != "" {
		return "the Lambda verified the bundle's signature by " + rep.SignedBy
	}
	return "the bundle was NOT verified (DBUSERS_ALLOW_UNSIGNED)"
}

// forgeAndInvoke writes, straight to SSM, what an attacker allowed to
// write the parameters would: the published declarations with every user
// made trusted_admin, consistent in every hash but unsigned. The Lambda
// must refuse it and change nothing.
func forgeAndInvoke(ctx context.Context, out io.Writer, api *ssm.Client, deps fleet.Deps, lambdaCfg fleet.Config, cfg *config.Config, at time.Time) error {
	forged := ssmbundle.ContentOf(cfg)
	forged.Users = slices.Clone(forged.Users)
	for i := range forged.Users {
		access := slices.Clone(forged.Users[i].Access)
		for j := range access {
			access[j].Role = "trusted_admin"
		}
		forged.Users[i].Access = access
	}
	p, chunks, err := ssmbundle.Pack(forged, ssmbundle.Origin{Commit: "badc0de", Time: at.Add(time.Second)}, ssmbundle.StandardLimit)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(chunks)+1)
	for i := range chunks {
		names = append(names, ssmbundle.ChunkName(lambdaCfg.Pointer, p.Version, i))
	}
	values := append(slices.Clone(chunks), string(mustJSON(p)))
	for i, name := range append(names, lambdaCfg.Pointer) {
		if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(values[i]),
			Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "wrote version %s (every user trusted_admin) with the SSM client: %d chunk(s), then the pointer, no signature\n", p.Version, len(chunks))
	rep, err := invoke(ctx, out, deps, lambdaCfg, parameterChange(lambdaCfg.Pointer, at))
	if err == nil || rep == nil || rep.BundleError == "" || len(rep.Clusters) != 0 {
		return fmt.Errorf("the Lambda did not refuse the unsigned bundle: %v", err)
	}
	return nil
}

// printAudit prints the audit records among the handler's JSON log lines.
func printAudit(out io.Writer, logs io.Reader) {
	sc := bufio.NewScanner(logs)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	type entry struct{ cluster, outcome, statement string }
	var entries []entry
	for sc.Scan() {
		var line struct {
			Audit *struct {
				Cluster, Statement, Outcome string
			} `json:"audit"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Audit == nil {
			continue
		}
		entries = append(entries, entry{line.Audit.Cluster, line.Audit.Outcome, line.Audit.Statement})
	}
	if len(entries) == 0 {
		fmt.Fprintln(out, "audit trail: no statement was sent")
		return
	}
	// Clusters run concurrently; group their lines for reading.
	slices.SortStableFunc(entries, func(a, b entry) int { return strings.Compare(a.cluster, b.cluster) })
	fmt.Fprintln(out, "audit trail (one JSON log line per statement; shown here as cluster, outcome, statement):")
	for _, e := range entries {
		fmt.Fprintf(out, "  %-15s %-8s %s\n", e.cluster, e.outcome, e.statement)
	}
}

func parameterChange(pointer string, t time.Time) json.RawMessage {
	return mustJSON(map[string]any{
		"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "Parameter Store Change",
		"source": "aws.ssm", "account": "111111111111", "time": t.UTC().Format(time.RFC3339), "region": region,
		"resources": []string{"arn:aws:ssm:" + region + ":111111111111:parameter" + pointer},
		"detail":    map[string]string{"name": pointer, "type": "String", "operation": "Update"},
	})
}

func scheduled(t time.Time) json.RawMessage {
	return mustJSON(map[string]any{
		"version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41", "detail-type": "Scheduled Event",
		"source": "aws.events", "account": "111111111111", "time": t.UTC().Format(time.RFC3339), "region": region,
		"resources": []string{"arn:aws:events:" + region + ":111111111111:rule/dbusers-schedule"}, "detail": map[string]string{},
	})
}

func mustJSON(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // fixed shapes of plain values
	}
	return data
}

// openSession logs in as user with db as its database and keeps the
// connection, as a long-lived client does.
func openSession(ctx context.Context, srv *embedded.Server, user, password, db string) (*sql.Conn, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", srv.Addr(), db
	// The driver would print the end of the session to stderr; the demo
	// says it itself.
	cfg.Logger = mysql.Logger(quiet{})
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	pool := sql.OpenDB(connector)
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a session as %s: %w", user, err)
	}
	return conn, nil
}

// proveDeparted shows what the run did about the departed: mallory's
// session no longer answers, oscar's view still does, and the run said
// why oscar stays.
func proveDeparted(ctx context.Context, out io.Writer, local *demoServer, rep *fleet.Report) error {
	if local.departed == nil {
		return errors.New("no departed session to check")
	}
	var n int
	err := local.departed.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n)
	if err == nil {
		return errors.New("acme_mallory's old session still reads orders.items after the run")
	}
	fmt.Fprintf(out, "acme_mallory's session that was open: SELECT COUNT(*) FROM items → %v (ended by the run)\n", err)
	root, err := sql.Open("mysql", local.srv.RootDSN()+"orders")
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM v_items").Scan(&n); err != nil {
		return fmt.Errorf("the view acme_oscar defined no longer works: %w", err)
	}
	fmt.Fprintf(out, "orders.v_items (definer acme_oscar): SELECT COUNT(*) → %d (still works)\n", n)
	for _, c := range rep.Clusters {
		if c.Cluster != "local" {
			continue
		}
		for _, note := range c.Notes {
			if strings.Contains(note, "acme_oscar") {
				fmt.Fprintf(out, "the run's note: %s\n", note)
				return nil
			}
		}
	}
	return errors.New("the run said nothing about acme_oscar, who defines a view")
}

// proveAccount logs in as the account: reading must work, writing must be
// refused.
func proveAccount(ctx context.Context, out io.Writer, srv *embedded.Server, user, password string) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", srv.Addr()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	var sku string
	if err := db.QueryRowContext(ctx, "SELECT sku FROM orders.items WHERE id = 1").Scan(&sku); err != nil {
		return fmt.Errorf("%s could not read orders.items: %w", user, err)
	}
	fmt.Fprintf(out, "%s: SELECT sku FROM orders.items → %q (allowed)\n", user, sku)
	_, err = db.ExecContext(ctx, "INSERT INTO orders.items VALUES (2, 'should-fail')")
	if err == nil {
		return fmt.Errorf("%s could write to orders.items after its downgrade to read", user)
	}
	fmt.Fprintf(out, "%s: INSERT INTO orders.items → refused: %v\n", user, err)
	return nil
}

// quiet is a driver logger that prints nothing.
type quiet struct{}

func (quiet) Print(...any) {}

func section(out io.Writer, title string) {
	fmt.Fprintf(out, "\n== %s\n", title)
}

func randomPassword() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// findRoot walks up from the working directory to the repository (the
// directory that holds go.mod and examples/) and returns its examples/acme:
// the demo's declarations are the examples, whatever a fork has put in its
// own clusters/ and users/ (the demo seeds each cluster's server with
// accounts that only the examples' users make sense of).
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		examples := filepath.Join(dir, "examples", "acme")
		if _, err := os.Stat(filepath.Join(examples, config.SettingsFile)); err == nil {
			return examples, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no examples/acme/dbusers.json here or above; run the demo inside the repository or pass --root")
		}
		dir = parent
	}
}
