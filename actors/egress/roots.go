package egress

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// maxCAFileBytes bounds --egress-proxy-ca-file (a bundle of a few hundred CAs fits).
const maxCAFileBytes = 4 << 20

// LoadRootCAs returns the system roots plus the CA certificates of the PEM file at path
// (--egress-proxy-ca-file), for verifying https:// proxies. A file that cannot be read, holds
// a CERTIFICATE block that does not parse, or holds no certificate at all is an error: a
// wrong path would otherwise show only as every dial through the proxy failing later.
func LoadRootCAs(path string) (*x509.CertPool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > maxCAFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCAFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil { // no system roots on this machine: the file's CAs alone
		pool = x509.NewCertPool()
	}
	n := 0
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d does not parse: %w", path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
	return pool, nil
}
