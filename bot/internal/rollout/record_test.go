package rollout

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMerge(t *testing.T) {
	v := versionAt(0)
	first := update(v, 2, t0.Add(time.Minute))
	// c01 fails at assume-role in the publish run: hana is not created there.
	first.Clusters[1] = Cluster{Name: "c01", Status: Failed, Stage: "assume-role", Error: "AccessDenied", At: t0.Add(time.Minute)}
	first.Accounts = first.Accounts[:1]
	r := Merge(nil, first)
	if r.Outcome() != NotOK || len(r.Runs) != 1 || r.Commit == "" || r.PullRequest != "42" {
		t.Fatalf("first run: %+v", r)
	}
	p := r.People()
	if len(p) != 1 || !slices.Equal(p[0].Now, []string{"c00"}) || len(p[0].Pending) != 1 || p[0].Pending[0].Why != "the cluster failed at assume-role" {
		t.Fatalf("people after the first run: %+v", p)
	}

	// A dry-run invoke afterwards changes nothing in the clusters' outcomes.
	dry := update(v, 2, t0.Add(2*time.Minute))
	dry.Run.Trigger, dry.Run.DryRun = "invoke", true
	for i := range dry.Clusters {
		dry.Clusters[i].DryRun, dry.Clusters[i].Status, dry.Clusters[i].Statements = true, Planned, 0
		dry.Accounts[i].DryRun = true
	}
	r = Merge(r, dry)
	if c, _ := r.FindCluster("c00"); c.Status != Applied || c.DryRun {
		t.Errorf("a dry run replaced an applied outcome: %+v", c)
	}
	if c, _ := r.FindCluster("c01"); c.Status != Failed || c.DryRun {
		// The applying run failed there: a dry run's plan does not make
		// the version applied.
		t.Errorf("c01 after the dry run: %+v", c)
	}
	if len(r.Runs) != 2 {
		t.Errorf("runs %d", len(r.Runs))
	}

	// The retry applies c01: hana is created there too; both creations stay.
	retry := update(v, 2, t0.Add(3*time.Minute))
	retry.Run.Trigger = "schedule"
	retry.Clusters[0].Status, retry.Clusters[0].Statements, retry.Clusters[0].Created = Unchanged, 0, 0
	retry.Accounts = retry.Accounts[1:]
	r = Merge(r, retry)
	if r.Outcome() != OK {
		t.Errorf("after the retry: %v %+v", r.Outcome(), r.Problems())
	}
	want := []Account{{User: "hana", Account: "acme_hana", Cluster: "c00", Event: Created}, {User: "hana", Account: "acme_hana", Cluster: "c01", Event: Created}}
	if diff := cmp.Diff(want, r.Accounts); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	p = r.People()
	if len(p) != 1 || !slices.Equal(p[0].Now, []string{"c00", "c01"}) || len(p[0].Pending) != 0 || !slices.Equal(p[0].Applied[Created], []string{"c00", "c01"}) {
		t.Errorf("people after the retry: %+v", p)
	}
	if got := r.Who(8); got != "acme_hana created on c00, c01" {
		t.Errorf("Who = %q", got)
	}

	// Runs are capped; the older ones are counted.
	for i := range MaxRuns + 3 {
		r = Merge(r, update(v, 2, t0.Add(time.Duration(10+i)*time.Minute)))
	}
	if len(r.Runs) != MaxRuns || r.RunsLeftOut != 6 || !r.UpdatedAt.Equal(r.Runs[MaxRuns-1].FinishedAt) {
		t.Errorf("%d runs kept, %d left out", len(r.Runs), r.RunsLeftOut)
	}
}

func TestMergeReplacesStateEvents(t *testing.T) {
	v := versionAt(0)
	u := update(v, 1, t0)
	u.Clusters[0].Status, u.Clusters[0].FailedAccountCount = Partial, 1
	u.Clusters[0].FailedAccounts = []FailedAccount{{Account: "acme_bob", User: "bob", Summary: "grant write on orders to acme_bob", Error: "Error 1142"}}
	u.Accounts = append(u.Accounts, Account{User: "bob", Account: "acme_bob", Cluster: "c00", Event: FailedEvent, Summary: "grant write on orders to acme_bob", Error: "Error 1142"},
		Account{User: "zed", Account: "acme_zed", Cluster: "c00", Event: Held, Summary: "drop acme_zed"})
	r := Merge(nil, u)
	if got := len(r.Problems()); got != 1 || r.Outcome() != NotOK {
		t.Fatalf("problems %+v", r.Problems())
	}
	next := update(v, 1, t0.Add(time.Hour))
	next.Clusters[0].Status = Unchanged
	next.Accounts = []Account{{User: "bob", Account: "acme_bob", Cluster: "c00", Event: Changed}}
	r = Merge(r, next)
	var events []string
	for _, a := range r.Accounts {
		events = append(events, a.Account+" "+string(a.Event))
	}
	if want := []string{"acme_bob changed", "acme_hana created"}; !slices.Equal(events, want) {
		t.Errorf("events %v, want %v (the failure and the held drop replaced, the creation kept)", events, want)
	}
}

func TestOutcome(t *testing.T) {
	at := t0.Add(time.Minute)
	base := func(mod func(*Update)) *Record {
		u := update(versionAt(0), 3, at)
		mod(&u)
		return Merge(nil, u)
	}
	for _, tc := range []struct {
		name     string
		r        *Record
		outcome  Outcome
		headline string
		state    string
	}{
		{"applied", base(func(*Update) {}), OK, "applied on 3 of 3 cluster(s)", "success"},
		{"nothing to do", base(func(u *Update) {
			for i := range u.Clusters {
				u.Clusters[i].Status = Unchanged
			}
			u.Accounts = nil
		}), OK, "nothing to change on 3 cluster(s): already in place", "success"},
		{"dry run", base(func(u *Update) {
			u.Run.DryRun, u.Run.ForcedDryRun = true, true
			for i := range u.Clusters {
				u.Clusters[i].Status, u.Clusters[i].DryRun, u.Clusters[i].Statements = Planned, true, 0
				u.Accounts[i].DryRun = true
			}
		}), DryRunOnly, "dry run: nothing was applied (6 change(s) planned on 3 of 3 cluster(s))", "success"},
		{"failed", base(func(u *Update) {
			u.Clusters[1].Status, u.Clusters[1].Stage = Failed, "connect"
		}), NotOK, "not applied everywhere: 1 of 3 cluster(s) need attention: c01 (failed at connect)", "failure"},
		{"partial and held", base(func(u *Update) {
			u.Clusters[0].Status = Partial
			u.Clusters[2].Held, u.Clusters[2].LimitTripped = 7, "7 drops exceed the removal limit of 5"
		}), NotOK, "not applied everywhere: 2 of 3 cluster(s) need attention: c00 (partial), c02 (drops held back)", "failure"},
		{"bundle refused", Merge(nil, Update{Version: versionAt(0), Run: Run{Trigger: "publish", BundleError: "bundle is not trusted", FinishedAt: at}}),
			NotOK, "the function refused the bundle: nothing was changed", "failure"},
		{"bundle refused after a run applied", Merge(base(func(*Update) {}),
			Update{Version: versionAt(0), Run: Run{Trigger: "schedule", BundleError: "refusing to roll back", FinishedAt: at.Add(time.Hour)}}),
			OK, "applied on 3 of 3 cluster(s)", "success"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Outcome(); got != tc.outcome {
				t.Errorf("Outcome = %s, want %s", got, tc.outcome)
			}
			if got := tc.r.Headline(); got != tc.headline {
				t.Errorf("Headline = %q, want %q", got, tc.headline)
			}
			if got := tc.r.CommitState(); got != tc.state {
				t.Errorf("CommitState = %s, want %s", got, tc.state)
			}
			if d := tc.r.StatusDescription(); len([]rune(d)) > 140 {
				t.Errorf("status description of %d characters", len([]rune(d)))
			}
		})
	}
}

func TestStatusDescriptionFits(t *testing.T) {
	u := update(versionAt(0), 200, t0)
	for i := range u.Clusters {
		u.Clusters[i].Name = strings.Repeat("x", 40) + u.Clusters[i].Name
		u.Clusters[i].Status, u.Clusters[i].Stage = Failed, "assume-role"
	}
	d := Merge(nil, u).StatusDescription()
	if n := len([]rune(d)); n > 140 || !strings.HasSuffix(d, "…") {
		t.Errorf("description %q (%d characters)", d, n)
	}
}

func TestPeopleOfAnUndeclaredAndARemovedAccount(t *testing.T) {
	u := update(versionAt(0), 1, t0)
	u.Accounts = []Account{
		{User: "gina", Account: "acme_gina", Cluster: "c00", Event: Dropped},
		{Account: "acme_bob", Host: "10.0.0.%", Cluster: "c00", Event: Dropped},
	}
	r := Merge(nil, u)
	p := r.People()
	if len(p) != 2 || p[0].Account != "acme_gina" || p[0].Declared || p[1].Account != "'acme_bob'@'10.0.0.%'" || p[1].User != "" {
		t.Fatalf("people %+v", p)
	}
	if len(r.Users) != 0 {
		t.Errorf("users %+v: only users the events name are kept", r.Users)
	}
	var b strings.Builder
	Text(&b, r, nil)
	for _, want := range []string{"acme_gina: dropped on c00; no longer declared", "'acme_bob'@'10.0.0.%': dropped on c00"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestValidVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"20260301T090000Z-ad6aa65e5287": true, versionAt(3): true,
		"": false, "20260301T090000Z-ad6aa65e528": false, "20260301T090000Z-AD6AA65E5287": false,
		"../20260301T090000Z-ad6aa65e5287": false, "20260301T090000Z-ad6aa65e5287/0": false,
	} {
		if ValidVersion(v) != ok {
			t.Errorf("ValidVersion(%q) = %v", v, !ok)
		}
	}
}
