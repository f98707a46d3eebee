package ssmbundle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/bundletest"
)

// These tests hold signing to what it is for: whoever may write the SSM
// parameters, but may not sign with the publish key, cannot get a bundle
// past a reader that requires the key's signature. kumo implements KMS
// CreateKey, Sign and GetPublicKey for ECC_NIST_P256 keys with real ECDSA,
// but keeps no key policy, so which test holds which key stands for it.

// aws returns SSM and KMS clients of the in-process emulator.
func clients(tb testing.TB) (*ssm.Client, *kms.Client) {
	tb.Helper()
	cfg := awstest.Config(awstest.EmulatorURL())
	return ssm.NewFromConfig(cfg), kms.NewFromConfig(cfg)
}

var seq atomic.Int64

// newPointer names a pointer parameter no other test uses.
func newPointer() string { return fmt.Sprintf("/dbusers-sign-test/%d/config", seq.Add(1)) }

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func at(minutes int) ssmbundle.Origin {
	return ssmbundle.Origin{Commit: fmt.Sprintf("%040x", minutes+1), PullRequest: "42", MergedBy: "octocat", Time: t0.Add(time.Duration(minutes) * time.Minute)}
}

// content is a small fleet; role is what user app gets on every database.
func content(role string) ssmbundle.Content {
	return ssmbundle.Content{
		Settings: config.Settings{Prefix: "acme", SSM: config.SSM{Parameter: "/dbusers/config"}},
		Clusters: []config.Cluster{{Name: "prod-orders", Environment: "prod", AccountID: "111111111111", Region: "eu-west-1",
			Endpoint: "prod-orders.cluster-abc.eu-west-1.rds.amazonaws.com", Engine: "aurora-mysql-3",
			AdminSecret: "dbusers/prod-orders/admin", Databases: []string{"orders"}}},
		Users: []config.User{{Name: "app", Owner: "team@acme.example", Kind: "service",
			Auth:   config.UserAuth{Type: "password", Secret: "dbusers/app"},
			Access: []config.Access{{Clusters: []string{"prod-orders"}, Databases: []string{"*"}, Role: role}}}},
	}
}

// signed publishes c under pointer with key, as `dbusers publish` does.
func signed(tb testing.TB, api *ssm.Client, k *kms.Client, key, pointer string, c ssmbundle.Content, o ssmbundle.Origin) *ssmbundle.Result {
	tb.Helper()
	res, err := ssmbundle.Publish(context.Background(), api, ssmbundle.Target{Pointer: pointer, Tier: "Standard", Keep: 5,
		Signer: &ssmbundle.Signer{API: k, KeyARN: key}}, c, o, false)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func trustKey(tb testing.TB, k *kms.Client, key string) ssmbundle.Trust {
	tb.Helper()
	pk, err := ssmbundle.FetchPublicKey(context.Background(), k, key)
	if err != nil {
		tb.Fatal(err)
	}
	return ssmbundle.Trust{Key: pk}
}

// TestSignedRoundTrip: a signed publish reads back under the key it was
// signed with, and the pointer says which key and carries the hash of the
// chunks.
func TestSignedRoundTrip(t *testing.T) {
	ctx := context.Background()
	api, k := clients(t)
	key := awstest.DBusersSigningKey(t, k)
	pointer := newPointer()
	res := signed(t, api, k, key, pointer, content("read"), at(0))
	if !res.Changed || res.KeyARN != key {
		t.Fatalf("publish: %+v; want changed and signed with %s", res, key)
	}
	p := bundletest.ReadPointer(t, api, pointer)
	if p.KeyARN != key || p.Signature == "" || len(p.DataSHA256) != 64 {
		t.Errorf("pointer %+v: want key, signature and data hash", p)
	}
	b, v, err := ssmbundle.Read(ctx, api, pointer, trustKey(t, k, key))
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyARN != key || v.Unverified != "" || !v.PublishedAt.Equal(t0) || b.Content.Users[0].Access[0].Role != "read" {
		t.Errorf("verdict %+v, role %s", v, b.Content.Users[0].Access[0].Role)
	}
	// Publishing the same content again writes nothing: it is signed.
	again := signed(t, api, k, key, pointer, content("read"), at(1))
	if again.Changed || again.Version != res.Version || again.KeyARN != key {
		t.Errorf("second publish of the same content: %+v", again)
	}
}

// TestReadRefusesUntrusted: every way to publish without the key's
// signature is refused before a chunk is decoded, with ErrUntrusted (or
// ErrCorrupt when a chunk no longer matches the signed hash), and names
// what is wrong.
func TestReadRefusesUntrusted(t *testing.T) {
	ctx := context.Background()
	api, k := clients(t)
	key := awstest.DBusersSigningKey(t, k)
	other := awstest.DBusersSigningKey(t, k)
	trust := trustKey(t, k, key)

	tests := []struct {
		name string
		// attack writes under pointer, where a version signed with key
		// is published.
		attack func(t *testing.T, pointer string, res *ssmbundle.Result)
		is     error
		want   string
	}{
		{
			name: "unsigned bundle written straight to SSM",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				bundletest.Forge(t, api, pointer, content("trusted_admin"), at(5), nil)
			},
			is: ssmbundle.ErrUntrusted, want: "is unsigned (it names no signing key), and unsigned bundles are not accepted",
		},
		{
			name: "signed with another key",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				signed(t, api, k, other, pointer, content("trusted_admin"), at(5))
			},
			is: ssmbundle.ErrUntrusted, want: "is signed by key " + other + ", not by the configured key " + key,
		},
		{
			name: "signed with another key, naming the configured one",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				signed(t, api, k, other, pointer, content("trusted_admin"), at(5))
				bundletest.EditPointer(t, api, pointer, func(p *ssmbundle.Pointer) { p.KeyARN = key })
			},
			is: ssmbundle.ErrUntrusted, want: "the signature does not verify with key " + key,
		},
		{
			name: "unsigned bundle carrying the signature of the published one",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				real := bundletest.ReadPointer(t, api, pointer)
				bundletest.Forge(t, api, pointer, content("trusted_admin"), at(5), func(p *ssmbundle.Pointer) {
					p.KeyARN, p.Signature = real.KeyARN, real.Signature
				})
			},
			is: ssmbundle.ErrUntrusted, want: "the signature does not verify",
		},
		{
			name: "one chunk changed after signing",
			attack: func(t *testing.T, pointer string, res *ssmbundle.Result) {
				bundletest.ChangeChunk(t, api, pointer, bundletest.ReadPointer(t, api, pointer), 0)
			},
			is: ssmbundle.ErrCorrupt, want: "the chunks do not hash to the pointer's data_sha256",
		},
		{
			name: "chunk changed and the data hash recomputed",
			attack: func(t *testing.T, pointer string, res *ssmbundle.Result) {
				bundletest.EditPointer(t, api, pointer, func(p *ssmbundle.Pointer) {
					bundletest.ChangeChunk(t, api, pointer, *p, 0)
					p.DataSHA256 = ssmbundle.DataHash([]string{bundletest.Get(t, api, ssmbundle.ChunkName(pointer, p.Version, 0))})
				})
			},
			is: ssmbundle.ErrUntrusted, want: "the signature does not verify",
		},
		{
			name: "publication time moved forward",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				bundletest.EditPointer(t, api, pointer, func(p *ssmbundle.Pointer) { p.PublishedAt = p.PublishedAt.Add(time.Hour) })
			},
			is: ssmbundle.ErrUntrusted, want: "the signature does not verify",
		},
		{
			name: "signed pointer of another parameter",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				// A staging deployment sharing the key: its signed pointer
				// and chunks, copied under this pointer.
				staging := newPointer()
				res := signed(t, api, k, key, staging, content("trusted_admin"), at(5))
				for i := range res.Chunks {
					bundletest.Put(t, api, ssmbundle.ChunkName(pointer, res.Version, i), bundletest.Get(t, api, ssmbundle.ChunkName(staging, res.Version, i)))
				}
				bundletest.Put(t, api, pointer, bundletest.Get(t, api, staging))
			},
			is: ssmbundle.ErrUntrusted, want: "or signed for another parameter than",
		},
		{
			name: "signature that is not base64",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				bundletest.EditPointer(t, api, pointer, func(p *ssmbundle.Pointer) { p.Signature = "not base64!" })
			},
			is: ssmbundle.ErrUntrusted, want: "the signature is not base64",
		},
		{
			name: "signed pointer without a data hash",
			attack: func(t *testing.T, pointer string, _ *ssmbundle.Result) {
				bundletest.EditPointer(t, api, pointer, func(p *ssmbundle.Pointer) { p.DataSHA256 = "" })
			},
			is: ssmbundle.ErrUntrusted, want: "is signed but names no hash of its chunks",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pointer := newPointer()
			res := signed(t, api, k, key, pointer, content("read"), at(0))
			tt.attack(t, pointer, res)
			for _, allow := range []bool{false, true} {
				tr := trust
				tr.AllowUnsigned = allow
				if allow && tt.is == ssmbundle.ErrUntrusted && strings.Contains(tt.want, "is unsigned") {
					continue // the transition setting's purpose; see TestReadAllowUnsigned
				}
				b, _, err := ssmbundle.Read(ctx, api, pointer, tr)
				if err == nil {
					t.Fatalf("AllowUnsigned %v: Read accepted the bundle (role %s)", allow, b.Content.Users[0].Access[0].Role)
				}
				if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("AllowUnsigned %v: error %v; want %v saying %q", allow, err, tt.is, tt.want)
				}
			}
		})
	}
}

// TestReadAllowUnsigned: the transition setting reads an unsigned bundle
// and says so; without a key configured it reads a signed one as
// unverified; a reader that neither has a key nor allows unsigned reads
// nothing.
func TestReadAllowUnsigned(t *testing.T) {
	ctx := context.Background()
	api, k := clients(t)
	key := awstest.DBusersSigningKey(t, k)
	pointer := newPointer()
	bundletest.Forge(t, api, pointer, content("read"), at(0), nil)

	tr := trustKey(t, k, key)
	tr.AllowUnsigned = true
	b, v, err := ssmbundle.Read(ctx, api, pointer, tr)
	if err != nil || b == nil || v.KeyARN != "" || v.Unverified != "the pointer is unsigned" {
		t.Fatalf("unsigned with AllowUnsigned: %v, verdict %+v", err, v)
	}

	signed(t, api, k, key, pointer, content("write"), at(1))
	_, v, err = ssmbundle.Read(ctx, api, pointer, ssmbundle.Trust{AllowUnsigned: true})
	if err != nil || v.KeyARN != "" || !strings.Contains(v.Unverified, "no signing key is configured to check it") {
		t.Errorf("signed, no key, AllowUnsigned: %v, verdict %+v", err, v)
	}
	if _, _, err := ssmbundle.Read(ctx, api, pointer, ssmbundle.Trust{}); !errors.Is(err, ssmbundle.ErrUntrusted) {
		t.Errorf("signed, no key: %v, want ErrUntrusted", err)
	}
}

// TestReadRefusesRollback: a pointer moved back to an older version that
// was legitimately signed verifies, so only memory can refuse it: a reader
// with Seen refuses it once it has accepted the newer one, a reader
// without (a new Lambda container) does not. docs/security.md, "The
// published configuration: what protects what", says so.
func TestReadRefusesRollback(t *testing.T) {
	ctx := context.Background()
	api, k := clients(t)
	key := awstest.DBusersSigningKey(t, k)
	pointer := newPointer()
	signed(t, api, k, key, pointer, content("trusted_admin"), at(0))
	old := bundletest.Get(t, api, pointer)
	signed(t, api, k, key, pointer, content("read"), at(1)) // access was reduced

	trust := trustKey(t, k, key)
	trust.Seen = &ssmbundle.Seen{}
	if _, _, err := ssmbundle.Read(ctx, api, pointer, trust); err != nil {
		t.Fatal(err)
	}
	bundletest.Put(t, api, pointer, old) // the older chunks are still kept
	_, _, err := ssmbundle.Read(ctx, api, pointer, trust)
	if !errors.Is(err, ssmbundle.ErrUntrusted) || !strings.Contains(err.Error(), "refusing to roll back") {
		t.Errorf("rollback with memory: %v", err)
	}
	trust.Seen = &ssmbundle.Seen{}
	b, _, err := ssmbundle.Read(ctx, api, pointer, trust)
	if err != nil || b.Content.Users[0].Access[0].Role != "trusted_admin" {
		t.Errorf("rollback without memory: %v; want it accepted (the documented limit)", err)
	}
	// The same version again, and a newer one, are fine.
	if _, _, err := ssmbundle.Read(ctx, api, pointer, trust); err != nil {
		t.Errorf("the same version twice: %v", err)
	}
	signed(t, api, k, key, pointer, content("write"), at(2))
	if _, _, err := ssmbundle.Read(ctx, api, pointer, trust); err != nil {
		t.Errorf("a newer version: %v", err)
	}
}

// TestFetchPublicKey refuses keys that are not what dbusers signs with.
func TestFetchPublicKey(t *testing.T) {
	ctx := context.Background()
	_, k := clients(t)
	for _, tc := range []struct {
		name  string
		spec  types.KeySpec
		usage types.KeyUsageType
		want  string
	}{
		{"P-384", types.KeySpecEccNistP384, types.KeyUsageTypeSignVerify, "key spec is ECC_NIST_P384, want ECC_NIST_P256"},
		{"RSA", types.KeySpecRsa2048, types.KeyUsageTypeSignVerify, "key spec is RSA_2048"},
		{"RSA for encryption", types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt, "key usage is ENCRYPT_DECRYPT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := awstest.SigningKey(t, k, tc.spec, tc.usage)
			if _, err := ssmbundle.FetchPublicKey(ctx, k, key); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FetchPublicKey: %v, want %q", err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "alias/dbusers-signing", "arn:aws:kms:eu-west-1:123456789012:alias/dbusers-signing", "1234abcd-12ab-34cd-56ef-1234567890ab"} {
		if _, err := ssmbundle.FetchPublicKey(ctx, k, bad); err == nil || !strings.Contains(err.Error(), "is not a KMS key ARN") {
			t.Errorf("FetchPublicKey(%q): %v", bad, err)
		}
	}
	missing := "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
	if _, err := ssmbundle.FetchPublicKey(ctx, k, missing); err == nil || !strings.Contains(err.Error(), "get public key") {
		t.Errorf("FetchPublicKey of a missing key: %v", err)
	}
}

// failingSign is a KMS client whose Sign is refused, as KMS refuses a
// principal the key policy does not name.
type failingSign struct{ *kms.Client }

func (failingSign) Sign(context.Context, *kms.SignInput, ...func(*kms.Options)) (*kms.SignOutput, error) {
	return nil, errors.New("api error AccessDeniedException: not authorized to perform: kms:Sign")
}

// TestPublishSigns: a publish that cannot sign writes nothing; one that
// finds the same content published unsigned signs and writes it again;
// a dry run signs nothing.
func TestPublishSigns(t *testing.T) {
	ctx := context.Background()
	api, k := clients(t)
	key := awstest.DBusersSigningKey(t, k)
	pointer := newPointer()
	tgt := ssmbundle.Target{Pointer: pointer, Tier: "Standard", Keep: 5, Signer: &ssmbundle.Signer{API: failingSign{k}, KeyARN: key}}
	if _, err := ssmbundle.Publish(ctx, api, tgt, content("read"), at(0), false); err == nil ||
		!strings.Contains(err.Error(), "kms:Sign") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("publish without the right to sign: %v", err)
	}
	if _, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: &pointer}); err == nil {
		t.Error("a publish that could not sign wrote the pointer")
	}

	unsigned, err := ssmbundle.Publish(ctx, api, ssmbundle.Target{Pointer: pointer, Tier: "Standard", Keep: 5}, content("read"), at(0), false)
	if err != nil || unsigned.KeyARN != "" {
		t.Fatalf("unsigned publish: %+v, %v", unsigned, err)
	}
	tgt.Signer.API = k
	dry, err := ssmbundle.Publish(ctx, api, tgt, content("read"), at(1), true)
	if err != nil || !dry.Changed || dry.KeyARN != key || !strings.Contains(dry.Repaired, "it is not signed by "+key) {
		t.Fatalf("dry run over an unsigned pointer: %+v, %v", dry, err)
	}
	if p := bundletest.ReadPointer(t, api, pointer); p.Signature != "" || p.Version != unsigned.Version {
		t.Errorf("a dry run wrote %+v", p)
	}
	res, err := ssmbundle.Publish(ctx, api, tgt, content("read"), at(1), false)
	if err != nil || !res.Changed || res.Version == unsigned.Version || !strings.Contains(res.Repaired, "is unsigned") {
		t.Fatalf("signed publish over the same content unsigned: %+v, %v", res, err)
	}
	if _, _, err := ssmbundle.Read(ctx, api, pointer, trustKey(t, k, key)); err != nil {
		t.Errorf("read after signing: %v", err)
	}
}
