package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/desired"
	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// benchUsers is the fleet size of the benchmarks: each user reads all three
// databases of the test cluster.
const benchUsers = 1000

// benchFleet opens MariaDB (skipping loudly without it) and declares
// benchUsers users with role read on every database; changed users (the
// first n) get write instead.
func benchFleet(b *testing.B) (s *testServer, fleet func(changed int) (*desired.State, desired.Cluster)) {
	b.Helper()
	s = prepare(b, mysqltest.MariaDB(b, "the benchmark did NOT run against a real server"))
	fleet = func(changed int) (*desired.State, desired.Cluster) {
		users := make([]config.User, benchUsers)
		for i := range users {
			role := "read"
			if i < changed {
				role = "write"
			}
			users[i] = s.pwUser(fmt.Sprintf("u%04d", i), role, "*")
		}
		return s.state(b, s.settings(), users...)
	}
	return s, fleet
}

// dropAccounts removes every account of the benchmark's prefix, in batches.
func (s *testServer) dropAccounts(b *testing.B) {
	b.Helper()
	var names []string
	for _, r := range s.rows(b, "SELECT User, Host FROM mysql.user WHERE User LIKE ?", s.prefix+`\_%`) {
		names = append(names, fmt.Sprintf("'%s'@'%s'", r["User"], r["Host"]))
	}
	for len(names) > 0 {
		n := min(len(names), 200)
		s.Exec(b, "DROP USER "+strings.Join(names[:n], ", "))
		names = names[n:]
	}
}

func reportMetrics(b *testing.B, res *engine.Result) {
	b.ReportMetric(float64(res.Queries), "queries/op")
	b.ReportMetric(float64(res.Writes), "writes/op")
}

// BenchmarkConverge1000 creates 1,000 accounts with grants on 3 databases
// each (4,000 statements) on an empty server, and verifies.
func BenchmarkConverge1000(b *testing.B) {
	s, fleet := benchFleet(b)
	st, c := fleet(0)
	var res *engine.Result
	for b.Loop() {
		b.StopTimer()
		s.dropAccounts(b)
		b.StartTimer()
		res = s.reconcile(b, s.options(st, c))
		if res.Status != engine.Applied {
			b.Fatalf("status %s, error %v", res.Status, res.Err)
		}
	}
	reportMetrics(b, res)
}

// BenchmarkNoop1000 is the run that every merge and every scheduled run
// pays on a converged cluster: it must send no write and few queries.
func BenchmarkNoop1000(b *testing.B) {
	s, fleet := benchFleet(b)
	st, c := fleet(0)
	s.mustApply(b, s.options(st, c))
	var res *engine.Result
	for b.Loop() {
		res = s.reconcile(b, s.options(st, c))
		if res.Status != engine.Unchanged || res.Writes != 0 {
			b.Fatalf("status %s, %d writes, error %v", res.Status, res.Writes, res.Err)
		}
	}
	reportMetrics(b, res)
}

// BenchmarkChange10Percent1000 elevates 100 of 1,000 users from read to
// write on their 3 databases (300 GRANTs).
func BenchmarkChange10Percent1000(b *testing.B) {
	s, fleet := benchFleet(b)
	baseSt, baseC := fleet(0)
	st, c := fleet(benchUsers / 10)
	var res *engine.Result
	for b.Loop() {
		b.StopTimer()
		s.mustApply(b, s.options(baseSt, baseC))
		b.StartTimer()
		res = s.reconcile(b, s.options(st, c))
		if res.Status != engine.Applied || res.Writes != 3*benchUsers/10 {
			b.Fatalf("status %s, %d writes, error %v", res.Status, res.Writes, res.Err)
		}
	}
	reportMetrics(b, res)
}

// BenchmarkPreview1000 is the live plan of a pull request that elevates
// 100 of 1,000 users and removes 100, told against the converged base:
// what one cluster costs the plan function, in reads only.
func BenchmarkPreview1000(b *testing.B) {
	s, fleet := benchFleet(b)
	base, c := fleet(0)
	s.mustApply(b, s.options(base, c))
	head, hc := fleet(benchUsers / 10)
	hc.Accounts = hc.Accounts[:benchUsers-benchUsers/10]
	var res *engine.PreviewResult
	for b.Loop() {
		res = engine.Preview(b.Context(), s.DB, engine.PreviewOptions{State: head, Cluster: hc, Base: base, Passwords: s.passwords})
		if res.Err != nil || res.Status != engine.Planned {
			b.Fatalf("status %s, error %v", res.Status, res.Err)
		}
	}
	b.ReportMetric(float64(res.Queries), "queries/op")
	b.ReportMetric(float64(len(res.Plan.Changes)), "changes/op")
}
