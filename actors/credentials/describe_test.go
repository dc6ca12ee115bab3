package credentials_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/credentials/credtest"
)

// tlsEcho starts a real wss:// echo server with cfg (its certificate and client auth).
func tlsEcho(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, data); err != nil {
				return
			}
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point here
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return "wss://" + srv.Listener.Addr().String() + "/"
}

// dialWith dials url with the configuration TLSConfig builds from spec (inline material), and
// checks the echo when the dial succeeds.
func dialWith(t *testing.T, url string, spec *credentials.TLS) error {
	t.Helper()
	src := &credentials.Source{AllowInline: true}
	require.NoError(t, src.Validate(nil, nil, spec, true))
	cfg, err := src.TLSConfig(context.Background(), spec)
	require.NoError(t, err)
	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return err
	}
	defer c.Close()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("ping")))
	_, got, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "ping", string(got))
	return nil
}

func inline(b []byte) *credentials.Material { return &credentials.Material{InlinePEM: string(b)} }

// Ensure real TLS handshakes through a gorilla Dialer succeed with the right material and
// that each kind of failure is described in a sentence saying what to do.
func TestDescribeTLSErrorHandshakes(t *testing.T) {
	serverCA, clientCA, otherCA := credtest.NewCA(t, "server CA"), credtest.NewCA(t, "client CA"), credtest.NewCA(t, "other CA")
	loop := []net.IP{net.IPv4(127, 0, 0, 1)}
	_, _, serverCert := serverCA.Issue(t, credtest.Leaf{DNSNames: []string{"localhost"}, IPs: loop})
	_, _, misnamed := serverCA.Issue(t, credtest.Leaf{DNSNames: []string{"other.example"}})
	_, _, expired := serverCA.Issue(t, credtest.Leaf{IPs: loop, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	_, _, early := serverCA.Issue(t, credtest.Leaf{IPs: loop, NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(2 * time.Hour)})
	clientCert, clientKey, _ := clientCA.Issue(t, credtest.Leaf{Client: true, DNSNames: []string{"wsm"}})
	strangerCert, strangerKey, _ := otherCA.Issue(t, credtest.Leaf{Client: true, DNSNames: []string{"wsm"}})
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCA.Cert)

	server := func(cert tls.Certificate, minV, maxV uint16) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs,
			MinVersion: minV, MaxVersion: maxV}
	}
	// unnamed verifies client certificates itself, so its CertificateRequest names no authority.
	unnamed := func(c *tls.Config) *tls.Config {
		c.ClientAuth, c.ClientCAs = tls.RequireAnyClientCert, nil
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: clientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			return err
		}
		return c
	}
	good := func(mut func(*credentials.TLS)) *credentials.TLS {
		s := &credentials.TLS{CA: inline(serverCA.PEM), CAOnly: true, ClientCert: inline(clientCert), ClientKey: inline(clientKey)}
		if mut != nil {
			mut(s)
		}
		return s
	}
	tests := []struct {
		name   string
		server *tls.Config
		client *credentials.TLS
		want   string // "" = the dial succeeds
	}{
		{name: "right certificate", server: server(serverCert, 0, 0), client: good(nil)},
		{name: "CA added to the system roots", server: server(serverCert, 0, 0), client: good(func(s *credentials.TLS) { s.CAOnly = false })},
		{name: "TLS 1.3 server, minimum 1.2", server: server(serverCert, tls.VersionTLS13, 0), client: good(nil)},
		{name: "TLS 1.2 server, minimum 1.2", server: server(serverCert, 0, tls.VersionTLS12), client: good(func(s *credentials.TLS) { s.MinVersion = "1.2" })},
		{name: "server name set", server: server(misnamed, 0, 0), client: good(func(s *credentials.TLS) { s.ServerName = "other.example" })},
		{name: "TLS 1.2 server, minimum 1.3", server: server(serverCert, 0, tls.VersionTLS12), client: good(func(s *credentials.TLS) { s.MinVersion = "1.3" }),
			want: "have no TLS version in common (server said: protocol version not supported): check tls.min_version"},
		// The server names the authorities it accepts, so a certificate of another one is not sent.
		{name: "client certificate of another CA", server: server(serverCert, 0, 0),
			client: good(func(s *credentials.TLS) { s.ClientCert, s.ClientKey = inline(strangerCert), inline(strangerKey) }),
			want:   "requires a TLS client certificate and was sent none it accepts (server said: certificate required): give one issued by an authority the server trusts in tls.client_certificate and tls.client_key"},
		{name: "client certificate of another CA, TLS 1.2", server: server(serverCert, 0, tls.VersionTLS12),
			client: good(func(s *credentials.TLS) { s.ClientCert, s.ClientKey = inline(strangerCert), inline(strangerKey) }),
			want:   "refused the TLS handshake (server said: handshake failure): it may require a client certificate it trusts (tls.client_certificate and tls.client_key)"},
		// A server that names no authorities gets the certificate, and refuses it.
		{name: "client certificate refused", server: unnamed(server(serverCert, 0, 0)),
			client: good(func(s *credentials.TLS) { s.ClientCert, s.ClientKey = inline(strangerCert), inline(strangerKey) }),
			want:   "refused the TLS client certificate, or requires one and none was given (server said: bad certificate): give a certificate it trusts in tls.client_certificate and tls.client_key"},
		{name: "client certificate refused, TLS 1.2", server: unnamed(server(serverCert, 0, tls.VersionTLS12)),
			client: good(func(s *credentials.TLS) { s.ClientCert, s.ClientKey = inline(strangerCert), inline(strangerKey) }),
			want:   "refused the TLS client certificate"},
		{name: "no client certificate", server: server(serverCert, 0, 0), client: good(func(s *credentials.TLS) { s.ClientCert, s.ClientKey = nil, nil }),
			want: "requires a TLS client certificate and was sent none it accepts"},
		{name: "no client certificate, TLS 1.2", server: server(serverCert, 0, tls.VersionTLS12), client: good(func(s *credentials.TLS) { s.ClientCert, s.ClientKey = nil, nil }),
			want: "it may require a client certificate it trusts"},
		{name: "untrusted server", server: server(serverCert, 0, 0), client: good(func(s *credentials.TLS) { s.CA = nil; s.CAOnly = false }),
			want: `is signed by an authority this service does not trust (issuer "server CA"): give that authority's certificate in tls.ca`},
		{name: "server of another CA", server: server(serverCert, 0, 0), client: good(func(s *credentials.TLS) { s.CA = inline(otherCA.PEM) }),
			want: `signed by an authority this service does not trust (issuer "server CA")`},
		{name: "name mismatch", server: server(misnamed, 0, 0), client: good(nil),
			want: `the TLS certificate of the server is not valid for the name "127.0.0.1" (it is for other.example): set tls.server_name to one of its names`},
		{name: "expired server certificate", server: server(expired, 0, 0), client: good(nil),
			want: "the TLS certificate of 127.0.0.1 expired on " + expired.Leaf.NotAfter.UTC().Format(time.RFC3339) + ": the server's operator must renew it"},
		{name: "server certificate not yet valid", server: server(early, 0, 0), client: good(nil),
			want: "is not valid before " + early.Leaf.NotBefore.UTC().Format(time.RFC3339) + ": check the clocks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tlsEcho(t, tc.server)
			err := dialWith(t, url, tc.client)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			msg, ok := credentials.DescribeTLSError(err, "127.0.0.1")
			require.True(t, ok, "not recognised as a TLS failure: %v", err)
			assert.Contains(t, msg, tc.want, "from %v", err)
		})
	}
}

// Ensure a server that does not speak TLS is described, and errors that are not TLS failures
// are left to the caller.
func TestDescribeTLSErrorNotTLS(t *testing.T) {
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}, HandshakeTimeout: 10 * time.Second}
	_, resp, err := d.Dial("wss://"+plain.Listener.Addr().String()+"/", nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	msg, ok := credentials.DescribeTLSError(err, "127.0.0.1")
	require.True(t, ok, "%v", err)
	assert.Contains(t, msg, "the server at 127.0.0.1 does not speak TLS")

	// A closed port: not a TLS failure.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, resp, err = d.Dial("wss://"+addr+"/", nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	_, ok = credentials.DescribeTLSError(err, "127.0.0.1")
	assert.False(t, ok, "%v", err)

	for _, e := range []error{nil, context.DeadlineExceeded, errors.New("websocket: bad handshake"), io.EOF} {
		_, ok := credentials.DescribeTLSError(e, "h")
		assert.False(t, ok, "%v", e)
	}
}
