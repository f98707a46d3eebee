package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestRolloutRecordAccess: the function alone writes and deletes the
// rollout records, on the status path and nowhere near the bundle; the
// publish role may only read them. (The grants tests above pin the same
// exactly; this one says it in the terms of the design.)
func TestRolloutRecordAccess(t *testing.T) {
	var writes []string
	for _, a := range recordWriteActions() {
		if !slices.Contains(recordReadActions(), a) && a != "ssm:GetParametersByPath" {
			writes = append(writes, a)
		}
	}
	if !slices.Equal(writes, []string{"ssm:DeleteParameters", "ssm:PutParameter"}) {
		t.Fatalf("the record's writes are %v", writes)
	}
	under := func(resource, suffix string) bool { return strings.HasSuffix(resource, suffix) }
	for _, e := range evaluateAll(t, controlPlane) {
		perms, _ := policies(t, e)
		pointer := param(e, "PointerParameter")
		sawStatus := false
		for _, st := range perms {
			if st.owner != "FunctionRole" {
				continue
			}
			for _, a := range st.actions {
				for _, r := range st.resources {
					status := under(r, pointer+"/status") || under(r, pointer+"/status/*")
					sawStatus = sawStatus || (status && a == "ssm:PutParameter")
					if slices.Contains(writes, a) && !status {
						t.Errorf("%s: %s: the function may %s %s, outside the status path", e.name, st.where, a, r)
					}
				}
			}
		}
		if !sawStatus {
			t.Errorf("%s: the function may not write the rollout records", e.name)
		}
	}
	for _, e := range evaluateAll(t, githubOIDC) {
		perms, _ := policies(t, e)
		pointer := param(e, "PointerParameter")
		sawRead := false
		for _, st := range perms {
			for _, r := range st.resources {
				if !strings.Contains(r, pointer+"/status") {
					continue
				}
				for _, a := range st.actions {
					if !slices.Contains(recordReadActions(), a) {
						t.Errorf("%s: %s: %s may %s %s: the publish role only reads the rollout records", e.name, st.where, st.owner, a, r)
					}
					sawRead = sawRead || (st.owner == "PublishRole" && a == "ssm:GetParameters")
				}
			}
		}
		if !sawRead {
			t.Errorf("%s: the publish role may not read the rollout records", e.name)
		}
	}
}
