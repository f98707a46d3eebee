package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// writeFleet writes a repository of users users and clusters clusters
// under dir: a large company's declarations.
func writeFleet(tb testing.TB, dir string, users, clusters int) {
	tb.Helper()
	write := func(p, s string) {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write(SettingsFile, `{
  "prefix": "acme",
  "roles": {"etl": {"extends": ["write"], "privileges": ["DELETE", "CREATE TEMPORARY TABLES"]}},
  "removal_limit": {"count": 5, "fraction": 0.2},
  "ssm": {"parameter": "/dbusers/config", "tier": "Advanced"},
  "aws": {"management_role": "dbusers-management"}
}`)
	envs := []string{"dev", "staging", "prod"}
	engines := []string{"aurora-mysql-3", "aurora-mysql-2", "rds-mysql-8.0"}
	for i := range clusters {
		write(fmt.Sprintf("clusters/c%03d.json", i), fmt.Sprintf(`{
  "$schema": "../schema/cluster.schema.json",
  "name": "c%03d",
  "description": "Cluster number %d.",
  "environment": %q,
  "account_id": "%012d",
  "region": "eu-west-1",
  "endpoint": "c%03d.cluster-abc.eu-west-1.rds.amazonaws.com",
  "engine": %q,
  "admin_secret": "dbusers/c%03d/admin",
  "databases": ["orders", "payments", "analytics", "events"],
  "tags": {"team": "t%d"}
}
`, i, i, envs[i%len(envs)], 100000000000+i, i, engines[i%len(engines)], i, i%17))
	}
	for i := range users {
		kind, auth := "human", `{"type": "iam"}`
		if i%4 == 0 {
			kind, auth = "service", fmt.Sprintf(`{"type": "password", "secret": "dbusers/u%05d"}`, i)
		}
		write(fmt.Sprintf("users/u%05d.json", i), fmt.Sprintf(`{
  "$schema": "../schema/user.schema.json",
  "name": "u%05d",
  "description": "User number %d.",
  "owner": "u%05d@acme.example",
  "kind": %q,
  "auth": %s,
  "access": [
    {"environments": ["staging"], "databases": ["*"], "role": "read"},
    {"clusters": ["c%03d", "c%03d"], "databases": ["orders", "payments"], "role": "write"},
    {"clusters": ["c%03d"], "databases": ["analytics"], "role": "etl", "expires": "2099-12-31", "reason": "TICKET-%d"}
  ]
}
`, i, i, i, kind, auth, i%clusters, (i+1)%clusters, (i*13)%clusters, i))
	}
}

// BenchmarkLoad10kUsers loads and validates a repository of 10,000 users
// and 200 clusters, the size DESIGN.md commits to. Target: under a second
// per load on a 2-core machine.
func BenchmarkLoad10kUsers(b *testing.B) {
	const users, clusters = 10_000, 200
	dir := b.TempDir()
	writeFleet(b, dir, users, clusters)
	fsys := os.DirFS(dir)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l, diags, err := Load(fsys, today)
		if err != nil {
			b.Fatal(err)
		}
		if len(diags) != 0 || len(l.Config.Users) != users || len(l.Config.Clusters) != clusters {
			b.Fatalf("%d users, %d clusters, %d diagnostics, first: %v", len(l.Config.Users), len(l.Config.Clusters), len(diags), diags[:min(len(diags), 3)])
		}
	}
	b.ReportMetric(float64(users*b.N)/b.Elapsed().Seconds(), "users/s")
}
