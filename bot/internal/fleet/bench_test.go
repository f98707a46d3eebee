package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// The fleet benchmark: benchClusters clusters, each its own server, and
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
// Why in a child process: 100 go-mysql-server instances holding 1,000
// accounts each would share the benchmark's heap, and the figure that
// matters is the Lambda's own memory. The child is this test binary started
// with benchServersEnv set; it prints its servers' addresses and serves
// until its stdin closes.
const (
	benchServersEnv = "DBUSERS_FLEET_BENCH_SERVERS"
	benchClusters   = 100
	benchUsers      = 1000
	benchAccounts   = 4 // clusters are spread over this many AWS accounts
)

// benchServer is what the child reports about one server.
type benchServer struct {
	Net, Addr, User, Password, Database string
}

// serveBench is the child process: start n embedded servers, print them as
// one JSON line, wait for stdin to close.
func serveBench(n int) int {
	servers := make([]benchServer, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 4)
	for i := range servers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tb := &benchTB{}
			db := fmt.Sprintf("bench_%03d", i)
			s := startEmbedded(tb, db)
			if tb.err != nil {
				failed.Store(tb.err)
				return
			}
			servers[i] = benchServer{Net: s.net, Addr: s.addr, User: s.adminUser, Password: s.adminPassword, Database: db}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		fmt.Fprintln(os.Stderr, "bench servers:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(servers); err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
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

func startBenchServers(b *testing.B, n int) []benchServer {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), benchServersEnv+"="+strconv.Itoa(n))
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
		b.Fatalf("bench servers: %v", err)
	}
	var servers []benchServer
	if err := json.Unmarshal(line, &servers); err != nil || len(servers) != n {
		b.Fatalf("bench servers: %v (%d servers)", err, len(servers))
	}
	return servers
}

// peakMemory samples the heap until stop is called and returns the
// highest HeapInuse and Sys (everything the runtime got from the OS) seen,
// in MB.
func peakMemory() (stop func() (heapMB, sysMB float64)) {
	var peakHeap, peakSys uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peakHeap, peakSys = max(peakHeap, m.HeapInuse), max(peakSys, m.Sys)
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() (float64, float64) {
		close(done)
		wg.Wait()
		sample()
		return float64(peakHeap) / (1 << 20), float64(peakSys) / (1 << 20)
	}
}

// BenchmarkHandle100Clusters1000Users measures the steady-state invocation
// (every cluster converged: assume role, read secrets, connect, lock, read
// 1,000 accounts, plan nothing) over 100 clusters, after one setup run that
// creates the 100,000 accounts and is reported as first-run-*. MB-peak is
// the highest HeapInuse during a run, MB-before the heap held before any
// run (kumo, which a Lambda does not carry, and the declarations), MB-sys
// the memory the runtime took from the OS. DBUSERS_BENCH_MEMLIMIT_MB sets
// the Go memory limit as bootstrap does (80% of the function's memory:
// 204 for 256 MB). Run it with
//
//	go test -run '^$' -bench Handle100 -benchtime 3x ./bot/internal/fleet/
func BenchmarkHandle100Clusters1000Users(b *testing.B) {
	nClusters, nUsers := benchClusters, benchUsers
	if v, err := strconv.Atoi(os.Getenv("DBUSERS_BENCH_CLUSTERS")); err == nil && v > 0 {
		nClusters = v // a quicker look: DBUSERS_BENCH_CLUSTERS=10
	}
	servers := startBenchServers(b, nClusters)
	if mb, err := strconv.Atoi(os.Getenv("DBUSERS_BENCH_MEMLIMIT_MB")); err == nil && mb > 0 {
		// As bootstrap does from AWS_LAMBDA_FUNCTION_MEMORY_SIZE; set here,
		// not through GOMEMLIMIT, so the child's servers are not limited.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(mb) << 20))
	}
	ctx := context.Background()
	w := newWorld(b)
	conn := &connector{tb: b, targets: map[string]target{}}
	var clusters []config.Cluster
	for i, s := range servers {
		name := fmt.Sprintf("c%03d", i)
		admin := w.secret(b, w.name+"/"+name+"/admin", map[string]any{"username": s.User, "password": s.Password})
		clusters = append(clusters, config.Cluster{
			Name: name, Environment: "prod", AccountID: fmt.Sprintf("%012d", 100000000000+i%benchAccounts), Region: "eu-west-1",
			Endpoint: endpoint(name), Port: 3306, Engine: flavor.EmbeddedEngine, AdminSecret: admin,
			Databases: []string{s.Database}, TLS: "disabled",
		})
		conn.targets[name] = target{s.Net, s.Addr}
	}
	users := make([]config.User, nUsers)
	for i := range users {
		name := fmt.Sprintf("svc%04d", i)
		secret := w.secret(b, w.name+"/"+name, map[string]any{"password": fmt.Sprintf("pw-%s-%d", w.name, i)})
		users[i] = config.User{Name: name, Owner: "team@acme.example", Kind: "service",
			Auth:   config.UserAuth{Type: "password", Secret: secret},
			Access: []config.Access{{Environments: []string{"prod"}, Databases: []string{"*"}, Role: "read"}}}
	}
	settings := settingsFor(w)
	settings.Concurrency = 0 // the default bound, 8
	w.publish(b, ssmbundle.Content{Settings: settings, Clusters: clusters, Users: users}, "bench")
	cfg := testConfig(b, w)
	cfg.LockTimeout = 5 * time.Minute
	deps := w.deps(&syncBuffer{}, conn)
	deps.Stdout = io.Discard
	event := w.publishEvent(b)

	// What the process holds before any run: kumo (in process here, not
	// in the Lambda), the fleet's declarations, the test's bookkeeping.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peakSys float64
	run := func(want engine.Status) (*Report, time.Duration, float64) {
		runtime.GC()
		stop := peakMemory()
		t0 := time.Now()
		rep, err := Handle(ctx, deps, cfg, event)
		d := time.Since(t0)
		heap, sys := stop()
		peakSys = max(peakSys, sys)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range rep.Clusters {
			if c.Status != want {
				b.Fatalf("%s: %s, want %s (%s)", c.Cluster, c.Status, want, c.Error)
			}
		}
		return rep, d, heap
	}

	rep, first, firstHeap := run(engine.Applied)
	var created float64
	for _, c := range rep.Clusters {
		created += float64(c.UsersCreated)
	}
	if created != float64(nClusters*nUsers) {
		b.Fatalf("first run created %v accounts, want %d", created, nClusters*nUsers)
	}
	var d time.Duration
	var peak float64
	for b.Loop() {
		var heap float64
		_, d, heap = run(engine.Unchanged)
		peak = max(peak, heap)
	}
	b.ReportMetric(first.Seconds(), "first-run-s")
	b.ReportMetric(firstHeap, "first-run-MB-peak")
	b.ReportMetric(d.Seconds(), "s/run")
	b.ReportMetric(peak, "MB-peak")
	b.ReportMetric(float64(base.HeapInuse)/(1<<20), "MB-before")
	b.ReportMetric(peakSys, "MB-sys")
	b.ReportMetric(float64(nClusters), "clusters")
	b.ReportMetric(float64(nUsers), "users")
}
