package fleet

import (
	"encoding/json"
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
		{"dry_run not a bool", `{"dry_run": "yes"}`, "direct invoke: field dry_run: want true or false, got JSON string"},
		{"dry_run written in capitals", `{"DRY_RUN": false}`, `unknown field "DRY_RUN"`},
		// encoding/json would let the second, matched without regard to
		// case, override the first.
		{"dry_run and a variant of it", `{"dry_run": true, "Dry_Run": false}`, `direct invoke: unknown field "Dry_Run"`},
		{"clusters not a list", `{"dry_run": true, "clusters": "prod-orders"}`, "direct invoke: field clusters: want a list of cluster names, got JSON string"},
		{"empty cluster name", `{"dry_run": true, "clusters": ["a", ""]}`, "clusters[1] is empty"},
		{"other EventBridge event", string(readEvent(t, "ec2_state_change.json")), `source "aws.ec2"`},
		{"ssm event without detail", `{"source": "aws.ssm", "detail-type": "Parameter Store Change"}`, "detail: missing"},
		{"ssm event with bad detail", `{"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": []}`, "field detail: want an object, got JSON array"},
		{"ssm event with null detail", `{"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": null}`, "detail: missing or null"},
		{"ssm event with a name not a string", `{"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": {"name": 1}}`, "detail: field name: want a string, got JSON number"},
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

// TestDecodeEventDirectInvokeNeedsDryRun: a direct invoke that does not say
// "dry_run" (or says null) is refused, whatever else it says; it used to
// apply.
func TestDecodeEventDirectInvokeNeedsDryRun(t *testing.T) {
	const want = `direct invoke: say "dry_run": true to plan or "dry_run": false to apply; nothing was changed`
	for _, event := range []string{
		`{}`,
		`{"clusters": ["prod-orders"]}`,
		`{"clusters": []}`,
		`{"dry_run": null}`,
		`{"dry_run": null, "clusters": ["prod-orders"]}`,
		` { "clusters" : [ "b", "a" ] } `,
	} {
		t.Run(event, func(t *testing.T) {
			got, err := DecodeEvent([]byte(event), testPointer)
			if err == nil || err.Error() != want {
				t.Errorf("DecodeEvent = %+v, %v; want the error %q", got, err, want)
			}
		})
	}
}

// TestDecodeEventRefusesRepeatedKeys: a key repeated in one object, at any
// depth, refuses the event (encoding/json would silently keep the last
// value). The error names the key and where it repeats, and quotes no value
// of the event.
func TestDecodeEventRefusesRepeatedKeys(t *testing.T) {
	tests := []struct {
		name, event, want string
		values            []string // that the error must not quote
	}{
		{"dry_run twice", `{"dry_run": true, "dry_run": false}`,
			`direct invoke: 1:19: key "dry_run" appears twice in one object`, nil},
		{"dry_run twice, the same", `{"dry_run": true, "clusters": ["prod-orders"], "dry_run": true}`,
			`direct invoke: 1:48: key "dry_run" appears twice in one object`, []string{"prod-orders"}},
		{"dry_run twice, once escaped", `{"dry_run": false, "dry\u005frun": true}`,
			`direct invoke: 1:20: key "dry_run" appears twice in one object`, nil},
		{"clusters twice", "{\n  \"dry_run\": true,\n  \"clusters\": [\"a\"],\n  \"clusters\": [\"b\"]\n}",
			`direct invoke: 4:3: key "clusters" appears twice in one object`, []string{`"a"`, `"b"`}},
		{"nested in an invoke", `{"dry_run": true, "clusters": [{"name": "a", "name": "b"}]}`,
			`direct invoke: 1:46: key "name" appears twice in one object`, []string{`"a"`, `"b"`}},
		{"source twice", `{"source": "aws.events", "detail-type": "Scheduled Event", "source": "aws.ssm"}`,
			`EventBridge event: 1:60: key "source" appears twice in one object`, []string{"aws.events", "aws.ssm"}},
		{"detail-type twice", `{"source": "aws.ssm", "detail-type": "Scheduled Event", "detail-type": "Parameter Store Change", "detail": {}}`,
			`EventBridge event: 1:57: key "detail-type" appears twice in one object`, []string{"Scheduled", "Parameter"}},
		{"detail.name twice", `{"source": "aws.ssm", "detail-type": "Parameter Store Change", ` +
			`"detail": {"name": "/dbusers/other", "operation": "Update", "name": "/dbusers/config"}}`,
			`EventBridge event: 1:124: key "name" appears twice in one object`, []string{"/dbusers/other", "/dbusers/config", "Update"}},
		{"deep in an event", `{"source": "aws.events", "detail-type": "Scheduled Event", "detail": {"a": [{"b": {"c": 1, "c": 2}}]}}`,
			`EventBridge event: 1:92: key "c" appears twice in one object`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.event), testPointer)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			for _, v := range tt.values {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q quotes %s from the event", err, v)
				}
			}
		})
	}
}

// TestDecodeEventMatchesFieldsExactly: EventBridge sends its keys in lower
// case; a key that differs only in case is not the field, and cannot
// override it as it would under encoding/json's case-insensitive matching.
func TestDecodeEventMatchesFieldsExactly(t *testing.T) {
	event := `{"source": "aws.ssm", "detail-type": "Parameter Store Change", ` +
		`"detail": {"name": "/dbusers/other", "Name": "/dbusers/config", "operation": "Update"}}`
	got, err := DecodeEvent([]byte(event), testPointer)
	if err != nil {
		t.Fatal(err)
	}
	if got.Trigger != TriggerPublish || !strings.Contains(got.Ignore, `change to parameter "/dbusers/other"`) {
		t.Errorf("got %+v, want the change to /dbusers/other ignored", got)
	}
	// Nor does "Source" make an invoke an EventBridge event.
	if _, err := DecodeEvent([]byte(`{"Source": "aws.events", "detail-type": "Scheduled Event"}`), testPointer); err == nil ||
		!strings.Contains(err.Error(), `source "", detail-type "Scheduled Event"`) {
		t.Errorf("a Source key was taken for source: %v", err)
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
	f.Add([]byte(`{"dry_run": true, "clusters": [null]}`))
	f.Add([]byte(`{"clusters": ["a"]}`))
	f.Add([]byte(`{"dry_run": null}`))
	f.Add([]byte(`{"dry_run": true, "dry_run": false}`))
	f.Add([]byte(`{"dry_run": true, "DRY_RUN": false}`))
	f.Add([]byte(`{"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": {"name": "/x", "name": "/dbusers/config", "operation": "Update"}}`))
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
			// An invoke applies or plans only as its "dry_run" says.
			var fields map[string]json.RawMessage
			var said *bool
			if err := json.Unmarshal(data, &fields); err != nil || json.Unmarshal(fields["dry_run"], &said) != nil || said == nil || *said != req.DryRun {
				t.Fatalf("invoke decoded with dry_run %v, but it says %s", req.DryRun, fields["dry_run"])
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
