package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/egress"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
)

// socket is one WebSocket of a session; a reconnect makes a new one.
type socket struct {
	conn     *websocket.Conn
	dead     chan struct{} // closed when the socket is finished
	readDone chan struct{} // closed when the reader returned
	once     sync.Once
	up       time.Time
	// compressed: permessage-deflate was negotiated (see readFrame).
	compressed bool
}

func (k *socket) kill() {
	k.once.Do(func() {
		close(k.dead)
		_ = k.conn.Close()
	})
}

// dial performs the handshake and sends the on-connect messages.
func (s *Session) dial(ctx context.Context) (*socket, string, error) {
	d := websocket.Dialer{
		HandshakeTimeout: s.cfg.HandshakeTimeout,
		Subprotocols:     s.spec.Subprotocols,
		ReadBufferSize:   s.cfg.ReadBufferSize,
		WriteBufferSize:  s.cfg.WriteBufferSize,
		WriteBufferPool:  s.writePool,
		NetDialContext:   s.cfg.Dial,
		// Only "no context takeover" is offered; a server that insists on more fails the dial.
		EnableCompression: s.spec.PermessageDeflate,
		// No Proxy: a proxy from the environment would dial on our behalf, past the guard.
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	target, header := dialTarget(s.spec.URL, s.spec.Headers)
	// Secrets and key material are read now, at every dial, and live only in this dial.
	if err := s.resolveCredentials(dctx, &d, header); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrDial, err)
	}
	dctx = egress.WithProxy(dctx, s.spec.EgressProxy)
	conn, resp, err := d.DialContext(dctx, target, header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		switch {
		case isCompressionRefusal(err):
			return nil, "", fmt.Errorf("%w: %w", ErrDial, errCompressionParams)
		case resp != nil:
			return nil, "", fmt.Errorf("%w: the server answered the upgrade with HTTP %d", ErrDial, resp.StatusCode)
		case netguard.IsDenied(err):
			return nil, "", fmt.Errorf("%w: %w", ErrDial, err)
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return nil, "", fmt.Errorf("%w: no answer within the handshake timeout of %v", ErrDial, s.cfg.HandshakeTimeout)
		}
		if msg, ok := credentials.DescribeTLSError(err, tlsHost(target, s.spec.TLS)); ok {
			return nil, "", fmt.Errorf("%w: %s", ErrDial, msg)
		}
		return nil, "", fmt.Errorf("%w: %s", ErrDial, redactErr(err, s.spec.URL, s.redacted))
	}
	conn.SetReadLimit(s.cfg.ReadLimit)
	for i, m := range s.spec.OnConnect {
		if err := s.throttleOnConnect(ctx); err != nil {
			_ = conn.Close()
			return nil, "", fmt.Errorf("%w: on-connect message %d: waiting for the send rate: %v", ErrDial, i+1, err)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := conn.WriteMessage(frameType(m.Binary), m.Data); err != nil {
			_ = conn.Close()
			return nil, "", fmt.Errorf("%w: on-connect message %d: %v", ErrDial, i+1, err)
		}
		s.cfg.Metrics.FrameOut(m.Binary, len(m.Data))
	}
	return &socket{conn: conn, dead: make(chan struct{}), readDone: make(chan struct{}), up: time.Now(),
		compressed: s.spec.PermessageDeflate && negotiatedDeflate(resp)}, conn.Subprotocol(), nil
}

// resolveCredentials adds the secret headers to header and sets d's TLS configuration.
func (s *Session) resolveCredentials(ctx context.Context, d *websocket.Dialer, header http.Header) error {
	if len(s.spec.SecretHeaders) == 0 && s.spec.TLS == nil {
		return nil
	}
	src := s.cfg.Credentials
	if src == nil {
		src = &credentials.Source{}
	}
	if len(s.spec.SecretHeaders) > 0 {
		h, err := src.Headers(ctx, s.spec.SecretHeaders)
		if err != nil {
			return err
		}
		for k, v := range h {
			header[k] = v
		}
	}
	tc, err := src.TLSConfig(ctx, s.spec.TLS)
	if err != nil {
		return err
	}
	d.TLSClientConfig = tc
	return nil
}

// tlsHost is the name the server's certificate is checked against.
func tlsHost(target string, t *credentials.TLS) string {
	if t != nil && t.ServerName != "" {
		return t.ServerName
	}
	if u, err := url.Parse(target); err == nil {
		return u.Hostname()
	}
	return ""
}

// dialTarget moves URL credentials (ws://user:pass@host), which the WebSocket handshake does not
// carry, into a Basic Authorization header, unless the caller set an Authorization header.
func dialTarget(raw string, h http.Header) (string, http.Header) {
	header := h.Clone()
	if header == nil {
		header = http.Header{}
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw, header
	}
	if header.Get("Authorization") == "" {
		pass, _ := u.User.Password()
		req := http.Request{Header: header}
		req.SetBasicAuth(u.User.Username(), pass)
	}
	u.User = nil
	return u.String(), header
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redactErr keeps URL credentials out of error texts that quote the URL.
func redactErr(err error, raw, redacted string) string {
	msg := err.Error()
	if raw != redacted && raw != "" {
		msg = strings.ReplaceAll(msg, raw, redacted)
	}
	return msg
}

func frameType(binary bool) int {
	if binary {
		return websocket.BinaryMessage
	}
	return websocket.TextMessage
}

// start makes sock current, marks the session CONNECTED and starts the supervisor.
func (s *Session) start(sock *socket, subprotocol string) {
	s.mu.Lock()
	s.sock = sock
	s.subprotocol = subprotocol
	s.connectedSince = sock.up.UTC()
	s.setStatus(StatusConnected, "", s.spec.Reason, 0)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.supervise(sock)
}

// startRetrying starts the session without a socket: the supervisor dials with backoff.
func (s *Session) startRetrying(firstErr error) {
	s.mu.Lock()
	s.setStatus(StatusConnecting, firstErr.Error(), strings.TrimPrefix(s.spec.Reason+"; reconnecting", "; "), 1)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.supervise(nil)
}

// supervise runs one socket after another: it serves the current socket until it ends, then
// either re-dials with backoff or settles in DISCONNECTED/ERROR. Only one socket exists at a
// time: a new dial starts only after the previous socket's reader and writer have returned.
func (s *Session) supervise(sock *socket) {
	defer s.wg.Done()
	attempt := 0 // attempts since the last stable connection
	if sock == nil {
		attempt = 1 // startRetrying: the first attempt already failed
	}
	for {
		if sock != nil {
			cause, clean := s.serve(sock)
			s.mu.Lock()
			if s.ctx.Err() != nil { // closed: close() already set the status
				s.mu.Unlock()
				return
			}
			s.failWaiters()
			if !s.spec.AutoReconnect {
				st := StatusError
				if clean {
					st = StatusDisconnected
				}
				s.setStatus(st, cause, "connection ended", 0)
				s.endedLocked()
				s.mu.Unlock()
				return
			}
			if time.Since(sock.up) >= s.spec.Backoff.StableAfter {
				attempt = 0
			}
			s.setStatus(StatusConnecting, cause, "reconnecting", attempt+1)
			s.mu.Unlock()
			sock = nil
		}
		for sock == nil {
			attempt++
			if s.spec.Backoff.Exhausted(attempt) {
				s.mu.Lock()
				s.setStatus(StatusError, fmt.Sprintf("gave up after %d reconnect attempts; last error: %s", attempt-1, s.lastErr), "reconnect attempts exhausted", attempt-1)
				s.endedLocked()
				s.mu.Unlock()
				return
			}
			t := time.NewTimer(s.spec.Backoff.Delay(attempt, nil))
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			next, sub, err := s.dial(s.ctx)
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				s.mu.Lock()
				if credentials.IsCredentialError(err) {
					// A secret or key material that is missing is something an operator fixes:
					// say so in an event at each attempt, not only in last_error.
					s.setStatus(StatusConnecting, err.Error(), "reconnect failed: a secret or key material is unavailable or unusable", attempt)
				} else {
					s.lastErr = err.Error()
				}
				s.mu.Unlock()
				s.log.Info("reconnect failed", zap.Int("attempt", attempt), zap.Error(err))
				continue
			}
			s.mu.Lock()
			if s.ctx.Err() != nil { // closed while dialing: never keep the socket
				s.mu.Unlock()
				_ = next.conn.Close()
				return
			}
			s.sock = next
			s.subprotocol = sub
			s.reconnects++
			s.cfg.Metrics.Reconnect()
			s.connectedSince = next.up.UTC()
			s.setStatus(StatusConnected, "", "reconnected", attempt)
			s.mu.Unlock()
			sock = next
		}
	}
}

// serve reads sock (in the supervisor's goroutine: one goroutine per connection) until the
// socket ends, and reports why and whether the server closed it cleanly (close frame 1000 or
// 1001). Writers are the callers of Send/SendRaw; pings come from the registry's pinger.
func (s *Session) serve(sock *socket) (cause string, clean bool) {
	readErr := s.read(sock)
	close(sock.readDone)
	sock.kill()
	// No write may be in progress on the dead socket when the supervisor moves on.
	s.writeMu.Lock()
	s.writeMu.Unlock() //nolint:staticcheck // an empty critical section is the point: wait for the writer

	var ce *websocket.CloseError
	if errors.As(readErr, &ce) {
		clean = ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway
		return fmt.Sprintf("the server closed the connection (code %d%s)", ce.Code, textSuffix(ce.Text)), clean
	}
	if readErr == nil {
		return "connection ended", false
	}
	return readErr.Error(), false
}

func textSuffix(t string) string {
	if t == "" {
		return ""
	}
	return ": " + t
}

// errIdle and errPong explain a read deadline that passed.
var (
	errIdle = errors.New("idle watchdog: no inbound frame within the idle timeout")
	errPong = errors.New("keepalive: no pong or other frame within the pong timeout")
)

// read is the only reader of sock.
func (s *Session) read(sock *socket) error {
	keep := s.cfg.PingInterval + s.cfg.PongTimeout
	lastAny, lastData := time.Now(), time.Now()
	deadline := func() time.Time {
		d := lastAny.Add(keep)
		if s.spec.IdleTimeout > 0 {
			if i := lastData.Add(s.spec.IdleTimeout); i.Before(d) {
				d = i
			}
		}
		return d
	}
	_ = sock.conn.SetReadDeadline(deadline())
	sock.conn.SetPongHandler(func(string) error {
		lastAny = time.Now()
		return sock.conn.SetReadDeadline(deadline())
	})
	for {
		typ, data, err := s.readFrame(sock)
		if err != nil {
			if isTimeout(err) {
				if s.spec.IdleTimeout > 0 && time.Since(lastData) >= s.spec.IdleTimeout {
					return errIdle
				}
				return errPong
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				return fmt.Errorf("inbound frame larger than the limit of %d bytes", s.cfg.ReadLimit)
			}
			return err
		}
		if data, err = s.decodeFrame(sock, typ, data); err != nil {
			return err
		}
		s.route(Frame{Data: data, Binary: typ == websocket.BinaryMessage}, time.Now())
		// Taken after route: a reader paused by backpressure read nothing meanwhile (not even
		// pongs), so the keepalive and idle timers start again when it resumes.
		now := time.Now()
		lastAny, lastData = now, now
		_ = sock.conn.SetReadDeadline(deadline())
	}
}

// ping sends a keepalive ping on the current socket, if any. gorilla allows WriteControl
// concurrently with the writer.
func (s *Session) ping() {
	s.mu.Lock()
	sock := s.sock
	up := s.status == StatusConnected
	s.mu.Unlock()
	if !up || sock == nil {
		return
	}
	if err := sock.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		sock.kill()
	}
}
