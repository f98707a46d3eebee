package engine_test

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestReportGolden pins what a reviewer reads for a dry run: report.Text
// of a plan with every kind of change, on each server. The run uses a
// fixed clock and day; the test's prefix becomes "acme" and the server's
// version "<version>", so the file is the same on every machine.
func TestReportGolden(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		p := s.prefix
		seed := []string{
			// A departed colleague: no longer declared.
			fmt.Sprintf("CREATE USER '%s_mallory'@'%%' IDENTIFIED BY 'left-the-company'", p),
			fmt.Sprintf("GRANT SELECT, INSERT ON `%s`.* TO '%s_mallory'@'%%'", s.pattern(s.dbs[0]), p),
			// A service with more than its role: write, declared read.
			fmt.Sprintf("CREATE USER '%s_reporting'@'%%' IDENTIFIED BY '%s'", p, s.password("reporting")),
			fmt.Sprintf("GRANT SELECT, INSERT, UPDATE ON `%s`.* TO '%s_reporting'@'%%'", s.pattern(s.dbs[0]), p),
			// A service with a stale password and less than its role.
			fmt.Sprintf("CREATE USER '%s_legacy'@'%%' IDENTIFIED BY 'old-password'", p),
			fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s_legacy'@'%%'", s.pattern(s.dbs[1]), p),
			// Not managed: a look-alike and a protected account.
			fmt.Sprintf("CREATE USER '%sx_bob'@'%%' IDENTIFIED BY 'not-ours'", p),
			fmt.Sprintf("CREATE USER '%s_breakglass'@'%%' IDENTIFIED BY 'protected'", p),
			// A shared account nobody owns, with a grant on a managed database.
			fmt.Sprintf("CREATE USER '%sshared'@'%%' IDENTIFIED BY 'shared'", p),
			fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%sshared'@'%%'", s.pattern(s.dbs[0]), p),
		}
		for _, q := range seed {
			s.Exec(t, q)
		}
		temp := s.pwUser("temp", "read", s.dbs[2])
		temp.Access[0].Expires = "2026-02-01"
		settings := s.settings()
		settings.ProtectedAccounts = []string{p + "_breakglass"}
		today := time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC)
		st, c := s.stateOn(t, s.Engine, today, settings,
			s.pwUser("app", "write", s.dbs[0], s.dbs[1]),
			s.pwUser("reporting", "read", s.dbs[0]),
			s.pwUser("legacy", "write", s.dbs[1]),
			s.pwUser("ghost", "read", s.dbs[0]),
			temp)
		opt := s.options(st, c)
		opt.Apply = false
		opt.Now = func() time.Time { return today }
		opt.Passwords = maps.Clone(s.passwords)
		delete(opt.Passwords, secret("ghost"))
		res := s.reconcile(t, opt)
		if res.Status != engine.Planned || res.Writes != 0 {
			t.Fatalf("dry run: status %s, %d writes, error %v; want planned and no write", res.Status, res.Writes, res.Err)
		}

		// The server is shared with other tests: keep the unmanaged
		// accounts this test made.
		res.Unmanaged = slices.DeleteFunc(res.Unmanaged, func(u mysqlstate.Unmanaged) bool { return !strings.HasPrefix(u.Account.User, p) })
		var buf bytes.Buffer
		report.Text(&buf, res, c.Flavor(), true)
		var version string
		if err := s.DB.QueryRow("SELECT VERSION()").Scan(&version); err != nil {
			t.Fatal(err)
		}
		got := strings.ReplaceAll(buf.String(), version, "<version>")
		got = strings.ReplaceAll(got, p, "acme")

		path := filepath.Join("testdata", "report_dry_run."+s.Name+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("report differs from %s (-want +got; go test -update rewrites it):\n%s", path, diff)
		}
	})
}
