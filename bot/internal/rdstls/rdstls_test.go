package rdstls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEmbeddedBundle(t *testing.T) {
	sum := sha256.Sum256(Embedded())
	if got, want := hex.EncodeToString(sum[:]), "05c6b4a9bf4daa95c888711481e19cc8e2e11aed4de8db759f51f4a6fce64917"; got != want {
		t.Errorf("embedded bundle sha256 = %s, want %s (update the comment in rdstls.go and PROVENANCE.md when refreshing it)", got, want)
	}
	certs, err := Parse(Embedded())
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) < 100 {
		t.Fatalf("embedded bundle has %d certificates, want at least 100", len(certs))
	}
	for _, c := range certs {
		if !c.IsCA {
			t.Errorf("%s is not a CA certificate", c.Subject)
		}
		if !strings.Contains(c.Subject.String(), "Amazon RDS") {
			t.Errorf("unexpected subject %s", c.Subject)
		}
	}
	roots, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if roots.Source != "embedded" || roots.Count != len(certs) {
		t.Errorf("Load(\"\") = %s with %d certificates, want embedded with %d", roots.Source, roots.Count, len(certs))
	}
}

func TestEnvReplacesBundle(t *testing.T) {
	ca := newCA(t, "replacement CA")
	path := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(path, ca.pem(), 0o600); err != nil {
		t.Fatal(err)
	}
	roots, err := LoadFromEnv(func(k string) string {
		if k == EnvBundle {
			return path
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if roots.Source != path || roots.Count != 1 {
		t.Fatalf("got %s with %d certificates, want %s with 1", roots.Source, roots.Count, path)
	}
	// Replaced, not added to: a server signed by the replacement CA is
	// trusted, and the pool holds that one certificate only.
	leaf := ca.leaf(t, "db.example.test")
	cfg, err := Config(VerifyIdentity, "db.example.test", roots.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, cfg, leaf); err != nil {
		t.Errorf("server signed by the replacement CA refused: %v", err)
	}

	for name, content := range map[string]string{
		"empty":     "",
		"truncated": string(ca.pem()[:200]),
		"not pem":   "hello",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.pem")
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(p); err == nil {
				t.Errorf("Load accepted a %s bundle", name)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.pem")); err == nil || !strings.Contains(err.Error(), EnvBundle) {
		t.Errorf("missing file: err = %v, want one naming %s", err, EnvBundle)
	}
}

func TestConfigModes(t *testing.T) {
	ca := newCA(t, "test CA")
	other := newCA(t, "other CA")
	good := ca.leaf(t, "db.example.test")
	foreign := other.leaf(t, "db.example.test")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	tests := []struct {
		mode, host string
		server     tls.Certificate
		ok         bool
	}{
		{VerifyIdentity, "db.example.test", good, true},
		{"", "db.example.test", good, true}, // the default is verify-identity
		{VerifyIdentity, "db.example.test", foreign, false},
		{VerifyIdentity, "wrong.example.test", good, false},
		{VerifyCA, "wrong.example.test", good, true},
		{VerifyCA, "db.example.test", good, true},
		{VerifyCA, "db.example.test", foreign, false},
		{Required, "wrong.example.test", foreign, true},
	}
	for _, tt := range tests {
		name := tt.mode + "/" + tt.host
		if tt.server.Leaf == foreign.Leaf {
			name += "/foreign-ca"
		}
		t.Run(name, func(t *testing.T) {
			cfg, err := Config(tt.mode, tt.host, roots)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion < tls.VersionTLS12 {
				t.Errorf("MinVersion %x, want at least TLS 1.2", cfg.MinVersion)
			}
			err = handshake(t, cfg, tt.server)
			if tt.ok && err != nil {
				t.Errorf("handshake refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Error("handshake accepted, want it refused")
			}
		})
	}

	if cfg, err := Config(Disabled, "db.example.test", roots); err != nil || cfg != nil {
		t.Errorf("disabled: got %v, %v; want nil, nil", cfg, err)
	}
	if _, err := Config("verify-full", "h", roots); err == nil {
		t.Error("unknown mode accepted")
	}
	for _, m := range []string{VerifyIdentity, VerifyCA} {
		if _, err := Config(m, "h", nil); err == nil {
			t.Errorf("%s without a pool accepted", m)
		}
	}
}

// handshake runs a TLS handshake between a client with cfg and a server
// presenting cert, over loopback TCP (net.Pipe is unbuffered, and a client
// that refuses the certificate would block writing its alert).
func handshake(t *testing.T, cfg *tls.Config, cert tls.Certificate) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := l.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		srv := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		_ = srv.Handshake() // the client's verdict is what the test checks
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	err = tls.Client(c, cfg).Handshake()
	c.Close()
	<-done
	return err
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// leaf returns a server certificate for host signed by ca.
func (ca *testCA) leaf(t *testing.T, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
