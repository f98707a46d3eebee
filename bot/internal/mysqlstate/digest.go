package mysqlstate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// Digest is the SHA-256, in hex, of the managed part of the server as read:
// its version, every managed account with its privileges, roles, options
// and lock, and (when read) the stored objects they define. It tells two
// reads of one server apart when anything a plan is made from changed in
// between, and two servers apart unless they hold the same managed accounts.
//
// The stored credentials are left out, so that a digest written to a file
// says nothing about a password hash; a credential changed by hand changes
// the plan instead (dbusers checks each password against its account).
// Open sessions are left out too: they come and go by the second, and a run
// ends the ones open when it applies, read then.
func (s *Server) Digest() string {
	ids := slices.SortedFunc(maps.Keys(s.Accounts), func(a, b AccountID) int {
		if a.User != b.User {
			return strings.Compare(a.User, b.User)
		}
		return strings.Compare(a.Host, b.Host)
	})
	accounts := make([]Account, 0, len(ids))
	for _, id := range ids {
		a := *s.Accounts[id]
		a.AuthString = ""
		accounts = append(accounts, a)
	}
	data, err := json.Marshal(struct {
		Flavor         string
		Version        string
		AuroraVersion  string
		PartialRevokes bool
		CurrentUser    AccountID
		Accounts       []Account
		Objects        []StoredObject
		ObjectsRead    bool
	}{string(s.Flavor), s.Version, s.AuroraVersion, s.PartialRevokes, s.CurrentUser, accounts, s.Objects, s.ObjectsRead})
	if err != nil {
		return "unmarshallable: " + err.Error()
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
