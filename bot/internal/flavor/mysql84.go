package flavor

import "strings"

// MySQL84 is MySQL 8.4 LTS and RDS MySQL 8.4. Where dbusers is concerned
// it differs from 8.0 in one way: mysql_native_password is disabled by
// default, so password accounts are created with caching_sha2_password
// (whose stored hash planning can check, see mysqlstate.CachingSHA2Matches).
const MySQL84 Flavor = "mysql-8.4"

var mysql84 = func() spec {
	s := mysql80
	s.name, s.series = MySQL84, "8.4"
	s.detect = func(version, _ string) bool { return strings.HasPrefix(version, "8.4.") }
	s.passwordPlugin = "caching_sha2_password"
	s.passwordClause = "IDENTIFIED WITH caching_sha2_password BY "
	s.engines = []Engine{
		{Name: "rds-mysql-8.4", Flavor: MySQL84, Series: "8.4", IAM: true, RDS: true},
		{Name: "mysql-8.4", Flavor: MySQL84, Series: "8.4"},
	}
	return s
}()
