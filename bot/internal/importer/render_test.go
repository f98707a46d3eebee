package importer

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/config"
)

func TestAppendAccess(t *testing.T) {
	add := []config.Access{{Clusters: []string{"c"}, Databases: []string{"*"}, Role: "read"},
		{Clusters: []string{"c"}, Databases: []string{"d\"b"}, Role: "write"}}
	for name, src := range map[string]string{
		"one entry":     "{\n  \"name\": \"u\",\n  \"access\": [\n    {\"clusters\": [\"x\"], \"databases\": [\"a\"], \"role\": \"read\"}\n  ]\n}\n",
		"empty":         `{"name": "u", "access": []}`,
		"spread":        "{\"access\" :\n[ {\"clusters\": [\"x\"],\n \"databases\": [\"a\"], \"role\": \"read\",\n \"reason\": \"] } tricky\"}\n ] , \"name\": \"u\"}",
		"access nested": `{"name": "u", "description": "{\"access\": []}", "access": [{"clusters": ["x"], "databases": ["a"], "role": "read"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			out, err := appendAccess([]byte(src), add)
			if err != nil {
				t.Fatal(err)
			}
			var u config.User
			if err := json.Unmarshal(out, &u); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if n := len(u.Access); n < 2 || u.Access[n-1].Databases[0] != `d"b` || u.Access[n-2].Role != "read" {
				t.Errorf("access %+v\n%s", u.Access, out)
			}
			if !strings.HasPrefix(string(out), src[:strings.Index(src, "access")]) {
				t.Errorf("the bytes before the list changed:\n%s", out)
			}
		})
	}
	if _, err := appendAccess([]byte(`{"name": "u"}`), add); err == nil {
		t.Error("a file without access was extended")
	}
	if _, err := appendAccess([]byte(`[1]`), add); err == nil {
		t.Error("a non-object was extended")
	}
}

func TestAddRoles(t *testing.T) {
	roles := []Role{{Name: "read_delete", Extends: []string{"read"}, Privileges: []string{"DELETE"}, Accounts: []string{"'a'@'%'"}},
		{Name: "imported_select", Privileges: []string{"SELECT"}, Accounts: []string{"'b'@'%'"}}}
	for name, src := range map[string]string{
		"no roles":    "{\n  \"prefix\": \"acme\",\n  \"ssm\": {\"parameter\": \"/p\"}\n}\n",
		"roles":       "{\n  \"prefix\": \"acme\",\n  \"roles\": {\n    \"etl\": {\"privileges\": [\"DELETE\"]}\n  }\n}\n",
		"empty roles": `{"prefix": "acme", "roles": {}}`,
		"no prefix":   `{"ssm": {"parameter": "/p"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			out, err := addRoles([]byte(src), roles)
			if err != nil {
				t.Fatal(err)
			}
			var s config.Settings
			if err := json.Unmarshal(out, &s); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if r, ok := s.Roles["read_delete"]; !ok || r.Extends[0] != "read" || r.Privileges[0] != "DELETE" || s.Roles["imported_select"].Privileges[0] != "SELECT" {
				t.Errorf("roles %+v\n%s", s.Roles, out)
			}
			if strings.Contains(src, "etl") && s.Roles["etl"].Privileges == nil {
				t.Errorf("the existing role was lost:\n%s", out)
			}
		})
	}
}
