package flavor

import "strings"

// MySQL84 is MySQL 8.4 LTS and RDS MySQL 8.4. It differs from 8.0 where
// dbusers is concerned in one way: mysql_native_password is disabled by
// default, so password accounts are created with caching_sha2_password.
const MySQL84 Flavor = "mysql-8.4"

var mysql84 = spec{
	name:    MySQL84,
	product: "MySQL", series: "8.4",
	detect: func(version, _ string) bool { return strings.HasPrefix(version, "8.4.") },

	databasePrivileges: mysqlDatabasePrivileges,
	iamPlugin:          true,
	passwordPlugin:     "caching_sha2_password",
	passwordClause:     "IDENTIFIED WITH caching_sha2_password BY ",
	acceptsCachingSHA2: true,
	enforcesRequireSSL: true,
	roles:              RolesAsAccounts,
	columnPrivileges:   true,
	nameLimit:          32,
	hostLimit:          255,
	grantTables:        []string{"columns_priv", "db", "global_grants", "role_edges", "tables_priv", "user"},

	wildcardDatabaseNames: func(partialRevokes bool) bool { return !partialRevokes },

	engines: []Engine{
		{Name: "rds-mysql-8.4", Flavor: MySQL84, Series: "8.4", IAM: true},
		{Name: "mysql-8.4", Flavor: MySQL84, Series: "8.4"},
	},
}
