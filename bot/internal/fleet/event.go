package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/jsonpos"
	"github.com/dbusers/dbusers/bot/internal/quote"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
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
	// TriggerInvoke is a direct invoke: {"dry_run": true, "clusters": [...]},
	// which must say "dry_run" (true or false); "clusters" is optional.
	TriggerInvoke Trigger = "invoke"
	// TriggerPlan is a plan invoke: {"plan": {"bundle": "...", ...}}, the
	// live plan of a candidate bundle (see DecodePlan). It never applies.
	TriggerPlan Trigger = "plan"
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
	sourceSSM       = "aws.ssm"
	detailParameter = "Parameter Store Change"
	sourceEvents    = "aws.events"
	detailScheduled = "Scheduled Event"
	// maxEventBytes is Lambda's own limit on a synchronous invoke's
	// payload; a plan invoke carries up to two bundles.
	maxEventBytes      = 6 << 20
	maxInvokedClusters = 10000
)

// errNoDryRun refuses a direct invoke that does not say whether to apply.
// Applying is what an invoke does when asked; it must never be what one
// does because a field was left out (peribolos applies only with
// --confirm, for the same reason).
var errNoDryRun = errors.New(`direct invoke: say "dry_run": true to plan or "dry_run": false to apply; nothing was changed`)

// DecodeEvent tells the three kinds of event apart and returns what to run.
// pointer is the pointer parameter's name: a change event for any other
// parameter, or one that deletes the pointer, is ignored (Request.Ignore),
// not an error. Malformed JSON, a key repeated in one object, an
// EventBridge event of another kind and a direct invoke with unknown fields
// or without "dry_run" are errors.
//
// Fields are matched exactly. encoding/json matches struct fields without
// regard to case and keeps the last of a repeated key, so
// {"dry_run": true, "DRY_RUN": false} or {"dry_run": true, "dry_run": false}
// would apply while a person reading the event sees a dry run.
func DecodeEvent(raw []byte, pointer string) (Request, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Request{}, errors.New("event is empty: want an EventBridge event or {\"dry_run\": true|false, \"clusters\": [...]}")
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
	eventBridge := hasSource || hasDetailType
	what := "direct invoke"
	if eventBridge {
		what = "EventBridge event"
	}
	// The declaration loader's parser, which refuses a key repeated in
	// one object at any depth; its message names the key and its line and
	// column, and quotes nothing else of the event.
	if _, err := jsonpos.Parse(raw); err != nil {
		return Request{}, fmt.Errorf("%s: %w", what, err)
	}
	if eventBridge {
		return decodeEventBridge(fields, pointer)
	}
	return decodeInvoke(fields)
}

func decodeEventBridge(fields map[string]json.RawMessage, pointer string) (Request, error) {
	var source, detailType string
	if err := field(fields, "source", &source, "a string"); err != nil {
		return Request{}, fmt.Errorf("EventBridge event: %w", err)
	}
	if err := field(fields, "detail-type", &detailType, "a string"); err != nil {
		return Request{}, fmt.Errorf("EventBridge event: %w", err)
	}
	switch {
	case source == sourceSSM && detailType == detailParameter:
		var detail map[string]json.RawMessage
		if err := field(fields, "detail", &detail, "an object"); err != nil {
			return Request{}, fmt.Errorf("%s event: %w", detailParameter, err)
		}
		if detail == nil {
			return Request{}, fmt.Errorf("%s event: detail: missing or null", detailParameter)
		}
		var name, operation string
		if err := field(detail, "name", &name, "a string"); err != nil {
			return Request{}, fmt.Errorf("%s event: detail: %w", detailParameter, err)
		}
		if err := field(detail, "operation", &operation, "a string"); err != nil {
			return Request{}, fmt.Errorf("%s event: detail: %w", detailParameter, err)
		}
		req := Request{Trigger: TriggerPublish}
		switch {
		case name != pointer:
			req.Ignore = fmt.Sprintf("change to parameter %q, not the pointer %q", name, pointer)
		case operation != "Create" && operation != "Update":
			req.Ignore = fmt.Sprintf("operation %q on the pointer: only Create and Update publish a configuration", operation)
		}
		return req, nil
	case source == sourceEvents && detailType == detailScheduled:
		return Request{Trigger: TriggerSchedule}, nil
	}
	return Request{}, fmt.Errorf("unsupported EventBridge event: source %q, detail-type %q (want %s %q or %s %q)",
		source, detailType, sourceSSM, detailParameter, sourceEvents, detailScheduled)
}

func decodeInvoke(fields map[string]json.RawMessage) (Request, error) {
	// "dry_run" and "clusters" are the only fields; any other is refused,
	// so that a typo such as "dryrun" cannot pass unnoticed.
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k != "dry_run" && k != "clusters" {
			return Request{}, fmt.Errorf("direct invoke: unknown field %s (want {\"dry_run\": true|false, \"clusters\": [\"name\", ...]})", quote.Value(k))
		}
	}
	var dryRun *bool
	if err := field(fields, "dry_run", &dryRun, "true or false"); err != nil {
		return Request{}, fmt.Errorf("direct invoke: %w", err)
	}
	if dryRun == nil { // missing or null
		return Request{}, errNoDryRun
	}
	var clusters []string
	if err := field(fields, "clusters", &clusters, "a list of cluster names"); err != nil {
		return Request{}, fmt.Errorf("direct invoke: %w", err)
	}
	if len(clusters) > maxInvokedClusters {
		return Request{}, fmt.Errorf("direct invoke: %d clusters named, more than %d", len(clusters), maxInvokedClusters)
	}
	req := Request{Trigger: TriggerInvoke, DryRun: *dryRun}
	for i, c := range clusters {
		if strings.TrimSpace(c) == "" {
			return Request{}, fmt.Errorf("direct invoke: clusters[%d] is empty", i)
		}
		req.Clusters = append(req.Clusters, c)
	}
	slices.Sort(req.Clusters)
	req.Clusters = slices.Compact(req.Clusters)
	return req, nil
}

// field decodes the value of the key name, matched exactly, into v; want
// says what v holds, for the message. A missing key leaves v as it is, as
// encoding/json does.
func field(fields map[string]json.RawMessage, name string, v any, want string) error {
	raw, ok := fields[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return fmt.Errorf("field %s: want %s, got JSON %s", name, want, typ.Value)
		}
		return fmt.Errorf("field %s: %s", name, jsonProblem(err))
	}
	return nil
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

// PlanRequest is a decoded plan invoke.
type PlanRequest struct {
	// Bundle is the candidate: the pull request's head, encoded as
	// ssmbundle.NewCandidate encodes it.
	Bundle *ssmbundle.Bundle
	// Base, optional, is the configuration to tell drift against (the pull
	// request's base); without it, the published configuration.
	Base *ssmbundle.Bundle
	// Clusters limits the plan to these (sorted, no duplicates); empty
	// means every cluster of the candidate.
	Clusters []string
}

// planFields are the fields of "plan"; nothing else is accepted, so that
// no field can be read as a wish to apply.
var planFields = []string{"bundle", "base_bundle", "clusters"}

// IsPlanInvoke reports whether an event is a JSON object with a "plan"
// field, which is what sends it to plan mode. Whether it is a valid one
// is DecodePlan's to say.
func IsPlanInvoke(raw []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(raw), &fields) != nil {
		return false
	}
	_, ok := fields["plan"]
	return ok
}

// DecodePlan decodes a plan invoke,
//
//	{"plan": {"bundle": "<base64>", "base_bundle": "<base64>", "clusters": ["name", ...]}}
//
// where only "bundle" is required. "plan" must be the event's only field:
// {"plan": {...}, "dry_run": false} is refused, as is any field of "plan"
// but those three, and a key repeated anywhere.
func DecodePlan(raw []byte) (PlanRequest, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > maxEventBytes {
		return PlanRequest{}, fmt.Errorf("plan invoke is %d bytes, more than the %d accepted", len(raw), maxEventBytes)
	}
	if _, err := jsonpos.Parse(raw); err != nil {
		return PlanRequest{}, fmt.Errorf("plan invoke: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return PlanRequest{}, fmt.Errorf("plan invoke is not a JSON object: %s", jsonProblem(err))
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "plan" {
			return PlanRequest{}, fmt.Errorf("plan invoke: field %s next to \"plan\": a plan invoke only plans and takes no other field; "+
				"to run, invoke without \"plan\"; nothing was changed", quote.Value(k))
		}
	}
	var fields map[string]json.RawMessage
	if err := field(top, "plan", &fields, "an object"); err != nil {
		return PlanRequest{}, fmt.Errorf("plan invoke: %w", err)
	}
	if fields == nil {
		return PlanRequest{}, errors.New(`plan invoke: field plan: want an object with "bundle"`)
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(planFields, k) {
			return PlanRequest{}, fmt.Errorf("plan invoke: unknown field plan.%s (want %s); nothing was changed", quote.Value(k), strings.Join(planFields, ", "))
		}
	}
	var bundle, base string
	var clusters []string
	if err := field(fields, "bundle", &bundle, "a string (the base64 candidate bundle)"); err != nil {
		return PlanRequest{}, fmt.Errorf("plan invoke: plan.%w", err)
	}
	if err := field(fields, "base_bundle", &base, "a string (the base64 base bundle)"); err != nil {
		return PlanRequest{}, fmt.Errorf("plan invoke: plan.%w", err)
	}
	if err := field(fields, "clusters", &clusters, "a list of cluster names"); err != nil {
		return PlanRequest{}, fmt.Errorf("plan invoke: plan.%w", err)
	}
	if bundle == "" {
		return PlanRequest{}, errors.New("plan invoke: plan.bundle is missing or empty: want the candidate bundle (dbusers plan --live builds it)")
	}
	var req PlanRequest
	var err error
	if req.Bundle, err = ssmbundle.DecodeCandidate("plan.bundle", bundle); err != nil {
		return PlanRequest{}, fmt.Errorf("plan invoke: %w", err)
	}
	if base != "" {
		if req.Base, err = ssmbundle.DecodeCandidate("plan.base_bundle", base); err != nil {
			return PlanRequest{}, fmt.Errorf("plan invoke: %w", err)
		}
	}
	if len(clusters) > maxInvokedClusters {
		return PlanRequest{}, fmt.Errorf("plan invoke: %d clusters named, more than %d", len(clusters), maxInvokedClusters)
	}
	for i, c := range clusters {
		if strings.TrimSpace(c) == "" {
			return PlanRequest{}, fmt.Errorf("plan invoke: plan.clusters[%d] is empty", i)
		}
	}
	req.Clusters = slices.Compact(slices.Sorted(slices.Values(clusters)))
	return req, nil
}
