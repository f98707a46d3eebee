package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/rollout"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/bundletest"
)

// record reads the version's rollout record, and the JSON of it as stored
// (decompressed), for tests that look for what must never be in it.
func (w *world) record(tb testing.TB, version string) (*rollout.Record, string) {
	tb.Helper()
	r, _, err := rollout.Read(context.Background(), w.ssm, w.pointer, version)
	if err != nil {
		tb.Fatalf("rollout record of %s: %v", version, err)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		tb.Fatal(err)
	}
	return r, string(raw)
}

// statusParameters lists every parameter under the status path.
func (w *world) statusParameters(tb testing.TB) []string {
	tb.Helper()
	out, err := w.ssm.GetParametersByPath(context.Background(), &ssm.GetParametersByPathInput{Path: aws.String(rollout.Path(w.pointer)), Recursive: aws.Bool(true)})
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, p := range out.Parameters {
		names = append(names, aws.ToString(p.Name))
	}
	return names
}

func invocation() Invocation {
	return Invocation{RequestID: "5e1b2c3d-aaaa-4bbb-8ccc-0123456789ab", Function: "arn:aws:lambda:eu-west-1:123456789012:function:dbusers",
		LogGroup: "/aws/lambda/dbusers", LogStream: "2026/03/01/[$LATEST]0123456789abcdef"}
}

// TestRecordOfARun: a publish-triggered run writes the record of its
// version with every cluster's outcome, what happened to each account,
// the run's request id (which every log line carries too), and nothing
// secret; a dry-run invoke afterwards leaves the applied outcome alone,
// and a scheduled run adds itself.
func TestRecordOfARun(t *testing.T) {
	t.Parallel()
	w, srv, conn, version := smallFleet(t)
	adminPassword := srv.adminPassword
	ctx := WithInvocation(context.Background(), invocation())
	var out syncBuffer
	rep, err := Handle(ctx, w.deps(&out, conn), testConfig(t, w), w.publishEvent(t))
	if err == nil || rep == nil {
		t.Fatalf("c-two is unreachable: want an error and a report, got %v %v", rep, err)
	}
	if rep.Record != rollout.HeadName(w.pointer, version) || rep.RecordError != "" {
		t.Errorf("report: record %q, error %q", rep.Record, rep.RecordError)
	}
	r, raw := w.record(t, version)
	if r.Version != version || r.Commit != "def456" || r.PullRequest != "42" || len(r.Runs) != 1 {
		t.Fatalf("record %+v", r)
	}
	run := r.Runs[0]
	if run.Trigger != "publish" || run.RequestID != invocation().RequestID || run.LogGroup != "/aws/lambda/dbusers" || run.SignedBy != w.key ||
		!slices.Equal(run.Failed, []string{"c-two"}) || run.Clusters != 2 || !run.Alert {
		t.Errorf("run %+v", run)
	}
	ok, _ := r.FindCluster("c-ok")
	two, _ := r.FindCluster("c-two")
	if ok.Status != rollout.Applied || ok.Created != 1 || ok.Environment != "prod" || ok.AccountID != acctA ||
		two.Status != rollout.Failed || two.Stage != StageConnect || !strings.Contains(two.Error, "connection refused") {
		t.Errorf("clusters %+v", r.Clusters)
	}
	want := []rollout.Account{{User: "app", Account: w.name + "_app", Cluster: "c-ok", Event: rollout.Created}}
	if !slices.Equal(r.Accounts, want) || len(r.Users) != 1 || r.Users[0].Auth != "password" || !slices.Equal(r.Users[0].Clusters, []string{"c-ok"}) {
		t.Errorf("accounts %+v, users %+v", r.Accounts, r.Users)
	}
	if r.Outcome() != rollout.NotOK {
		t.Errorf("outcome %s", r.Outcome())
	}
	for _, secret := range []string{adminPassword, "app-"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the record holds %q", secret)
		}
	}
	lines := out.lines(t)
	for _, l := range lines {
		if _, isEMF := l["_aws"]; !isEMF && l["request_id"] != invocation().RequestID {
			t.Errorf("a log line without the request id: %v", l)
		}
	}
	if emf := emfOf(t, lines); emf[MetricRolloutRecordErrors] != 0.0 {
		t.Errorf("EMF %v", emf)
	}

	// A dry-run invoke of c-ok: the record still says applied there.
	if _, err := Handle(ctx, w.deps(&out, conn), testConfig(t, w), []byte(`{"dry_run": true, "clusters": ["c-ok"]}`)); err != nil {
		t.Fatal(err)
	}
	r, _ = w.record(t, version)
	if c, _ := r.FindCluster("c-ok"); c.Status != rollout.Applied || c.DryRun || len(r.Runs) != 2 || !r.Runs[1].DryRun {
		t.Errorf("after a dry run: %+v, runs %+v", c, r.Runs)
	}
	// A scheduled run: unchanged on c-ok, the creation is still told.
	_, _ = Handle(ctx, w.deps(&out, conn), testConfig(t, w), readEvent(t, "scheduled_event.json"))
	r, _ = w.record(t, version)
	if c, _ := r.FindCluster("c-ok"); c.Status != rollout.Unchanged || len(r.Runs) != 3 || r.Runs[2].Trigger != "schedule" || !slices.Equal(r.Accounts, want) {
		t.Errorf("after the schedule: %+v, runs %d, accounts %+v", c, len(r.Runs), r.Accounts)
	}
	if got := w.statusParameters(t); len(got) != 2 {
		t.Errorf("status parameters %v, want the head and one chunk", got)
	}
}

// failingRecords fails every write under the status path, or blocks until
// its context ends, or panics.
type failingRecords struct {
	rollout.WriteAPI
	mode string
}

func (f failingRecords) PutParameter(ctx context.Context, in *ssm.PutParameterInput, opt ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	switch f.mode {
	case "block":
		<-ctx.Done()
		return nil, ctx.Err()
	case "panic":
		panic("a bug in the record's writer")
	}
	return nil, errors.New("AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/dbusers-control-plane is not authorized to perform: ssm:PutParameter")
}

// TestRecordFailureChangesNothingElse: a record that cannot be written,
// one whose write hangs, and one whose writer panics leave the run's
// report, error, alert and database work as they were; the failure is
// logged, said in the report and counted in RolloutRecordErrors; a hung
// write is bounded by the invocation's deadline.
func TestRecordFailureChangesNothingElse(t *testing.T) {
	for _, mode := range []string{"denied", "block", "panic"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			w, srv, conn, _ := smallFleet(t)
			deps := w.deps(&syncBuffer{}, conn)
			var out syncBuffer
			deps.Stdout = &out
			deps.Records = failingRecords{WriteAPI: w.ssm, mode: mode}
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			start := time.Now()
			rep, err := Handle(ctx, deps, testConfig(t, w), []byte(`{"dry_run": false, "clusters": ["c-ok"]}`))
			elapsed := time.Since(start)
			if err != nil || rep == nil || rep.Clusters[0].Status != "applied" || len(srv.accounts(t, w.name)) != 1 {
				t.Fatalf("the run: %+v, %v", rep, err)
			}
			if rep.Record != "" || rep.RecordError == "" {
				t.Errorf("report: record %q, error %q", rep.Record, rep.RecordError)
			}
			if mode == "block" && (elapsed > 7500*time.Millisecond || !strings.Contains(rep.RecordError, "deadline exceeded")) {
				t.Errorf("a hung record write took %s: %q", elapsed, rep.RecordError)
			}
			lines := out.lines(t)
			logged := false
			for _, l := range lines {
				logged = logged || (l["msg"] == "rollout record not written" && l["level"] == "ERROR")
			}
			if !logged {
				t.Error("the failure is not logged")
			}
			if emf := emfOf(t, lines); emf[MetricRolloutRecordErrors] != 1.0 || emf[MetricClustersOK] != 1.0 {
				t.Errorf("EMF %v", emf)
			}
		})
	}
}

// TestRecordOfARefusedBundle: a run that refuses the bundle writes, under
// the version the pointer names, that it refused it and changed nothing.
func TestRecordOfARefusedBundle(t *testing.T) {
	t.Parallel()
	w, srv, conn, _ := smallFleet(t)
	forged := bundletest.Forge(t, w.ssm, w.pointer, escalate(w.published(t)), attackOrigin(), nil)
	var out syncBuffer
	rep, err := Handle(context.Background(), w.deps(&out, conn), testConfig(t, w), w.publishEvent(t))
	checkNothingHappened(t, w, srv, conn, &out, rep, "is unsigned")
	if err == nil {
		t.Fatal("no error")
	}
	r, _ := w.record(t, forged.Version)
	if len(r.Clusters) != 0 || len(r.Runs) != 1 || !strings.Contains(r.Runs[0].BundleError, "is unsigned") || r.Outcome() != rollout.NotOK ||
		r.Commit != "" {
		t.Errorf("record %+v", r)
	}
	if !strings.Contains(r.Headline(), "refused the bundle") {
		t.Errorf("headline %q", r.Headline())
	}
}

// TestRecordPrunedWithTheVersions: records of versions beyond
// keep_versions go, as the bundle's versions do.
func TestRecordPrunedWithTheVersions(t *testing.T) {
	t.Parallel()
	w, _, conn, _ := smallFleet(t)
	content := w.published(t)
	content.Settings.SSM.KeepVersions = 2
	var versions []string
	for i := range 4 {
		content.Users[0].Description = strings.Repeat("v", i+1) // a new version each time
		versions = append(versions, w.publish(t, content, "c"+strings.Repeat("0", i)).Version)
		time.Sleep(1100 * time.Millisecond) // versions are named to the second
		if _, err := Handle(context.Background(), w.deps(&syncBuffer{}, conn), testConfig(t, w), []byte(`{"dry_run": true, "clusters": ["c-ok"]}`)); err != nil {
			t.Fatal(err)
		}
	}
	var left []string
	for _, n := range w.statusParameters(t) {
		v, _, _ := strings.Cut(strings.TrimPrefix(n, rollout.Path(w.pointer)+"/"), "/")
		if !slices.Contains(left, v) {
			left = append(left, v)
		}
	}
	slices.Sort(left)
	if !slices.Equal(left, versions[2:]) {
		t.Errorf("records of %v left, want %v", left, versions[2:])
	}
}

// TestPlanWritesNoRecord: a plan invoke writes nothing under the status
// path, and plan.go has no way to (it never reaches finish or the
// record's writer).
func TestPlanWritesNoRecord(t *testing.T) {
	t.Parallel()
	w, _, conn, _ := smallFleet(t)
	content := w.published(t)
	content.Users = append(content.Users, pwUser("newcomer", content.Users[0].Auth.Secret, "read", "c-ok"))
	var out syncBuffer
	if _, err := Invoke(context.Background(), w.deps(&out, conn), testConfig(t, w), planEvent(t, map[string]any{"bundle": candidate(t, content)})); err != nil {
		t.Fatal(err)
	}
	if got := w.statusParameters(t); len(got) != 0 {
		t.Errorf("a plan invoke wrote %v", got)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "plan.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && x.Name == "rollout" {
				t.Errorf("plan.go uses rollout.%s", n.Sel.Name)
			}
			if slices.Contains([]string{"finish", "writeRecord", "run", "Records"}, n.Sel.Name) {
				t.Errorf("plan.go reaches %s", n.Sel.Name)
			}
		}
		return true
	})
}

// TestAccountEvents: what a run did to each account, from the engine's
// result.
func TestAccountEventsOfAFleet(t *testing.T) {
	t.Parallel()
	w, _, conn, version := smallFleet(t)
	content := w.published(t)
	// app is removed on c-ok; old is a hand-made account there.
	if _, err := Handle(context.Background(), w.deps(&syncBuffer{}, conn), testConfig(t, w), []byte(`{"dry_run": false, "clusters": ["c-ok"]}`)); err != nil {
		t.Fatal(err)
	}
	content.Users = []config.User{}
	content.Users = append(content.Users, pwUser("app", w.published(t).Users[0].Auth.Secret, "read"))
	content.Users[0].Access = []config.Access{}
	pub := w.publish(t, content, "ghi789")
	if pub.Version == version {
		t.Fatal("no new version")
	}
	if _, err := Handle(context.Background(), w.deps(&syncBuffer{}, conn), testConfig(t, w), []byte(`{"dry_run": false, "clusters": ["c-ok"]}`)); err != nil {
		t.Fatal(err)
	}
	r, _ := w.record(t, pub.Version)
	if want := []rollout.Account{{User: "app", Account: w.name + "_app", Cluster: "c-ok", Event: rollout.Dropped}}; !slices.Equal(r.Accounts, want) {
		t.Errorf("accounts %+v, want %+v", r.Accounts, want)
	}
	_ = ssmbundle.StandardLimit
}
