package mysqlstate

import (
	"encoding/hex"
	"strconv"
	"testing"
)

// The SHA-256 test inputs of the SHA-crypt specification
// (https://www.akkadia.org/drepper/SHA-crypt.txt), with the results glibc's
// crypt(3) gives for them ("$5$rounds=N$salt").
func TestSHA256CryptSpecVectors(t *testing.T) {
	tests := []struct {
		salt, password string
		rounds         int
		want           string
	}{
		{"saltstring", "Hello world!", 5000, "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{"saltstringsaltst", "Hello world!", 10000, "3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
		{"toolongsaltstrin", "This is just a test", 5000, "Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
		{"roundstoolow", "the minimum number is still observed", 1000, "yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},
	}
	for _, tt := range tests {
		if got := sha256Crypt([]byte(tt.password), []byte(tt.salt), tt.rounds); got != tt.want {
			t.Errorf("sha256Crypt(%q, %q, %d) = %s, want %s", tt.password, tt.salt, tt.rounds, got, tt.want)
		}
	}
}

// mysql80Foobar is what MySQL 8.0 stored for a caching_sha2_password account
// with password "foobar" (the vector TiDB's compatibility tests use).
const mysql80Foobar = "24412430303524031A69251C34295C4B35167C7F1E5A7B63091349503974624D34504B5A424679354856336868686F52485A736E4A733368786E427575516C73446469496537"

func TestCachingSHA2Matches(t *testing.T) {
	raw, err := hex.DecodeString(mysql80Foobar)
	if err != nil {
		t.Fatal(err)
	}
	stored := string(raw)
	if !CachingSHA2Matches(stored, "foobar") {
		t.Errorf("MySQL's hash of foobar does not match foobar")
	}
	for _, pw := range []string{"not_foobar", "", "Foobar", "foobar "} {
		if CachingSHA2Matches(stored, pw) {
			t.Errorf("MySQL's hash of foobar matches %q", pw)
		}
	}
	for name, bad := range map[string]string{
		"empty":          "",
		"native":         NativePasswordHash("foobar"),
		"short":          stored[:len(stored)-1],
		"long":           stored + "x",
		"other digest":   "$B" + stored[2:],
		"rounds not hex": "$A$0z5" + stored[6:],
		"zero rounds":    "$A$000" + stored[6:],
		"no separator":   stored[:6] + "#" + stored[7:],
		"invalid marker": "$A$005$THISISACOMBINATIONOFINVALIDSALTANDPASSWORDTHATMUSTNEVERBRBEUSED",
		"hash altered":   stored[:len(stored)-1] + "8", // it ends in 7
	} {
		if CachingSHA2Matches(bad, "foobar") {
			t.Errorf("%s: %q matches foobar", name, bad)
		}
	}
}

func TestCachingSHA2HashRoundTrip(t *testing.T) {
	raw, _ := hex.DecodeString(mysql80Foobar)
	var salt [20]byte
	copy(salt[:], raw[7:27])
	if got := CachingSHA2Hash("foobar", salt); got != string(raw) {
		t.Errorf("CachingSHA2Hash(foobar) = %q, want MySQL's %q", got, raw)
	}
	salt = [20]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't'}
	stored := CachingSHA2Hash("s3cret", salt)
	if !CachingSHA2Matches(stored, "s3cret") || CachingSHA2Matches(stored, "s3cret!") {
		t.Errorf("CachingSHA2Matches does not invert CachingSHA2Hash for %q", stored)
	}
}

// FuzzCachingSHA2Matches: no stored string crashes the parser, and a match
// is always the password's real hash under the stored salt and rounds.
//
// CI fuzz budget: 3000 execs (an input that parses costs up to 16,000
// SHA-256 rounds here).
func FuzzCachingSHA2Matches(f *testing.F) {
	raw, _ := hex.DecodeString(mysql80Foobar)
	f.Add(string(raw), "foobar")
	f.Add(string(raw), "x")
	f.Add("$A$005$", "")
	f.Add("$A$fff$aaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "p")
	f.Fuzz(func(t *testing.T, stored, password string) {
		if len(password) > 256 {
			return // SHA-crypt's cost grows with the square of the password's length
		}
		var rounds uint64
		if len(stored) >= 6 {
			n, err := strconv.ParseUint(stored[3:6], 16, 16)
			if err == nil && n > 16 {
				return // up to a million rounds an input: the same code, only slower
			}
			rounds = n
		}
		if CachingSHA2Matches(stored, password) {
			// A match must be the hash of this password with this salt.
			if got := sha256Crypt([]byte(password), []byte(stored[7:27]), int(rounds)*1000); got != stored[27:] {
				t.Fatalf("CachingSHA2Matches(%q, %q) but the hash is %q", stored, password, got)
			}
		}
	})
}

// BenchmarkCachingSHA2Matches is what planning pays per MySQL 8 account
// held with caching_sha2_password, per run.
func BenchmarkCachingSHA2Matches(b *testing.B) {
	const password = "a-service-password-of-32-chars!!"
	stored := CachingSHA2Hash(password, [20]byte{'s', 'a', 'l', 't'})
	for b.Loop() {
		if !CachingSHA2Matches(stored, password) {
			b.Fatal("no match")
		}
	}
}
