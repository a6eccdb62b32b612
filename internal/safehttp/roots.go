package safehttp

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadRootCAs returns the system roots plus the PEM certificates in
// extraPEMFile, for deployments whose CIMD hosts use a private CA
// (mcpauth's --cimd-ca-file). With "" it returns the system roots, which
// honour SSL_CERT_FILE and SSL_CERT_DIR. A file that cannot be read or holds
// no certificate is an error.
func LoadRootCAs(extraPEMFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		if extraPEMFile == "" {
			return nil, fmt.Errorf("load system root CAs: %w", err)
		}
		pool = x509.NewCertPool()
	}
	if extraPEMFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(extraPEMFile)
	if err != nil {
		return nil, fmt.Errorf("load root CAs from %q: %w", extraPEMFile, err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load root CAs from %q: the file holds no PEM certificate", extraPEMFile)
	}
	return pool, nil
}
