package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoRunsTheWholePipeline runs the demo on the repository's own
// declarations, as `go run ./bot/cmd/demo` does on a fresh clone.
func TestDemoRunsTheWholePipeline(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
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
