// Package rdstls builds the TLS configuration the Lambda uses to reach RDS
// and Aurora: the Amazon RDS CA bundle is compiled in (so a cold start needs
// no download and no file in the deployment package), a file named by
// DBUSERS_CA_BUNDLE replaces it for regions opened after this copy was
// taken, and each cluster's tls mode decides how much of the server's
// certificate is checked.
package rdstls

import (
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// EnvBundle names the environment variable whose value, when set, is the
// path of a PEM file that replaces the embedded bundle.
const EnvBundle = "DBUSERS_CA_BUNDLE"

// bundle is the Amazon RDS global CA bundle
// (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem),
// sha256 05c6b4a9bf4daa95c888711481e19cc8e2e11aed4de8db759f51f4a6fce64917,
// 102 certificates. PROVENANCE.md beside it says where this copy came from.
//
//go:embed global-bundle.pem
var bundle []byte

// Embedded returns the compiled-in Amazon RDS CA bundle (PEM).
func Embedded() []byte { return bundle }

// TLS modes a cluster file may declare.
const (
	// VerifyIdentity checks the chain against the bundle and the host name
	// against the certificate. It is the default.
	VerifyIdentity = "verify-identity"
	// VerifyCA checks the chain only, for endpoints reached by a name the
	// certificate does not carry (a proxy, a tunnel, a custom DNS name).
	VerifyCA = "verify-ca"
	// Required encrypts without checking who answers.
	Required = "required"
	// Disabled sends everything in the clear (self-managed test servers).
	Disabled = "disabled"
)

// Modes lists the tls modes in order of decreasing safety.
var Modes = []string{VerifyIdentity, VerifyCA, Required, Disabled}

// Parse returns every certificate of a PEM bundle. A bundle with no
// certificate, or with a block that does not parse, is refused: a truncated
// file must not silently shrink the set of trusted CAs.
func Parse(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// Roots is a CA pool and where it came from.
type Roots struct {
	Pool *x509.CertPool
	// Source is "embedded" or the path of the replacing file.
	Source string
	// Count is the number of certificates in the pool.
	Count int
}

// Load returns the pool to verify servers against: the file at path when
// path is not empty, the embedded bundle otherwise.
func Load(path string) (*Roots, error) {
	data, source := bundle, "embedded"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvBundle, err)
		}
		source = path
	}
	certs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("CA bundle %s: %w", source, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &Roots{Pool: pool, Source: source, Count: len(certs)}, nil
}

// LoadFromEnv is Load with the path from EnvBundle.
func LoadFromEnv(getenv func(string) string) (*Roots, error) {
	return Load(getenv(EnvBundle))
}

// Config returns the client TLS configuration for mode ("" means
// VerifyIdentity) towards host, or nil for Disabled. roots is required for
// the two verifying modes.
func Config(mode, host string, roots *x509.CertPool) (*tls.Config, error) {
	if mode == "" {
		mode = VerifyIdentity
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	switch mode {
	case VerifyIdentity:
		if roots == nil {
			return nil, errors.New("tls verify-identity: no CA pool")
		}
		base.RootCAs = roots
		return base, nil
	case VerifyCA:
		if roots == nil {
			return nil, errors.New("tls verify-ca: no CA pool")
		}
		// The standard verification checks the host name as well; turn it
		// off and check the chain alone, the way libmysqlclient's
		// VERIFY_CA does.
		base.InsecureSkipVerify = true
		base.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs, roots)
		}
		return base, nil
	case Required:
		base.InsecureSkipVerify = true
		return base, nil
	case Disabled:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown tls mode %q (want one of verify-identity, verify-ca, required, disabled)", mode)
}

// verifyChain checks that the server's certificate chains to roots, without
// looking at names.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls verify-ca: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tls verify-ca: %w", err)
	}
	return nil
}
