package flavor

// Embedded is the embedded go-mysql-server that the demo and the tests run.
const Embedded Flavor = "go-mysql-server"

// EmbeddedVersionComment is what go-mysql-server v0.20.0 reports as
// @@version_comment (with version 8.0.31).
const EmbeddedVersionComment = "Dolt"

var embedded = spec{
	name:    Embedded,
	product: "go-mysql-server",
	detect:  func(_, comment string) bool { return comment == EmbeddedVersionComment },

	databasePrivileges: mysqlDatabasePrivileges,
	passwordPlugin:     nativePassword,
	// Like MariaDB, IDENTIFIED BY means mysql_native_password.
	passwordClause: "IDENTIFIED BY ",
	// It accepts REQUIRE in CREATE USER only, and enforces it in neither.
	enforcesRequireSSL: false,
	roles:              RolesAsAccounts,
	// go-mysql-server v0.20.0 has no column grants (no mysql.columns_priv),
	// no dynamic privileges (no mysql.global_grants), no proxies, no
	// default roles, no ACCOUNT LOCK and no PASSWORD EXPIRE.
	columnPrivileges: false,
	nameLimit:        32,
	nameInBytes:      true,
	hostLimit:        255,
	grantTables:      []string{"db", "procs_priv", "role_edges", "tables_priv", "user"},

	wildcardDatabaseNames: func(bool) bool { return false },

	engines: []Engine{{Name: EmbeddedEngine, Flavor: Embedded}},
}
