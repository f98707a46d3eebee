package deploy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// matchPattern reports whether an EventBridge event pattern matches an
// event, with EventBridge's rules: every field the pattern names must match;
// a nested object in the pattern matches a nested object in the event; a
// leaf is an array of alternatives, and an event value (or any element of
// an event array) must equal one of them, or satisfy one of the content
// filters implemented here (prefix, suffix, anything-but, exists,
// equals-ignore-case). Anything else is an error, so a pattern that uses an
// operator this function does not know cannot pass by accident.
func matchPattern(pattern, event map[string]any) (bool, error) {
	if len(pattern) == 0 {
		return false, fmt.Errorf("empty pattern object")
	}
	for key, p := range pattern {
		v, present := event[key]
		switch p := p.(type) {
		case map[string]any:
			sub, ok := v.(map[string]any)
			if !ok {
				// A nested pattern whose leaves all say "exists": false
				// matches an absent object; nothing here needs that.
				return false, nil
			}
			m, err := matchPattern(p, sub)
			if err != nil || !m {
				return false, err
			}
		case []any:
			m, err := matchLeaf(p, v, present)
			if err != nil || !m {
				return false, err
			}
		default:
			return false, fmt.Errorf("field %q: pattern values must be arrays or objects, not %T", key, p)
		}
	}
	return true, nil
}

// matchLeaf matches one event value against a leaf's alternatives.
func matchLeaf(alts []any, v any, present bool) (bool, error) {
	if len(alts) == 0 {
		return false, fmt.Errorf("empty array in pattern")
	}
	values := []any{v}
	if arr, ok := v.([]any); ok {
		values = arr
	}
	for _, alt := range alts {
		filter, isFilter := alt.(map[string]any)
		if !isFilter {
			if !present {
				continue
			}
			for _, x := range values {
				if scalarEqual(alt, x) {
					return true, nil
				}
			}
			continue
		}
		if len(filter) != 1 {
			return false, fmt.Errorf("content filter %v must have one operator", filter)
		}
		for op, arg := range filter {
			if op == "exists" {
				want, ok := arg.(bool)
				if !ok {
					return false, fmt.Errorf("exists takes true or false")
				}
				if want == present {
					return true, nil
				}
				continue
			}
			if !present {
				continue
			}
			for _, x := range values {
				m, err := matchFilter(op, arg, x)
				if err != nil {
					return false, err
				}
				if m {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

func matchFilter(op string, arg, x any) (bool, error) {
	s, isString := x.(string)
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		want, ok := arg.(string)
		if !ok {
			return false, fmt.Errorf("%s takes a string", op)
		}
		if !isString {
			return false, nil
		}
		switch op {
		case "prefix":
			return strings.HasPrefix(s, want), nil
		case "suffix":
			return strings.HasSuffix(s, want), nil
		}
		return strings.EqualFold(s, want), nil
	case "anything-but":
		excluded := []any{arg}
		if list, ok := arg.([]any); ok {
			excluded = list
		}
		for _, e := range excluded {
			if _, nested := e.(map[string]any); nested {
				return false, fmt.Errorf("anything-but with a nested filter is not implemented")
			}
			if scalarEqual(e, x) {
				return false, nil
			}
		}
		return true, nil
	}
	return false, fmt.Errorf("content filter %q is not implemented", op)
}

// scalarEqual compares JSON scalars as EventBridge does: strings exactly,
// numbers by value, booleans and null by identity.
func scalarEqual(a, b any) bool {
	switch a := a.(type) {
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case nil:
		return b == nil
	}
	af, aok := number(a)
	bf, bok := number(b)
	return aok && bok && af == bf
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// decodeEvent reads an event written as JSON.
func decodeEvent(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("event: %v", err)
	}
	return m
}

// TestMatchPattern checks the matcher against EventBridge's documented
// semantics, independently of any template.
func TestMatchPattern(t *testing.T) {
	event := decodeEvent(t, `{"source": "aws.ssm", "detail": {"name": "/a/b", "n": 5, "tags": ["x", "y"], "deep": {"k": "v"}}}`)
	for _, tc := range []struct {
		pattern string
		want    bool
		err     bool
	}{
		{`{"source": ["aws.ssm"]}`, true, false},
		{`{"source": ["aws.ec2", "aws.ssm"]}`, true, false},
		{`{"source": ["aws.ec2"]}`, false, false},
		{`{"source": ["AWS.SSM"]}`, false, false},
		{`{"source": [{"equals-ignore-case": "AWS.SSM"}]}`, true, false},
		{`{"detail": {"name": ["/a/b"]}}`, true, false},
		{`{"detail": {"name": ["/a"]}}`, false, false},
		{`{"detail": {"name": [{"prefix": "/a/"}]}}`, true, false},
		{`{"detail": {"name": [{"suffix": "/b"}]}}`, true, false},
		{`{"detail": {"name": [{"anything-but": "/a/b"}]}}`, false, false},
		{`{"detail": {"name": [{"anything-but": ["/c"]}]}}`, true, false},
		{`{"detail": {"n": [5]}}`, true, false},
		{`{"detail": {"n": ["5"]}}`, false, false},
		{`{"detail": {"tags": ["y"]}}`, true, false},
		{`{"detail": {"tags": ["z"]}}`, false, false},
		{`{"detail": {"deep": {"k": ["v"]}}}`, true, false},
		{`{"detail": {"missing": [{"exists": false}]}}`, true, false},
		{`{"detail": {"missing": [{"exists": true}]}}`, false, false},
		{`{"detail": {"missing": ["x"]}}`, false, false},
		{`{"detail": {"name": [{"exists": true}]}}`, true, false},
		{`{"nothere": {"name": ["/a/b"]}}`, false, false},
		{`{"source": ["aws.ssm"], "detail": {"name": ["/x"]}}`, false, false},
		{`{"source": "aws.ssm"}`, false, true},
		{`{"source": []}`, false, true},
		{`{"source": [{"wildcard": "aws.*"}]}`, false, true},
		{`{"source": [{"prefix": "a", "suffix": "m"}]}`, false, true},
	} {
		var p map[string]any
		if err := json.Unmarshal([]byte(tc.pattern), &p); err != nil {
			t.Fatal(err)
		}
		got, err := matchPattern(p, event)
		if (err != nil) != tc.err {
			t.Errorf("%s: error %v, want error %v", tc.pattern, err, tc.err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.pattern, got, tc.want)
		}
	}
}
