package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testPointer = "/dbusers/config"

func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDecodeEventFiles(t *testing.T) {
	tests := []struct {
		file   string
		want   Request
		ignore string // substring of Request.Ignore
	}{
		{file: "parameter_store_change_update.json", want: Request{Trigger: TriggerPublish}},
		{file: "parameter_store_change_create.json", want: Request{Trigger: TriggerPublish}},
		{file: "parameter_store_change_delete.json", want: Request{Trigger: TriggerPublish}, ignore: `operation "Delete"`},
		{file: "parameter_store_change_chunk.json", want: Request{Trigger: TriggerPublish}, ignore: "not the pointer"},
		{file: "scheduled_event.json", want: Request{Trigger: TriggerSchedule}},
		{file: "invoke_dry_run.json", want: Request{Trigger: TriggerInvoke, DryRun: true, Clusters: []string{"prod-orders", "staging-main"}}},
		{file: "invoke_all.json", want: Request{Trigger: TriggerInvoke}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			got, err := DecodeEvent(readEvent(t, tt.file), testPointer)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.Ignore, tt.ignore) || (tt.ignore == "") != (got.Ignore == "") {
				t.Errorf("Ignore = %q, want it to contain %q", got.Ignore, tt.ignore)
			}
			got.Ignore = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct {
		name, event, want string
	}{
		{"empty", "", "event is empty"},
		{"blank", " \n\t", "event is empty"},
		{"null", "null", "not a JSON object"},
		{"array", `[{"dry_run": true}]`, "not a JSON object"},
		{"string", `"run"`, "not a JSON object"},
		{"truncated", `{"dry_run": tr`, "invalid JSON"},
		{"trailing garbage", `{"dry_run": true} x`, "not a JSON object"},
		{"typo in dry_run", `{"dryrun": true}`, `unknown field "dryrun"`},
		{"dry_run not a bool", `{"dry_run": "yes"}`, "field dry_run"},
		{"clusters not a list", `{"clusters": "prod-orders"}`, "field clusters"},
		{"empty cluster name", `{"clusters": ["a", ""]}`, "clusters[1] is empty"},
		{"other EventBridge event", string(readEvent(t, "ec2_state_change.json")), `source "aws.ec2"`},
		{"ssm event without detail", `{"source": "aws.ssm", "detail-type": "Parameter Store Change"}`, "detail: missing"},
		{"ssm event with bad detail", `{"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": []}`, "detail"},
		{"scheduled event from another source", `{"source": "aws.ssm", "detail-type": "Scheduled Event", "detail": {}}`, "unsupported EventBridge event"},
		{"source not a string", `{"source": 7}`, "EventBridge event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.event), testPointer)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestDecodeEventDirectInvokeApply: an explicit "dry_run": false applies,
// and the cluster list comes back sorted.
func TestDecodeEventDirectInvokeApply(t *testing.T) {
	got, err := DecodeEvent([]byte(`{"dry_run": false, "clusters": ["b", "a"]}`), testPointer)
	if err != nil {
		t.Fatal(err)
	}
	if got.DryRun || !slices.Equal(got.Clusters, []string{"a", "b"}) {
		t.Errorf("got %+v", got)
	}
}

// FuzzDecodeEvent: DecodeEvent never panics, and what it accepts is
// consistent: a known trigger, an invoke's cluster list sorted, unique and
// without empty names, only publish events ignored.
//
// CI fuzz budget: 10000 execs (about 1,200 a second on two cores).
func FuzzDecodeEvent(f *testing.F) {
	for _, name := range []string{
		"parameter_store_change_update.json", "parameter_store_change_delete.json", "parameter_store_change_chunk.json",
		"scheduled_event.json", "invoke_dry_run.json", "invoke_all.json", "ec2_state_change.json",
	} {
		f.Add(readEvent(f, name))
	}
	f.Add([]byte(`{"dry_run": true, "clusters": ["a", "a", "b"]}`))
	f.Add([]byte(`{"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": {"name": "/dbusers/config", "operation": "Update"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"clusters": [null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeEvent(data, testPointer)
		if err != nil {
			if req.Trigger != "" || req.DryRun || req.Clusters != nil {
				t.Fatalf("error %v with a non-empty request %+v", err, req)
			}
			return
		}
		switch req.Trigger {
		case TriggerPublish, TriggerSchedule:
			if req.DryRun || len(req.Clusters) > 0 {
				t.Fatalf("EventBridge event decoded with invoke options: %+v", req)
			}
			if req.Trigger == TriggerSchedule && req.Ignore != "" {
				t.Fatalf("scheduled event ignored: %+v", req)
			}
		case TriggerInvoke:
			if req.Ignore != "" {
				t.Fatalf("direct invoke ignored: %+v", req)
			}
			if !slices.IsSorted(req.Clusters) || len(slices.Compact(slices.Clone(req.Clusters))) != len(req.Clusters) {
				t.Fatalf("clusters not sorted and unique: %q", req.Clusters)
			}
			for _, c := range req.Clusters {
				if strings.TrimSpace(c) == "" {
					t.Fatalf("empty cluster name accepted: %q", req.Clusters)
				}
			}
		default:
			t.Fatalf("unknown trigger %q", req.Trigger)
		}
	})
}
