package egress_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/websocketmanager/websocketmanager/actors/credentials/credtest"
	"github.com/websocketmanager/websocketmanager/actors/egress"
	"github.com/websocketmanager/websocketmanager/actors/egress/egresstest"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// deniedIP is a loopback address the tests' policy denies (the rest of 127.0.0.0/8 is allowed).
const deniedIP = "127.0.0.2"

func testPolicy(t *testing.T) netguard.Policy {
	t.Helper()
	p, err := netguard.NewPolicy([]string{"127.0.0.0/8"}, []string{deniedIP})
	require.NoError(t, err)
	return p
}

// echoServer is a TCP server on addr that echoes; it counts the connections it accepted.
func echoServer(t *testing.T, addr string) (port string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func mustProxies(t *testing.T, entries ...string) []egress.Proxy {
	t.Helper()
	ps, err := egress.ParseProxies(entries)
	require.NoError(t, err)
	return ps
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echoOnce writes and reads back through c.
func echoOnce(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write([]byte("ping"))
	require.NoError(t, err)
	b := make([]byte, 4)
	_, err = io.ReadFull(c, b)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(b))
}

// Ensure a wss:// handshake through the proxy keeps the URL's host for SNI and Host while the
// proxy is asked to CONNECT to the address we resolved and checked, never to the name.
func TestWebSocketThroughProxy(t *testing.T) {
	var mu sync.Mutex
	var gotHost, gotSNI string
	up := websocket.Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotHost, gotSNI = r.Host, r.TLS.ServerName
		mu.Unlock()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			_ = c.WriteMessage(mt, m)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	// httptest's certificate is for example.com; our resolver says it is 127.0.0.1.
	_, res := startDNS(t, func(name string, _ int) []netip.Addr {
		if name == "example.com." {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	proxy := egresstest.Start(t)
	d := &egress.Dialer{Guard: &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second, Resolver: res},
		Proxies: mustProxies(t, proxy.URL)}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	wd := websocket.Dialer{NetDialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := wd.DialContext(ctxT(t), "wss://example.com:"+port+"/echo", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	defer c.Close()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("hello")))
	_, m, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "hello", string(m))
	assert.Equal(t, []string{"127.0.0.1:" + port}, proxy.Targets(), "the checked address, not the name")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, "example.com:"+port, gotHost)
	assert.Equal(t, "example.com", gotSNI)
}

// Ensure a name that rebinds between an allowed and a denied address never gets the proxy
// to tunnel to the denied one: each dial is either tunnelled to the allowed address or
// refused by the guard, and the proxy never sees the name. A name resolving to both is refused.
func TestRebindingNameThroughProxy(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.1:0")
	_, res := startDNS(t, func(name string, n int) []netip.Addr {
		switch name {
		case "rebind.test.":
			if n%2 == 1 {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
			}
			return []netip.Addr{netip.MustParseAddr(deniedIP)}
		case "both.test.":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr(deniedIP)}
		}
		return nil
	})
	proxy := egresstest.Start(t)
	d := &egress.Dialer{Guard: &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second, Resolver: res},
		Proxies: mustProxies(t, proxy.URL)}
	ok, denied := 0, 0
	for range 10 {
		c, err := d.DialContext(ctxT(t), "tcp", net.JoinHostPort("rebind.test", port))
		if err != nil {
			var de *netguard.DeniedError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, deniedIP, de.Addr)
			denied++
			continue
		}
		echoOnce(t, c)
		_ = c.Close()
		ok++
	}
	assert.Positive(t, ok)
	assert.Positive(t, denied)
	_, err := d.DialContext(ctxT(t), "tcp", net.JoinHostPort("both.test", port))
	assert.True(t, netguard.IsDenied(err), "%v", err)
	for _, target := range proxy.Targets() {
		assert.Equal(t, "127.0.0.1:"+port, target, "only ever the allowed address")
	}
	assert.Len(t, proxy.Targets(), ok)
}

// Ensure denied targets are refused before the proxy is contacted, with the guard's error.
func TestDeniedTargetNeverReachesProxy(t *testing.T) {
	proxy := egresstest.Start(t)
	_, res := startDNS(t, func(string, int) []netip.Addr { return nil })
	pol := testPolicy(t)
	pol.Deny, _ = netguard.ParseRules([]string{deniedIP, "blocked.example"})
	d := &egress.Dialer{Guard: &netguard.Dialer{Policy: pol, Timeout: time.Second, Resolver: res}, Proxies: mustProxies(t, proxy.URL)}
	for _, addr := range []string{deniedIP + ":80", "[::ffff:127.0.0.2]:80", "0x7f000002:80", "blocked.example:443", "169.254.169.254:80"} {
		t.Run(addr, func(t *testing.T) {
			_, err := d.DialContext(ctxT(t), "tcp", addr)
			assert.True(t, netguard.IsDenied(err), "%v", err)
		})
	}
	assert.Empty(t, proxy.Requests())
}

// Ensure the routing: --egress-no-proxy hosts and no default proxy go direct (through the
// guard); a connection's named proxy is used; an unknown name is an error.
func TestRouting(t *testing.T) {
	port, accepted := echoServer(t, "127.0.0.1:0")
	def, named := egresstest.Start(t), egresstest.Start(t)
	noProxy, err := egress.ParseNoProxy([]string{"direct.test", "127.0.0.3"})
	require.NoError(t, err)
	_, res := startDNS(t, func(name string, _ int) []netip.Addr {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	})
	guard := &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second, Resolver: res}
	withDefault := &egress.Dialer{Guard: guard, Proxies: mustProxies(t, def.URL, "corp="+named.URL), NoProxy: noProxy}
	namedOnly := &egress.Dialer{Guard: guard, Proxies: mustProxies(t, "corp="+named.URL)}
	corp := egress.WithProxy(context.Background(), "corp")
	tests := []struct {
		name       string
		d          *egress.Dialer
		ctx        context.Context
		host       string
		via        *egresstest.Proxy // nil: direct
		wantErr    string
		wantDenied bool
	}{
		{"default proxy", withDefault, context.Background(), "any.test", def, "", false},
		{"named proxy", withDefault, corp, "any.test", named, "", false},
		{"no-proxy host", withDefault, context.Background(), "direct.test", nil, "", false},
		{"no-proxy wins over a named proxy", withDefault, corp, "direct.test", nil, "", false},
		{"no-proxy address", withDefault, corp, "127.0.0.1", named, "", false},
		{"no default, no name: direct", namedOnly, context.Background(), "any.test", nil, "", false},
		{"unknown name", withDefault, egress.WithProxy(context.Background(), "nope"), "any.test", nil, `egress proxy "nope" is not configured`, false},
		{"direct still guarded", withDefault, context.Background(), deniedIP, nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := [2]int{len(def.Requests()), len(named.Requests())}
			direct := accepted()
			ctx, cancel := context.WithTimeout(tc.ctx, 10*time.Second)
			defer cancel()
			c, err := tc.d.DialContext(ctx, "tcp", net.JoinHostPort(tc.host, port))
			switch {
			case tc.wantDenied:
				assert.True(t, netguard.IsDenied(err), "%v", err)
			case tc.wantErr != "":
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
			default:
				require.NoError(t, err)
				echoOnce(t, c)
				_ = c.Close()
			}
			after := [2]int{len(def.Requests()), len(named.Requests())}
			switch tc.via {
			case def:
				assert.Equal(t, [2]int{before[0] + 1, before[1]}, after)
			case named:
				assert.Equal(t, [2]int{before[0], before[1] + 1}, after)
			default:
				assert.Equal(t, before, after, "no proxy is asked")
				if tc.wantErr == "" && !tc.wantDenied {
					assert.Equal(t, direct+1, accepted(), "dialed directly")
				}
			}
		})
	}
}

func basic(up string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(up)) }

// Ensure proxy credentials are read at every CONNECT (a rotated file or secret is used on
// the next dial), and a 407 is explained without showing them.
func TestProxyCredentials(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.1:0")
	proxy := egresstest.Start(t, egresstest.RequireAuth("alice:s3cret"))
	guard := &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second}
	file := filepath.Join(t.TempDir(), "proxy-auth")
	require.NoError(t, os.WriteFile(file, []byte("alice:s3cret\n"), 0o600))
	dial := func(d *egress.Dialer) error {
		c, err := d.DialContext(ctxT(t), "tcp", "127.0.0.1:"+port)
		if err == nil {
			echoOnce(t, c)
			_ = c.Close()
		}
		return err
	}
	withAuth := func(ref string) *egress.Dialer {
		auth, err := egress.ParseAuth([]string{ref})
		require.NoError(t, err)
		ps, err := egress.WithAuth(mustProxies(t, proxy.URL), auth)
		require.NoError(t, err)
		return &egress.Dialer{Guard: guard, Proxies: ps, Secrets: credtest.NewSecrets(nil)}
	}

	d := withAuth("file:" + file)
	require.NoError(t, dial(d))
	require.NoError(t, os.WriteFile(file, []byte("alice:rotated"), 0o600))
	err := dial(d)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused the proxy credentials (HTTP 407")
	assert.NotContains(t, err.Error(), "rotated")
	assert.Equal(t, []string{basic("alice:s3cret"), basic("alice:rotated")}, auths(proxy))

	err = dial(&egress.Dialer{Guard: guard, Proxies: mustProxies(t, proxy.URL)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "requires credentials (HTTP 407")
	assert.Contains(t, err.Error(), proxy.Addr, "names the proxy")

	d = withAuth("secret:vault/proxy/password")
	secrets := d.Secrets.(*credtest.Secrets)
	err = dial(d)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reading its credentials")
	secrets.Set("vault/proxy", map[string]string{"password": "alice:s3cret", "other": "x"})
	require.NoError(t, dial(d))

	big := filepath.Join(t.TempDir(), "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("a", 5000)+":b"), 0o600))
	err = dial(withAuth("file:" + big))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")
}

func auths(p *egresstest.Proxy) []string {
	var out []string
	for _, r := range p.Requests() {
		out = append(out, r.Auth)
	}
	return out
}

// Ensure an https:// proxy is spoken to over TLS, verified against the given roots.
func TestHTTPSProxy(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.1:0")
	// httptest's certificate covers 127.0.0.1.
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS()
	cfg := &tls.Config{Certificates: cert.TLS.Certificates}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Certificate())
	cert.Close()
	proxy := egresstest.Start(t, egresstest.WithTLS(cfg))
	require.True(t, strings.HasPrefix(proxy.URL, "https://"))
	guard := &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second}
	d := &egress.Dialer{Guard: guard, Proxies: mustProxies(t, proxy.URL), RootCAs: roots}
	c, err := d.DialContext(ctxT(t), "tcp", "127.0.0.1:"+port)
	require.NoError(t, err)
	echoOnce(t, c)
	_ = c.Close()
	assert.Equal(t, []string{"127.0.0.1:" + port}, proxy.Targets())

	// Without the roots the proxy's certificate is not trusted.
	d.RootCAs = nil
	_, err = d.DialContext(ctxT(t), "tcp", "127.0.0.1:"+port)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLS to the proxy failed")
}

// Ensure a refusing proxy is named with its status, and bytes the proxy sent right after its
// answer are the tunnel's first bytes.
func TestProxyAnswers(t *testing.T) {
	guard := &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second}
	// The reason phrase is the proxy's to write, and could echo our credentials: never shown.
	refusing := egresstest.Start(t, egresstest.Respond("HTTP/1.1 403 Basic YWxpY2U6czNjcmV0\r\nContent-Length: 0\r\n\r\n"))
	d := &egress.Dialer{Guard: guard, Proxies: mustProxies(t, "corp="+refusing.URL)}
	_, err := d.DialContext(egress.WithProxy(ctxT(t), "corp"), "tcp", "127.0.0.1:9")
	require.Error(t, err)
	assert.Equal(t, `egress proxy "corp" (`+refusing.Addr+`) refused the tunnel to 127.0.0.1:9: HTTP 403 Forbidden`, err.Error())
	odd := egresstest.Start(t, egresstest.Respond("HTTP/1.1 599 user:password\r\n\r\n"))
	d = &egress.Dialer{Guard: guard, Proxies: mustProxies(t, odd.URL)}
	_, err = d.DialContext(ctxT(t), "tcp", "127.0.0.1:9")
	require.Error(t, err)
	assert.Equal(t, `the default egress proxy (`+odd.Addr+`) refused the tunnel to 127.0.0.1:9: HTTP 599`, err.Error())

	eager := egresstest.Start(t, egresstest.Respond("HTTP/1.0 200 OK\r\nX-A: b\r\n\r\nfirst bytes"))
	d = &egress.Dialer{Guard: guard, Proxies: mustProxies(t, eager.URL)}
	c, err := d.DialContext(ctxT(t), "tcp", "127.0.0.1:9")
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	assert.Equal(t, "first bytes", string(b))
}

// Ensure a hostile proxy cannot hold a dial beyond its context nor make us buffer an endless
// header.
func TestHostileProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func(c net.Conn, endless bool) {
				defer wg.Done()
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				if endless { // header lines forever
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
					for {
						if _, err := io.WriteString(c, "X-Junk: "+strings.Repeat("j", 100)+"\r\n"); err != nil {
							return
						}
					}
				}
				_, _ = io.Copy(io.Discard, c) // silent until the client gives up
			}(c, i == 0)
		}
	}()
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	d := &egress.Dialer{Guard: &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second},
		Proxies: mustProxies(t, "http://"+l.Addr().String())}
	_, err = d.DialContext(ctxT(t), "tcp", "127.0.0.1:9")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = d.DialContext(ctx, "tcp", "127.0.0.1:9")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// Ensure that, as a direct dial does, the next checked address is tried when the proxy could
// not reach one (HTTP 502).
func TestNextAddressAfterBadGateway(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.1:0")
	_, res := startDNS(t, func(name string, _ int) []netip.Addr {
		return []netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.1")}
	})
	proxy := egresstest.Start(t)
	d := &egress.Dialer{Guard: &netguard.Dialer{Policy: testPolicy(t), Timeout: 5 * time.Second, Resolver: res},
		Proxies: mustProxies(t, proxy.URL)}
	c, err := d.DialContext(ctxT(t), "tcp", net.JoinHostPort("two.test", port))
	require.NoError(t, err)
	echoOnce(t, c)
	_ = c.Close()
	assert.Equal(t, []string{"127.0.0.3:" + port, "127.0.0.1:" + port}, proxy.Targets())
}
