package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoRunsTheWholePipeline runs the demo on the examples it finds by
// itself, as `go run ./bot/cmd/demo` does on a fresh clone (or a fork).
func TestDemoRunsTheWholePipeline(t *testing.T) {
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs("../../../examples/acme"); root != want {
		t.Fatalf("the demo found %s, want %s", root, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, root, time.Now); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"published version ",
		"the Lambda verified the bundle's signature by arn:aws:kms:",
		"publish run refused the bundle; no cluster was changed: bundle is not trusted: version ",
		"is unsigned (it names no signing key), and unsigned bundles are not accepted",
		"- downgrade acme_reporting on orders: write → read",
		"local           applied  DROP USER 'acme_mallory'@'%'",
		"acme_reporting: SELECT sku FROM orders.items → \"demo-sku\" (allowed)",
		"acme_reporting: INSERT INTO orders.items → refused",
		" of acme_mallory (%, database orders): account dropped",
		"KILL CONNECTION ",
		"acme_mallory's session that was open: SELECT COUNT(*) FROM items → ",
		"orders.v_items (definer acme_oscar): SELECT COUNT(*) → 1 (still works)",
		"the run's note: 'acme_oscar'@'%' is kept: it is the definer of orders.v_items (view)",
		"audit trail: no statement was sent",
		"the plan function read 4 cluster(s) and applied nothing",
		"every cluster ran exactly the changes its live plan showed",
		"#### Live plan",
		"**Who:** `+hana −gina`",
		"⚠️ **drift:** revoke global PROCESS from acme_reporting",
		"local           applied  REVOKE PROCESS ON *.* FROM 'acme_reporting'@'%'",
		"? 'acmex_bob'@'%' (mysql_native_password): no grant on a managed database",
		"== 10. After the merge: the rollout back on GitHub",
		"the Lambda's run wrote the rollout record /dbusers/config/status/",
		"GET    /repos/acme/dbaccess/commits/9f8e7d6c5b4a39281706f5e4d3c2b1a098765432/pulls",
		"POST   /repos/acme/dbaccess/issues/42/comments",
		"commit status dbusers/rollout on 9f8e7d6c5b4a: pending: waiting for the Lambda's run of ",
		"commit status dbusers/rollout on 9f8e7d6c5b4a: success: applied on 4 of 4 cluster(s)",
		"<!-- dbusers:rollout part 1/1 -->\n### ✅ dbusers rollout: applied on 4 of 4 cluster(s)",
		"- ➕ **hana** `acme_hana` (password): created on local; now on local",
		"- ➖ `acme_gina` (no user file declares it): dropped on local",
		"| ✅ | local | applied | 4 | 1 | 1 |",
		"== 11. Someone with ssm:PutParameter but not kms:Sign",
		"== 12. The hourly schedule runs again",
		"demo complete",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, never := range []string{"USER 'acmex_bob'", "TO 'acmex_bob'", "FROM 'acmex_bob'", "acme_breakglass'@", "left-the-company", "left-too", "old-password", "DROP USER 'acme_oscar'"} {
		if strings.Contains(got, never) {
			t.Errorf("demo output mentions %q", never)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}
