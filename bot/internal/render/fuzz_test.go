package render

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"math"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/dbusers/dbusers/bot/internal/flavor"
	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
	"github.com/dbusers/dbusers/bot/internal/plan"
	"github.com/go-sql-driver/mysql"

	"github.com/dbusers/dbusers/bot/internal/testsupport/mysqltest"
)

// serverBudget bounds the inputs one fuzzing process (go test -fuzz) also
// checks on live servers: each worker checks the first inputs it is given,
// then only the pure properties, so fuzzing stays fast and the servers stay
// calm. Plain go test checks every seed and corpus entry on the servers.
var serverBudget = flag.Int("server-budget", 50, "under -fuzz, inputs per process that are also checked on live servers")

// newBudget returns the number of inputs this process may check on servers.
func newBudget() *atomic.Int64 {
	var b atomic.Int64
	b.Store(math.MaxInt64)
	if fl := flag.Lookup("test.fuzz"); fl != nil && fl.Value.String() != "" {
		b.Store(int64(*serverBudget))
	}
	return &b
}

// fuzzPrefix starts every account and database the fuzz tests create, so
// that leftovers of a killed run can be found and dropped.
const fuzzPrefix = "rfz_"

// fuzzLock serializes fuzz processes on a shared server.
const fuzzLock = "dbusers_render_fuzz"

// hostile are seeds for names: quotes, backticks, backslashes, wildcards,
// spaces, unicode, and what breaks naive SQL.
var hostile = []string{
	"app_db", "app%", "50%off", `a\b`, `a\_b`, `a\%`, "we`ird", "o'brien", `"dq"`, "''''", "````",
	"日本語", "Ünïcødé", "ß", "İ", "space in name", " lead", "a.b", "a/b", "a-b", "$x", "#x", "@x", "x@y",
	"'@'%", "'@'localhost", "x'; DROP DATABASE mysql; --", "x` ; DROP DATABASE mysql; -- `",
	"x\ny", "x\r\ny", "x\x1ay", "x\ty", "\\", `\\\`, "'\\", "\\'", "%_%_", "ROOT", "mysql", "%",
}

// withLock runs fn holding fuzzLock when s is shared with other processes.
func withLock(t *testing.T, s *liveServer, fn func()) {
	t.Helper()
	if !s.Shared {
		fn()
		return
	}
	ctx := ctxFor(t)
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, GetLock(fuzzLock, 60)).Scan(&got); err != nil || got.Int64 != 1 {
		t.Fatalf("%s: %s = %v, %v", s.Name, GetLock(fuzzLock, 60), got, err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), ReleaseLock(fuzzLock)) }()
	fn()
}

// fuzzServers returns the servers a fuzz process checks against, after
// dropping what an earlier, killed run may have left.
func fuzzServers(f *testing.F) []*liveServer {
	servers := []*liveServer{live(mysqltest.Embedded(f))}
	if os.Getenv(mysqltest.MariaDBEnv) != "" {
		servers = append(servers, live(mysqltest.MariaDB(f, "")))
	} else {
		f.Log(mysqltest.MissingMariaDB("only the embedded server was checked"))
	}
	for _, s := range servers[1:] {
		ctx := ctxFor(f)
		conn, err := s.DB.Conn(ctx)
		if err != nil {
			f.Fatal(err)
		}
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, GetLock(fuzzLock, 60)).Scan(&got); err != nil || got.Int64 != 1 {
			f.Fatalf("%s: %s = %v, %v", s.Name, GetLock(fuzzLock, 60), got, err)
		}
		o, err := s.objects(ctx)
		if err != nil {
			f.Fatal(err)
		}
		for _, a := range o.accounts {
			if strings.HasPrefix(a.User, fuzzPrefix) {
				f.Logf("%s: dropping leftover account %s", s.Name, a)
				if _, err := conn.ExecContext(ctx, "DROP USER "+Account(a)); err != nil {
					f.Fatal(err)
				}
			}
		}
		for _, d := range o.databases {
			if strings.HasPrefix(d, fuzzPrefix) {
				f.Logf("%s: dropping leftover database %q", s.Name, d)
				if _, err := conn.ExecContext(ctx, "DROP DATABASE "+Ident(d)); err != nil {
					f.Fatal(err)
				}
			}
		}
		_, _ = conn.ExecContext(ctx, ReleaseLock(fuzzLock))
		_ = conn.Close()
	}
	return servers
}

// fit cuts name, a character at a time, until ok accepts it or nothing is
// left to cut.
func fit(name string, ok func(string) bool) string {
	for !ok(name) && len(name) > len(fuzzPrefix) {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	return name
}

// recorder sends statements and remembers their text, to tell an object
// that a statement created by accident (whose name must come from that
// text) from one another process created on a shared server.
type recorder struct {
	t    *testing.T
	s    *liveServer
	ctx  context.Context
	sent []string
}

func (r *recorder) exec(q string) {
	r.t.Helper()
	if err := r.try(q); err != nil {
		r.t.Fatalf("%s: %q: %v", r.s.Name, q, err)
	}
}

func (r *recorder) try(q string) error {
	r.sent = append(r.sent, q)
	_, err := r.s.DB.ExecContext(r.ctx, q)
	return err
}

func (r *recorder) apply(c plan.Change) {
	r.t.Helper()
	st, err := Change(c, r.s.Flavor)
	if err != nil {
		r.t.Fatalf("%s: %v", r.s.Name, err)
	}
	r.sent = append(r.sent, st.SQL)
	if _, err := r.s.DB.ExecContext(r.ctx, st.SQL); err != nil {
		r.t.Fatalf("%s: %q: %v", r.s.Name, st.Redacted, st.SanitizeError(err))
	}
}

// expectAppeared checks that exactly want appeared between before and now.
func (r *recorder) expectAppeared(before objects, want objects) {
	r.t.Helper()
	now, err := r.s.objects(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	got := appeared(before, now)
	for _, a := range want.accounts {
		if !slices.Contains(got.accounts, a) {
			r.t.Errorf("%s: account %q@%q is missing: accounts that appeared: %q", r.s.Name, a.User, a.Host, got.accounts)
		}
	}
	for _, d := range want.databases {
		if !slices.Contains(got.databases, d) {
			r.t.Errorf("%s: database %q is missing: databases that appeared: %q", r.s.Name, d, got.databases)
		}
	}
	for _, a := range got.accounts {
		if !slices.Contains(want.accounts, a) {
			r.unexpected("account", a.User+"@"+a.Host, a.User)
		}
	}
	for _, d := range got.databases {
		if !slices.Contains(want.databases, d) {
			r.unexpected("database", d, d)
		}
	}
}

func (r *recorder) unexpected(kind, what, name string) {
	r.t.Helper()
	if r.s.Shared && !slices.ContainsFunc(r.sent, func(q string) bool { return strings.Contains(q, name) }) {
		r.t.Logf("%s: %s %q appeared, but no statement sent here names it: another process made it", r.s.Name, kind, what)
		return
	}
	r.t.Errorf("%s: unexpected %s %q appeared; statements sent: %q", r.s.Name, kind, what, r.sent)
}

// FuzzIdent checks that Ident quotes any identifier so that it reads back
// exactly, that database patterns round-trip, and (for a budget of inputs)
// that every test server creates, grants on and stores exactly that name.
//
// CI fuzz budget: 5000 execs (inputs within the budget go to every server).
func FuzzIdent(f *testing.F) {
	for _, s := range append(slices.Clone(nasty), hostile...) {
		f.Add(s)
	}
	servers := fuzzServers(f)
	budget := newBudget()
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := readIdent(Ident(s)); err != nil || got != s {
			t.Fatalf("readIdent(Ident(%q)) = %q, %v", s, got, err)
		}
		if p := flavor.DatabasePattern(s, false); p != s {
			t.Fatalf("flavor.DatabasePattern(%q, false) = %q", s, p)
		}
		p := flavor.DatabasePattern(s, true)
		if name, exact := flavor.UnescapeDatabasePattern(p); name != s || !exact {
			t.Fatalf("flavor.UnescapeDatabasePattern(flavor.DatabasePattern(%q, true)) = %q, %v", s, name, exact)
		}

		// The escaped pattern must fit too: MariaDB stores it, and refuses
		// one longer than 64 characters.
		name := fit(fuzzPrefix+s, func(n string) bool { return CheckIdent(n) == nil && CheckIdent(flavor.DatabasePattern(n, true)) == nil })
		if CheckIdent(name) != nil || CheckIdent(flavor.DatabasePattern(name, true)) != nil || budget.Add(-1) < 0 {
			return
		}
		for _, srv := range servers {
			withLock(t, srv, func() { checkDatabaseName(t, srv, name) })
		}
	})
}

// checkDatabaseName creates a database with a hostile name, grants on it
// and checks that the server stored exactly that name and nothing else.
func checkDatabaseName(t *testing.T, s *liveServer, name string) {
	t.Helper()
	r := &recorder{t: t, s: s, ctx: ctxFor(t)}
	user := mysqlstate.AccountID{User: fuzzPrefix + "grantee", Host: "%"}
	before, err := s.objects(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { // only matters when a check failed half way
		_, _ = s.DB.ExecContext(context.Background(), "DROP USER "+Account(user))
		_, _ = s.DB.ExecContext(context.Background(), "DROP DATABASE "+Ident(name))
	}()
	pattern := flavor.DatabasePattern(name, s.wildcard)
	if err := r.try("CREATE DATABASE " + Ident(name)); err != nil {
		if !refusesName(err, name) {
			t.Fatalf("%s: CREATE DATABASE %s: %v", s.Name, Ident(name), err)
		}
		// The server parsed the name right (its error quotes it) and
		// refuses it for what it is: not an escaping failure.
		t.Logf("%s refuses the database name %q: %v", s.Name, name, err)
		r.expectAppeared(before, objects{})
		return
	}
	r.apply(plan.Change{Account: user, Op: plan.NewAccount{Auth: plan.Auth{Method: "password", Password: "rfz-" + name}}})
	r.apply(plan.Change{Account: user, Op: plan.GrantDatabase{DatabaseRef: plan.DatabaseRef{Pattern: pattern}, Privileges: []string{"SELECT"}}})

	stored, err := s.strings(r.ctx, "SELECT Db FROM mysql.db WHERE User = "+Literal(user.User)+" AND Host = "+Literal(user.Host))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 {
		t.Fatalf("%s: mysql.db holds %q for %s, want one row", s.Name, stored, user)
	}
	got, exact := stored[0], true
	if s.wildcard {
		got, exact = flavor.UnescapeDatabasePattern(stored[0])
	}
	if got != name || !exact || stored[0] != pattern {
		t.Errorf("%s: mysql.db stores %q (reads as %q, exact %v); want %q for database %q", s.Name, stored[0], got, exact, pattern, name)
	}
	r.expectAppeared(before, objects{accounts: []mysqlstate.AccountID{user}, databases: []string{name}})

	r.apply(plan.Change{Account: user, Op: plan.RevokeDatabase{DatabaseRef: plan.DatabaseRef{Pattern: pattern}, Privileges: []string{"SELECT"}}})
	if left, err := s.strings(r.ctx, "SELECT Db FROM mysql.db WHERE User = "+Literal(user.User)); err != nil || len(left) != 0 {
		t.Errorf("%s: after REVOKE mysql.db still holds %q, %v", s.Name, left, err)
	}
	r.apply(plan.Change{Account: user, Op: plan.Drop{}})
	r.exec("DROP DATABASE " + Ident(name))
	r.expectAppeared(before, objects{})
}

// refusesName reports whether err is the server refusing the database name
// name, and quoting it exactly, which proves that it read the name as meant.
func refusesName(err error, name string) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) || !strings.Contains(me.Message, name) {
		return false
	}
	switch me.Number {
	case 1102: // ER_WRONG_DB_NAME (MySQL, MariaDB)
		return true
	case 1105: // go-mysql-server's catch-all
		return strings.HasPrefix(me.Message, "invalid database name")
	}
	return false
}

// FuzzLiteral checks that Literal quotes any string so that it reads back
// exactly with and without NO_BACKSLASH_ESCAPES and (for a budget of inputs) that
// every test server stores the string unchanged.
//
// CI fuzz budget: 5000 execs (inputs within the budget go to every server).
func FuzzLiteral(f *testing.F) {
	for _, s := range append(slices.Clone(nasty), hostile...) {
		f.Add(s)
	}
	servers := fuzzServers(f)
	budget := newBudget()
	f.Fuzz(func(t *testing.T, s string) {
		lit := Literal(s)
		if got, err := readLiteral(lit); err != nil || got != s {
			t.Fatalf("readLiteral(Literal(%q)) = %q, %v", s, got, err)
		}
		if end := literalEndNoBackslash(lit); end != len(lit) {
			t.Fatalf("under NO_BACKSLASH_ESCAPES, Literal(%q) = %q ends at byte %d of %d", s, lit, end, len(lit))
		}
		if strings.ContainsAny(lit, "\x00\r\n") {
			t.Fatalf("Literal(%q) = %q holds a raw NUL, CR or LF", s, lit)
		}
		if u, h, err := readAccount(Account(mysqlstate.AccountID{User: s, Host: s})); err != nil || u != s || h != s {
			t.Fatalf("Account(%q, %q) reads back as %q, %q, %v", s, s, u, h, err)
		}

		// Only valid UTF-8 survives the utf8mb4 connection unchanged.
		if !utf8.ValidString(s) || budget.Add(-1) < 0 {
			return
		}
		for _, srv := range servers {
			var got []byte
			if err := srv.DB.QueryRowContext(ctxFor(t), "SELECT "+lit).Scan(&got); err != nil {
				t.Fatalf("%s: SELECT %q: %v", srv.Name, lit, err)
			}
			if string(got) != s {
				t.Errorf("%s: SELECT %q = %q, want %q", srv.Name, lit, got, s)
			}
			user := mysqlstate.AccountID{User: fit(fuzzPrefix+s, func(n string) bool { return utf8.RuneCountInString(n) <= 32 }), Host: "%"}
			if CheckAccount(user, srv.Flavor) == nil {
				withLock(t, srv, func() { checkAccountName(t, srv, user, s) })
			}
		}
	})
}

// checkAccountName creates an account with a hostile name and password,
// checks that exactly that account appeared, and logs in as it.
func checkAccountName(t *testing.T, s *liveServer, user mysqlstate.AccountID, password string) {
	t.Helper()
	if password == "" {
		password = "empty input"
	}
	r := &recorder{t: t, s: s, ctx: ctxFor(t)}
	before, err := s.objects(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = s.DB.ExecContext(context.Background(), "DROP USER "+Account(user)) }()
	r.apply(plan.Change{Account: user, Op: plan.NewAccount{Auth: plan.Auth{Method: "password", Password: password}}})
	r.expectAppeared(before, objects{accounts: []mysqlstate.AccountID{user}})
	if err := s.CanLogin(r.ctx, user.User, password); err != nil {
		t.Errorf("%s: log in as %q with password %q: %v", s.Name, user.User, password, err)
	}
	r.apply(plan.Change{Account: user, Op: plan.Drop{}})
	r.expectAppeared(before, objects{})
}
