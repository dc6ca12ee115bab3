package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
)

// maxAuthBytes bounds a proxy credentials file or secret ("user:password").
const maxAuthBytes = 4 << 10

// Dialer is the session's dial function (session.Config.Dial) when egress proxies are
// configured: it dials directly through the SSRF guard, or through one of the proxies.
//
// Through a proxy the guard's decision is made here: the target's name is resolved by our
// resolver, every address it resolves to is checked, and the proxy is asked to CONNECT to
// the checked address, never to the name, so a name that rebinds between our lookup and the
// proxy's cannot reach a denied address. The proxy itself is dialed without the guard: the
// operator chose it, and it may well sit on a private network.
type Dialer struct {
	// Guard dials directly (no proxy, --egress-no-proxy) and lends its policy, resolver and
	// connect timeout to proxied dials.
	Guard *netguard.Dialer
	// Proxies are the configured proxies; the one named "" is the default.
	Proxies []Proxy
	// NoProxy are the hosts dialed directly even when a proxy applies.
	NoProxy NoProxy
	// Secrets reads proxy credentials given as secret references.
	Secrets credentials.SecretStore
	// RootCAs verifies https:// proxies; nil: the system roots (LoadRootCAs adds the
	// operator's --egress-proxy-ca-file to them).
	RootCAs *x509.CertPool
}

// Names returns the names a connection may choose as its egress proxy (the named proxies).
func (d *Dialer) Names() []string {
	var out []string
	for _, p := range d.Proxies {
		if p.Name != "" {
			out = append(out, p.Name)
		}
	}
	return out
}

// DialContext is a NetDialContext for gorilla's websocket.Dialer: addr is the URL's
// host:port, and ctx may carry the connection's proxy choice (WithProxy). gorilla does TLS
// over the returned connection with the URL's host as SNI and sends the URL's host as Host,
// so a tunnel to the checked address still reaches the right virtual host.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := d.route(ctx, host)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return d.Guard.DialContext(ctx, network, addr)
	}
	targets, err := d.checkedAddrs(ctx, host)
	if err != nil {
		return nil, err
	}
	// As a direct dial tries each address, the next one is tried when the proxy could not
	// reach one (502, 503, 504); anything else would fail the same way for every address.
	for i, ip := range targets {
		c, err := d.connect(ctx, p, ip, port)
		var se *statusError
		if err == nil || i == len(targets)-1 || !errors.As(err, &se) || se.code < 502 || se.code > 504 {
			return c, err
		}
	}
	return nil, errors.New("no address") // unreachable: targets is never empty
}

// statusError is a proxy's refusal of a CONNECT.
type statusError struct {
	msg  string
	code int
}

func (e *statusError) Error() string { return e.msg }

// route picks the proxy for host; nil: dial directly.
func (d *Dialer) route(ctx context.Context, host string) (*Proxy, error) {
	name := ProxyFrom(ctx)
	var p *Proxy
	for i := range d.Proxies {
		if d.Proxies[i].Name == name {
			p = &d.Proxies[i]
		}
	}
	switch {
	case p == nil && name != "":
		return nil, fmt.Errorf("egress proxy %q is not configured on this instance (--egress-proxy)", name)
	case p == nil, d.NoProxy.Match(host):
		// The operator's --egress-no-proxy wins over a connection's choice of proxy.
		return nil, nil
	}
	return p, nil
}

// checkedAddrs resolves host and applies the guard to every address it resolves to (as the
// direct dial does to every address it connects to); any denied address refuses the dial.
func (d *Dialer) checkedAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	pol := d.Guard.Policy
	byName, err := pol.CheckHost(host)
	if err != nil {
		return nil, err
	}
	if a, ok := netguard.ParseHostAddr(host); ok {
		return []netip.Addr{netguard.Canonical(a)}, nil // CheckHost has decided on it
	}
	res := d.Guard.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	addrs, err := res.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolving %s: no addresses", host)
	}
	if !byName { // a name on the allow-list is trusted whatever it resolves to, as when direct
		for _, a := range addrs {
			if err := pol.CheckAddr(host, a); err != nil {
				return nil, err
			}
		}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a = netguard.Canonical(a); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// connect dials proxy p and asks it for a tunnel to ip:port.
func (d *Dialer) connect(ctx context.Context, p *Proxy, ip netip.Addr, port string) (net.Conn, error) {
	target := net.JoinHostPort(ip.String(), port)
	auth, err := d.authHeader(ctx, p)
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: d.Guard.Timeout}
	conn, err := nd.DialContext(ctx, "tcp", p.address())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.label(), err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = conn.Close()
		}
	}()
	// The exchange is bounded by ctx: its deadline, and its cancellation closes it at once.
	if dl, has := ctx.Deadline(); has {
		_ = conn.SetDeadline(dl)
	}
	// The closure gets its own copy: conn becomes the TLS connection below, while the
	// closure may run at any moment on another goroutine.
	raw := conn
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if p.URL.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: p.URL.Hostname(), RootCAs: d.RootCAs, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			// %v: a certificate error of the proxy must not be described as the server's.
			return nil, fmt.Errorf("%s: TLS to the proxy failed: %v", p.label(), err)
		}
		conn = tc
	}
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: " + auth + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return nil, fmt.Errorf("%s: sending CONNECT: %w", p.label(), err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	code, err := ReadConnectResponse(br)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			// The deadline set from ctx may fire just before ctx itself reports it.
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return nil, fmt.Errorf("%s: no answer to CONNECT in time: %w", p.label(), cause)
		}
		return nil, fmt.Errorf("%s: %w", p.label(), err)
	}
	// The proxy's reason phrase is never shown: it could echo what we sent (credentials).
	switch {
	case code == 407 && auth == "":
		return nil, fmt.Errorf("%s requires credentials (%s): configure them with --egress-proxy-auth", p.label(), statusText(code))
	case code == 407:
		return nil, fmt.Errorf("%s refused the proxy credentials (%s): check the file or secret --egress-proxy-auth names", p.label(), statusText(code))
	case code < 200 || code > 299:
		return nil, &statusError{code: code, msg: fmt.Sprintf("%s refused the tunnel to %s: %s", p.label(), target, statusText(code))}
	}
	if !stop() { // cancelled just now: the deadline is already in the past
		return nil, fmt.Errorf("%s: %w", p.label(), ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{}) // the WebSocket dialer sets its own from here
	ok = true
	return tunnelConn(conn, br), nil
}

// statusText is "HTTP 403 Forbidden": the code and its standard meaning, if it has one.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("HTTP %d %s", code, t)
	}
	return fmt.Sprintf("HTTP %d", code)
}

// authHeader reads p's credentials now (a rotated file or secret is used from the next dial)
// and returns the Proxy-Authorization value; "" when p has none.
func (d *Dialer) authHeader(ctx context.Context, p *Proxy) (string, error) {
	if p.Auth == nil {
		return "", nil
	}
	var raw string
	switch {
	case p.Auth.File != "":
		b, err := readAuthFile(p.Auth.File)
		if err != nil {
			return "", fmt.Errorf("%s: reading its credentials (--egress-proxy-auth): %w", p.label(), err)
		}
		raw = string(b)
	case p.Auth.Secret != nil:
		v, err := d.secret(ctx, *p.Auth.Secret)
		if err != nil {
			// Not credentials.ErrUnavailable: the caller's Connect is fine, the operator's
			// configuration is not, so the dial fails as UNAVAILABLE.
			return "", fmt.Errorf("%s: reading its credentials (--egress-proxy-auth): %v", p.label(), err)
		}
		raw = v
	}
	raw = strings.TrimSpace(raw)
	if len(raw) > maxAuthBytes {
		return "", fmt.Errorf("%s: its credentials are larger than %d bytes", p.label(), maxAuthBytes)
	}
	user, _, found := strings.Cut(raw, ":")
	if !found || user == "" || strings.ContainsAny(raw, "\r\n") {
		return "", fmt.Errorf("%s: its credentials (--egress-proxy-auth) must be one line user:password", p.label())
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw)), nil
}

// readAuthFile reads a credentials file of at most maxAuthBytes. O_NONBLOCK: a FIFO (or a
// device) put at the path must not block every dial; anything but a regular file is refused.
func readAuthFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAuthBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxAuthBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxAuthBytes)
	}
	return b, nil
}

// secret reads ref's value, picked from the secret as credentials.Field does.
func (d *Dialer) secret(ctx context.Context, ref credentials.SecretRef) (string, error) {
	if d.Secrets == nil {
		return "", errors.New("no secret store is available")
	}
	m, err := d.Secrets.GetSecret(ctx, ref.Store, ref.Key)
	if err != nil {
		return "", err
	}
	v, err := credentials.Field(m, ref)
	if err != nil {
		return "", fmt.Errorf("secret %q in store %q: %w", ref.Key, ref.Store, err)
	}
	return v, nil
}
