package flavor

import "strings"

// MySQL80 is MySQL 8.0, RDS MySQL 8.0 and Aurora MySQL 3.
const MySQL80 Flavor = "mysql-8.0"

var mysql80 = spec{
	name:    MySQL80,
	product: "MySQL", series: "8.0",
	detect: func(version, _ string) bool { return strings.HasPrefix(version, "8.0.") },

	databasePrivileges: mysqlDatabasePrivileges,
	iamPlugin:          true,
	passwordPlugin:     nativePassword,
	passwordClause:     mysqlPasswordClause,
	acceptsCachingSHA2: true,
	enforcesRequireSSL: true,
	roles:              RolesAsAccounts,
	columnPrivileges:   true,
	accountLock:        true,
	accountOptions:     true,
	defaultRoles:       "TO",
	sessionAdmin:       "CONNECTION_ADMIN",
	routineReader:      "SHOW_ROUTINE",
	nameLimit:          32,
	hostLimit:          255,
	grantTables: []string{"columns_priv", "db", "default_roles", "global_grants", "procs_priv", "proxies_priv",
		"role_edges", "tables_priv", "user"},

	// With partial_revokes on, database names in GRANT are literal.
	wildcardDatabaseNames: func(partialRevokes bool) bool { return !partialRevokes },

	engines: []Engine{
		{Name: "aurora-mysql-3", Flavor: MySQL80, Series: "8.0", IAM: true, Aurora: true, PartialRevokes: true, RDS: true},
		{Name: "rds-mysql-8.0", Flavor: MySQL80, Series: "8.0", IAM: true, RDS: true},
		{Name: "mysql-8.0", Flavor: MySQL80, Series: "8.0"},
	},
}
