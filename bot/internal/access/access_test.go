package access

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/desired"
)

func decls(users ...desired.UserDecl) desired.Declarations {
	return desired.Declarations{Prefix: "acme", Sessions: desired.DefaultSessionPolicy, Roles: desired.BuiltinRoles(),
		Clusters: []desired.ClusterDecl{
			{Name: "prod-a", Environment: "prod", Engine: "aurora-mysql-3", TLS: "verify-identity", Databases: []string{"orders", "payments"}},
			{Name: "stage-a", Environment: "staging", Engine: "mariadb-10.11", TLS: "verify-identity", Databases: []string{"orders"}},
		},
		Users: users}
}

// TestEntriesKeepTheirOwnExpiry: a standing read and a temporary admin on
// the same database are two entries, each with its own expiry; the admin
// expires, the read stays.
func TestEntriesKeepTheirOwnExpiry(t *testing.T) {
	d := decls(desired.UserDecl{Name: "kim", Owner: "kim@acme.example", Kind: "human", Access: []desired.AccessDecl{
		{Environments: []string{"prod"}, Databases: []string{"*"}, Role: "read"},
		{Clusters: []string{"prod-a"}, Databases: []string{"orders"}, Role: "admin", Expires: "2026-06-30"},
	}})
	x, err := New(d, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	r, err := x.ForUser("kim")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Cluster, Database, Role, Expires string
		Status                           Status
	}
	var got []row
	for _, e := range r.Entries {
		got = append(got, row{e.Cluster, e.Database, e.Role, e.Expires, e.Status})
	}
	want := []row{
		{"prod-a", "orders", "admin", "2026-06-30", Expired},
		{"prod-a", "orders", "read", "", Active},
		{"prod-a", "payments", "read", "", Active},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if r, _ := x.ForCluster("stage-a", ""); len(r.Entries) != 0 {
		t.Errorf("staging entries %+v: kim has none there", r.Entries)
	}
}

func TestSuggest(t *testing.T) {
	names := map[string]bool{"erin": true, "alice": true, "orders_api": true}
	for in, want := range map[string]string{"eri": ` (did you mean "erin"?)`, "alcie": ` (did you mean "alice"?)`, "zzzzzzzzz": ""} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkIndex10kUsers: indexing 10,000 users of two entries each over
// 200 clusters, which `dbusers access` does once per call.
func BenchmarkIndex10kUsers(b *testing.B) {
	d := decls()
	d.Clusters = nil
	for i := range 200 {
		d.Clusters = append(d.Clusters, desired.ClusterDecl{Name: fmt.Sprintf("c%03d", i), Environment: []string{"prod", "staging"}[i%2],
			Engine: "aurora-mysql-3", TLS: "verify-identity", Databases: []string{"orders", "billing"}})
	}
	for i := range 10_000 {
		d.Users = append(d.Users, desired.UserDecl{Name: fmt.Sprintf("u%05d", i), Owner: "t", Kind: "service",
			Auth: desired.Auth{Method: "password", Secret: "s"}, Access: []desired.AccessDecl{
				{Clusters: []string{fmt.Sprintf("c%03d", i%200)}, Databases: []string{"*"}, Role: "read"},
				{Clusters: []string{fmt.Sprintf("c%03d", (i+1)%200)}, Databases: []string{"orders"}, Role: "write", Expires: "2027-01-01"}}})
	}
	for b.Loop() {
		if _, err := New(d, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
