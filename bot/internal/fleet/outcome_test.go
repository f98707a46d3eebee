package fleet

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbusers/dbusers/bot/internal/engine"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

func sampleReport() *Report {
	return &Report{
		Trigger: TriggerPublish, ConfigVersion: "20261127T101229Z-0f3e5c7a9b1d", Commit: "abc123",
		Clusters: []ClusterReport{
			{Cluster: "a-ok", AccountID: "111111111111", Region: "eu-west-1", Status: engine.Applied, Changes: 5, Statements: 7, UsersCreated: 2, UsersDropped: 1},
			{Cluster: "b-down", AccountID: "111111111111", Region: "eu-west-1", Status: engine.Failed, Stage: StageConnect,
				Error: "cluster b-down: connect to b.example port 3306 as admin: dial tcp: connection refused"},
			{Cluster: "c-limit", AccountID: "222222222222", Region: "us-east-2", Status: engine.Applied, Statements: 3, UsersCreated: 1,
				LimitTripped: "removal limit tripped on c-limit: 3 of 4 managed accounts would be dropped, the limit allows 1", Held: 3},
			{Cluster: "d-secret", AccountID: "222222222222", Region: "us-east-2", Status: engine.Failed, Stage: StageAdminSecret,
				Error: "cluster d-secret: admin secret rds/d: not found"},
			{Cluster: "e-same", Status: engine.Unchanged},
		},
		Failed:        []string{"b-down", "d-secret"},
		LimitsTripped: []string{"c-limit"},
		DurationMS:    1234.5,
	}
}

func TestWriteEMF(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	if err := WriteEMF(&buf, sampleReport(), at); err != nil {
		t.Fatal(err)
	}
	line := buf.Bytes()
	if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("EMF must be exactly one line: %q", line)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64 `json:"Timestamp"`
			CloudWatchMetrics []struct {
				Namespace  string     `json:"Namespace"`
				Dimensions [][]string `json:"Dimensions"`
				Metrics    []struct {
					Name string `json:"Name"`
					Unit string `json:"Unit"`
				} `json:"Metrics"`
			} `json:"CloudWatchMetrics"`
		} `json:"_aws"`
	}
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatalf("EMF is not valid JSON: %v", err)
	}
	var root map[string]any
	if err := json.Unmarshal(line, &root); err != nil {
		t.Fatal(err)
	}
	if doc.AWS.Timestamp != at.UnixMilli() {
		t.Errorf("Timestamp %d, want %d", doc.AWS.Timestamp, at.UnixMilli())
	}
	if len(doc.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("want one metric directive, got %d", len(doc.AWS.CloudWatchMetrics))
	}
	dir := doc.AWS.CloudWatchMetrics[0]
	if dir.Namespace != "dbusers" {
		t.Errorf("Namespace %q", dir.Namespace)
	}
	// One dimension set with no dimension: fleet-wide series only.
	if len(dir.Dimensions) != 1 || len(dir.Dimensions[0]) != 0 {
		t.Errorf("Dimensions %v, want [[]]", dir.Dimensions)
	}
	var names []string
	for _, m := range dir.Metrics {
		names = append(names, m.Name)
		if m.Unit == "" {
			t.Errorf("metric %s has no unit", m.Name)
		}
		if _, ok := root[m.Name].(float64); !ok {
			t.Errorf("metric %s has no numeric value on the root node", m.Name)
		}
	}
	// The names alarms are built on; changing one breaks a deployed alarm.
	want := []string{"ClustersOK", "ClustersFailed", "ClustersPartial", "StatementsApplied", "UsersCreated", "UsersDropped",
		"SafetyLimitsTripped", "DurationMs", "BundleErrors", "UnsignedBundles", "RolloutRecordErrors", "UnmanagedAccounts"}
	if !slices.Equal(names, want) || !slices.Equal(MetricNames, want) {
		t.Errorf("metric names %v, want %v", names, want)
	}
	wantValues := map[string]float64{
		"ClustersOK": 3, "ClustersFailed": 2, "ClustersPartial": 0, "StatementsApplied": 10, "UsersCreated": 3, "UsersDropped": 1,
		"SafetyLimitsTripped": 1, "DurationMs": 1234.5, "BundleErrors": 0, "UnsignedBundles": 0, "RolloutRecordErrors": 0,
	}
	for n, v := range wantValues {
		if root[n] != v {
			t.Errorf("%s = %v, want %v", n, root[n], v)
		}
	}
	if root["ConfigVersion"] != "20261127T101229Z-0f3e5c7a9b1d" || root["Trigger"] != "publish" {
		t.Errorf("properties: %v", root)
	}
	if got, _ := json.Marshal(root["FailedClusters"]); string(got) != `["b-down","d-secret"]` {
		t.Errorf("FailedClusters %s", got)
	}
}

func TestEMFBundleError(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteEMF(&buf, &Report{Trigger: TriggerSchedule, BundleError: "bundle is corrupt", Clusters: []ClusterReport{}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(buf.Bytes(), &root); err != nil {
		t.Fatal(err)
	}
	if root["BundleErrors"] != 1.0 || root["ClustersOK"] != 0.0 || root["ClustersFailed"] != 0.0 || root["RolloutRecordErrors"] != 0.0 {
		t.Errorf("got %v", root)
	}
	if got, _ := json.Marshal(root["FailedClusters"]); string(got) != `[]` {
		t.Errorf("FailedClusters %s, want []", got)
	}
}

func TestAlert(t *testing.T) {
	r := sampleReport()
	if !r.NeedsAlert() {
		t.Fatal("no alert for failures")
	}
	subj := r.AlertSubject()
	if subj != "dbusers: 2 cluster(s) failed, removal limit tripped on 1 cluster(s)" {
		t.Errorf("subject %q", subj)
	}
	msg := r.AlertMessage()
	for _, want := range []string{
		"configuration 20261127T101229Z-0f3e5c7a9b1d (commit abc123)",
		"Failed clusters (2 of 5); the others ran:",
		"- b-down (account 111111111111, eu-west-1), at connect: cluster b-down: connect to b.example port 3306 as admin: dial tcp: connection refused",
		"- d-secret (account 222222222222, us-east-2), at admin-secret: cluster d-secret: admin secret rds/d: not found",
		"Removal limit tripped (nothing dropped there, everything else applied):",
		"- c-limit: removal limit tripped on c-limit: 3 of 4 managed accounts",
		"3 cluster(s) OK",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	for _, notWanted := range []string{"a-ok", "e-same"} {
		if strings.Contains(msg, notWanted) {
			t.Errorf("message names healthy cluster %s:\n%s", notWanted, msg)
		}
	}

	quiet := &Report{Trigger: TriggerSchedule, Clusters: []ClusterReport{{Cluster: "a", Status: engine.Unchanged}}}
	if quiet.NeedsAlert() {
		t.Error("alert for a healthy run")
	}
	corrupt := &Report{Trigger: TriggerPublish, BundleError: "bundle is corrupt: version v1 is missing chunk /x/v/v1/0001"}
	if !corrupt.NeedsAlert() {
		t.Error("no alert for a corrupt bundle")
	}
	if s := corrupt.AlertSubject(); s != "dbusers: configuration bundle unusable, nothing changed" {
		t.Errorf("subject %q", s)
	}
	if m := corrupt.AlertMessage(); !strings.Contains(m, "no cluster was changed:\n  bundle is corrupt: version v1 is missing chunk /x/v/v1/0001") {
		t.Errorf("message:\n%s", m)
	}
	long := &Report{Failed: make([]string, 3), LimitsTripped: make([]string, 2), BundleError: strings.Repeat("x", 10)}
	long.Failed = append(long.Failed, strings.Repeat("y", 200))
	if s := long.AlertSubject(); len(s) > 100 {
		t.Errorf("subject is %d characters, SNS allows 100", len(s))
	}
}

// TestPartialClusterAlerts: a cluster where some accounts failed and the
// others applied is counted, alerted and named with its failed accounts,
// apart from failed clusters.
func TestPartialClusterAlerts(t *testing.T) {
	rep := &Report{Trigger: TriggerPublish, Clusters: []ClusterReport{
		{Cluster: "a", Status: engine.Applied},
		{Cluster: "b", AccountID: "111111111111", Region: "eu-west-1", Status: engine.Partial, FailedAccountCount: 1,
			FailedAccounts: []engine.Failure{{Account: mysqlstate.AccountID{User: "acme_bob", Host: "%"}, Summary: "grant read on orders to acme_bob",
				Error: "Error 1133: Can't find any matching row"}}},
	}, Partial: []string{"b"}}
	if !rep.NeedsAlert() {
		t.Error("a partial cluster does not alert")
	}
	if got := rep.AlertSubject(); got != "dbusers: 1 cluster(s) partial" {
		t.Errorf("subject %q", got)
	}
	msg := rep.AlertMessage()
	for _, want := range []string{"Partial clusters (1)", "- b (account 111111111111, eu-west-1): 1 account(s) failed",
		"'acme_bob'@'%': grant read on orders to acme_bob: Error 1133", "1 cluster(s) OK"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if m := rep.Metrics(); m[MetricClustersPartial] != 1 || m[MetricClustersOK] != 1 || m[MetricClustersFailed] != 0 {
		t.Errorf("metrics %v", m)
	}
}
