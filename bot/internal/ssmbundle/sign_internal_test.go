package ssmbundle

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// testPointer is a signed-shaped pointer with every field set.
func testPointer() Pointer {
	return Pointer{Format: 1, Version: "20260301T090000Z-0123456789ab", SHA256: "0123456789ab" + zeros64[12:],
		DataSHA256: "fedcba987654" + zeros64[12:], Chunks: 3, Bytes: 9000, Commit: "3f2c0d1e", PullRequest: "42",
		PublishedAt: time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC),
		KeyARN:      "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

// TestSignedDigestIsStable pins the signed statement's encoding: a
// publisher and a Lambda of different dbusers versions must compute the
// same digest, so a change here is a new signature version (a new
// statementDomain), never an edit.
func TestSignedDigestIsStable(t *testing.T) {
	p := testPointer()
	d := p.SignedDigest("/dbusers/config")
	if got, want := hex.EncodeToString(d[:]), "303357a09384ca39073cee96632d54ac7b07d6c346335e2a5887f5c7cfa7be73"; got != want {
		t.Errorf("SignedDigest = %s, want %s", got, want)
	}
	// The time's zone does not matter, the instant does.
	p.PublishedAt = p.PublishedAt.In(time.FixedZone("CET", 3600))
	if p.SignedDigest("/dbusers/config") != d {
		t.Error("the digest depends on the time zone of the publication time")
	}
	if p.SignedDigest("/dbusers/staging") == d {
		t.Error("the digest does not depend on the parameter")
	}
	// The signature is not part of what it signs.
	p.Signature = "c2ln"
	if p.SignedDigest("/dbusers/config") != d {
		t.Error("the digest depends on the signature")
	}
}

// FuzzVerify signs a pointer with a local P-256 key and verifies pointers
// that differ from it in any field: verification must never panic, and it
// may succeed only for a pointer that states exactly what was signed.
func FuzzVerify(f *testing.F) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	key := &PublicKey{ARN: testPointer().KeyARN, key: &priv.PublicKey}
	orig := testPointer()
	digest := orig.SignedDigest("/dbusers/config")
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		f.Fatal(err)
	}
	orig.Signature = base64.StdEncoding.EncodeToString(sig)
	f.Add(orig.Version, orig.SHA256, orig.DataSHA256, orig.Chunks, orig.Commit, orig.PublishedAt.UnixNano(), orig.KeyARN, orig.Signature, "/dbusers/config")
	f.Add(orig.Version, orig.SHA256, orig.DataSHA256, orig.Chunks+1, orig.Commit, orig.PublishedAt.UnixNano(), orig.KeyARN, orig.Signature, "/dbusers/config")
	f.Add(orig.Version, orig.SHA256, orig.DataSHA256, orig.Chunks, orig.Commit, orig.PublishedAt.UnixNano(), orig.KeyARN, "", "/dbusers/config")
	f.Add("", "", "", 0, "", int64(0), "", "AAAA", "")
	f.Fuzz(func(t *testing.T, version, sha, dataSHA string, chunks int, commit string, publishedAt int64, keyARN, signature, parameter string) {
		p := orig
		p.Version, p.SHA256, p.DataSHA256, p.Chunks, p.Commit = version, sha, dataSHA, chunks, commit
		p.PublishedAt, p.KeyARN, p.Signature = time.Unix(0, publishedAt), keyARN, signature
		err := key.verify(parameter, p)
		if err != nil {
			if !errors.Is(err, ErrUntrusted) {
				t.Errorf("verify error is not ErrUntrusted: %v", err)
			}
			return
		}
		if parameter != "/dbusers/config" || p.Version != orig.Version || p.SHA256 != orig.SHA256 || p.DataSHA256 != orig.DataSHA256 ||
			p.Chunks != orig.Chunks || p.Commit != orig.Commit || !p.PublishedAt.Equal(orig.PublishedAt) || p.KeyARN != orig.KeyARN {
			t.Errorf("verify accepted a pointer that was not signed: %+v for %s", p, parameter)
		}
	})
}
