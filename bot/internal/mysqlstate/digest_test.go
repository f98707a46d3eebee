package mysqlstate

import (
	"fmt"
	"strings"
	"testing"
)

// TestDigest: the state's digest follows every managed account's
// privileges and options, and neither the stored credentials (it must not
// reveal a hash) nor the open sessions.
func TestDigest(t *testing.T) {
	mk := func() *Server {
		s := &Server{Flavor: "mariadb", Version: "10.11.19-MariaDB", Accounts: map[AccountID]*Account{}}
		for _, u := range []string{"acme_a", "acme_b", "acme_c"} {
			id := AccountID{User: u, Host: "%"}
			s.Accounts[id] = &Account{ID: id, Plugin: "mysql_native_password", AuthString: "*SECRETHASH" + u,
				Databases: map[string][]string{"orders": {"SELECT"}, "billing": {"SELECT"}}}
		}
		return s
	}
	d := mk().Digest()
	for i := 0; i < 20; i++ { // map order must not matter
		if mk().Digest() != d {
			t.Fatal("two equal servers have different digests")
		}
	}
	s := mk()
	for _, a := range s.Accounts {
		a.AuthString = "*OTHER"
	}
	s.Sessions, s.SessionsRead = []Session{{ID: 9, User: "acme_a"}}, true
	if s.Digest() != d {
		t.Error("credentials or sessions changed the digest")
	}
	if strings.Contains(d, "SECRETHASH") {
		t.Error("the digest holds a credential")
	}
	changes := map[string]func(s *Server){
		"a grant": func(s *Server) {
			s.Accounts[AccountID{"acme_a", "%"}].Databases["orders"] = []string{"INSERT", "SELECT"}
		},
		"a lock":     func(s *Server) { s.Accounts[AccountID{"acme_b", "%"}].Locked = true },
		"an account": func(s *Server) { delete(s.Accounts, AccountID{"acme_c", "%"}) },
		"a plugin":   func(s *Server) { s.Accounts[AccountID{"acme_a", "%"}].Plugin = "ed25519" },
		"a version":  func(s *Server) { s.Version = "10.11.20-MariaDB" },
		"stored objects": func(s *Server) {
			s.Objects, s.ObjectsRead = []StoredObject{{Kind: "view", Database: "orders", Name: "v"}}, true
		},
	}
	for name, change := range changes {
		s := mk()
		change(s)
		if s.Digest() == d {
			t.Errorf("%s did not change the digest", name)
		}
	}
}

// BenchmarkDigest1000: the state's digest of 1,000 managed accounts with
// 3 databases each, which every run computes for its fingerprint.
func BenchmarkDigest1000(b *testing.B) {
	s := &Server{Flavor: "mariadb", Version: "10.11.19-MariaDB", Accounts: map[AccountID]*Account{}}
	for i := range 1000 {
		id := AccountID{User: fmt.Sprintf("acme_user%04d", i), Host: "%"}
		s.Accounts[id] = &Account{ID: id, Plugin: "mysql_native_password", AuthString: "*0123456789ABCDEF0123456789ABCDEF01234567",
			Databases: map[string][]string{"orders": {"INSERT", "SELECT", "UPDATE"}, "billing": {"SELECT"}, "events": {"SELECT"}}}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Digest()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}
