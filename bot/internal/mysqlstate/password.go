package mysqlstate

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// NativePasswordHash returns what mysql_native_password stores for password
// ("*" and the upper-case hex of SHA1(SHA1(password))), so that planning can
// tell whether a secret changed by comparing it with Account.AuthString,
// without sending a statement.
func NativePasswordHash(password string) string {
	first := sha1.Sum([]byte(password))
	second := sha1.Sum(first[:])
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}
