package engine_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/engine"
)

// TestExpect: a dry run's fingerprint is the same for every read of an
// unchanged server; a run that expects it applies, and a run that expects
// a fingerprint the server no longer gives stops before its first write.
func TestExpect(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, s *testServer) {
		st, c := s.state(t, s.settings(),
			s.pwUser("app", "write", s.dbs[0]),
			s.pwUser("old", "read", s.dbs[1]))
		s.mustApply(t, s.options(st, c))
		// old is no longer declared, app is downgraded.
		st, c = s.state(t, s.settings(), s.pwUser("app", "read", s.dbs[0]))
		dry := s.options(st, c)
		dry.Apply = false
		first, second := s.reconcile(t, dry), s.reconcile(t, dry)
		if first.Fingerprint == nil || first.Status != engine.Planned {
			t.Fatalf("dry run: status %s, fingerprint %v, error %v", first.Status, first.Fingerprint, first.Err)
		}
		if *first.Fingerprint != *second.Fingerprint {
			t.Fatalf("two reads of an unchanged server: fingerprints %+v and %+v", *first.Fingerprint, *second.Fingerprint)
		}

		// The server changes: a managed account made by hand. Stale on
		// both counts, and nothing sent.
		s.Exec(t, fmt.Sprintf("CREATE USER '%s'@'%%'", s.acct("byhand")))
		opt := s.options(st, c)
		opt.Expect = first.Fingerprint
		res := s.reconcile(t, opt)
		if !errors.Is(res.Err, engine.ErrStalePlan) || res.Writes != 0 || len(res.Applied) != 0 {
			t.Fatalf("stale expectation: error %v, %d writes; want ErrStalePlan and no write", res.Err, res.Writes)
		}
		if res.Fingerprint.State == first.Fingerprint.State || res.Fingerprint.Plan == first.Fingerprint.Plan {
			t.Errorf("an account made by hand changed neither the state's nor the plan's digest: %+v", *res.Fingerprint)
		}
		if !s.exists(t, s.acct("old")) || !s.exists(t, s.acct("byhand")) {
			t.Error("a stale run dropped an account")
		}

		// A privilege granted by hand to a managed account (which the plan
		// then also revokes) changes the state's digest.
		s.Exec(t, fmt.Sprintf("DROP USER '%s'@'%%'", s.acct("byhand")))
		again := s.reconcile(t, dry)
		if *again.Fingerprint != *first.Fingerprint {
			t.Fatalf("the server put back: fingerprint %+v, want %+v", *again.Fingerprint, *first.Fingerprint)
		}
		s.Exec(t, fmt.Sprintf("GRANT DELETE ON `%s`.* TO '%s'@'%%'", s.dbs[0], s.acct("app")))
		if fp := s.reconcile(t, dry).Fingerprint; fp.State == first.Fingerprint.State {
			t.Error("a grant made by hand did not change the state's digest")
		}
		s.Exec(t, fmt.Sprintf("REVOKE DELETE ON `%s`.* FROM '%s'@'%%'", s.dbs[0], s.acct("app")))

		// As it was: the expected plan applies.
		res = s.reconcile(t, opt)
		if res.Err != nil || res.Status != engine.Applied {
			t.Fatalf("expected plan on the server it was made from: status %s, error %v", res.Status, res.Err)
		}
		if s.exists(t, s.acct("old")) {
			t.Errorf("%s was not dropped", s.acct("old"))
		}
	})
}
