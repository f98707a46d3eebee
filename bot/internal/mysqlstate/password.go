package mysqlstate

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
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

// CachingSHA2Plugin is MySQL 8's default authentication plugin.
const CachingSHA2Plugin = "caching_sha2_password"

// CachingSHA2Matches reports whether stored, a caching_sha2_password
// authentication string ("$A$" + rounds/1000 in 3 hex digits + "$" + a
// 20-byte salt + 43 characters of SHA-256 crypt), holds password. It lets
// planning leave a MySQL 8 account that already has the declared password
// alone. Anything it cannot read is a mismatch, which only costs a
// password statement: never a false match.
func CachingSHA2Matches(stored, password string) bool {
	const prefix, saltLen, hashLen = "$A$", 20, 43
	if len(stored) != len(prefix)+3+1+saltLen+hashLen || !strings.HasPrefix(stored, prefix) || stored[6] != '$' {
		return false
	}
	rounds, err := strconv.ParseUint(stored[3:6], 16, 16)
	if err != nil || rounds == 0 || rounds > 1000 { // MySQL allows 5,000 to 4,095,000
		return false
	}
	salt := stored[7 : 7+saltLen]
	want := stored[7+saltLen:]
	got := sha256Crypt([]byte(password), []byte(salt), int(rounds)*1000)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// CachingSHA2Hash returns what caching_sha2_password stores for password
// with salt and MySQL's default 5,000 rounds: the inverse of
// CachingSHA2Matches, for tests and fixtures.
func CachingSHA2Hash(password string, salt [20]byte) string {
	return "$A$005$" + string(salt[:]) + sha256Crypt([]byte(password), salt[:], 5000)
}

// sha256Crypt is the SHA-256 variant of Ulrich Drepper's SHA-crypt
// (https://www.akkadia.org/drepper/SHA-crypt.txt), steps 1-21, returning
// the 43-character encoding of the final digest. MySQL's
// caching_sha2_password stores it after its own header and the salt.
func sha256Crypt(password, salt []byte, rounds int) string {
	// Digest B: password, salt, password.
	b := sha256.New()
	b.Write(password)
	b.Write(salt)
	b.Write(password)
	sumB := b.Sum(nil)

	// Digest A: password, salt, B for each full 32 bytes of the password
	// and its remainder, then B or the password per bit of its length.
	a := sha256.New()
	a.Write(password)
	a.Write(salt)
	n := len(password)
	for ; n > sha256.Size; n -= sha256.Size {
		a.Write(sumB)
	}
	a.Write(sumB[:n])
	for n := len(password); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(password)
		}
	}
	sumA := a.Sum(nil)

	// P: the digest of the password repeated once per byte, stretched to
	// the password's length; S: the digest of the salt repeated 16 + A[0]
	// times, stretched to the salt's length.
	dp := sha256.New()
	for range len(password) {
		dp.Write(password)
	}
	p := stretch(dp.Sum(nil), len(password))
	ds := sha256.New()
	for range 16 + int(sumA[0]) {
		ds.Write(salt)
	}
	s := stretch(ds.Sum(nil), len(salt))

	c := sumA
	for i := range rounds {
		h := sha256.New()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(nil)
	}

	// The final digest's bytes, three at a time in the spec's order, as
	// 4 characters of "./0-9A-Za-z" each (the last group: 2 bytes, 3).
	var out strings.Builder
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	for _, g := range [10][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}} {
		enc(c[g[0]], c[g[1]], c[g[2]], 4)
	}
	enc(0, c[31], c[30], 3)
	return out.String()
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// stretch repeats digest to n bytes.
func stretch(digest []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, digest[:min(len(digest), n-len(out))]...)
	}
	return out
}
