package fleet

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/dbusers/dbusers/bot/internal/config"
	"github.com/dbusers/dbusers/bot/internal/ssmbundle"
	"github.com/dbusers/dbusers/bot/internal/testsupport/awstest"
	"github.com/dbusers/dbusers/bot/internal/testsupport/bundletest"
)

// useKMS gives the world a KMS client and a signing key of its own, which
// w.publish signs with and testConfig names, as the control-plane stack
// wires them.
func (w *world) useKMS(tb testing.TB) {
	tb.Helper()
	w.kms = kms.NewFromConfig(w.aws)
	w.key = awstest.DBusersSigningKey(tb, w.kms)
}

// published returns the content of the bundle w's pointer names.
func (w *world) published(tb testing.TB) ssmbundle.Content {
	tb.Helper()
	b, _, err := ssmbundle.Read(context.Background(), w.ssm, w.pointer, ssmbundle.Trust{AllowUnsigned: true})
	if err != nil {
		tb.Fatal(err)
	}
	return b.Content
}

// escalate is what an attacker publishes: every declared user gets ALL
// PRIVILEGES, and a user of their own joins.
func escalate(c ssmbundle.Content) ssmbundle.Content {
	users := []config.User{{Name: "mallory", Owner: "mallory@evil.example", Kind: "service",
		Auth:   config.UserAuth{Type: "password", Secret: c.Users[0].Auth.Secret},
		Access: []config.Access{{Clusters: []string{"c-ok"}, Databases: []string{"*"}, Role: "trusted_admin"}}}}
	for _, u := range c.Users {
		for i := range u.Access {
			u.Access[i].Role = "trusted_admin"
		}
		users = append(users, u)
	}
	c.Users = users
	return c
}

// attackOrigin is the provenance an attacker writes: a later time, so the
// version sorts as the newest.
func attackOrigin() ssmbundle.Origin {
	return ssmbundle.Origin{Commit: "badc0de", PullRequest: "42", MergedBy: "octocat", Time: time.Now().Add(time.Minute)}
}

// checkNothingHappened asserts what a refused bundle must cost: no STS,
// Secrets Manager or database call, no account anywhere, one alert
// naming the reason, and the metrics of an unusable bundle.
func checkNothingHappened(t *testing.T, w *world, srv *server, conn *connector, out *syncBuffer, rep *Report, reason string) {
	t.Helper()
	if rep == nil || rep.BundleError == "" || len(rep.Clusters) != 0 || rep.SignedBy != "" || rep.ConfigVersion != "" {
		t.Fatalf("report %+v", rep)
	}
	if len(w.sts.calls) != 0 || len(w.secrets.all()) != 0 {
		t.Errorf("a refused bundle reached STS (%d) or Secrets Manager (%d)", len(w.sts.calls), len(w.secrets.all()))
	}
	for _, c := range []string{"c-ok", "c-two"} {
		if _, ok := conn.login(c); ok {
			t.Errorf("a refused bundle connected to %s", c)
		}
	}
	if got := srv.accounts(t, w.name); len(got) != 0 {
		t.Errorf("accounts created from a refused bundle: %v", got)
	}
	msgs := w.sns.messages()
	if len(msgs) != 1 || !strings.Contains(aws.ToString(msgs[0].Message), "no cluster was changed") ||
		!strings.Contains(aws.ToString(msgs[0].Message), reason) {
		t.Fatalf("SNS: %d message(s) %v; want one saying no cluster was changed and %q", len(msgs), msgs, reason)
	}
	if emf := emfOf(t, out.lines(t)); emf[MetricBundleErrors] != 1.0 || emf[MetricUnsignedBundles] != 0.0 || emf[MetricClustersOK] != 0.0 {
		t.Errorf("EMF %v", emf)
	}
}

// TestHandleSigned: a bundle published with the key is verified, reported
// as signed by it, and applied.
func TestHandleSigned(t *testing.T) {
	t.Parallel()
	w, srv, conn, version := smallFleet(t)
	var out syncBuffer
	rep, err := Handle(context.Background(), w.deps(&out, conn), testConfig(t, w), []byte(`{"dry_run": false, "clusters": ["c-ok"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.SignedBy != w.key || rep.Unsigned || rep.ConfigVersion != version || len(srv.accounts(t, w.name)) != 1 {
		t.Errorf("report %+v, accounts %v", rep, srv.accounts(t, w.name))
	}
	lines := out.lines(t)
	verified := false
	for _, l := range lines {
		verified = verified || (l["msg"] == "bundle signature verified" && l["signing_key"] == w.key)
	}
	if !verified {
		t.Error("no log line says the signature was verified")
	}
	if emf := emfOf(t, lines); emf[MetricUnsignedBundles] != 0.0 || emf[MetricBundleErrors] != 0.0 {
		t.Errorf("EMF %v", emf)
	}
}

// TestHandleRefusesUntrustedBundle: whoever can write the SSM parameters
// but cannot sign with the configured key gets nothing applied: an
// unsigned bundle consistent in every hash, one signed by another key, one
// whose chunk changed after signing, and (with the transition setting on)
// one whose signature does not verify, all change nothing anywhere.
func TestHandleRefusesUntrustedBundle(t *testing.T) {
	for _, tt := range []struct {
		name          string
		allowUnsigned bool
		attack        func(t *testing.T, w *world)
		is            error
		reason        string
	}{
		{
			name: "unsigned, written straight to SSM",
			attack: func(t *testing.T, w *world) {
				bundletest.Forge(t, w.ssm, w.pointer, escalate(w.published(t)), attackOrigin(), nil)
			},
			is: ssmbundle.ErrUntrusted, reason: "is unsigned (it names no signing key), and unsigned bundles are not accepted",
		},
		{
			name: "signed with another KMS key",
			attack: func(t *testing.T, w *world) {
				other := awstest.DBusersSigningKey(t, w.kms)
				if _, err := ssmbundle.Publish(context.Background(), w.ssm, ssmbundle.Target{Pointer: w.pointer, Tier: "Standard", Keep: 3,
					Signer: &ssmbundle.Signer{API: w.kms, KeyARN: other}}, escalate(w.published(t)), attackOrigin(), false); err != nil {
					t.Fatal(err)
				}
			},
			is: ssmbundle.ErrUntrusted, reason: "not by the configured key",
		},
		{
			name: "a chunk changed after signing",
			attack: func(t *testing.T, w *world) {
				bundletest.ChangeChunk(t, w.ssm, w.pointer, bundletest.ReadPointer(t, w.ssm, w.pointer), 0)
			},
			is: ssmbundle.ErrCorrupt, reason: "the chunks do not hash to the pointer's data_sha256",
		},
		{
			name:          "unsigned allowed, but a signature that does not verify",
			allowUnsigned: true,
			attack: func(t *testing.T, w *world) {
				real := bundletest.ReadPointer(t, w.ssm, w.pointer)
				bundletest.Forge(t, w.ssm, w.pointer, escalate(w.published(t)), attackOrigin(), func(p *ssmbundle.Pointer) {
					p.KeyARN, p.Signature = real.KeyARN, real.Signature
				})
			},
			is: ssmbundle.ErrUntrusted, reason: "the signature does not verify with key",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, srv, conn, _ := smallFleet(t)
			tt.attack(t, w)
			cfg := testConfig(t, w)
			cfg.AllowUnsigned = tt.allowUnsigned
			var out syncBuffer
			rep, err := Handle(context.Background(), w.deps(&out, conn), cfg, w.publishEvent(t))
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("error %v; want %v saying %q and that nothing was changed", err, tt.is, tt.reason)
			}
			checkNothingHappened(t, w, srv, conn, &out, rep, tt.reason)
		})
	}
}

// TestHandleRefusesRollback: a container that has applied a signed
// version refuses the pointer moved back to an older signed one. (A new
// container would accept it; docs/security.md, "The published
// configuration: what protects what", says so.)
func TestHandleRefusesRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, srv, conn, _ := smallFleet(t)
	old := bundletest.Get(t, w.ssm, w.pointer)
	c := w.published(t)
	c.Users = nil // app's access is removed
	w.publish(t, c, "def457")

	var out syncBuffer
	deps := w.deps(&out, conn)
	deps.Seen = &ssmbundle.Seen{} // the container's memory
	if _, err := Handle(ctx, deps, testConfig(t, w), []byte(`{"dry_run": false, "clusters": ["c-ok"]}`)); err != nil {
		t.Fatal(err)
	}
	bundletest.Put(t, w.ssm, w.pointer, old) // its chunks are still kept (Keep 3)
	stsBefore := len(w.sts.calls)
	out = syncBuffer{}
	rep, err := Handle(ctx, deps, testConfig(t, w), w.publishEvent(t))
	if !errors.Is(err, ssmbundle.ErrUntrusted) || !strings.Contains(err.Error(), "refusing to roll back") {
		t.Fatalf("error %v", err)
	}
	if rep == nil || rep.BundleError == "" || len(rep.Clusters) != 0 || len(w.sts.calls) != stsBefore || len(srv.accounts(t, w.name)) != 0 {
		t.Errorf("report %+v, %d STS calls, accounts %v", rep, len(w.sts.calls)-stsBefore, srv.accounts(t, w.name))
	}
}

// TestHandleAllowUnsigned: the transition setting applies an unsigned
// bundle, warns about it in the logs and counts it in UnsignedBundles
// (which the control-plane stack alarms on); it works with no key
// configured at all, too.
func TestHandleAllowUnsigned(t *testing.T) {
	for _, key := range []bool{true, false} {
		t.Run(map[bool]string{true: "with a key", false: "without a key"}[key], func(t *testing.T) {
			t.Parallel()
			w, srv, conn, _ := smallFleet(t)
			// As a dbusers from before signing published it.
			bundletest.Forge(t, w.ssm, w.pointer, w.published(t), attackOrigin(), func(p *ssmbundle.Pointer) { p.DataSHA256 = "" })
			cfg := testConfig(t, w)
			cfg.AllowUnsigned = true
			if !key {
				cfg.SigningKeyARN = ""
			}
			var out syncBuffer
			rep, err := Handle(context.Background(), w.deps(&out, conn), cfg, []byte(`{"dry_run": false, "clusters": ["c-ok"]}`))
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Unsigned || rep.SignedBy != "" || len(srv.accounts(t, w.name)) != 1 {
				t.Errorf("report %+v, accounts %v", rep, srv.accounts(t, w.name))
			}
			lines := out.lines(t)
			warned := false
			for _, l := range lines {
				msg, _ := l["msg"].(string)
				warned = warned || (l["level"] == "WARN" && strings.Contains(msg, "WITHOUT a verified signature because DBUSERS_ALLOW_UNSIGNED=true"))
			}
			if !warned {
				t.Error("no warning that the bundle was used unsigned")
			}
			if emf := emfOf(t, lines); emf[MetricUnsignedBundles] != 1.0 || emf[MetricBundleErrors] != 0.0 {
				t.Errorf("EMF %v", emf)
			}
		})
	}
}

// countingKMS counts GetPublicKey calls and can be taken down.
type countingKMS struct {
	api   ssmbundle.PublicKeyAPI
	calls atomic.Int32
	down  atomic.Bool
}

func (c *countingKMS) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, opt ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	c.calls.Add(1)
	if c.down.Load() {
		return nil, errors.New("dial tcp: lookup kms.eu-west-1.amazonaws.com: i/o timeout")
	}
	return c.api.GetPublicKey(ctx, in, opt...)
}

// TestHandleFetchesTheKeyOnce: the public key is fetched once per
// container (Deps.Keys); while KMS cannot be reached before that, the
// bundle is refused; once fetched, a KMS outage changes nothing.
func TestHandleFetchesTheKeyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w, srv, conn, _ := smallFleet(t)
	api := &countingKMS{api: w.kms}
	api.down.Store(true)
	var out syncBuffer
	deps := w.deps(&out, conn)
	deps.Keys = &ssmbundle.Keys{API: api}
	event := []byte(`{"dry_run": false, "clusters": ["c-ok"]}`)
	rep, err := Handle(ctx, deps, testConfig(t, w), event)
	if err == nil || !strings.Contains(err.Error(), "get public key") || rep == nil || len(rep.Clusters) != 0 || len(w.sts.calls) != 0 {
		t.Fatalf("KMS down before the first fetch: %v, %+v", err, rep)
	}
	api.down.Store(false)
	for range 2 {
		if _, err := Handle(ctx, deps, testConfig(t, w), event); err != nil {
			t.Fatal(err)
		}
		api.down.Store(true)
	}
	if n := api.calls.Load(); n != 2 || len(srv.accounts(t, w.name)) != 1 {
		t.Errorf("%d GetPublicKey calls, want 2 (one failed, one kept); accounts %v", n, srv.accounts(t, w.name))
	}
}
