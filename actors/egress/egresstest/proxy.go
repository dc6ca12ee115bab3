// Package egresstest is a real HTTP CONNECT proxy for tests: it listens on 127.0.0.1, tunnels
// CONNECT requests by dialing their target, and records every target and Proxy-Authorization
// it saw. It can require credentials and be served over TLS (an https:// proxy).
package egresstest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Request is one CONNECT the proxy received.
type Request struct {
	Target string // the request target (host:port)
	Auth   string // the Proxy-Authorization header, as sent
}

// Proxy is a running CONNECT proxy.
type Proxy struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string
	// URL is http://Addr, or https://Addr when served over TLS.
	URL string

	l    net.Listener
	mu   sync.Mutex
	reqs []Request
	user string // "user:password" required; "" = none
	// respond, when set, answers a CONNECT instead of tunnelling (raw bytes written as is).
	respond string
	wg      sync.WaitGroup
}

// Option configures a proxy.
type Option func(*Proxy, *config)

type config struct{ tls *tls.Config }

// RequireAuth makes the proxy answer 407 unless Proxy-Authorization is Basic user:password.
func RequireAuth(userPassword string) Option {
	return func(p *Proxy, _ *config) { p.user = userPassword }
}

// WithTLS serves the proxy over TLS with cfg (an https:// proxy).
func WithTLS(cfg *tls.Config) Option {
	return func(_ *Proxy, c *config) { c.tls = cfg }
}

// Respond makes the proxy answer every CONNECT with raw (e.g. "HTTP/1.1 403 Forbidden\r\n\r\n")
// and close, without dialing.
func Respond(raw string) Option {
	return func(p *Proxy, _ *config) { p.respond = raw }
}

// Start starts a proxy on 127.0.0.1; it stops when the test ends.
func Start(tb testing.TB, opts ...Option) *Proxy {
	tb.Helper()
	p := &Proxy{}
	var c config
	for _, o := range opts {
		o(p, &c)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.Addr, p.URL = l.Addr().String(), "http://"+l.Addr().String()
	if c.tls != nil {
		l = tls.NewListener(l, c.tls)
		p.URL = "https://" + p.Addr
	}
	p.l = l
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.Close)
	return p
}

// Close stops the proxy and waits for its tunnels to end.
func (p *Proxy) Close() {
	_ = p.l.Close()
	p.wg.Wait()
}

// SetAuth changes the credentials the proxy requires ("" = none), as an operator rotating
// them would.
func (p *Proxy) SetAuth(userPassword string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = userPassword
}

// Requests returns every CONNECT received so far.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs...)
}

// Targets returns the targets of every CONNECT received so far.
func (p *Proxy) Targets() []string {
	var out []string
	for _, r := range p.Requests() {
		out = append(out, r.Target)
	}
	return out
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	closed := false
	defer func() { // a closed proxy ends its tunnels too
		mu.Lock()
		closed = true
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		open[c] = true
		mu.Unlock()
		conns.Add(1)
		go func() {
			defer conns.Done()
			p.handle(c, func(up net.Conn) {
				mu.Lock()
				if closed {
					_ = up.Close()
				}
				open[up] = true
				mu.Unlock()
			})
			mu.Lock()
			delete(open, c)
			mu.Unlock()
		}()
	}
}

func (p *Proxy) handle(c net.Conn, track func(net.Conn)) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	auth := req.Header.Get("Proxy-Authorization")
	p.mu.Lock()
	p.reqs = append(p.reqs, Request{Target: req.RequestURI, Auth: auth})
	user := p.user
	p.mu.Unlock()
	switch {
	case req.Method != http.MethodConnect:
		_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	case p.respond != "":
		_, _ = io.WriteString(c, p.respond)
		return
	case user != "" && auth != "Basic "+base64.StdEncoding.EncodeToString([]byte(user)):
		_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\r\n")
		return
	}
	up, err := net.DialTimeout("tcp", req.RequestURI, 5*time.Second)
	if err != nil {
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	track(up)
	defer up.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		// What the client sent along with CONNECT is in br.
		_, _ = io.Copy(up, br)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(c, up)
	_ = c.Close()
	<-done
}
