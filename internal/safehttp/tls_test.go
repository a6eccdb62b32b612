package safehttp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority generated for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, der: der}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// leaf issues a server certificate for names, valid from notBefore to
// notAfter. A nil ca makes it self-signed.
func leaf(t *testing.T, ca *testCA, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// newTLSServerWithCert starts a loopback TLS server presenting cert.
func newTLSServerWithCert(t *testing.T, cert tls.Certificate) (*httptest.Server, *recorder) {
	t.Helper()
	return startTLS(t, serveDoc, &cert)
}

func TestFetchTLS(t *testing.T) {
	ca := newTestCA(t, "mcpauth test CA")
	internalCA := newTestCA(t, "internal CA")
	now := time.Now()
	valid := func(names ...string) tls.Certificate {
		return leaf(t, ca, names, now.Add(-time.Hour), now.Add(time.Hour))
	}
	tests := []struct {
		name  string
		cert  tls.Certificate
		roots *x509.CertPool
		url   string
		check func(t *testing.T, err error) // for failures: the x509 cause
	}{
		{name: "B11 certificate from a trusted CA", cert: valid("example.com"), roots: ca.pool(), url: "https://example.com/c.json"},
		{
			name: "attack 20 self-signed", cert: leaf(t, nil, []string{"example.com"}, now.Add(-time.Hour), now.Add(time.Hour)),
			roots: ca.pool(), url: "https://example.com/c.json",
			check: wantCause[x509.UnknownAuthorityError],
		},
		{
			name: "attack 20 chain to an internal CA only", cert: leaf(t, internalCA, []string{"example.com"}, now.Add(-time.Hour), now.Add(time.Hour)),
			roots: ca.pool(), url: "https://example.com/c.json",
			check: wantCause[x509.UnknownAuthorityError],
		},
		{
			name: "attack 20 expired", cert: leaf(t, ca, []string{"example.com"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)),
			roots: ca.pool(), url: "https://example.com/c.json",
			check: func(t *testing.T, err error) {
				var ce x509.CertificateInvalidError
				if !errors.As(err, &ce) || ce.Reason != x509.Expired {
					t.Errorf("cause = %v, want an expired certificate", err)
				}
			},
		},
		{
			name: "attack 20 not yet valid", cert: leaf(t, ca, []string{"example.com"}, now.Add(24*time.Hour), now.Add(48*time.Hour)),
			roots: ca.pool(), url: "https://example.com/c.json",
			check: wantCause[x509.CertificateInvalidError],
		},
		{
			name: "attack 20 wrong host name", cert: valid("other.example.net"),
			roots: ca.pool(), url: "https://example.com/c.json",
			check: wantCause[x509.HostnameError],
		},
		{
			name: "attack 20 system roots do not trust a test CA", cert: valid("example.com"),
			roots: nil, url: "https://example.com/c.json",
			check: wantCause[x509.UnknownAuthorityError],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := newTLSServerWithCert(t, tt.cert)
			fake := newFakeNet(t, srv.Listener.Addr().String())
			c, err := New(Options{RootCAs: tt.roots, Resolver: fake, Dial: fake.Dial})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Fetch(context.Background(), Request{URL: tt.url})
			if tt.check == nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if string(resp.Body) != doc {
					t.Errorf("body = %q", resp.Body)
				}
				return
			}
			e := wantError(t, err, ReasonTLS)
			tt.check(t, err)
			if e.Unavailable() || e.Addr != publicAddr() {
				t.Errorf("Unavailable() = %v, Addr = %s", e.Unavailable(), e.Addr)
			}
			if rec.count() != 0 {
				t.Errorf("the request was sent over an unverified connection")
			}
		})
	}
}

// wantCause checks that err wraps an error of type C.
func wantCause[C error](t *testing.T, err error) {
	t.Helper()
	var c C
	if !errors.As(err, &c) {
		t.Errorf("cause of %v is not a %T", err, c)
	}
}

func TestLoadRootCAs(t *testing.T) {
	ca := newTestCA(t, "private CA")
	dir := t.TempDir()
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, ca.pem(), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("B11 system roots", func(t *testing.T) {
		if pool, err := LoadRootCAs(""); err != nil || pool == nil {
			t.Fatalf("LoadRootCAs(\"\") = %v, %v", pool, err)
		}
	})
	t.Run("B11 missing file", func(t *testing.T) {
		if _, err := LoadRootCAs(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
	})
	t.Run("B11 file without certificates", func(t *testing.T) {
		if _, err := LoadRootCAs(empty); err == nil {
			t.Error("err = nil")
		}
	})
	t.Run("B11 private CA file is trusted", func(t *testing.T) {
		pool, err := LoadRootCAs(good)
		if err != nil {
			t.Fatal(err)
		}
		srv, _ := newTLSServerWithCert(t, leaf(t, ca, []string{"example.com"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
		fake := newFakeNet(t, srv.Listener.Addr().String())
		c, err := New(Options{RootCAs: pool, Resolver: fake, Dial: fake.Dial})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Fetch(context.Background(), Request{URL: "https://example.com/c.json"}); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
	})
}
