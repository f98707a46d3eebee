package flavor

import (
	"slices"
	"testing"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"select":                      "SELECT",
		"  create   temporary tables": "CREATE TEMPORARY TABLES",
		"all":                         AllPrivileges,
		"All Privileges":              AllPrivileges,
		"ſelect":                      "ſelect", // long s is not an S
		"all prıvıleges":              "all prıvıleges",
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
	if KnownDatabasePrivilege(Canonical("ſelect")) {
		t.Error("a look-alike of SELECT is known")
	}
}

func TestExpand(t *testing.T) {
	got, err := MariaDB.Expand([]string{"ALL PRIVILEGES"})
	if err != nil || !slices.Equal(got, MariaDB.DatabasePrivileges()) || !slices.Contains(got, "DELETE HISTORY") {
		t.Errorf("MariaDB ALL = %v, %v", got, err)
	}
	if _, err := MySQL80.Expand([]string{"DELETE HISTORY"}); err == nil {
		t.Error("MySQL 8.0 accepted DELETE HISTORY")
	}
	got, err = MySQL57.Expand([]string{"update", "SELECT", "select"})
	if err != nil || !slices.Equal(got, []string{"SELECT", "UPDATE"}) {
		t.Errorf("Expand = %v, %v; want sorted, unique, canonical", got, err)
	}
	if !MySQL80.IsAll(MySQL80.DatabasePrivileges()) || MySQL80.IsAll([]string{"SELECT"}) {
		t.Error("IsAll")
	}
}

func TestDatabasePattern(t *testing.T) {
	for _, name := range []string{"orders", "app_db", "100%", `a\b`, "x_%_\\", ""} {
		p := DatabasePattern(name, true)
		back, exact := UnescapeDatabasePattern(p)
		if back != name || !exact {
			t.Errorf("%q → %q → %q, exact %v", name, p, back, exact)
		}
		if DatabasePattern(name, false) != name {
			t.Errorf("non-wildcard pattern of %q changed", name)
		}
	}
	if _, exact := UnescapeDatabasePattern("app_db"); exact {
		t.Error("an unescaped _ is a wildcard, not an exact name")
	}
}

func TestWildcardDatabaseNames(t *testing.T) {
	for _, tc := range []struct {
		f       Flavor
		partial bool
		want    bool
	}{
		{MySQL57, false, true}, {MariaDB, false, true}, {MySQL80, false, true}, {MySQL80, true, false}, {Embedded, false, false},
	} {
		if got := tc.f.WildcardDatabaseNames(tc.partial); got != tc.want {
			t.Errorf("%s partial_revokes=%v: %v", tc.f, tc.partial, got)
		}
	}
}

func TestEngines(t *testing.T) {
	for _, name := range Engines() {
		e, ok := LookupEngine(name)
		if !ok || e.Name != name || e.Flavor.DatabasePrivileges() == nil {
			t.Errorf("engine %s: %+v", name, e)
		}
	}
	if slices.Contains(Engines(), EmbeddedEngine) {
		t.Error("the embedded engine is offered to cluster files")
	}
}
