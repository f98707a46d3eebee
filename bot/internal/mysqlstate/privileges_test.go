package mysqlstate

import (
	"slices"
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

func TestColumnPrivilege(t *testing.T) {
	tests := map[string]string{
		"Select_priv":            "SELECT",
		"Create_tmp_table_priv":  "CREATE TEMPORARY TABLES",
		"Lock_tables_priv":       "LOCK TABLES",
		"Show_view_priv":         "SHOW VIEW",
		"Create_view_priv":       "CREATE VIEW",
		"Create_routine_priv":    "CREATE ROUTINE",
		"Alter_routine_priv":     "ALTER ROUTINE",
		"Delete_history_priv":    "DELETE HISTORY",
		"Grant_priv":             "GRANT OPTION",
		"Repl_slave_priv":        "REPLICATION SLAVE",
		"Repl_client_priv":       "REPLICATION CLIENT",
		"Show_db_priv":           "SHOW DATABASES",
		"Create_tablespace_priv": "CREATE TABLESPACE",
		"Create_user_priv":       "CREATE USER",
		"Create_role_priv":       "CREATE ROLE",
		"Drop_role_priv":         "DROP ROLE",
		"Super_priv":             "SUPER",
		"File_priv":              "FILE",
		"Reload_priv":            "RELOAD",
		"Shutdown_priv":          "SHUTDOWN",
		"Process_priv":           "PROCESS",
		"Event_priv":             "EVENT",
		"Trigger_priv":           "TRIGGER",
		"Execute_priv":           "EXECUTE",
		"References_priv":        "REFERENCES",
	}
	for col, want := range tests {
		if got, ok := columnPrivilege(col); !ok || got != want {
			t.Errorf("columnPrivilege(%q) = %q, %v; want %q", col, got, ok, want)
		}
	}
	for _, col := range []string{"User", "Host", "ssl_type", "plugin", "account_locked", "Password_require_current", "_priv"} {
		if got, ok := columnPrivilege(col); ok {
			t.Errorf("columnPrivilege(%q) = %q; want no privilege", col, got)
		}
	}
}

// The *_priv columns of mysql.db map to exactly the database privileges of
// each flavor (plus GRANT OPTION, which flavor leaves out on purpose), so a
// row with every column 'Y' reads back as ALL PRIVILEGES.
func TestDatabaseColumnsCoverFlavor(t *testing.T) {
	mysqlDB := strings.Fields(`Select_priv Insert_priv Update_priv Delete_priv Create_priv Drop_priv Grant_priv
		References_priv Index_priv Alter_priv Create_tmp_table_priv Lock_tables_priv Create_view_priv Show_view_priv
		Create_routine_priv Alter_routine_priv Execute_priv Event_priv Trigger_priv`)
	columns := map[flavor.Flavor][]string{
		flavor.MySQL57:  mysqlDB,
		flavor.MySQL80:  mysqlDB,
		flavor.Embedded: mysqlDB,
		flavor.MariaDB:  append(slices.Clone(mysqlDB), "Delete_history_priv"),
	}
	for f, cols := range columns {
		var got []string
		for _, c := range cols {
			if p, ok := columnPrivilege(c); ok && p != "GRANT OPTION" {
				got = append(got, p)
			}
		}
		slices.Sort(got)
		if want := f.DatabasePrivileges(); !slices.Equal(got, want) {
			t.Errorf("%s: mysql.db columns map to\n%q\nwant %q", f, got, want)
		}
	}
}

func TestParsePrivilegeSet(t *testing.T) {
	tests := map[string][]string{
		"":                                  nil,
		"Select":                            {"SELECT"},
		"Select,Insert":                     {"SELECT", "INSERT"},
		"Create View,Show view,Trigger":     {"CREATE VIEW", "SHOW VIEW", "TRIGGER"},
		"Grant,Delete versioning rows":      {"GRANT OPTION", "DELETE HISTORY"},
		"Select, Insert ,,References":       {"SELECT", "INSERT", "REFERENCES"},
		"select,update":                     {"SELECT", "UPDATE"},
		"Delete,Create,Drop,Index,Alter":    {"DELETE", "CREATE", "DROP", "INDEX", "ALTER"},
		"Insert,References,Select,Update,,": {"INSERT", "REFERENCES", "SELECT", "UPDATE"},
	}
	for in, want := range tests {
		if got := parsePrivilegeSet(in); !slices.Equal(got, want) {
			t.Errorf("parsePrivilegeSet(%q) = %q; want %q", in, got, want)
		}
	}
}

func FuzzParsePrivilegeSet(f *testing.F) {
	for _, s := range []string{"Select,Insert", "Grant", "Delete versioning rows", " , ,", "Show  view"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range parsePrivilegeSet(s) {
			if p == "" || p != flavor.Canonical(p) {
				t.Fatalf("parsePrivilegeSet(%q) gave %q, not a canonical name", s, p)
			}
		}
	})
}

func TestMariaDBPrivileges(t *testing.T) {
	tests := []struct {
		access uint64
		want   []string
	}{
		{0, nil},
		{1, []string{"SELECT"}},
		{1<<0 | 1<<1 | 1<<2, []string{"SELECT", "INSERT", "UPDATE"}},
		{1 << 20, []string{"BINLOG MONITOR"}},
		{1 << 10, []string{"GRANT OPTION"}},
		// GRANT BINLOG MONITOR and the nine 10.5+ privileges, as the server
		// stored them.
		{548683120640, []string{"BINLOG MONITOR", "SET USER", "FEDERATED ADMIN", "CONNECTION ADMIN", "READ_ONLY ADMIN",
			"REPLICATION SLAVE ADMIN", "REPLICATION MASTER ADMIN", "BINLOG ADMIN", "BINLOG REPLAY", "SLAVE MONITOR"}},
	}
	for _, tt := range tests {
		got, err := mariaDBPrivileges(tt.access)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("mariaDBPrivileges(%d) = %q, %v; want %q", tt.access, got, err, tt.want)
		}
	}
	// root@localhost on MariaDB 10.11: every privilege.
	all, err := mariaDBPrivileges(549755813887)
	if err != nil || len(all) != 39 {
		t.Errorf("mariaDBPrivileges(all) = %d privileges, %v; want 39", len(all), err)
	}
	if _, err := mariaDBPrivileges(1 << 39); err == nil || !strings.Contains(err.Error(), "unknown privilege bit 39") {
		t.Errorf("mariaDBPrivileges(1<<39) error = %v; want unknown privilege bit 39", err)
	}
	// The database-level bits are MariaDB's database privileges.
	var dbBits uint64
	for i, name := range mariaDBAccessBits {
		if flavor.MariaDB.Supports(name) {
			dbBits |= 1 << i
		}
	}
	got, _ := mariaDBPrivileges(dbBits)
	slices.Sort(got)
	if want := flavor.MariaDB.DatabasePrivileges(); !slices.Equal(got, want) {
		t.Errorf("MariaDB access bits for database privileges = %q; want %q", got, want)
	}
}

func TestLikePrefix(t *testing.T) {
	tests := map[string]string{
		"acme_":  "acme!_%",
		"a%b":    "a!%b%",
		"x!y":    "x!!y%",
		`back\_`: `back\!_%`,
		"héllo_": "héllo!_%",
	}
	for in, want := range tests {
		if got := likePrefix(in); got != want {
			t.Errorf("likePrefix(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzLikePrefix checks the pattern against a small LIKE matcher (escape !):
// it matches exactly the strings that start with the prefix.
func FuzzLikePrefix(f *testing.F) {
	f.Add("acme_", "acme_bob")
	f.Add("acme_", "acmeXbob")
	f.Add("a%", "abc")
	f.Add("a!", "a!b")
	f.Fuzz(func(t *testing.T, prefix, s string) {
		got := like(likePrefix(prefix), s)
		if want := strings.HasPrefix(s, prefix); got != want {
			t.Fatalf("LIKE %q on %q = %v; HasPrefix = %v", likePrefix(prefix), s, got, want)
		}
	})
}

// like is SQL LIKE with escape character !, on bytes.
func like(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch c := pattern[0]; {
	case c == '!' && len(pattern) > 1:
		return s != "" && s[0] == pattern[1] && like(pattern[2:], s[1:])
	case c == '%':
		for i := 0; i <= len(s); i++ {
			if like(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case c == '_':
		return s != "" && like(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == c && like(pattern[1:], s[1:])
	}
}

func TestNativePasswordHash(t *testing.T) {
	// What MariaDB and go-mysql-server store for IDENTIFIED BY 'secret'.
	if got, want := NativePasswordHash("secret"), "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"; got != want {
		t.Errorf("NativePasswordHash(secret) = %s; want %s", got, want)
	}
	if got := NativePasswordHash(""); len(got) != 41 || got[0] != '*' {
		t.Errorf("NativePasswordHash(\"\") = %q; want * and 40 hex digits", got)
	}
}

// FuzzParseDefiner: a DEFINER value in either spelling reads back as the
// account it names, and nothing panics.
func FuzzParseDefiner(f *testing.F) {
	f.Add("acme_bob", "%")
	f.Add("a@b", "10.0.0.%")
	f.Add("x`y", "h``")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, user, host string) {
		quoted := "`" + strings.ReplaceAll(user, "`", "``") + "`@`" + strings.ReplaceAll(host, "`", "``") + "`"
		if got := parseDefiner(quoted); got != (AccountID{User: user, Host: host}) {
			t.Fatalf("parseDefiner(%q) = %+v, want %q@%q", quoted, got, user, host)
		}
		if !strings.Contains(host, "@") && !strings.HasPrefix(user, "`") {
			plain := user + "@" + host
			if got := parseDefiner(plain); got != (AccountID{User: user, Host: host}) {
				t.Fatalf("parseDefiner(%q) = %+v, want %q@%q", plain, got, user, host)
			}
		}
		_ = parseDefiner(user + host)
	})
}
