package ssmbundle

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Signing. The SHA-256 in the pointer proves that the chunks are the ones
// the pointer names, not who wrote them: anyone allowed ssm:PutParameter on
// the parameters could publish a consistent bundle. So `dbusers publish`
// signs the pointer with an asymmetric AWS KMS key that only the publish
// role may use, and the Lambda verifies the signature with the key's public
// half before it reads a chunk.
//
// What is signed is the pointer itself, every field but the signature, plus
// the name of the pointer parameter (see statement): the version, the
// content hash, the hash of the chunks' exact text, the chunk count and
// size, the commit, the pull request and the publication time. A changed
// chunk breaks the data hash, a changed field breaks the signature, and a
// pointer signed for one parameter does not verify under another.

// The key and algorithm dbusers signs with: NIST P-256 ECDSA over a
// SHA-256 digest that the publisher computes (MessageType DIGEST), so the
// signed bytes never travel to KMS and the Lambda verifies locally.
const (
	SigningKeySpec   = types.KeySpecEccNistP256
	SigningAlgorithm = types.SigningAlgorithmSpecEcdsaSha256
)

// PublicKeyAPI is the KMS call a reader makes; *kms.Client satisfies it.
type PublicKeyAPI interface {
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// KMSAPI is the KMS calls a publisher makes: it checks the key and its own
// signature with the public key, and signs. *kms.Client satisfies it.
type KMSAPI interface {
	PublicKeyAPI
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
}

// keyARN is a KMS key's ARN (not an alias: what a pointer names must be
// comparable as a string with what the reader is configured with).
var keyARN = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$`)

// ValidKeyARN reports whether s is the ARN of a KMS key.
func ValidKeyARN(s string) bool { return keyARN.MatchString(s) }

// ErrUntrusted means the pointer is not signed by the key the reader
// trusts: unsigned, signed by another key, altered after signing, or older
// than a version the reader already accepted.
var ErrUntrusted = errors.New("bundle is not trusted")

// statementDomain starts every signed statement, so that a signature made
// for anything else with the same key never verifies as a pointer's.
const statementDomain = "dbusers bundle pointer, signature v1"

// statement is what a signature covers, in a fixed encoding: JSON of this
// struct, fields in this order, the time in UTC.
type statement struct {
	Domain      string `json:"domain"`
	Parameter   string `json:"parameter"`
	Format      int    `json:"format"`
	Version     string `json:"version"`
	SHA256      string `json:"sha256"`
	DataSHA256  string `json:"data_sha256"`
	Chunks      int    `json:"chunks"`
	Bytes       int    `json:"bytes"`
	Commit      string `json:"commit"`
	PullRequest string `json:"pull_request"`
	PublishedAt string `json:"published_at"`
	KeyARN      string `json:"key_arn"`
}

// SignedDigest is the SHA-256 that a pointer's signature is made over: its
// every field but the signature, and the name of the parameter it is
// published as.
func (p Pointer) SignedDigest(parameter string) [sha256.Size]byte {
	data, err := json.Marshal(statement{
		Domain: statementDomain, Parameter: parameter, Format: p.Format, Version: p.Version, SHA256: p.SHA256,
		DataSHA256: p.DataSHA256, Chunks: p.Chunks, Bytes: p.Bytes, Commit: p.Commit, PullRequest: p.PullRequest,
		PublishedAt: p.PublishedAt.UTC().Format(time.RFC3339Nano), KeyARN: p.KeyARN,
	})
	if err != nil {
		panic(err) // strings and numbers only
	}
	return sha256.Sum256(data)
}

// PublicKey is the public half of the signing key, fetched from KMS.
type PublicKey struct {
	ARN string
	key *ecdsa.PublicKey
}

// FetchPublicKey reads the public half of the key arn and checks that it is
// the kind of key dbusers signs with.
func FetchPublicKey(ctx context.Context, api PublicKeyAPI, arn string) (*PublicKey, error) {
	if !ValidKeyARN(arn) {
		return nil, fmt.Errorf("signing key %q is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; not an alias)", arn)
	}
	out, err := api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("signing key %s: get public key: %w", arn, err)
	}
	switch {
	case aws.ToString(out.KeyId) != arn:
		return nil, fmt.Errorf("signing key %s: KMS answered for key %s", arn, aws.ToString(out.KeyId))
	case out.KeyUsage != types.KeyUsageTypeSignVerify:
		return nil, fmt.Errorf("signing key %s: key usage is %s, want %s", arn, out.KeyUsage, types.KeyUsageTypeSignVerify)
	case out.KeySpec != SigningKeySpec:
		return nil, fmt.Errorf("signing key %s: key spec is %s, want %s", arn, out.KeySpec, SigningKeySpec)
	case !slices.Contains(out.SigningAlgorithms, SigningAlgorithm):
		return nil, fmt.Errorf("signing key %s does not sign with %s (it offers %v)", arn, SigningAlgorithm, out.SigningAlgorithms)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: public key: %w", arn, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s: the public key is a %T, not a P-256 ECDSA key", arn, pub)
	}
	return &PublicKey{ARN: arn, key: ec}, nil
}

// verify checks that p carries a signature by k, made for parameter.
func (k *PublicKey) verify(parameter string, p Pointer) error {
	if p.KeyARN != k.ARN {
		return fmt.Errorf("%w: version %s is signed by key %s, not by the configured key %s", ErrUntrusted, p.Version, p.KeyARN, k.ARN)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(p.Signature)
	if err != nil {
		return fmt.Errorf("%w: version %s: the signature is not base64: %v", ErrUntrusted, p.Version, err)
	}
	if len(p.DataSHA256) != sha256.Size*2 {
		return fmt.Errorf("%w: version %s is signed but names no hash of its chunks", ErrUntrusted, p.Version)
	}
	digest := p.SignedDigest(parameter)
	if !ecdsa.VerifyASN1(k.key, digest[:], sig) {
		return fmt.Errorf("%w: version %s: the signature does not verify with key %s "+
			"(the pointer was changed after it was signed, or signed for another parameter than %s)", ErrUntrusted, p.Version, k.ARN, parameter)
	}
	return nil
}

// Signer signs pointers with a KMS key. The key policy lets the publish
// role alone sign with it.
type Signer struct {
	API    KMSAPI
	KeyARN string
}

// sign sets p's key and signature, and checks the signature with key, the
// public half of s's key, before anything is written: a pointer the Lambda
// would refuse is never published.
func (s *Signer) sign(ctx context.Context, key *PublicKey, parameter string, p *Pointer) error {
	p.KeyARN, p.Signature = key.ARN, ""
	digest := p.SignedDigest(parameter)
	out, err := s.API.Sign(ctx, &kms.SignInput{
		KeyId: aws.String(key.ARN), Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: SigningAlgorithm,
	})
	if err != nil {
		return fmt.Errorf("sign version %s with %s: %w", p.Version, key.ARN, err)
	}
	if got := aws.ToString(out.KeyId); got != key.ARN {
		return fmt.Errorf("sign version %s with %s: KMS signed with key %s", p.Version, key.ARN, got)
	}
	p.Signature = base64.StdEncoding.EncodeToString(out.Signature)
	if err := key.verify(parameter, *p); err != nil {
		return fmt.Errorf("sign version %s: KMS's signature does not verify: %w", p.Version, err)
	}
	return nil
}

// Trust is what a reader accepts.
type Trust struct {
	// Key verifies signatures; nil when no key is configured.
	Key *PublicKey
	// AllowUnsigned accepts a pointer that carries no signature: the
	// setting for the move to signed bundles. A signature that is there
	// must still verify, whatever this says; with no Key, a signed
	// pointer is accepted as unsigned (it cannot be checked).
	AllowUnsigned bool
	// Seen remembers the newest signed pointer accepted, so that the
	// pointer cannot be moved back to an older signed version while it
	// lives; nil remembers nothing.
	Seen *Seen
}

// Verdict is what a reader established about who published a bundle.
type Verdict struct {
	// KeyARN is the key whose signature verified; empty when the bundle
	// was accepted without a verified signature.
	KeyARN string `json:"key_arn,omitempty"`
	// Unverified says why a bundle without a verified signature was
	// accepted.
	Unverified string `json:"unverified,omitempty"`
	// PublishedAt is the publication time the pointer states (signed,
	// when KeyARN is set).
	PublishedAt time.Time `json:"published_at"`
	// Version is the version the pointer names, trusted or not: what a
	// refusal was about (the Lambda's rollout record of a refused bundle
	// goes under it).
	Version string `json:"version,omitempty"`
}

// check decides whether the pointer p, read from parameter, is one to
// read the chunks of.
func (t Trust) check(parameter string, p Pointer) (Verdict, error) {
	v := Verdict{PublishedAt: p.PublishedAt, Version: p.Version}
	switch {
	case p.Signature == "" && !t.AllowUnsigned:
		return v, fmt.Errorf("%w: version %s is unsigned (it names no signing key), and unsigned bundles are not accepted", ErrUntrusted, p.Version)
	case p.Signature == "":
		v.Unverified = "the pointer is unsigned"
		return v, nil
	case t.Key == nil && t.AllowUnsigned:
		v.Unverified = fmt.Sprintf("the pointer is signed by %s, but no signing key is configured to check it", p.KeyARN)
		return v, nil
	case t.Key == nil:
		return v, fmt.Errorf("%w: version %s: no signing key is configured to check its signature", ErrUntrusted, p.Version)
	}
	if err := t.Key.verify(parameter, p); err != nil {
		return v, err
	}
	if err := t.Seen.observe(parameter, p); err != nil {
		return v, err
	}
	v.KeyARN = t.Key.ARN
	return v, nil
}

// Seen keeps, per parameter and key, the newest signed pointer a process
// has accepted. A signature proves who published a version, not that it
// is the newest: whoever can write the parameters can put back an older
// pointer that was legitimately signed, with its chunks. A long-lived
// reader (the Lambda's container) refuses that while it remembers; the
// memory ends with the process. The zero value is ready to use.
type Seen struct {
	mu     sync.Mutex
	newest map[string]Pointer
}

// observe refuses p if it was published before the newest pointer seen
// for its parameter and key, and otherwise remembers it if it is newer. A
// nil Seen refuses nothing.
func (s *Seen) observe(parameter string, p Pointer) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := parameter + "\x00" + p.KeyARN
	if prev, ok := s.newest[key]; ok {
		if p.PublishedAt.Before(prev.PublishedAt) {
			return fmt.Errorf("%w: version %s (published %s) is older than version %s (published %s), which this reader has already accepted: "+
				"refusing to roll back; publish again to move forward", ErrUntrusted, p.Version, p.PublishedAt.UTC().Format(time.RFC3339),
				prev.Version, prev.PublishedAt.UTC().Format(time.RFC3339))
		}
		if !p.PublishedAt.After(prev.PublishedAt) {
			return nil
		}
	}
	if s.newest == nil {
		s.newest = map[string]Pointer{}
	}
	s.newest[key] = p
	return nil
}

// Keys fetches the public halves of signing keys once and keeps them: the
// Lambda keeps one for its container, so a run costs no KMS call after the
// first, and a KMS outage after it does not stop verification. A failed
// fetch is not kept. The zero value with API set is ready to use.
type Keys struct {
	API   PublicKeyAPI
	mu    sync.Mutex
	cache map[string]*PublicKey
}

// Get returns the public half of the key arn.
func (k *Keys) Get(ctx context.Context, arn string) (*PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pk, ok := k.cache[arn]; ok {
		return pk, nil
	}
	if k.API == nil {
		return nil, fmt.Errorf("signing key %s: no KMS client to fetch its public key", arn)
	}
	pk, err := FetchPublicKey(ctx, k.API, arn)
	if err != nil {
		return nil, err
	}
	if k.cache == nil {
		k.cache = map[string]*PublicKey{}
	}
	k.cache[arn] = pk
	return pk, nil
}
