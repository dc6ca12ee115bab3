package session_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/credentials/credtest"
	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// mtlsServer is a real wss:// server with sessiontest's behaviours that requires a client
// certificate issued by ClientCA.
type mtlsServer struct {
	*sessiontest.Handler
	url                string
	ServerCA, ClientCA *credtest.CA
}

func newMTLSServer(t *testing.T) *mtlsServer {
	t.Helper()
	m := &mtlsServer{Handler: sessiontest.NewHandler(time.Hour), ServerCA: credtest.NewCA(t, "upstream server CA"), ClientCA: credtest.NewCA(t, "upstream client CA")}
	_, _, cert := m.ServerCA.Issue(t, credtest.Leaf{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(m.ClientCA.Cert)
	srv := httptest.NewUnstartedServer(m.Handler)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(func() { m.Handler.Close(); srv.Close() })
	m.url = "wss://" + srv.Listener.Addr().String()
	return m
}

// tlsFiles writes the server's CA and a client certificate of ca into dir.
func tlsFiles(t *testing.T, dir string, m *mtlsServer, ca *credtest.CA) *credentials.TLS {
	t.Helper()
	certPEM, keyPEM, _ := ca.Issue(t, credtest.Leaf{Client: true, DNSNames: []string{"wsmanager"}})
	for name, b := range map[string][]byte{"ca.pem": m.ServerCA.PEM, "client.pem": certPEM, "client-key.pem": keyPEM} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	return &credentials.TLS{
		CA: &credentials.Material{File: filepath.Join(dir, "ca.pem")}, CAOnly: true,
		ClientCert: &credentials.Material{File: filepath.Join(dir, "client.pem")},
		ClientKey:  &credentials.Material{File: filepath.Join(dir, "client-key.pem")},
	}
}

func credConfig(src *credentials.Source) session.Config {
	c := testConfig()
	c.PingInterval, c.PongTimeout = time.Second, 10*time.Second // keepalive is not the point
	c.Credentials = src
	return c
}

// Ensure a session dials a wss:// server that requires a client certificate with the key
// material named in Spec.TLS (files under the allowed directory), and echoes through it.
func TestTLSClientCertificate(t *testing.T) {
	ws := newMTLSServer(t)
	dir := t.TempDir()
	spec := tlsFiles(t, dir, ws, ws.ClientCA)
	src := &credentials.Source{FileDirs: []string{dir}}
	require.NoError(t, src.Validate(nil, nil, spec, true))
	r, _ := newRegistry(t, credConfig(src))
	s := open(t, r, session.Spec{URL: ws.url + "/echo", TLS: spec})
	got, err := s.Send(context.Background(), text("over mTLS"), waitFor)
	require.NoError(t, err)
	assert.Equal(t, "over mTLS", string(got.Data))
	assert.Equal(t, session.StatusConnected, s.Snapshot().Status)
}

// Ensure a client certificate the server does not trust fails the first dial with a sentence
// saying what to do, and that a session that has no credential source fails with
// ErrUnavailable rather than dialing without its certificate.
func TestTLSClientCertificateRefused(t *testing.T) {
	ws := newMTLSServer(t)
	dir := t.TempDir()
	spec := tlsFiles(t, dir, ws, credtest.NewCA(t, "a CA the server does not know"))
	r, _ := newRegistry(t, credConfig(&credentials.Source{FileDirs: []string{dir}}))
	_, err := r.Open(context.Background(), session.Spec{ID: "c1", URL: ws.url + "/echo", TLS: spec, Backoff: fastBackoff()}, false)
	require.ErrorIs(t, err, session.ErrDial)
	host, _, _ := net.SplitHostPort(ws.url[len("wss://"):])
	assert.Equal(t, "handshake failed: the server at "+host+" requires a TLS client certificate and was sent none it accepts (server said: certificate required): "+
		"give one issued by an authority the server trusts in tls.client_certificate and tls.client_key", err.Error())
	assert.Zero(t, ws.Accepted())

	r2, _ := newRegistry(t, credConfig(nil))
	_, err = r2.Open(context.Background(), session.Spec{ID: "c2", URL: ws.url + "/echo", TLS: spec, Backoff: fastBackoff()}, false)
	require.ErrorIs(t, err, credentials.ErrUnavailable)
	assert.Contains(t, err.Error(), "this service accepts no key material files")
}

// Ensure key material is read again at a reconnect: a rotated client certificate file that
// the server refuses makes the reconnects fail with the described error, and restoring a
// good one lets the session reconnect.
func TestTLSRotationAtReconnect(t *testing.T) {
	ws := newMTLSServer(t)
	dir := t.TempDir()
	spec := tlsFiles(t, dir, ws, ws.ClientCA)
	good, err := os.ReadFile(filepath.Join(dir, "client.pem"))
	require.NoError(t, err)
	goodKey, err := os.ReadFile(filepath.Join(dir, "client-key.pem"))
	require.NoError(t, err)
	r, _ := newRegistry(t, credConfig(&credentials.Source{FileDirs: []string{dir}}))
	s := open(t, r, session.Spec{URL: ws.url + "/echo?cid=rot", TLS: spec, AutoReconnect: true})

	// The server counts a socket once its handler runs, which may be after the client is up.
	require.Eventually(t, func() bool { return ws.Stats("rot").Live == 1 }, waitFor, 5*time.Millisecond)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "client.pem"), []byte("not PEM"), 0o600))
	ws.DropAll()
	require.Eventually(t, func() bool {
		snap := s.Snapshot()
		return snap.Status == session.StatusConnecting &&
			strings.Contains(snap.LastError, `tls.client_certificate (file "`+filepath.Join(dir, "client.pem")+`"): no PEM certificate in it`)
	}, waitFor, 5*time.Millisecond, "last error %q", s.Snapshot().LastError)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "client.pem"), good, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "client-key.pem"), goodKey, 0o600))
	waitStatus(t, s, session.StatusConnected)
	require.Eventually(t, func() bool { return ws.Stats("rot").Handshakes == 2 }, waitFor, 5*time.Millisecond)
}

// Ensure secret headers reach the server's handshake, are read again at a reconnect, and
// that a missing secret fails the dial naming the header, never the value.
func TestSecretHeaders(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	store := credtest.NewSecrets(map[string]map[string]string{"secretstore/api": {"token": "Bearer first"}})
	r, _ := newRegistry(t, credConfig(&credentials.Source{Secrets: store, Allow: secretAllow(t, "secretstore")}))
	refs := map[string]credentials.SecretRef{"Authorization": {Store: "secretstore", Key: "api", Field: "token"}}
	s := open(t, r, session.Spec{URL: ws.URL("/headers?cid=sh"), SecretHeaders: refs, AutoReconnect: true})
	got, err := s.Send(context.Background(), text("who"), waitFor)
	require.NoError(t, err)
	var seen map[string]string
	require.NoError(t, json.Unmarshal(got.Data, &seen))
	assert.Equal(t, "Bearer first", seen["authorization"])

	store.Set("secretstore/api", map[string]string{"token": "Bearer rotated"})
	ws.DropAll()
	require.Eventually(t, func() bool {
		return ws.Stats("sh").Handshakes == 2 && s.Snapshot().Status == session.StatusConnected
	}, waitFor, 5*time.Millisecond)
	assert.Equal(t, "Bearer rotated", ws.Stats("sh").Authorization)

	_, err = r.Open(context.Background(), session.Spec{ID: "c2", URL: ws.URL("/headers"), Backoff: fastBackoff(),
		SecretHeaders: map[string]credentials.SecretRef{"X-Key": {Store: "secretstore", Key: "missing"}}}, false)
	require.ErrorIs(t, err, credentials.ErrUnavailable)
	assert.Equal(t, `handshake failed: secret header X-Key: secret store "secretstore" key "missing": secret not found`, err.Error())
}

// secretAllow is an operator's --secret-allow list the test knows to be valid.
func secretAllow(t *testing.T, entries ...string) credentials.SecretAllow {
	t.Helper()
	a, err := credentials.ParseSecretAllow(entries)
	require.NoError(t, err)
	return a
}
