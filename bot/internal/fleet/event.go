package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Trigger says why the Lambda runs.
type Trigger string

// The three kinds of event the Lambda handles.
const (
	// TriggerPublish is EventBridge's "Parameter Store Change" for the
	// pointer parameter: a merge was published.
	TriggerPublish Trigger = "publish"
	// TriggerSchedule is an EventBridge "Scheduled Event": drift repair and
	// expiry.
	TriggerSchedule Trigger = "schedule"
	// TriggerInvoke is a direct invoke: {"dry_run": true, "clusters": [...]}.
	TriggerInvoke Trigger = "invoke"
)

// Request is a decoded event: what to run, or why to do nothing.
type Request struct {
	Trigger Trigger `json:"trigger,omitempty"`
	// DryRun plans without applying.
	DryRun bool `json:"dry_run"`
	// Clusters limits the run to these clusters (sorted, no duplicates);
	// empty means every cluster of the bundle.
	Clusters []string `json:"clusters,omitempty"`
	// Ignore is set when the event needs no run (a change to another
	// parameter, a deletion): it says why.
	Ignore string `json:"ignore,omitempty"`
}

// EventBridge's source and detail-type values the Lambda acts on.
const (
	sourceSSM          = "aws.ssm"
	detailParameter    = "Parameter Store Change"
	sourceEvents       = "aws.events"
	detailScheduled    = "Scheduled Event"
	maxEventBytes      = 1 << 20
	maxInvokedClusters = 10000
)

// envelope is the part of an EventBridge event the Lambda reads.
type envelope struct {
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// parameterChange is the detail of a "Parameter Store Change" event.
type parameterChange struct {
	Name      string `json:"name"`
	Operation string `json:"operation"`
}

// invoke is a direct invoke's payload. Unknown fields are refused: a typo
// such as "dryrun" must not turn a dry run into an applying one.
type invoke struct {
	DryRun   *bool    `json:"dry_run"`
	Clusters []string `json:"clusters"`
}

// DecodeEvent tells the three kinds of event apart and returns what to run.
// pointer is the pointer parameter's name: a change event for any other
// parameter, or one that deletes the pointer, is ignored (Request.Ignore),
// not an error. Malformed JSON, an EventBridge event of another kind and a
// direct invoke with unknown fields are errors.
func DecodeEvent(raw []byte, pointer string) (Request, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Request{}, errors.New("event is empty: want an EventBridge event or {\"dry_run\": ..., \"clusters\": [...]}")
	}
	if len(raw) > maxEventBytes {
		return Request{}, fmt.Errorf("event is %d bytes, more than the %d accepted", len(raw), maxEventBytes)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Request{}, fmt.Errorf("event is not a JSON object: %s", jsonProblem(err))
	}
	_, hasSource := fields["source"]
	_, hasDetailType := fields["detail-type"]
	if hasSource || hasDetailType {
		return decodeEventBridge(raw, pointer)
	}
	return decodeInvoke(raw)
}

func decodeEventBridge(raw []byte, pointer string) (Request, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return Request{}, fmt.Errorf("EventBridge event: %s", jsonProblem(err))
	}
	switch {
	case env.Source == sourceSSM && env.DetailType == detailParameter:
		var d parameterChange
		if len(env.Detail) == 0 {
			return Request{}, fmt.Errorf("%s event: detail: %s", detailParameter, jsonProblem(nil))
		}
		if err := json.Unmarshal(env.Detail, &d); err != nil {
			return Request{}, fmt.Errorf("%s event: detail: %s", detailParameter, jsonProblem(err))
		}
		req := Request{Trigger: TriggerPublish}
		switch {
		case d.Name != pointer:
			req.Ignore = fmt.Sprintf("change to parameter %q, not the pointer %q", d.Name, pointer)
		case d.Operation != "Create" && d.Operation != "Update":
			req.Ignore = fmt.Sprintf("operation %q on the pointer: only Create and Update publish a configuration", d.Operation)
		}
		return req, nil
	case env.Source == sourceEvents && env.DetailType == detailScheduled:
		return Request{Trigger: TriggerSchedule}, nil
	}
	return Request{}, fmt.Errorf("unsupported EventBridge event: source %q, detail-type %q (want %s %q or %s %q)",
		env.Source, env.DetailType, sourceSSM, detailParameter, sourceEvents, detailScheduled)
}

func decodeInvoke(raw []byte) (Request, error) {
	var in invoke
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Request{}, fmt.Errorf("direct invoke: %s (want {\"dry_run\": true|false, \"clusters\": [\"name\", ...]})", jsonProblem(err))
	}
	if dec.More() {
		return Request{}, errors.New("direct invoke: more than one JSON value")
	}
	if len(in.Clusters) > maxInvokedClusters {
		return Request{}, fmt.Errorf("direct invoke: %d clusters named, more than %d", len(in.Clusters), maxInvokedClusters)
	}
	req := Request{Trigger: TriggerInvoke, DryRun: in.DryRun != nil && *in.DryRun}
	for i, c := range in.Clusters {
		if strings.TrimSpace(c) == "" {
			return Request{}, fmt.Errorf("direct invoke: clusters[%d] is empty", i)
		}
		req.Clusters = append(req.Clusters, c)
	}
	slices.Sort(req.Clusters)
	req.Clusters = slices.Compact(req.Clusters)
	return req, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "missing or null"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %s: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("want %s, got JSON %s", typ.Type, typ.Value)
	}
	return err.Error()
}
