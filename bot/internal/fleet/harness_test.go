package fleet

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// server is one live database server a test cluster points at.
type server struct {
	*mysqltest.Server
	// net and addr say how to reach it ("tcp"/"unix").
	net, addr string
	// adminUser and adminPassword are the admin login the test stores in
	// the cluster's admin secret.
	adminUser, adminPassword string
}

func newServer(m *mysqltest.Server) *server {
	cfg := m.Config()
	return &server{Server: m, net: cfg.Net, addr: cfg.Addr}
}

func startEmbedded(tb testing.TB, databases ...string) *server {
	tb.Helper()
	s := newServer(mysqltest.Embedded(tb, databases...))
	s.makeAdmin(tb, "%")
	return s
}

// openMariaDB creates databases and an admin account on MariaDB, and drops
// them (and every account of prefix) at cleanup.
func openMariaDB(tb testing.TB, m *mysqltest.Server, prefix string, databases ...string) *server {
	tb.Helper()
	s := newServer(m)
	m.Scratch(tb, func(u string) bool { return strings.HasPrefix(u, prefix+"_") || u == s.adminUser }, databases...)
	host := "localhost"
	if s.net == "tcp" {
		host = "%"
	}
	s.makeAdmin(tb, host)
	return s
}

// makeAdmin creates a dedicated admin login with a password, as the admin
// secret of an RDS cluster would hold.
func (s *server) makeAdmin(tb testing.TB, host string) {
	tb.Helper()
	s.adminUser, s.adminPassword = "adm_"+mysqltest.Name("t"), mysqltest.Password("admin")
	s.Exec(tb, fmt.Sprintf("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'", s.adminUser, host, s.adminPassword))
	s.Exec(tb, fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%s' WITH GRANT OPTION", s.adminUser, host))
}

// accounts returns the sorted user names on the server that start with
// prefix + "_".
func (s *server) accounts(tb testing.TB, prefix string) []string {
	tb.Helper()
	return s.ManagedAccounts(tb, prefix)
}

// world is the AWS side of a test: kumo, SDK clients against it, recorders
// around STS, Secrets Manager and SNS, and a unique pointer and topic.
type world struct {
	aws     aws.Config
	ssm     *ssm.Client
	sm      *secretsmanager.Client
	sts     *stsRecorder
	secrets *secretsRecorder
	sns     *snsRecorder
	pointer string
	topic   string
	name    string // unique per test: prefixes parameter and secret names
	kms     *kms.Client
	key     string // the signing key's ARN, as the control-plane stack creates it
}

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(benchServersEnv)); err == nil && n > 0 {
		os.Exit(serveBench(n)) // the benchmark's child process
	}
	code := m.Run()
	awstest.Close()
	os.Exit(code)
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	// One emulator for the package, and unique names per test: see awstest.
	cfg := awstest.Config(awstest.EmulatorURL())
	w := &world{aws: cfg, ssm: ssm.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg), name: mysqltest.Name("t")}
	w.pointer = "/" + w.name + "/config"
	w.useKMS(tb)
	w.sts = &stsRecorder{api: sts.NewFromConfig(cfg), deny: map[string]bool{}, byKey: map[string]string{}}
	w.secrets = &secretsRecorder{base: cfg}
	ctx := context.Background()
	out, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(w.name + "-alerts")})
	if err != nil {
		tb.Fatal(err)
	}
	w.topic = aws.ToString(out.TopicArn)
	w.sns = &snsRecorder{api: sns.NewFromConfig(cfg)}
	return w
}

// secret stores a secret (kumo keeps one namespace for every account and
// region, so names carry the test's unique name).
func (w *world) secret(tb testing.TB, name string, value any) string {
	tb.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(string(data)),
	}); err != nil {
		tb.Fatal(err)
	}
	return name
}

// publish writes the bundle with ssmbundle.Publish, signed with the world's
// key, as `dbusers publish` does.
func (w *world) publish(tb testing.TB, c ssmbundle.Content, commit string) *ssmbundle.Result {
	tb.Helper()
	res, err := ssmbundle.Publish(context.Background(), w.ssm,
		ssmbundle.Target{Pointer: w.pointer, Tier: "Standard", Keep: 3, Signer: &ssmbundle.Signer{API: w.kms, KeyARN: w.key}}, c,
		ssmbundle.Origin{Commit: commit, PullRequest: "42", MergedBy: "octocat", Time: time.Now()}, false)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// stsRecorder calls kumo's STS, refuses roles named in deny (kumo grants
// every AssumeRole), and remembers which role each access key came from.
type stsRecorder struct {
	api   AssumeRoleAPI
	mu    sync.Mutex
	deny  map[string]bool
	calls []string          // "roleARN externalID"
	byKey map[string]string // access key → role ARN
}

func (s *stsRecorder) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, opt ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	role := aws.ToString(in.RoleArn)
	s.mu.Lock()
	s.calls = append(s.calls, role+" "+aws.ToString(in.ExternalId))
	denied := s.deny[role]
	s.mu.Unlock()
	if denied {
		return nil, fmt.Errorf("operation error STS: AssumeRole, https response error StatusCode: 403, api error AccessDenied: User: arn:aws:sts::123456789012:assumed-role/dbusers-lambda is not authorized to perform: sts:AssumeRole on resource: %s", role)
	}
	out, err := s.api.AssumeRole(ctx, in, opt...)
	if err == nil && out.Credentials != nil {
		s.mu.Lock()
		s.byKey[aws.ToString(out.Credentials.AccessKeyId)] = role
		s.mu.Unlock()
	}
	return out, err
}

func (s *stsRecorder) roleOf(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byKey[key]
}

// secretsRecorder builds real Secrets Manager clients against kumo with
// the assumed credentials and records who read which secret where.
type secretsRecorder struct {
	base  aws.Config
	mu    sync.Mutex
	reads []secretRead
}

type secretRead struct {
	key, region, secret string
}

func (s *secretsRecorder) factory(creds aws.Credentials, region string) SecretsAPI {
	c := awstest.SecretsManagerAs(s.base, creds, region)
	return secretsFunc(func(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
		// Held across the call: kumo v0.33.1 writes a secret's
		// LastAccessedDate under its read lock, a data race when two
		// clusters read one secret at once.
		s.mu.Lock()
		defer s.mu.Unlock()
		s.reads = append(s.reads, secretRead{key: creds.AccessKeyID, region: region, secret: aws.ToString(in.SecretId)})
		return c.GetSecretValue(ctx, in, opt...)
	})
}

func (s *secretsRecorder) all() []secretRead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reads)
}

type secretsFunc func(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)

func (f secretsFunc) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return f(ctx, in, opt...)
}

// snsRecorder publishes to kumo and keeps what was published (kumo offers
// no way to read a topic's messages back without an SQS subscription).
type snsRecorder struct {
	api  PublishAPI
	mu   sync.Mutex
	sent []sns.PublishInput
}

func (s *snsRecorder) Publish(ctx context.Context, in *sns.PublishInput, opt ...func(*sns.Options)) (*sns.PublishOutput, error) {
	out, err := s.api.Publish(ctx, in, opt...)
	if err == nil {
		s.mu.Lock()
		s.sent = append(s.sent, *in)
		s.mu.Unlock()
	}
	return out, err
}

func (s *snsRecorder) messages() []sns.PublishInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// syncBuffer is a bytes.Buffer safe for the handler's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns every output line decoded as JSON; a line that is not JSON
// fails the test (the Lambda's stdout is all structured).
func (b *syncBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("stdout line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// emf returns the EMF document of the output (exactly one is expected).
func emfOf(tb testing.TB, lines []map[string]any) map[string]any {
	tb.Helper()
	var docs []map[string]any
	for _, l := range lines {
		if _, ok := l["_aws"]; ok {
			docs = append(docs, l)
		}
	}
	if len(docs) != 1 {
		tb.Fatalf("want one EMF document, got %d", len(docs))
	}
	return docs[0]
}

// audits returns the audit records logged for cluster.
func audits(lines []map[string]any, cluster string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		a, ok := l["audit"].(map[string]any)
		if ok && a["cluster"] == cluster {
			out = append(out, a)
		}
	}
	return out
}

// closedPort returns a loopback address nothing listens on.
func closedPort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// connector points each cluster's connection at a local server, checking
// first that the handler built what production would send: the cluster
// file's endpoint and port, the admin secret's login, and TLS verifying
// the endpoint's name against the RDS bundle.
type connector struct {
	tb      testing.TB
	mu      sync.Mutex
	targets map[string]netAddr // by cluster
	seen    map[string]dbconn.Login
}

type netAddr struct {
	net, addr string
}

func (c *connector) connect(ctx context.Context, l dbconn.Login) (*sql.DB, error) {
	c.mu.Lock()
	t, ok := c.targets[l.Cluster]
	if c.seen == nil {
		c.seen = map[string]dbconn.Login{}
	}
	c.seen[l.Cluster] = l
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("test: no local server for cluster %s", l.Cluster)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = l.User, l.Password, t.net, t.addr
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, dbconn.IOTimeout, dbconn.IOTimeout
	conn, err := mysql.NewConnector(cfg) // TLS off: the local servers have none
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

func (c *connector) login(cluster string) (dbconn.Login, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.seen[cluster]
	return l, ok
}

func hostPort(tb testing.TB, addr string) (string, int) {
	tb.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatal(err)
	}
	return h, n
}

// readUser is a password service user with role on the given clusters'
// databases ("*").
func pwUser(name, secret, role string, clusters ...string) config.User {
	return config.User{
		Name: name, Owner: "team@acme.example", Kind: "service",
		Auth:   config.UserAuth{Type: "password", Secret: secret},
		Access: []config.Access{{Clusters: clusters, Databases: []string{"*"}, Role: role}},
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
