package config

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dbusers/dbusers/bot/internal/diag"
)

// TestSkipSchema: a trusted base skips only the schema; strict decoding and
// the semantic rules still hold.
func TestSkipSchema(t *testing.T) {
	withCluster := func(doc string) fstest.MapFS {
		fsys := overlay(t, "")
		fsys["clusters/prod-orders.json"] = &fstest.MapFile{Data: []byte(doc)}
		return fsys
	}
	good := string(overlay(t, "")["clusters/prod-orders.json"].Data)

	// A pattern only the schema knows: refused with it, accepted without.
	badPattern := strings.Replace(good, `"210987654321"`, `"1111"`, 1)
	if _, diags, _ := Load(withCluster(badPattern), today); !strings.Contains(errorsText(diags), "account_id must be the 12-digit AWS account id") {
		t.Errorf("with the schema: %v", diags)
	}
	if _, diags, err := Load(withCluster(badPattern), today, SkipSchema()); err != nil || len(diags.Errors()) != 0 {
		t.Errorf("without the schema: %v %v", err, diags)
	}

	// An unknown field and a semantic error are refused either way.
	unknown := strings.Replace(good, `"name"`, `"nmae": "x", "name"`, 1)
	if _, diags, _ := Load(withCluster(unknown), today, SkipSchema()); !strings.Contains(errorsText(diags), `unknown field "nmae"`) {
		t.Errorf("unknown field without the schema: %v", diags)
	}
	fsys := overlay(t, "")
	for p, f := range fsys {
		if strings.HasPrefix(p, "users/") {
			f.Data = []byte(strings.Replace(string(f.Data), `"role": "read"`, `"role": "reader"`, 1))
		}
	}
	if _, diags, _ := Load(fsys, today, SkipSchema()); !strings.Contains(errorsText(diags), `unknown role "reader"`) {
		t.Errorf("semantic rule without the schema: %v", diags)
	}
}

func errorsText(d diag.List) string {
	var b strings.Builder
	for _, x := range d.Errors() {
		b.WriteString(x.String() + "\n")
	}
	return b.String()
}
