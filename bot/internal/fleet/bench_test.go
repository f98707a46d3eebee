package fleet

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sivchari/kumo"
	"golang.org/x/sync/errgroup"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/dbconn"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// The fleet benchmark: benchClusters clusters, each its own server behind
// its own toxiproxy that adds benchLatencyMS to every round trip, and
// benchUsers password users granted on every one of them (so every cluster
// holds benchUsers managed accounts).
//
// Why one server per cluster: a cluster is a server. The lock is per
// server and prefix, and the prefix is fleet-wide, so clusters sharing one
// server would serialize on the lock and, worse, see each other's accounts
// as their own (a GRANT on one cluster's database is a privilege the other
// cluster would revoke). Distinct databases do not separate clusters;
// distinct servers do.
//
// Why child processes: 100 go-mysql-server instances holding 1,000
// accounts each, 100 proxies and the AWS emulator would share the
// benchmark's heap and CPU time, and the figures that matter are the
// Lambda's own. Two children, both this test binary started with
// benchServersEnv set: one runs the servers and their proxies, the other
// kumo (behind a proxy of its own when DBUSERS_BENCH_AWS_LATENCY_MS is
// set). Each prints what it serves as one JSON line and serves until its
// stdin closes. The parent holds only the handler, the SDK clients and the
// test's bookkeeping, so its heap and its CPU time (getrusage) are the
// handler's; the children's CPU time is read from /proc.
//
// Latency: the toxic is toxiproxy's "latency" on the downstream stream
// (server to client) only, so it is 20 ms per round trip, not per
// direction: every query waits 20 ms more for its answer, and a result of
// many packets is delayed as a whole, not per packet. The converging setup
// run goes straight to the servers, without the proxies: at 20 ms it would
// spend 40 s per cluster in round trips (2,000 statements).
const (
	// benchServersEnv starts a child (TestMain checks it): the number of
	// servers to run, or 1 for the AWS child.
	benchServersEnv = "DBUSERS_FLEET_BENCH_SERVERS"
	// benchRoleEnv is "aws" in the child that runs kumo.
	benchRoleEnv = "DBUSERS_FLEET_BENCH_ROLE"
	// benchLatencyEnv is the latency in ms the child's proxies add.
	benchLatencyEnv = "DBUSERS_FLEET_BENCH_LATENCY_MS"

	benchClusters  = 100
	benchUsers     = 1000
	benchAccounts  = 4 // clusters are spread over this many AWS accounts
	benchLatencyMS = 20
)

// benchConcurrency are the sub-benchmarks' bounds on concurrent clusters.
var benchConcurrency = []int{1, 8, 32}

// benchChild is what a child reports: the servers, or kumo's URL.
type benchChild struct {
	Servers []benchServer `json:"servers,omitempty"`
	URL     string        `json:"url,omitempty"`
}

// benchServer is one server: Addr directly, Proxy through the latency
// (empty without latency).
type benchServer struct {
	Addr, Proxy, User, Password, Database string
}

// serveBench is a child process: start what the environment asks for,
// print it as one JSON line, wait for stdin to close.
func serveBench(n int) int {
	latency, _ := strconv.Atoi(os.Getenv(benchLatencyEnv))
	var out benchChild
	var err error
	if os.Getenv(benchRoleEnv) == "aws" {
		out.URL, err = serveBenchAWS(latency)
	} else {
		out.Servers, err = serveBenchServers(n, latency)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func serveBenchServers(n, latency int) ([]benchServer, error) {
	proxies := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	servers := make([]benchServer, n)
	var g errgroup.Group
	g.SetLimit(4)
	for i := range servers {
		g.Go(func() error {
			tb := &benchTB{}
			db := fmt.Sprintf("bench_%03d", i)
			var s *server
			func() {
				// startEmbedded reports through tb.Fatal, which ends the
				// goroutine it runs on: give it one of its own.
				done := make(chan struct{})
				go func() { defer close(done); s = startEmbedded(tb, db) }()
				<-done
			}()
			if tb.err != nil {
				return tb.err
			}
			servers[i] = benchServer{Addr: s.addr, User: s.adminUser, Password: s.adminPassword, Database: db}
			if latency > 0 {
				p, err := latencyProxy(proxies, db, s.addr, latency)
				if err != nil {
					return err
				}
				servers[i].Proxy = p
			}
			return nil
		})
	}
	return servers, g.Wait()
}

func serveBenchAWS(latency int) (string, error) {
	srv := kumo.NewServer()
	if latency <= 0 {
		return srv.URL, nil
	}
	proxies := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p, err := latencyProxy(proxies, "kumo", strings.TrimPrefix(srv.URL, "http://"), latency)
	if err != nil {
		return "", err
	}
	return "http://" + p, nil
}

// latencyProxy starts a proxy to upstream that delays everything the
// upstream sends by ms, and returns its address.
func latencyProxy(srv *toxiproxy.ApiServer, name, upstream string, ms int) (string, error) {
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return "", fmt.Errorf("proxy %s: %w", name, err)
	}
	body := fmt.Sprintf(`{"name": "latency", "type": "latency", "stream": "downstream", "toxicity": 1, "attributes": {"latency": %d}}`, ms)
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		return "", fmt.Errorf("proxy %s: add latency: %w", name, err)
	}
	return p.Listen, nil
}

// benchTB is the testing.TB the child's server helpers report to.
type benchTB struct {
	testing.TB
	err error
}

func (b *benchTB) Helper()                   {}
func (b *benchTB) Cleanup(func())            {}
func (b *benchTB) Fatal(args ...any)         { b.err = fmt.Errorf("%s", fmt.Sprint(args...)); runtime.Goexit() }
func (b *benchTB) Fatalf(f string, a ...any) { b.err = fmt.Errorf(f, a...); runtime.Goexit() }

// startBenchChild starts a child and returns what it serves and its
// process ID (to read its CPU time).
func startBenchChild(b *testing.B, env ...string) (benchChild, int) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReaderSize(stdout, 1<<20).ReadBytes('\n')
	if err != nil {
		b.Fatalf("bench child %v: %v", env, err)
	}
	var out benchChild
	if err := json.Unmarshal(line, &out); err != nil {
		b.Fatalf("bench child %v: %v", env, err)
	}
	return out, cmd.Process.Pid
}

// benchEnvInt reads a positive whole number (or zero, when zero is
// allowed) from the environment, else def.
func benchEnvInt(b *testing.B, name string, def int, zero bool) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || (n == 0 && !zero) {
		b.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

// BenchmarkHandle100Clusters1000Users measures the steady-state invocation
// (every cluster converged: assume role, read secrets, connect, lock, read
// 1,000 accounts, plan nothing) over 100 clusters at 20 ms per database
// round trip, with 1, 8 and 32 clusters at a time. One setup run first
// creates the 100,000 accounts, without the latency, and is logged. Run it
// with
//
//	go test -run '^$' -bench Handle100 -benchtime 3x -timeout 60m ./bot/internal/fleet/
//
// Metrics of each sub-benchmark (means over its runs, peaks the highest):
// s/run the invocation's wall time; MB-peak the highest HeapInuse during a
// run, sampled every 10 ms; MB-sys the memory the runtime took from the
// OS; MB-before the heap held before any run (declarations, SDK clients,
// the test's bookkeeping); handler-cpu-s the parent's user+system CPU time
// per run (the handler's own: the servers, proxies and kumo are in the
// children); servers-cpu-s and aws-cpu-s the children's; other-cpu-s what
// other processes used meanwhile (the machine is shared: when it is not
// near zero, the run's wall time is not the fleet's); queries/cluster and
// round-trips/cluster what one cluster costs on the wire (round trips
// include the connection's handshake; times the latency they are the
// cluster's latency budget); cluster-ms a cluster's mean duration. Each
// run is also logged.
//
// The servers, the proxies and kumo share the machine's cores with the
// handler: on 2 cores the wall time at concurrency 8 and above is set by
// the sum of the CPU times over 2, not by the latency, and the handler's
// own cost is handler-cpu-s.
//
// Knobs, for a quicker look or another shape: DBUSERS_BENCH_CLUSTERS
// (100), DBUSERS_BENCH_USERS (1000), DBUSERS_BENCH_LATENCY_MS (20, per
// database round trip; 0 connects directly), DBUSERS_BENCH_AWS_LATENCY_MS
// (0: kumo answers at loopback speed), DBUSERS_BENCH_MEMLIMIT_MB (the Go
// memory limit, as bootstrap sets it: 204 for a 256 MB function),
// DBUSERS_BENCH_CPUPROFILE (a file name prefix: each sub-benchmark writes
// the parent's CPU profile of its runs to PREFIX-concurrency=N.pprof) and
// DBUSERS_BENCH_HEAPPROFILE (likewise, the heap profile taken when the
// heap peaked).
func BenchmarkHandle100Clusters1000Users(b *testing.B) {
	f := newBenchFleet(b)
	for _, n := range benchConcurrency {
		b.Run(fmt.Sprintf("concurrency=%d", n), func(b *testing.B) { f.bench(b, n) })
	}
}

// benchFleet is the converged fleet the sub-benchmarks run against.
type benchFleet struct {
	clusters, users, latencyMS int
	deps                       Deps
	cfg                        Config
	event                      []byte
	// direct sends the handler straight to the servers (the setup run).
	direct atomic.Bool
	// direct and proxied addresses by cluster.
	addrs, proxied map[string]string
	// turns counts the handler's waits for a server's answer.
	turns              atomic.Int64
	serversPID, awsPID int
	baseHeap           float64
	// heapProfile is DBUSERS_BENCH_HEAPPROFILE: a file name prefix.
	heapProfile string
}

func newBenchFleet(b *testing.B) *benchFleet {
	b.Helper()
	f := &benchFleet{
		clusters:  benchEnvInt(b, "DBUSERS_BENCH_CLUSTERS", benchClusters, false),
		users:     benchEnvInt(b, "DBUSERS_BENCH_USERS", benchUsers, false),
		latencyMS: benchEnvInt(b, "DBUSERS_BENCH_LATENCY_MS", benchLatencyMS, true),
		addrs:     map[string]string{},
		proxied:   map[string]string{},

		heapProfile: os.Getenv("DBUSERS_BENCH_HEAPPROFILE"),
	}
	awsLatency := benchEnvInt(b, "DBUSERS_BENCH_AWS_LATENCY_MS", 0, true)
	servers, serversPID := startBenchChild(b, benchServersEnv+"="+strconv.Itoa(f.clusters), benchLatencyEnv+"="+strconv.Itoa(f.latencyMS))
	awsChild, awsPID := startBenchChild(b, benchServersEnv+"=1", benchRoleEnv+"=aws", benchLatencyEnv+"="+strconv.Itoa(awsLatency))
	f.serversPID, f.awsPID = serversPID, awsPID
	if len(servers.Servers) != f.clusters || awsChild.URL == "" {
		b.Fatalf("bench children: %d servers, kumo at %q", len(servers.Servers), awsChild.URL)
	}
	if mb := benchEnvInt(b, "DBUSERS_BENCH_MEMLIMIT_MB", 0, true); mb > 0 {
		// As bootstrap does from AWS_LAMBDA_FUNCTION_MEMORY_SIZE; set here,
		// not through GOMEMLIMIT, so the children are not limited.
		old := debug.SetMemoryLimit(int64(mb) << 20)
		b.Cleanup(func() { debug.SetMemoryLimit(old) })
	}

	// The world of the handler tests, against the child's kumo, with the
	// Lambda's own Deps (no recorders: they serialize secret reads).
	awsCfg := awstest.Config(awsChild.URL)
	// One HTTP client for every SDK client, as config.LoadDefaultConfig
	// gives the Lambda: without it each cluster's Secrets Manager client
	// would dial connections of its own.
	awsCfg.HTTPClient = awshttp.NewBuildableClient()
	w := &world{aws: awsCfg, ssm: ssm.NewFromConfig(awsCfg), sm: secretsmanager.NewFromConfig(awsCfg), name: mysqltest.Name("t")}
	w.pointer = "/" + w.name + "/config"
	w.useKMS(b)
	f.deps = Deps{
		SSM:  w.ssm,
		Keys: &ssmbundle.Keys{API: w.kms},
		STS:  sts.NewFromConfig(awsCfg),
		Secrets: func(creds aws.Credentials, region string) SecretsAPI {
			return awstest.SecretsManagerAs(awsCfg, creds, region)
		},
		Stdout:  io.Discard,
		Connect: f.connect,
		Now:     time.Now,
	}

	// The secrets, 16 at a time: kumo takes a while to store 1,100.
	var g errgroup.Group
	g.SetLimit(16)
	putSecret := func(name string, value any) {
		data := mustJSON(b, value)
		g.Go(func() error {
			_, err := w.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
				Name: aws.String(name), SecretString: aws.String(string(data)),
			})
			return err
		})
	}
	clusters := make([]config.Cluster, f.clusters)
	for i, s := range servers.Servers {
		name := fmt.Sprintf("c%03d", i)
		f.addrs[name], f.proxied[name] = s.Addr, s.Proxy
		admin := w.name + "/" + name + "/admin"
		putSecret(admin, map[string]any{"username": s.User, "password": s.Password})
		clusters[i] = config.Cluster{
			Name: name, Environment: "prod", AccountID: fmt.Sprintf("%012d", 100000000000+i%benchAccounts), Region: "eu-west-1",
			Endpoint: endpoint(name), Port: 3306, Engine: flavor.EmbeddedEngine, AdminSecret: admin,
			Databases: []string{s.Database}, TLS: "disabled",
		}
	}
	users := make([]config.User, f.users)
	for i := range users {
		name := fmt.Sprintf("svc%04d", i)
		secret := w.name + "/" + name
		putSecret(secret, map[string]any{"password": fmt.Sprintf("pw-%s-%d", w.name, i)})
		users[i] = config.User{Name: name, Owner: "team@acme.example", Kind: "service",
			Auth:   config.UserAuth{Type: "password", Secret: secret},
			Access: []config.Access{{Environments: []string{"prod"}, Databases: []string{"*"}, Role: "read"}}}
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	settings := settingsFor(w)
	settings.Concurrency = 0 // the default bound, 8
	w.publish(b, ssmbundle.Content{Settings: settings, Clusters: clusters, Users: users}, "bench")
	f.cfg = testConfig(b, w)
	f.cfg.LockTimeout = 5 * time.Minute
	f.event = w.publishEvent(b)

	// What the process holds before any run: the fleet's declarations,
	// the SDK clients, the test's bookkeeping.
	runtime.GC()
	f.baseHeap = heapInuseMB()

	// Setup: converge every cluster, straight to the servers.
	f.direct.Store(true)
	rep, st := f.run(b, f.cfg, engine.Applied)
	f.direct.Store(false)
	var created int
	for _, c := range rep.Clusters {
		created += c.UsersCreated
	}
	if created != f.clusters*f.users {
		b.Fatalf("setup run created %d accounts, want %d", created, f.clusters*f.users)
	}
	b.Logf("setup: %d clusters x %d users, %d accounts created in %.1f s (concurrency %d, no added latency), heap peak %.1f MB, handler CPU %.1f s, servers CPU %.1f s",
		f.clusters, f.users, created, st.wall.Seconds(), DefaultConcurrency, st.heapMB, st.handlerCPU.Seconds(), st.serversCPU.Seconds())
	// One no-op run before any is measured: the first one after the setup
	// pays for the servers' (and the parent's) collecting its garbage.
	_, st = f.run(b, f.cfg, engine.Unchanged)
	b.Logf("warm-up: a no-op run in %.1f s (concurrency %d, %d ms per round trip)", st.wall.Seconds(), DefaultConcurrency, f.latencyMS)
	return f
}

// connect is Deps.Connect: DefaultConnect's pool, to the cluster's server
// (through its proxy unless direct), counting the handler's waits.
func (f *benchFleet) connect(_ context.Context, l dbconn.Login) (*sql.DB, error) {
	addr := f.proxied[l.Cluster]
	if addr == "" || f.direct.Load() {
		addr = f.addrs[l.Cluster]
	}
	if addr == "" {
		return nil, fmt.Errorf("bench: no server for cluster %s", l.Cluster)
	}
	cfg := dbconn.Config(l)
	cfg.Addr = addr
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &turnConn{Conn: c, turns: &f.turns}
		tc.waiting.Store(true) // for the server's greeting
		return tc, nil
	}
	return dbconn.OpenPool(cfg)
}

// turnConn counts the round trips of a connection: the first read after
// a write waits for the server, and so for the proxy's latency; the reads
// that follow take what has arrived.
type turnConn struct {
	net.Conn
	turns   *atomic.Int64
	waiting atomic.Bool
}

func (c *turnConn) Write(p []byte) (int, error) {
	c.waiting.Store(true)
	return c.Conn.Write(p)
}

func (c *turnConn) Read(p []byte) (int, error) {
	if c.waiting.Swap(false) {
		c.turns.Add(1)
	}
	return c.Conn.Read(p)
}

// benchStats is what one run cost.
type benchStats struct {
	wall                           time.Duration
	heapMB, sysMB                  float64
	handlerCPU, serversCPU, awsCPU time.Duration
	// otherCPU is what the rest of the machine used meanwhile: on a
	// shared machine, another process's build or tests.
	otherCPU       time.Duration
	queries, turns int64
	clusterMS      float64 // sum over clusters
	profile        []byte  // heap profile at the peak
	clusters       int
}

// run invokes the handler once and checks every cluster ended as want.
func (f *benchFleet) run(b *testing.B, cfg Config, want engine.Status) (*Report, benchStats) {
	b.Helper()
	var st benchStats
	turns0 := f.turns.Load()
	cpu0, srv0, aws0, busy0 := selfCPU(b), procCPU(b, f.serversPID), procCPU(b, f.awsPID), machineBusy()
	stop := peakMemory(f.heapProfile != "")
	t0 := time.Now()
	rep, err := Handle(context.Background(), f.deps, cfg, f.event)
	st.wall = time.Since(t0)
	st.heapMB, st.sysMB, st.profile = stop()
	st.handlerCPU = selfCPU(b) - cpu0
	st.serversCPU, st.awsCPU = procCPU(b, f.serversPID)-srv0, procCPU(b, f.awsPID)-aws0
	st.otherCPU = max(0, machineBusy()-busy0-st.handlerCPU-st.serversCPU-st.awsCPU)
	st.turns = f.turns.Load() - turns0
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range rep.Clusters {
		if c.Status != want {
			b.Fatalf("%s: %s, want %s (%s)", c.Cluster, c.Status, want, c.Error)
		}
		st.queries += int64(c.Queries)
		st.clusterMS += c.DurationMS
	}
	st.clusters = len(rep.Clusters)
	return rep, st
}

// bench runs the no-op invocation with concurrency n.
func (f *benchFleet) bench(b *testing.B, n int) {
	cfg := f.cfg
	cfg.Concurrency = n
	if prefix := os.Getenv("DBUSERS_BENCH_CPUPROFILE"); prefix != "" {
		name := fmt.Sprintf("%s-concurrency=%d.pprof", prefix, n)
		out, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatalf("cpu profile: %v (not with -cpuprofile)", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			out.Close()
			b.Logf("parent CPU profile: %s", name)
		}()
	}
	var sum benchStats
	var peakHeap, peakSys float64
	runs := 0
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		rep, st := f.run(b, cfg, engine.Unchanged)
		runs++
		slowest := slices.MaxFunc(rep.Clusters, func(x, y ClusterReport) int { return cmp.Compare(x.DurationMS, y.DurationMS) })
		b.Logf("run %d: %.2f s, heap peak %.0f MB, CPU handler %.2f s, servers %.2f s, aws %.2f s, other processes %.2f s; slowest cluster %s %.0f ms",
			runs, st.wall.Seconds(), st.heapMB, st.handlerCPU.Seconds(), st.serversCPU.Seconds(), st.awsCPU.Seconds(), st.otherCPU.Seconds(),
			slowest.Cluster, slowest.DurationMS)
		sum.wall += st.wall
		sum.handlerCPU += st.handlerCPU
		sum.serversCPU += st.serversCPU
		sum.awsCPU += st.awsCPU
		sum.otherCPU += st.otherCPU
		sum.queries += st.queries
		sum.turns += st.turns
		sum.clusterMS += st.clusterMS
		sum.clusters += st.clusters
		if st.heapMB > peakHeap && f.heapProfile != "" {
			name := fmt.Sprintf("%s-concurrency=%d.pprof", f.heapProfile, n)
			if err := os.WriteFile(name, st.profile, 0o644); err != nil {
				b.Fatal(err)
			}
			b.Logf("heap profile at the peak (%.0f MB): %s", st.heapMB, name)
		}
		peakHeap, peakSys = max(peakHeap, st.heapMB), max(peakSys, st.sysMB)
	}
	perRun := func(d time.Duration) float64 { return d.Seconds() / float64(runs) }
	perCluster := func(v float64) float64 { return v / float64(sum.clusters) }
	b.ReportMetric(perRun(sum.wall), "s/run")
	b.ReportMetric(peakHeap, "MB-peak")
	b.ReportMetric(peakSys, "MB-sys")
	b.ReportMetric(f.baseHeap, "MB-before")
	b.ReportMetric(perRun(sum.handlerCPU), "handler-cpu-s/run")
	b.ReportMetric(perRun(sum.serversCPU), "servers-cpu-s/run")
	b.ReportMetric(perRun(sum.awsCPU), "aws-cpu-s/run")
	b.ReportMetric(perRun(sum.otherCPU), "other-cpu-s/run")
	b.ReportMetric(perCluster(float64(sum.queries)), "queries/cluster")
	b.ReportMetric(perCluster(float64(sum.turns)), "round-trips/cluster")
	b.ReportMetric(perCluster(sum.clusterMS), "cluster-ms")
	b.ReportMetric(float64(f.clusters), "clusters")
	b.ReportMetric(float64(f.users), "users")
	b.ReportMetric(float64(f.latencyMS), "latency-ms")
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user and system CPU time a child has used, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 10 ms: USER_HZ is
// 100 on Linux), or 0 where there is no /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	// The command name, field 2, is in parentheses and may hold spaces.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		b.Fatalf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q %q", pid, fields[11], fields[12])
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// machineBusy is the CPU time every CPU of the machine has spent not idle,
// from /proc/stat (in clock ticks of 10 ms), or 0 where there is no /proc.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || i >= 8 {
			break // guest time is counted in user already
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// The runtime/metrics names of HeapInuse (objects plus the free space of
// the spans that hold them) and Sys. Reading them does not stop the world,
// as runtime.ReadMemStats does, so sampling every 10 ms does not slow the
// run it measures.
var memMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes", "/memory/classes/total:bytes"}

func readMem() (heap, sys uint64) {
	s := make([]metrics.Sample, len(memMetrics))
	for i, n := range memMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()
}

func heapInuseMB() float64 {
	heap, _ := readMem()
	return float64(heap) / (1 << 20)
}

// peakMemory samples the heap every 10 ms until stop is called and returns
// the highest HeapInuse and Sys (everything the runtime got from the OS)
// seen, in MB. With profile, it also takes a heap profile whenever the
// heap grows 5% past the last one taken, and returns the last: what was
// live (as of the last collection) when the heap peaked.
func peakMemory(profile bool) (stop func() (heapMB, sysMB float64, heapProfile []byte)) {
	var peakHeap, peakSys, profiled uint64
	var prof bytes.Buffer
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		heap, sys := readMem()
		peakHeap, peakSys = max(peakHeap, heap), max(peakSys, sys)
		if profile && heap > profiled+profiled/20 {
			profiled = heap
			prof.Reset()
			_ = pprof.Lookup("heap").WriteTo(&prof, 0)
		}
	}
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() (float64, float64, []byte) {
		close(done)
		wg.Wait()
		sample()
		return float64(peakHeap) / (1 << 20), float64(peakSys) / (1 << 20), prof.Bytes()
	}
}
