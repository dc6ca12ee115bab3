package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Ensure --egress-proxy-ca-file (also as WSM_EGRESS_PROXY_CA_FILE) is read at start and
// refused there when it is unusable or given without a proxy.
func TestEgressProxyCAFileFlag(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "proxy CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	good := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("no certificate here\n"), 0o600))

	c, err := parseConfig([]string{"--egress-proxy", "https://127.0.0.1:3128", "--egress-proxy-ca-file", good}, noEnv, io.Discard)
	require.NoError(t, err)
	roots, err := c.egressRoots()
	require.NoError(t, err)
	require.NotNil(t, roots)

	t.Setenv("WSM_EGRESS_PROXY_CA_FILE", good)
	c, err = parseConfig([]string{"--egress-proxy", "https://127.0.0.1:3128"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, good, c.egressProxyCAFile)
	t.Setenv("WSM_EGRESS_PROXY_CA_FILE", "")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--egress-proxy", "https://127.0.0.1:3128", "--egress-proxy-ca-file", filepath.Join(dir, "nope.pem")}, "--egress-proxy-ca-file"},
		{"no certificate", []string{"--egress-proxy", "https://127.0.0.1:3128", "--egress-proxy-ca-file", empty}, "holds no PEM certificate"},
		{"no proxy", []string{"--egress-proxy-ca-file", good}, "needs --egress-proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, noEnv, io.Discard)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
