package render

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/dbusers/dbusers/bot/internal/flavor"
)

// staticPrivileges are the privilege names, beyond every flavor's database
// privileges, that may appear on a live server and so in a revoke: MySQL and
// MariaDB global privileges, Aurora MySQL 2's AWS privileges and GRANT
// OPTION. Sorted; read-only.
var staticPrivileges = []string{
	"BINLOG ADMIN", "BINLOG MONITOR", "BINLOG REPLAY", "CONNECTION ADMIN", "CREATE ROLE",
	"CREATE TABLESPACE", "CREATE USER", "DROP ROLE", "FEDERATED ADMIN", "FILE", "GRANT OPTION",
	"INVOKE COMPREHEND", "INVOKE LAMBDA", "INVOKE SAGEMAKER", "LOAD FROM S3", "PROCESS",
	"READ_ONLY ADMIN", "RELOAD", "REPLICA MONITOR", "REPLICATION CLIENT", "REPLICATION MASTER ADMIN",
	"REPLICATION REPLICA", "REPLICATION SLAVE", "REPLICATION SLAVE ADMIN", "SELECT INTO S3",
	"SET USER", "SHOW CREATE ROUTINE", "SHOW DATABASES", "SHUTDOWN", "SLAVE MONITOR", "SUPER",
}

// dynamicPrivilege matches MySQL 8.0's dynamic privileges (BINLOG_ADMIN,
// SYSTEM_VARIABLES_ADMIN, ...): upper-case words joined by underscores. A
// name of this shape cannot change the meaning of the statement it sits in.
var dynamicPrivilege = regexp.MustCompile(`^[A-Z]+(_[A-Z]+)+$`)

// CheckPrivilege reports whether p is a privilege name that may be pasted
// into a statement. Privilege names are keywords, not quotable data, so they
// are checked against a fixed allow-list instead of being escaped: every
// flavor's database privileges, the global privileges of MySQL, MariaDB and
// Aurora, and MySQL 8.0 dynamic privileges. ALL, ALL PRIVILEGES and USAGE
// are refused: a grant's list is expanded first (flavor.Expand) and a revoke
// is always explicit. Names must be canonical (flavor.Canonical).
func CheckPrivilege(p string) error {
	if knownPrivilege(p) {
		return nil
	}
	switch p {
	case "ALL", flavor.AllPrivileges:
		return fmt.Errorf("privilege %q: expand it to an explicit list first", p)
	}
	return fmt.Errorf("privilege %q is not a known privilege name", p)
}

func knownPrivilege(p string) bool {
	if slices.Contains(staticPrivileges, p) {
		return true
	}
	for _, f := range flavor.All() {
		if slices.Contains(f.DatabasePrivileges(), p) {
			return true
		}
	}
	return dynamicPrivilege.MatchString(p)
}

// columnPrivileges are the privileges that exist on a column.
var columnPrivileges = []string{"INSERT", "REFERENCES", "SELECT", "UPDATE"}
