package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/access"
)

var updateAccess = flag.Bool("update-access", false, "rewrite testdata/access/*.txt")

func accessCLI(t *testing.T, now time.Time, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	e := env{stdout: &out, stderr: &errOut, now: func() time.Time { return now }, getenv: func(string) string { return "" }}
	code := run(t.Context(), e, append([]string{"access", "--root", "../../../examples/acme"}, args...))
	return code, out.String(), errOut.String()
}

// TestAccessGolden: who has what in this repository's own declarations,
// per user and per cluster, as an auditor reads it.
func TestAccessGolden(t *testing.T) {
	for name, args := range map[string][]string{
		"user_erin":           {"--user", "erin"},
		"user_alice":          {"--user", "alice"},
		"user_reporting":      {"--user", "reporting"},
		"cluster_prod_orders": {"--cluster", "prod-orders"},
		"cluster_payments":    {"--cluster", "prod-orders", "--database", "payments"},
		"cluster_staging":     {"--cluster", "staging-main"},
		"cluster_local":       {"--cluster", "local"},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := accessCLI(t, planNow, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			path := filepath.Join("testdata", "access", name+".txt")
			if *updateAccess {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-access)", err)
			}
			if stdout != string(want) {
				t.Errorf("dbusers access %s:\n%s\nwant:\n%s", strings.Join(args, " "), stdout, want)
			}
		})
	}
}

// TestAccessExpired: after erin's entry expires it shows as expired, and
// still shows: an auditor asks about what was granted too.
func TestAccessExpired(t *testing.T) {
	after := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	code, stdout, stderr := accessCLI(t, after, "--user", "erin", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep access.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Entries) != 2 {
		t.Fatalf("%v: %s", err, stdout)
	}
	for _, e := range rep.Entries {
		if e.Status != access.Expired || e.Expires != "2027-01-31" || e.Role != "read" || e.Account != "acme_erin" {
			t.Errorf("entry %+v", e)
		}
	}
	_, stdout, _ = accessCLI(t, after, "--cluster", "prod-orders", "--database", "orders")
	if !strings.Contains(stdout, "erin (expired 2027-01-31)") {
		t.Errorf("cluster view:\n%s", stdout)
	}
}

func TestAccessErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give one of --user or --cluster"},
		{[]string{"--user", "erin", "--cluster", "prod-orders"}, "give one of --user or --cluster"},
		{[]string{"--user", "eri"}, `no user file declares "eri" (did you mean "erin"?)`},
		{[]string{"--cluster", "prod-order"}, `no cluster file declares "prod-order" (did you mean "prod-orders"?)`},
		{[]string{"--cluster", "prod-orders", "--database", "nope"}, `manages no database "nope" (it manages orders, payments)`},
		{[]string{"--database", "orders", "--user", "erin"}, "--database needs --cluster"},
		{[]string{"--user", "erin", "--format", "yaml"}, `unknown format "yaml"`},
		{[]string{"--user", "erin", "extra"}, `unexpected argument "extra"`},
	} {
		code, stdout, stderr := accessCLI(t, planNow, tc.args...)
		if code != exitError || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("access %v: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}
