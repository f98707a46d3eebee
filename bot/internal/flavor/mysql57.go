package flavor

import "strings"

// MySQL57 is MySQL 5.7 and Aurora MySQL 2.
const MySQL57 Flavor = "mysql-5.7"

var mysql57 = spec{
	name:    MySQL57,
	product: "MySQL", series: "5.7",
	detect: func(version, _ string) bool { return strings.HasPrefix(version, "5.7.") },

	databasePrivileges: mysqlDatabasePrivileges,
	iamPlugin:          true,
	passwordPlugin:     nativePassword,
	passwordClause:     mysqlPasswordClause,
	enforcesRequireSSL: true,
	roles:              NoRoles,
	columnPrivileges:   true,
	accountLock:        true,
	accountOptions:     true,
	routineTable:       "proc",
	nameLimit:          32,
	hostLimit:          60,
	grantTables:        []string{"columns_priv", "db", "procs_priv", "proxies_priv", "tables_priv", "user"},

	wildcardDatabaseNames: alwaysWildcard,

	engines: []Engine{
		{Name: "aurora-mysql-2", Flavor: MySQL57, Series: "5.7", IAM: true, Aurora: true, RDS: true},
		{Name: "rds-mysql-5.7", Flavor: MySQL57, Series: "5.7", IAM: true, RDS: true},
		{Name: "mysql-5.7", Flavor: MySQL57, Series: "5.7"},
	},
}
