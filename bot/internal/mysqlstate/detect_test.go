package mysqlstate

import (
	"strings"
	"testing"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

func TestDetectFlavor(t *testing.T) {
	tests := []struct {
		version, comment string
		want             flavor.Flavor
	}{
		{"10.11.19-MariaDB-0+deb12u1", "Debian 12", flavor.MariaDB},
		{"5.5.5-10.11.6-MariaDB-log", "MariaDB Server", flavor.MariaDB},
		{"8.0.31", "Dolt", flavor.Embedded},
		{"5.7.44-log", "MySQL Community Server (GPL)", flavor.MySQL57},
		{"5.7.12", "MySQL Community Server (GPL)", flavor.MySQL57}, // Aurora 2
		{"8.0.36", "Source distribution", flavor.MySQL80},
		{"8.0.28", "Source distribution", flavor.MySQL80}, // Aurora 3
		{"8.4.2", "MySQL Community Server - GPL", flavor.MySQL84},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			got, err := flavor.Detect(tt.version, tt.comment)
			if err != nil || got != tt.want {
				t.Errorf("Detect(%q, %q) = %q, %v; want %q", tt.version, tt.comment, got, err, tt.want)
			}
		})
	}
	for _, v := range []string{"5.6.51", "9.0.1", "", "PostgreSQL 16"} {
		_, err := flavor.Detect(v, "")
		if err == nil {
			t.Errorf("Detect(%q) = nil error; want one", v)
			continue
		}
		if want := `unsupported server version "` + v + `"`; !strings.Contains(err.Error(), want) {
			t.Errorf("Detect(%q) error %q does not name the version", v, err)
		}
	}
}

func TestParseAccount(t *testing.T) {
	tests := []struct {
		in   string
		want AccountID
	}{
		{"root@localhost", AccountID{"root", "localhost"}},
		{"admin@%", AccountID{"admin", "%"}},
		{"a@b@10.0.0.1", AccountID{"a@b", "10.0.0.1"}},
		{"role_only", AccountID{"role_only", ""}},
		{"@localhost", AccountID{"", "localhost"}},
	}
	for _, tt := range tests {
		if got := parseAccount(tt.in); got != tt.want {
			t.Errorf("parseAccount(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseAccount(f *testing.F) {
	for _, s := range []string{"root@localhost", "a@b@c", "", "@", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := parseAccount(s)
		if !strings.Contains(s, "@") {
			if a != (AccountID{User: s}) {
				t.Fatalf("parseAccount(%q) = %v; want the whole string as user", s, a)
			}
			return
		}
		if a.User+"@"+a.Host != s || strings.Contains(a.Host, "@") {
			t.Fatalf("parseAccount(%q) = %v; want a split at the last @", s, a)
		}
	})
}

var (
	mariaDB1011 = Identity{Flavor: flavor.MariaDB, Version: "10.11.19-MariaDB-0+deb12u1", VersionComment: "Debian 12"}
	mariaDB106  = Identity{Flavor: flavor.MariaDB, Version: "10.6.18-MariaDB", VersionComment: "MariaDB Server"}
	mysql57     = Identity{Flavor: flavor.MySQL57, Version: "5.7.44-log"}
	mysql80     = Identity{Flavor: flavor.MySQL80, Version: "8.0.36"}
	mysql84     = Identity{Flavor: flavor.MySQL84, Version: "8.4.2"}
	aurora2     = Identity{Flavor: flavor.MySQL57, Version: "5.7.12", AuroraVersion: "2.11.2"}
	aurora3     = Identity{Flavor: flavor.MySQL80, Version: "8.0.28", AuroraVersion: "3.04.0", PartialRevokes: true}
	embeddedID  = Identity{Flavor: flavor.Embedded, Version: "8.0.31", VersionComment: "Dolt"}
)

func TestCheckEngine(t *testing.T) {
	tests := []struct {
		engine string
		id     Identity
		want   string // "" accepts
	}{
		{"aurora-mysql-3", aurora3, ""},
		{"aurora-mysql-2", aurora2, ""},
		{"rds-mysql-8.0", mysql80, ""},
		{"mysql-8.0", mysql80, ""},
		{"rds-mysql-5.7", mysql57, ""},
		{"mysql-5.7", mysql57, ""},
		{"mariadb-10.11", mariaDB1011, ""},
		{flavor.EmbeddedEngine, embeddedID, ""},

		{"aurora-mysql-3", mariaDB1011,
			"engine mismatch: cluster declares aurora-mysql-3 (MySQL 8.0 on Aurora) but the server is MariaDB 10.11.19-MariaDB-0+deb12u1; refusing to reconcile"},
		{"aurora-mysql-3", mysql80,
			"engine mismatch: cluster declares aurora-mysql-3 (MySQL 8.0 on Aurora) but the server is MySQL 8.0.36, which reports no @@aurora_version (not Aurora); refusing to reconcile"},
		{"aurora-mysql-3", aurora2,
			"engine mismatch: cluster declares aurora-mysql-3 (MySQL 8.0 on Aurora) but the server is MySQL 5.7.12 on Aurora (aurora_version 2.11.2); refusing to reconcile"},
		{"aurora-mysql-2", aurora3,
			"engine mismatch: cluster declares aurora-mysql-2 (MySQL 5.7 on Aurora) but the server is MySQL 8.0.28 on Aurora (aurora_version 3.04.0); refusing to reconcile"},
		{"rds-mysql-8.0", aurora3,
			"engine mismatch: cluster declares rds-mysql-8.0 (MySQL 8.0 on RDS) but the server is MySQL 8.0.28 on Aurora (aurora_version 3.04.0), which is Aurora: declare an aurora-mysql engine; refusing to reconcile"},
		{"mysql-5.7", aurora2,
			"engine mismatch: cluster declares mysql-5.7 (MySQL 5.7) but the server is MySQL 5.7.12 on Aurora (aurora_version 2.11.2), which is Aurora: declare an aurora-mysql engine; refusing to reconcile"},
		{"mysql-8.0", mysql57,
			"engine mismatch: cluster declares mysql-8.0 (MySQL 8.0) but the server is MySQL 5.7.44-log; refusing to reconcile"},
		{"mysql-8.0", mysql84,
			"engine mismatch: cluster declares mysql-8.0 (MySQL 8.0) but the server is MySQL 8.4.2; refusing to reconcile"},
		{"mysql-8.4", mysql84, ""},
		{"rds-mysql-8.4", mysql84, ""},
		{"mysql-8.4", mysql80,
			"engine mismatch: cluster declares mysql-8.4 (MySQL 8.4) but the server is MySQL 8.0.36; refusing to reconcile"},
		{"mariadb-10.11", mariaDB106,
			"engine mismatch: cluster declares mariadb-10.11 (MariaDB 10.11) but the server is MariaDB 10.6.18-MariaDB, not MariaDB 10.11.x; refusing to reconcile"},
		{"mariadb-10.11", mysql80,
			"engine mismatch: cluster declares mariadb-10.11 (MariaDB 10.11) but the server is MySQL 8.0.36; refusing to reconcile"},
		{"mariadb-10.11", embeddedID,
			"engine mismatch: cluster declares mariadb-10.11 (MariaDB 10.11) but the server is the embedded go-mysql-server (version 8.0.31, version_comment Dolt); refusing to reconcile"},
		{flavor.EmbeddedEngine, mysql80,
			"engine mismatch: cluster declares go-mysql-server (the embedded go-mysql-server) but the server is MySQL 8.0.36; refusing to reconcile"},
		{"mysql-8.0", embeddedID,
			"engine mismatch: cluster declares mysql-8.0 (MySQL 8.0) but the server is the embedded go-mysql-server (version 8.0.31, version_comment Dolt); refusing to reconcile"},
		{"postgres-16", mysql80,
			`engine mismatch: cluster declares unknown engine "postgres-16"; refusing to reconcile`},
	}
	for _, tt := range tests {
		t.Run(tt.engine+"/"+tt.id.Version, func(t *testing.T) {
			err := CheckEngine(engineNamed(tt.engine), tt.id)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckEngine(%s, %s) = %v; want nil", tt.engine, tt.id, err)
			case tt.want != "" && err == nil:
				t.Errorf("CheckEngine(%s, %s) = nil; want %q", tt.engine, tt.id, tt.want)
			case tt.want != "" && err.Error() != tt.want:
				t.Errorf("CheckEngine(%s, %s)\n got %q\nwant %q", tt.engine, tt.id, err, tt.want)
			}
		})
	}
}

// Every engine a cluster file may declare accepts a server of its own kind.
func TestCheckEngineAcceptsEveryEngine(t *testing.T) {
	ids := map[string]Identity{
		"aurora-mysql-2": aurora2, "aurora-mysql-3": aurora3,
		"rds-mysql-8.0": mysql80, "rds-mysql-5.7": mysql57,
		"mysql-8.0": mysql80, "mysql-5.7": mysql57,
		"mariadb-10.11": mariaDB1011,
		"mysql-8.4":     mysql84, "rds-mysql-8.4": mysql84,
	}
	for _, name := range flavor.Engines() {
		id, ok := ids[name]
		if !ok {
			t.Errorf("engine %s has no test identity: add one", name)
			continue
		}
		if err := CheckEngine(engineNamed(name), id); err != nil {
			t.Errorf("CheckEngine(%s): %v", name, err)
		}
	}
}

// engineNamed is the engine a cluster file names; an unknown name is an
// engine without a flavor, as CheckEngine may meet in a bad bundle.
func engineNamed(name string) flavor.Engine {
	if e, ok := flavor.LookupEngine(name); ok {
		return e
	}
	return flavor.Engine{Name: name}
}
