package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

// TestPreviewPlansWithoutWriting: the live plan of a candidate that adds
// carol and removes bob, on a server where someone granted alice INSERT
// by hand, shows all three with their statements, marks alice's revoke as
// drift (the merged configuration would revoke it too), and leaves the
// server exactly as it was.
func TestPreviewPlansWithoutWriting(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		db := s.dbs[0]
		base, c := s.state(t, s.settings(), s.pwUser("alice", "read", db), s.pwUser("bob", "write", db))
		s.mustApply(t, s.options(base, c))
		s.Exec(t, "GRANT INSERT ON `"+s.pattern(db)+"`.* TO '"+s.acct("alice")+"'@'%'")

		head, hc := s.state(t, s.settings(), s.pwUser("alice", "read", db), s.pwUser("carol", "read", db))
		names := []string{s.acct("alice"), s.acct("bob"), s.acct("carol")}
		before := s.snapshot(t, names...)

		res := engine.Preview(ctx10(t), s.DB, engine.PreviewOptions{State: head, Cluster: hc, Base: base, Passwords: s.passwords})
		if res.Err != nil || res.Status != engine.Planned {
			t.Fatalf("preview: %s, %v", res.Status, res.Err)
		}
		if diff := cmp.Diff(before, s.snapshot(t, names...)); diff != "" {
			t.Fatalf("the preview changed the server (-before +after):\n%s", diff)
		}
		if res.Server == "" || res.ReadAt.IsZero() || res.Queries == 0 {
			t.Errorf("server %q, read at %v, %d queries", res.Server, res.ReadAt, res.Queries)
		}
		drift := map[string]bool{}
		for i, ch := range res.Plan.Changes {
			drift[ch.Account.User+" "+string(ch.Action())] = res.Drift[i]
		}
		want := map[string]bool{
			s.acct("carol") + " " + string(plan.CreateUser): false,
			s.acct("carol") + " " + string(plan.Grant):      false,
			s.acct("bob") + " " + string(plan.DropUser):     false,
			s.acct("alice") + " " + string(plan.Revoke):     true,
		}
		if diff := cmp.Diff(want, drift); diff != "" {
			t.Errorf("changes and their drift (-want +got):\n%s\n%s", diff, summariesOf(res.Plan.Changes))
		}

		// Without a base, nothing is drift.
		res = engine.Preview(ctx10(t), s.DB, engine.PreviewOptions{State: head, Cluster: hc, Passwords: s.passwords})
		for i, d := range res.Drift {
			if d {
				t.Errorf("without a base, %s is drift", res.Plan.Changes[i].Summary)
			}
		}
	})
}

// TestPreviewNeverWaitsForARun: a run holding the reconcile lock does not
// delay a preview, which says that it read during a run.
func TestPreviewNeverWaitsForARun(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		holder, err := s.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		var got int
		if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK(?, 5)", engine.LockName(st.Prefix)).Scan(&got); err != nil || got != 1 {
			t.Fatalf("take the lock: %d, %v", got, err)
		}
		t0 := time.Now()
		res := engine.Preview(ctx, s.DB, engine.PreviewOptions{State: st, Cluster: c, Passwords: s.passwords})
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("preview took %s while a run held the lock", took)
		}
		if res.Err != nil || res.Status != engine.Planned || !res.RunActive {
			t.Errorf("preview: %s, %v, run active %v; want planned, run active", res.Status, res.Err, res.RunActive)
		}
		if err := holder.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", engine.LockName(st.Prefix)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		// And a run is never kept waiting by a preview: it takes no lock.
		res = engine.Preview(ctx, s.DB, engine.PreviewOptions{State: st, Cluster: c, Passwords: s.passwords})
		if res.RunActive {
			t.Error("run active after the lock was released")
		}
	})
}

// TestPreviewRefusesAnotherEngine: the plan fails as the run would.
func TestPreviewRefusesAnotherEngine(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		other := "mariadb-10.11"
		if s.Flavor == flavor.MariaDB {
			other = "aurora-mysql-3"
		}
		st, c := s.stateAs(t, other, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		res := engine.Preview(ctx10(t), s.DB, engine.PreviewOptions{State: st, Cluster: c, Passwords: s.passwords})
		if res.Status != engine.Failed || res.Err == nil || !strings.Contains(res.Error, c.Name) || !strings.Contains(res.Error, "engine mismatch") {
			t.Errorf("preview of a %s cluster on %s: %s, %q", other, res.Server, res.Status, res.Error)
		}
	})
}

func TestIsRead(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1":                              true,
		"  select User FROM mysql.user":         true,
		"\nSHOW GRANTS":                         true,
		"SELECT ';' AS x":                       true,
		`SELECT 'it\'s; fine'`:                  true,
		"SELECT 1;":                             true,
		"SELECT 1; DROP USER x":                 false,
		`SELECT 'a\\'; DROP USER x`:             false,
		"SELECT `a;b` FROM t":                   true,
		"GRANT SELECT ON *.* TO x":              false,
		"DROP USER 'x'@'%'":                     false,
		"/* SELECT */ DROP USER x":              false,
		"SET SESSION sql_mode = ''":             false,
		"KILL 12":                               false,
		"CALL mysql.rds_kill(12)":               false,
		"":                                      false,
		"SELECTED":                              false,
		"SELECT(1)":                             true,
		"WITH x AS (SELECT 1) DELETE FROM t":    false,
		"SELECT 1 INTO OUTFILE '/tmp/x'":        true, // no privilege for it; FILE is never granted to either login
		"SHOW GRANTS; CREATE USER 'x'@'%'":      false,
		"SELECT \"a;\" ; SELECT 2":              false,
		"select 1 -- ; drop user x":             false,
		"SELECT CONCAT('x', \"y\", `z`) FROM t": true,
	} {
		if got := engine.IsRead(q); got != want {
			t.Errorf("IsRead(%q) = %v, want %v", q, got, want)
		}
	}
}

func summariesOf(cs []plan.Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Summary + "\n")
	}
	return b.String()
}

// TestLockWaitSaysWhoHoldsIt: a run waiting for the lock tells the person
// at the terminal which connection holds it.
func TestLockWaitSaysWhoHoldsIt(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		ctx := ctx10(t)
		holder, err := s.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		var got, id int
		if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK(?, 5), CONNECTION_ID()", engine.LockName(st.Prefix)).Scan(&got, &id); err != nil || got != 1 {
			t.Fatalf("take the lock: %d, %v", got, err)
		}
		var heard []string
		opt := s.options(st, c)
		opt.LockTimeout = 2 * time.Second
		opt.Progress = func(msg string) { heard = append(heard, msg) }
		res := s.reconcile(t, opt)
		if !errors.Is(res.Err, engine.ErrLocked) {
			t.Fatalf("run: %v, want ErrLocked", res.Err)
		}
		want := fmt.Sprintf("held by connection %d", id)
		if len(heard) == 0 || !strings.Contains(heard[0], want) || !strings.Contains(heard[0], engine.LockName(st.Prefix)) {
			t.Errorf("progress %q, want it to say %q", heard, want)
		}
	})
}
