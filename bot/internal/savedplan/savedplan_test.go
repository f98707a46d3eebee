package savedplan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
)

func grant(user, db string) plan.Change {
	return plan.Change{Account: mysqlstate.AccountID{User: user, Host: "%"}, Summary: "grant read on " + db + " to " + user,
		Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Database: db, Pattern: db}, Privileges: []string{"SELECT"}}}
}

func result(changes ...plan.Change) *engine.Result {
	p := &plan.Plan{Cluster: "local", Changes: changes}
	return &engine.Result{Cluster: "local", Server: "MariaDB 10.11.19", Plan: p,
		Fingerprint: &engine.Fingerprint{State: strings.Repeat("a", 64), Plan: p.Digest()}}
}

// TestRoundTrip: what Write writes, Read reads back unchanged, mode 0600,
// and a failed run has no plan to save.
func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.json")
	f, err := New(result(grant("acme_a", "orders")), flavor.MariaDB, time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC), "v1.2.3", "abc")
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(path, f); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	got, err := Read(path, "local")
	if err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != f.Fingerprint || len(got.Changes) != 1 || got.Changes[0].Statement != f.Changes[0].Statement || !got.MadeAt.Equal(f.MadeAt) {
		t.Errorf("read back %+v, wrote %+v", got, f)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("Write left %d files, want only the plan", len(entries))
	}
	if _, err := New(&engine.Result{Cluster: "local", Status: engine.Failed}, flavor.MariaDB, time.Now(), "", ""); err != ErrNoPlan {
		t.Errorf("New of a failed run: %v, want ErrNoPlan", err)
	}
}

// TestDifference: the statements only one side has, counting repeats,
// ignoring ended sessions, at most max lines.
func TestDifference(t *testing.T) {
	a, b, c := grant("acme_a", "orders"), grant("acme_b", "orders"), grant("acme_c", "orders")
	kill := plan.Change{Account: a.Account, Summary: "end session 9", Op: plan.Disconnect{
		Session: mysqlstate.Session{ID: 9, User: "acme_a"}, Via: plan.KillConnection}}
	saved, err := New(result(a, b, b, kill), flavor.MariaDB, time.Now(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	got := Difference(saved, &plan.Plan{Changes: []plan.Change{b, c}}, flavor.MariaDB, 0)
	want := []string{
		"- GRANT SELECT ON `orders`.* TO 'acme_a'@'%'",
		"- GRANT SELECT ON `orders`.* TO 'acme_b'@'%'",
		"+ GRANT SELECT ON `orders`.* TO 'acme_c'@'%'",
	}
	if !slices.Equal(got, want) {
		t.Errorf("difference:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := Difference(saved, &plan.Plan{Changes: []plan.Change{a, b, b}}, flavor.MariaDB, 0); len(got) != 0 {
		t.Errorf("the same plan but its sessions: %q, want no difference", got)
	}
	if got := Difference(saved, nil, flavor.MariaDB, 2); len(got) != 2 || got[1] != "... and 2 more" {
		t.Errorf("limited to 2 lines: %q", got)
	}
}
