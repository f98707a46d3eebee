package flavor

import "strings"

// MariaDB is MariaDB 10.x and 11.x.
const MariaDB Flavor = "mariadb"

var mariadb = spec{
	name:    MariaDB,
	product: "MariaDB", series: "10.11",
	detect: func(version, _ string) bool { return strings.Contains(version, "MariaDB") },

	databasePrivileges: []string{"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
		"DELETE", "DELETE HISTORY", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES",
		"SELECT", "SHOW VIEW", "TRIGGER", "UPDATE"},
	passwordPlugin: nativePassword,
	// MariaDB 10.11 rejects IDENTIFIED WITH ... BY; its IDENTIFIED BY
	// already means mysql_native_password.
	passwordClause:     "IDENTIFIED BY ",
	enforcesRequireSSL: true,
	roles:              RolesAsNames,
	columnPrivileges:   true,
	accountLock:        true,
	accountOptions:     true,
	defaultRoles:       "FOR",
	sessionAdmin:       "CONNECTION ADMIN",
	routineTable:       "proc",
	nameLimit:          128,
	hostLimit:          255,
	// mysql.user is a view over mysql.global_priv that lacks
	// account_locked and the privileges of access bits 30 and up: the
	// table itself is read.
	grantTables: []string{"columns_priv", "db", "global_priv", "procs_priv", "proxies_priv", "roles_mapping", "tables_priv"},

	wildcardDatabaseNames: alwaysWildcard,

	engines: []Engine{
		{Name: "mariadb-10.11", Flavor: MariaDB, Series: "10.11"},
	},
}
