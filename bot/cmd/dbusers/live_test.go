package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/dbusers/dbusers/bot/internal/ghcomment/ghcommenttest"
	"github.com/dbusers/dbusers/bot/internal/liveplan"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
)

// fakeLambda answers Invoke with a canned response and keeps the request.
type fakeLambda struct {
	out *lambda.InvokeOutput
	err error
	got []*lambda.InvokeInput
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.got = append(f.got, in)
	return f.out, f.err
}

func liveCLI(t *testing.T, environ map[string]string, client InvokeAPI, clientErr error, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, now: func() time.Time { return planNow },
		getenv: func(k string) string { return environ[k] },
		newLambda: func(context.Context) (InvokeAPI, error) {
			if clientErr != nil {
				return nil, clientErr
			}
			return client, nil
		}}
	code := run(context.Background(), e, args)
	return code, out.String(), errOut.String()
}

// TestPlanLiveDegrades: every way the live plan can be missing costs the
// review one line and never its exit status.
func TestPlanLiveDegrades(t *testing.T) {
	r := prRepo(t)
	report, _ := json.Marshal(liveplan.Report{Clusters: []liveplan.Cluster{{Name: "prod-orders", Status: liveplan.Unchanged}}})
	for name, tc := range map[string]struct {
		environ   map[string]string
		client    *fakeLambda
		clientErr error
		note      string
	}{
		"no function":    {environ: map[string]string{}, note: "no plan function named"},
		"fork":           {environ: map[string]string{envPlanFunction: "dbusers-plan", envLiveSkipped: "fork pull request: the live plan runs only for this repository's"}, note: "live plan skipped: fork pull request"},
		"no credentials": {environ: map[string]string{envPlanFunction: "dbusers-plan"}, clientErr: errNoCredentials, note: "no AWS credentials"},
		"invoke fails": {environ: map[string]string{envPlanFunction: "dbusers-plan"}, client: &fakeLambda{err: errors.New("AccessDeniedException: not\nauthorized")},
			note: "live plan failed: invoke dbusers-plan: AccessDeniedException: not authorized"},
		"function error": {environ: map[string]string{envPlanFunction: "dbusers-plan"},
			client: &fakeLambda{out: &lambda.InvokeOutput{FunctionError: aws.String("Unhandled"), Payload: []byte(`{"errorMessage":"plan invoke: plan.bundle: json: boom"}`)}},
			note:   "live plan refused by dbusers-plan: plan invoke: plan.bundle: json: boom"},
		"not a plan": {environ: map[string]string{envPlanFunction: "dbusers-plan"}, client: &fakeLambda{out: &lambda.InvokeOutput{Payload: []byte(`{"trigger":"invoke"}`)}},
			note: "did not answer with a live plan"},
		"ok": {environ: map[string]string{envPlanFunction: "dbusers-plan"}, client: &fakeLambda{out: &lambda.InvokeOutput{Payload: report}}},
	} {
		t.Run(name, func(t *testing.T) {
			var client InvokeAPI
			if tc.client != nil {
				client = tc.client
			}
			code, stdout, stderr := liveCLI(t, tc.environ, client, tc.clientErr, "plan", "--base", "main", "--root", r.Dir, "--live", "--format", "json")
			if code != exitChanges {
				t.Fatalf("exit %d, want %d (the live plan never decides it):\n%s", code, exitChanges, stderr)
			}
			var got struct {
				Live     *liveplan.Report `json:"live"`
				LiveNote string           `json:"live_note"`
				Users    []any            `json:"users"`
			}
			if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got.Users) == 0 {
				t.Fatalf("no review: %v\n%s", err, stdout)
			}
			if tc.note == "" {
				if got.Live == nil || got.LiveNote != "" {
					t.Errorf("live %v, note %q", got.Live, got.LiveNote)
				}
				return
			}
			if got.Live != nil || !strings.Contains(got.LiveNote, tc.note) || strings.Contains(got.LiveNote, "\n") {
				t.Errorf("live %v, note %q; want one line saying %q", got.Live, got.LiveNote, tc.note)
			}
			if !strings.Contains(stderr, tc.note) {
				t.Errorf("stderr %q does not say it", stderr)
			}
		})
	}
}

// TestPlanLiveSendsTheCandidate: the invoke carries the head's bundle and
// the merge base's, as publish would build them, and nothing else.
func TestPlanLiveSendsTheCandidate(t *testing.T) {
	r := prRepo(t)
	report, _ := json.Marshal(liveplan.Report{Clusters: []liveplan.Cluster{}})
	client := &fakeLambda{out: &lambda.InvokeOutput{Payload: report}}
	head := r.Git("rev-parse", "HEAD")
	code, _, stderr := liveCLI(t, nil, client, nil, "plan", "--base", "main", "--head", "feature", "--root", r.Dir, "--live", "--function", "arn:aws:lambda:eu-west-1:123456789012:function:dbusers-plan")
	if code != exitChanges || len(client.got) != 1 {
		t.Fatalf("exit %d, %d invoke(s): %s", code, len(client.got), stderr)
	}
	in := client.got[0]
	if aws.ToString(in.FunctionName) != "arn:aws:lambda:eu-west-1:123456789012:function:dbusers-plan" || in.InvocationType != "" {
		t.Errorf("invoked %s as %q, want a synchronous invoke of the named function", aws.ToString(in.FunctionName), in.InvocationType)
	}
	var ev map[string]map[string]string
	if err := json.Unmarshal(in.Payload, &ev); err != nil || len(ev) != 1 || len(ev["plan"]) != 2 {
		t.Fatalf("payload %s: %v", in.Payload, err)
	}
	candidate, err := ssmbundle.DecodeCandidate("bundle", ev["plan"]["bundle"])
	if err != nil {
		t.Fatal(err)
	}
	base, err := ssmbundle.DecodeCandidate("base", ev["plan"]["base_bundle"])
	if err != nil {
		t.Fatal(err)
	}
	names := func(b *ssmbundle.Bundle) string {
		var n []string
		for _, u := range b.Content.Users {
			n = append(n, u.Name)
		}
		return strings.Join(n, ",")
	}
	if candidate.Meta.Commit != head || !strings.Contains(names(candidate), "henry") || strings.Contains(names(candidate), "frank") {
		t.Errorf("candidate %s: %s", candidate.Meta.Commit, names(candidate))
	}
	if !strings.Contains(names(base), "frank") || strings.Contains(names(base), "henry") || strings.Contains(names(base), "ivan") {
		t.Errorf("base (the merge base, without main's later ivan): %s", names(base))
	}
}

// TestCommentLive: `dbusers comment --live` posts the live plan in the
// sticky comment, drift marked; without credentials the comment says so in
// one line and is posted all the same.
func TestCommentLive(t *testing.T) {
	r := prRepo(t)
	f := ghcommenttest.NewServer(t)
	environ := actionsEnv(t, f)
	environ[envPlanFunction] = "dbusers-plan"
	rep := liveplan.Report{ReadAt: planNow, Clusters: []liveplan.Cluster{{Name: "prod-orders", Status: liveplan.Planned, Environment: "prod", Production: true,
		Changes: []liveplan.Change{{Change: plan.Change{Account: mysqlstate.AccountID{User: "acme_frank", Host: "%"}, User: "frank",
			Summary: "drop acme_frank: no user file declares frank", Op: plan.Drop{}}, Statement: "DROP USER 'acme_frank'@'%'"},
			{Change: plan.Change{Account: mysqlstate.AccountID{User: "acme_alice", Host: "%"}, User: "alice",
				Summary: "revoke global PROCESS from acme_alice", Op: plan.RevokeGlobal{Privileges: []string{"PROCESS"}}},
				Statement: "REVOKE PROCESS ON *.* FROM 'acme_alice'@'%'", Drift: true}}}}}
	payload, _ := json.Marshal(rep)
	code, stdout, stderr := liveCLI(t, environ, &fakeLambda{out: &lambda.InvokeOutput{Payload: payload}}, nil, "comment", "--base", "main", "--root", r.Dir, "--live")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	body := f.BotComments()[0].Body
	for _, want := range []string{"#### Live plan", "DROP USER 'acme_frank'@'%'", "**drift:**", "REVOKE PROCESS ON *.* FROM 'acme_alice'@'%'"} {
		if !strings.Contains(body, want) {
			t.Errorf("the comment lacks %q:\n%s", want, body)
		}
	}
	code, _, stderr = liveCLI(t, environ, nil, errNoCredentials, "comment", "--base", "main", "--root", r.Dir, "--live")
	body = f.BotComments()[0].Body
	if code != exitOK || strings.Contains(body, "#### Live plan") || strings.Count(body, "no AWS credentials") != 1 {
		t.Errorf("without credentials: exit %d, comment:\n%s\n%s", code, body, stderr)
	}
}
