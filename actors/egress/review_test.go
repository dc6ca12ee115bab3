package egress_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/egress"
	"github.com/websocketmanager/websocketmanager/actors/egress/egresstest"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
)

// testCA is a private CA with a certificate for 127.0.0.1 it signed.
type testCA struct {
	pem  []byte // the CA certificate
	pool *x509.CertPool
	leaf tls.Certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "egress test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "proxy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testCA{
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool: pool,
		leaf: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}
}

// silentTLSProxy completes TLS and reads the CONNECT, then never answers.
func silentTLSProxy(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = io.Copy(io.Discard, c) // silent until the client gives up
			}()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	return "https://" + l.Addr().String()
}

// Ensure a dial through an https:// proxy that never answers CONNECT ends at its deadline
// (run with -race: the cancellation must not race with the switch to the TLS connection).
func TestHTTPSProxySilentAfterHandshake(t *testing.T) {
	ca := newTestCA(t)
	d := &egress.Dialer{Guard: &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second},
		Proxies: mustProxies(t, silentTLSProxy(t, ca.leaf)), RootCAs: ca.pool}
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := d.DialContext(ctx, "tcp", "127.0.0.1:9")
		cancel()
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "no answer to CONNECT in time")
		assert.Less(t, time.Since(start), 5*time.Second)
	}
}

// Ensure an https:// proxy whose certificate a private CA signed is trusted with that CA
// given as --egress-proxy-ca-file, and not without it.
func TestHTTPSProxyPrivateCA(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.1:0")
	ca := newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "proxy-ca.pem")
	require.NoError(t, os.WriteFile(caFile, append([]byte("a comment before the bundle\n"), ca.pem...), 0o600))
	roots, err := egress.LoadRootCAs(caFile)
	require.NoError(t, err)
	proxy := egresstest.Start(t, egresstest.WithTLS(&tls.Config{Certificates: []tls.Certificate{ca.leaf}}))
	guard := &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second}
	d := &egress.Dialer{Guard: guard, Proxies: mustProxies(t, proxy.URL), RootCAs: roots}
	c, err := d.DialContext(ctxT(t), "tcp", "127.0.0.1:"+port)
	require.NoError(t, err)
	echoOnce(t, c)
	_ = c.Close()

	d.RootCAs = nil // the system roots alone
	_, err = d.DialContext(ctxT(t), "tcp", "127.0.0.1:"+port)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLS to the proxy failed")
	assert.Len(t, proxy.Targets(), 1, "no CONNECT over an unverified connection")
}

// Ensure a --egress-proxy-ca-file that cannot be read or holds no usable certificate is refused.
func TestLoadRootCAsRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope.pem"), "no such file"},
		{"directory", dir, "not a regular file"},
		{"fifo", fifo, "not a regular file"},
		{"empty", write("empty.pem", ""), "holds no PEM certificate"},
		{"a key only", write("key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "holds no PEM certificate"},
		{"broken certificate", write("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := egress.LoadRootCAs(tc.path)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// Ensure a FIFO put where the proxy credentials file should be fails the dial at once instead
// of blocking it (and every later one), and a 407 whose reason echoes the credentials does not
// show them.
func TestProxyCredentialsFileHardening(t *testing.T) {
	guard := &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	proxy := egresstest.Start(t)
	for _, tc := range []struct{ name, path, want string }{
		{"fifo", fifo, "not a regular file"},
		{"directory", dir, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, err := egress.ParseAuth([]string{"file:" + tc.path})
			require.NoError(t, err)
			ps, err := egress.WithAuth(mustProxies(t, proxy.URL), auth)
			require.NoError(t, err)
			d := &egress.Dialer{Guard: guard, Proxies: ps}
			_, err = d.DialContext(ctxT(t), "tcp", "127.0.0.1:9") // ctxT's 10 s bound a blocked open
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "--egress-proxy-auth")
		})
	}
	assert.Empty(t, proxy.Requests(), "no CONNECT without the credentials")

	file := filepath.Join(dir, "auth")
	require.NoError(t, os.WriteFile(file, []byte("alice:s3cret"), 0o600))
	echo := egresstest.Start(t, egresstest.Respond("HTTP/1.1 407 you sent alice:s3cret\r\n\r\n"))
	auth, err := egress.ParseAuth([]string{"file:" + file})
	require.NoError(t, err)
	ps, err := egress.WithAuth(mustProxies(t, echo.URL), auth)
	require.NoError(t, err)
	_, err = (&egress.Dialer{Guard: guard, Proxies: ps}).DialContext(ctxT(t), "tcp", "127.0.0.1:9")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused the proxy credentials (HTTP 407 Proxy Authentication Required)")
	assert.False(t, strings.Contains(err.Error(), "s3cret"), "%v", err)
}
