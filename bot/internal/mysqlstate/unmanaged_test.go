package mysqlstate

import (
	"slices"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// TestReadUnmanaged: the accounts outside the prefix, with the managed
// databases they hold grants on, in one query; managed and skipped ones
// left out.
func TestReadUnmanaged(t *testing.T) {
	mysqltest.EachServer(t, func(t *testing.T, s *mysqltest.Server) {
		f := newFixture(t, s)
		db, other := f.stem+"_db", f.stem+"other"
		f.database(db)
		f.database(other)
		shared := f.user(f.stem+"app", "IDENTIFIED BY 'secret'") // no separator: not the prefix's
		report := f.user(f.stem+"report", "IDENTIFIED BY 'secret'")
		managed := f.user(f.prefix+"bob", "IDENTIFIED BY 'secret'")
		skipped := f.user(f.stem+"skipme", "IDENTIFIED BY 'secret'")
		f.exec("GRANT SELECT, INSERT ON "+ident(db)+".* TO "+account(shared),
			"GRANT SELECT ON "+ident(other)+".* TO "+account(report),
			"GRANT SELECT ON "+ident(db)+".* TO "+account(managed))
		srv := &Server{Flavor: s.Flavor}
		got, err := ReadUnmanaged(testContext(t), s.DB, s.Flavor, f.managed(), srv.WildcardDatabaseNames(), []string{db},
			func(id AccountID) bool { return id == skipped })
		if err != nil {
			t.Fatal(err)
		}
		mine := map[string]Unmanaged{}
		for _, u := range got {
			if strings.HasPrefix(u.Account.User, f.stem) {
				mine[u.Account.User] = u
			}
		}
		if u, ok := mine[shared.User]; !ok || !slices.Equal(u.Databases, []string{db}) {
			t.Errorf("shared account %+v (found %v), want its grant on %s", u, ok, db)
		}
		if u, ok := mine[report.User]; !ok || len(u.Databases) != 0 {
			t.Errorf("report %+v (found %v): want it listed, with no managed database", u, ok)
		}
		for _, n := range []string{managed.User, skipped.User} {
			if _, ok := mine[n]; ok {
				t.Errorf("%s is listed", n)
			}
		}
	})
}

func TestLikeMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{`orders`, "orders", true},
		{`orders`, "order", false},
		{`ord%`, "orders", true},
		{`%`, "anything", true},
		{`o_ders`, "orders", true},
		{`acme\_orders`, "acme_orders", true},
		{`acme\_orders`, "acmexorders", false},
		{`acme_orders`, "acmexorders", true},
		{`a%b%c`, "axxbyyc", true},
		{`a%b%c`, "axxbyy", false},
		{`\%`, "%", true},
		{`\%`, "x", false},
		{``, "", true},
		{strings.Repeat("%", 64), strings.Repeat("a", 64), true},
		{strings.Repeat("%a", 32) + "b", strings.Repeat("a", 64), false},
	} {
		if got := likeMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("likeMatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}
