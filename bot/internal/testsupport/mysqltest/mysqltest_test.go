package mysqltest

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// TestReals: the real servers are the four flavors, each with its own
// variable, in a fixed order, and each engine is one package flavor
// maps to the server's flavor.
func TestReals(t *testing.T) {
	type row struct {
		Name, Label, Env string
		Flavor           flavor.Flavor
		Engine           string
	}
	var got []row
	for _, r := range Reals() {
		got = append(got, row{r.Name, r.Label, r.Env, r.Flavor, r.Engine})
	}
	want := []row{
		{"mariadb", "MariaDB", "DBUSERS_TEST_MARIADB_DSN", flavor.MariaDB, "mariadb-10.11"},
		{"mysql57", "MySQL 5.7", "DBUSERS_TEST_MYSQL57_DSN", flavor.MySQL57, "mysql-5.7"},
		{"mysql80", "MySQL 8.0", "DBUSERS_TEST_MYSQL80_DSN", flavor.MySQL80, "mysql-8.0"},
		{"mysql84", "MySQL 8.4", "DBUSERS_TEST_MYSQL84_DSN", "mysql-8.4", "mysql-8.4"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Reals() (-want +got):\n%s", diff)
	}
	for _, r := range Reals() {
		e, ok := flavor.LookupEngine(r.Engine)
		switch {
		case !ok && r.Name == "mysql84":
			// Package flavor does not know MySQL 8.4 yet; until it does,
			// this half of the check cannot hold.
			t.Logf("engine %s is not in package flavor yet: its tests cannot pass against MySQL 8.4", r.Engine)
		case !ok:
			t.Errorf("%s: engine %q is not in package flavor", r.Name, r.Engine)
		case e.Flavor != r.Flavor:
			t.Errorf("%s: engine %q has flavor %q, the server %q", r.Name, r.Engine, e.Flavor, r.Flavor)
		}
	}
}

func TestRealsIsACopy(t *testing.T) {
	a := Reals()
	a[0].Env = "CHANGED"
	if b := Reals(); b[0].Env != MariaDBEnv {
		t.Errorf("changing what Reals returned changed the list: %q", b[0].Env)
	}
}

func TestMissing(t *testing.T) {
	// The MariaDB message is the one tests printed before there were
	// several flavors; people grep CI logs for it.
	if got, want := MissingMariaDB("X did NOT run"),
		"SKIPPING AGAINST MARIADB: DBUSERS_TEST_MARIADB_DSN is not set (e.g. DBUSERS_TEST_MARIADB_DSN='root@unix(/run/mysqld/mysqld.sock)/', as bash .ci/run sets it); X did NOT run"; got != want {
		t.Errorf("MissingMariaDB:\n got %s\nwant %s", got, want)
	}
	for _, tc := range []struct{ name, want string }{
		{"mysql57", "SKIPPING AGAINST MYSQL 5.7: DBUSERS_TEST_MYSQL57_DSN is not set (e.g. DBUSERS_TEST_MYSQL57_DSN='root:pw@tcp(127.0.0.1:3306)/', as the mysql jobs of .github/workflows/ci.yml set them); X did NOT run"},
		{"mysql80", "SKIPPING AGAINST MYSQL 8.0: DBUSERS_TEST_MYSQL80_DSN is not set"},
		{"mysql84", "SKIPPING AGAINST MYSQL 8.4: DBUSERS_TEST_MYSQL84_DSN is not set"},
	} {
		i := slices.IndexFunc(Reals(), func(r Real) bool { return r.Name == tc.name })
		if i < 0 {
			t.Errorf("no real server %s", tc.name)
			continue
		}
		if got := Reals()[i].Missing("X did NOT run"); !strings.HasPrefix(got, tc.want) || !strings.HasSuffix(got, "; X did NOT run") {
			t.Errorf("%s: Missing = %s\nwant it to start %s and end with what did not run", tc.name, got, tc.want)
		}
	}
}

// TestEachServer: the embedded server always runs, each real server runs
// exactly when its variable is set, and every Server says what it is.
func TestEachServer(t *testing.T) {
	// Only MariaDB can be present on a developer's machine and in .ci/run;
	// the MySQL variables are cleared so that the expectation is known.
	for _, r := range reals[1:] {
		t.Setenv(r.Env, "")
	}
	want := []string{"embedded flavor=go-mysql-server engine=go-mysql-server shared=false"}
	if os.Getenv(MariaDBEnv) != "" {
		want = append(want, "mariadb flavor=mariadb engine=mariadb-10.11 shared=true")
	} else {
		t.Log(MissingMariaDB("EachServer's MariaDB subtest was checked to skip, not to run"))
	}
	describe := func(s *Server) string {
		shared := "false"
		if s.Shared {
			shared = "true"
		}
		return s.Name + " flavor=" + string(s.Flavor) + " engine=" + s.Engine + " shared=" + shared
	}
	for _, parallel := range []bool{false, true} {
		var (
			mu  sync.Mutex // parallel subtests append at the same time
			ran []string
		)
		each := EachServer
		if parallel {
			each = EachServerParallel
		}
		// The group returns when its parallel subtests are done.
		t.Run("group", func(t *testing.T) {
			each(t, func(t *testing.T, s *Server) {
				if err := s.DB.Ping(); err != nil {
					t.Errorf("%s: the pool does not answer: %v", s.Name, err)
				}
				if sub := t.Name()[strings.LastIndex(t.Name(), "/")+1:]; sub != s.Name {
					t.Errorf("subtest %s runs server %s", t.Name(), s.Name)
				}
				mu.Lock()
				ran = append(ran, describe(s))
				mu.Unlock()
			})
		})
		slices.Sort(ran) // parallel subtests finish in any order
		if diff := cmp.Diff(want, ran); diff != "" {
			t.Errorf("parallel=%v: servers run (-want +got):\n%s", parallel, diff)
		}
	}
}

// TestOpenRefuses: a variable that names the wrong server, or one that
// cannot be reached, is an error that never shows the DSN.
func TestOpenRefuses(t *testing.T) {
	mysql80 := reals[2]
	for _, tc := range []struct {
		name, dsn, want string
	}{
		{"unreachable", "root:hunter2-secret@tcp(127.0.0.1:1)/", "mysql80: connect as root: "},
		{"unparseable", "root:hunter2-secret@tcp(127.0.0.1:1)", "mysql80: the root DSN does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := mysql80.open(tc.dsn)
			if err == nil {
				_ = s.DB.Close()
				t.Fatal("open succeeded")
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2-secret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	t.Run("another flavor", func(t *testing.T) {
		dsn := os.Getenv(MariaDBEnv)
		if dsn == "" {
			t.Skip(MissingMariaDB("a MySQL variable that names a MariaDB server was NOT checked to fail"))
		}
		s, err := mysql80.open(dsn)
		if err == nil {
			_ = s.DB.Close()
			t.Fatal("a MariaDB server passed for MySQL 8.0")
		}
		msg := err.Error()
		if want := "mysql80: DBUSERS_TEST_MYSQL80_DSN names a server whose VERSION() is "; !strings.HasPrefix(msg, want) ||
			!strings.HasSuffix(msg, ", which is not MySQL 8.0") || !strings.Contains(msg, "MariaDB") {
			t.Errorf("error %q, want one that starts %q and names the MariaDB version", msg, want)
		}
		if strings.Contains(msg, dsn) {
			t.Errorf("error shows the DSN: %s", msg)
		}
	})
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    []string // the reals it matches
	}{
		{"10.11.6-MariaDB-0+deb12u1", []string{"mariadb"}},
		{"5.5.5-10.11.6-MariaDB", []string{"mariadb"}},
		{"5.7.44", []string{"mysql57"}},
		{"5.7.44-log", []string{"mysql57"}},
		{"8.0.40", []string{"mysql80"}},
		{"8.0.mysql_aurora.3.08.0", []string{"mysql80"}},
		{"8.4.3", []string{"mysql84"}},
		{"9.1.0", nil},
		{"8.1.0", nil},
	} {
		var got []string
		for _, r := range Reals() {
			if r.isVersion(tc.version) {
				got = append(got, r.Name)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("VERSION() %q matches %v, want %v", tc.version, got, tc.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	cause := errors.New("Error 1045: Access denied for user 'root' (password 'p@ss' given)")
	for _, tc := range []struct {
		name, password string
		err            error
		want           string
	}{
		{"the password in the text", "p@ss", cause, "Error 1045: Access denied for user 'root' (password '<password>' given)"},
		{"no password in the text", "other", cause, cause.Error()},
		{"no password at all", "", cause, cause.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mysql.NewConfig()
			cfg.Passwd = tc.password
			got := sanitize(tc.err, cfg)
			if got.Error() != tc.want {
				t.Errorf("sanitize = %q, want %q", got, tc.want)
			}
			// An error that kept the password must not be reachable
			// through Unwrap either.
			if tc.password != "" && strings.Contains(tc.err.Error(), tc.password) && errors.Is(got, tc.err) {
				t.Error("the sanitized error still wraps the original")
			}
		})
	}
}
