package mysqlstate

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// privilegeColumns names the *_priv columns of mysql.user and mysql.db whose
// privilege is not simply the column name without "_priv", spaced and
// upper-cased. Keys are lower case.
var privilegeColumns = map[string]string{
	"create_tmp_table_priv": "CREATE TEMPORARY TABLES",
	"repl_slave_priv":       "REPLICATION SLAVE",
	"repl_client_priv":      "REPLICATION CLIENT",
	"show_db_priv":          "SHOW DATABASES",
	"grant_priv":            "GRANT OPTION",
}

// columnPrivilege returns the privilege a *_priv column of mysql.user or
// mysql.db holds, e.g. Lock_tables_priv → LOCK TABLES, and false for a
// column that holds no privilege.
func columnPrivilege(column string) (string, bool) {
	c := strings.ToLower(column)
	stem, ok := strings.CutSuffix(c, "_priv")
	if !ok || stem == "" {
		return "", false
	}
	if p, ok := privilegeColumns[c]; ok {
		return p, true
	}
	return flavor.Canonical(strings.ReplaceAll(stem, "_", " ")), true
}

// setPrivileges names the members of the SET columns Table_priv and
// Column_priv (mysql.tables_priv, mysql.columns_priv) whose privilege is not
// the member upper-cased. Keys are lower case.
var setPrivileges = map[string]string{
	"grant":                  "GRANT OPTION",
	"delete versioning rows": "DELETE HISTORY", // MariaDB
}

// parsePrivilegeSet turns a SET value such as "Select,Insert,Show view" into
// canonical privilege names, unsorted.
func parsePrivilegeSet(set string) []string {
	var out []string
	for _, m := range strings.Split(set, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if p, ok := setPrivileges[strings.ToLower(m)]; ok {
			out = append(out, p)
			continue
		}
		out = append(out, flavor.Canonical(m))
	}
	return out
}

// mariaDBAccessBits names the bits of "access" in MariaDB 10.5+'s
// mysql.global_priv (sql/privilege.h), spelled as SHOW GRANTS prints them.
// The mysql.user view shows only bits 0 to 29.
var mariaDBAccessBits = [...]string{
	0:  "SELECT",
	1:  "INSERT",
	2:  "UPDATE",
	3:  "DELETE",
	4:  "CREATE",
	5:  "DROP",
	6:  "RELOAD",
	7:  "SHUTDOWN",
	8:  "PROCESS",
	9:  "FILE",
	10: "GRANT OPTION",
	11: "REFERENCES",
	12: "INDEX",
	13: "ALTER",
	14: "SHOW DATABASES",
	15: "SUPER",
	16: "CREATE TEMPORARY TABLES",
	17: "LOCK TABLES",
	18: "EXECUTE",
	19: "REPLICATION SLAVE",
	20: "BINLOG MONITOR", // REPLICATION CLIENT before 10.5.2, still accepted as an alias
	21: "CREATE VIEW",
	22: "SHOW VIEW",
	23: "CREATE ROUTINE",
	24: "ALTER ROUTINE",
	25: "CREATE USER",
	26: "EVENT",
	27: "TRIGGER",
	28: "CREATE TABLESPACE",
	29: "DELETE HISTORY",
	30: "SET USER",
	31: "FEDERATED ADMIN",
	32: "CONNECTION ADMIN",
	33: "READ_ONLY ADMIN",
	34: "REPLICATION SLAVE ADMIN",
	35: "REPLICATION MASTER ADMIN",
	36: "BINLOG ADMIN",
	37: "BINLOG REPLAY",
	38: "SLAVE MONITOR",
}

// mariaDBPrivileges decodes a global_priv access mask. A bit this version
// of dbusers does not know is an error rather than a guess: a privilege it
// cannot name, it could neither compare nor revoke.
func mariaDBPrivileges(access uint64) ([]string, error) {
	var out []string
	for m := access; m != 0; m &= m - 1 {
		b := bits.TrailingZeros64(m)
		if b >= len(mariaDBAccessBits) {
			return nil, fmt.Errorf("unknown privilege bit %d in access mask %d", b, access)
		}
		out = append(out, mariaDBAccessBits[b])
	}
	return out, nil
}
