package review

import (
	"fmt"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/config"
)

// BenchmarkCompare10kUsers compares two 10,000-user configurations (200
// users elevated, 100 removed, 100 added) and renders the markdown: the
// review's share of `dbusers plan` on a large repository.
func BenchmarkCompare10kUsers(b *testing.B) {
	user := func(i int, role string) config.User {
		return config.User{Name: fmt.Sprintf("u%05d", i), Owner: fmt.Sprintf("team%d@acme.example", i%50), Kind: "human",
			Access: []config.Access{
				{Environments: []string{"staging"}, Databases: []string{"*"}, Role: role},
				{Clusters: []string{"prod-orders"}, Databases: []string{"orders"}, Role: "read", Expires: "2026-12-31"},
			}}
	}
	base := fleet()
	base.Users = nil
	for i := range 10000 {
		base.Users = append(base.Users, user(i, "read"))
	}
	head := clone(b, base)
	head.Users = nil
	for i := range 10100 {
		switch {
		case i < 10000 && i%100 == 25:
			continue // removed
		case i%50 == 0:
			head.Users = append(head.Users, user(i, "write"))
		default:
			head.Users = append(head.Users, user(i, "read"))
		}
	}
	bs, hs := side(b, "base", base), side(b, "head", head)
	b.ReportAllocs()
	for b.Loop() {
		r := Compare(bs, hs)
		if r.Summary.UsersAdded != 100 || r.Summary.UsersRemoved != 100 || r.Summary.UsersChanged != 200 {
			b.Fatalf("summary %+v", r.Summary)
		}
		_ = r.Markdown()
	}
}
