package fleet

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// clusterReport returns the report of the named cluster.
func clusterReport(t *testing.T, rep *Report, name string) ClusterReport {
	t.Helper()
	if rep == nil {
		t.Fatal("no report")
	}
	for _, c := range rep.Clusters {
		if c.Cluster == name {
			return c
		}
	}
	t.Fatalf("no report for cluster %s in %+v", name, rep.Clusters)
	return ClusterReport{}
}

// TestHandleRefusesUnmanagedAccount: with DBUSERS_MANAGED_ACCOUNTS set, a
// cluster in another account fails at stage "account" before any call to
// AWS (no role assumed, no secret read, no connection), and the clusters
// in managed accounts still run.
func TestHandleRefusesUnmanagedAccount(t *testing.T) {
	t.Parallel()
	w, srv, conn, _ := smallFleet(t) // c-ok in acctA, c-two in acctB
	cfg := testConfig(t, w)
	cfg.ManagedAccounts = map[string]bool{acctA: true}
	var out syncBuffer
	rep, err := Handle(context.Background(), w.deps(&out, conn), cfg, []byte(`{"dry_run": false}`))
	if err == nil || !strings.Contains(err.Error(), "1 of 2 cluster(s) failed: c-two") {
		t.Fatalf("error = %v", err)
	}

	two := clusterReport(t, rep, "c-two")
	if two.Stage != StageAccount || !strings.Contains(two.Error, "cluster c-two is in account "+acctB+", which this deployment does not manage (DBUSERS_MANAGED_ACCOUNTS)") {
		t.Errorf("c-two: stage %q, error %q", two.Stage, two.Error)
	}
	for _, call := range w.sts.calls {
		if strings.Contains(call, acctB) {
			t.Errorf("a role in the unmanaged account was assumed: %s", call)
		}
	}
	for _, r := range w.secrets.all() {
		if strings.Contains(w.sts.roleOf(r.key), acctB) {
			t.Errorf("a secret was read in the unmanaged account: %+v", r)
		}
	}
	if _, ok := conn.login("c-two"); ok {
		t.Error("the cluster in the unmanaged account was connected to")
	}

	if ok := clusterReport(t, rep, "c-ok"); ok.Failed() {
		t.Errorf("c-ok in a managed account failed: %s: %s", ok.Stage, ok.Error)
	}
	if got := srv.accounts(t, w.name); len(got) != 1 || got[0] != w.name+"_app" {
		t.Errorf("accounts on c-ok: %v", got)
	}
	if msgs := w.sns.messages(); len(msgs) != 1 || !strings.Contains(aws.ToString(msgs[0].Message), "c-two") {
		t.Errorf("SNS messages %+v; want one naming c-two", msgs)
	}
}

// otherAccountSTS answers every AssumeRole with credentials that STS says
// belong to account: a role ARN that resolves elsewhere than it reads.
type otherAccountSTS struct {
	api     AssumeRoleAPI
	account string
}

func (s otherAccountSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, opt ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	out, err := s.api.AssumeRole(ctx, in, opt...)
	if err != nil {
		return nil, err
	}
	out.AssumedRoleUser = &ststypes.AssumedRoleUser{
		Arn:           aws.String("arn:aws:sts::" + s.account + ":assumed-role/dbusers-management/" + SessionName),
		AssumedRoleId: aws.String("AROAEXAMPLE:" + SessionName),
	}
	return out, nil
}

// TestHandleRefusesCredentialsFromAnotherAccount: credentials that STS
// issued in another account than the cluster's are never used.
func TestHandleRefusesCredentialsFromAnotherAccount(t *testing.T) {
	t.Parallel()
	w, srv, conn, _ := smallFleet(t)
	var out syncBuffer
	deps := w.deps(&out, conn)
	deps.STS = otherAccountSTS{api: w.sts, account: acctC}
	rep, err := Handle(context.Background(), deps, testConfig(t, w), []byte(`{"dry_run": false, "clusters": ["c-ok"]}`))
	if err == nil || !strings.Contains(err.Error(), "1 of 1 cluster(s) failed: c-ok") {
		t.Fatalf("error = %v", err)
	}
	ok := clusterReport(t, rep, "c-ok")
	want := `assuming arn:aws:iam::` + acctA + `:role/dbusers-management gave credentials in account "` + acctC + `", not the cluster's account ` + acctA
	if ok.Stage != StageAssumeRole || !strings.Contains(ok.Error, want) {
		t.Errorf("c-ok: stage %q, error %q; want %q", ok.Stage, ok.Error, want)
	}
	if reads := w.secrets.all(); len(reads) != 0 {
		t.Errorf("secrets were read with the foreign credentials: %+v", reads)
	}
	if _, connected := conn.login("c-ok"); connected {
		t.Error("c-ok was connected to")
	}
	if got := srv.accounts(t, w.name); len(got) != 0 {
		t.Errorf("accounts were created: %v", got)
	}
}
