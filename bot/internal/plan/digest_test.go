package plan

import (
	"testing"

	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

// TestDigest: the digest tells apart plans that send different statements
// or in another order, or hold back or skip other users; it ignores the
// sessions to end (read again when a run applies) and never depends on a
// password.
func TestDigest(t *testing.T) {
	acct := mysqlstate.AccountID{User: "acme_app", Host: "%"}
	grant := Change{Account: acct, User: "app", Summary: "grant read on orders",
		Op: GrantDatabase{DatabaseRef: DatabaseRef{Database: "orders", Pattern: "orders"}, Privileges: []string{"SELECT"}}}
	create := Change{Account: acct, User: "app", Summary: "create acme_app",
		Op: NewAccount{Auth: Auth{Method: "password", SecretRef: "dbusers/app", Password: "one"}}}
	drop := Change{Account: mysqlstate.AccountID{User: "acme_old", Host: "%"}, Summary: "drop acme_old", Op: Drop{}}
	session := func(id int64) Change {
		return Change{Account: drop.Account, Summary: "end session", Op: Disconnect{
			Session: mysqlstate.Session{ID: id, User: "acme_old"}, Via: KillConnection}}
	}
	base := &Plan{Cluster: "local", Changes: []Change{create, grant, drop, session(7)}}
	d := base.Digest()
	if len(d) != 64 {
		t.Fatalf("digest %q is not a hex SHA-256", d)
	}
	otherPassword := create
	otherPassword.Op = NewAccount{Auth: Auth{Method: "password", SecretRef: "dbusers/app", Password: "two"}}
	same := map[string]*Plan{
		"other sessions":   {Cluster: "local", Changes: []Change{create, grant, drop, session(8), session(9)}},
		"no session":       {Cluster: "local", Changes: []Change{create, grant, drop}},
		"another password": {Cluster: "local", Changes: []Change{otherPassword, grant, drop, session(7)}},
		"notes":            {Cluster: "local", Changes: []Change{create, grant, drop}, Notes: []string{"a note"}},
	}
	for name, p := range same {
		if p.Digest() != d {
			t.Errorf("%s: the digest changed", name)
		}
	}
	differs := map[string]*Plan{
		"another order": {Cluster: "local", Changes: []Change{grant, create, drop}},
		"a change less": {Cluster: "local", Changes: []Change{create, grant}},
		"held back":     {Cluster: "local", Changes: []Change{create, grant}, Held: []Change{drop}},
		"skipped":       {Cluster: "local", Changes: []Change{create, grant, drop}, Skipped: []Skip{{User: "x", Reason: "no secret"}}},
		"rotate":        {Cluster: "local", Changes: []Change{{Account: acct, Summary: "rotate", Op: SetAuth{Auth: Auth{Method: "password", Rotate: true}}}, grant, drop}},
	}
	for name, p := range differs {
		if p.Digest() == d {
			t.Errorf("%s: the digest did not change", name)
		}
	}
}
