package session_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/websocketmanager/websocketmanager/actors/backoff"
	"github.com/websocketmanager/websocketmanager/actors/correlation"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
	"github.com/websocketmanager/websocketmanager/actors/publish"
	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

// recorder is a Publisher and Lifecycle that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	msgs   []publish.Message
	events []publish.Event
	fail   bool
}

func (r *recorder) Publish(_ context.Context, f *publish.Frames) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return fmt.Errorf("pub/sub down")
	}
	r.msgs = append(r.msgs, f.Msgs...)
	return nil
}

func (r *recorder) PublishEvent(context.Context, string, publish.Event) error { return nil }

func (r *recorder) Emit(e publish.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) setFail(v bool) {
	r.mu.Lock()
	r.fail = v
	r.mu.Unlock()
}

func (r *recorder) frames() []publish.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]publish.Message(nil), r.msgs...)
}

func (r *recorder) statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Status)
	}
	return out
}

func testConfig() session.Config {
	c := session.DefaultConfig()
	c.PingInterval = 100 * time.Millisecond
	c.PongTimeout = 200 * time.Millisecond
	c.HandshakeTimeout = 2 * time.Second
	c.CloseTimeout = 500 * time.Millisecond
	return c
}

func newRegistry(t *testing.T, cfg session.Config) (*session.Registry, *recorder) {
	t.Helper()
	rec := &recorder{}
	r := session.NewRegistry(cfg, rec, rec, "instance-1", zaptest.NewLogger(t))
	r.Start()
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r, rec
}

func fastBackoff() backoff.Config {
	return backoff.Config{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, StableAfter: 10 * time.Second}
}

func open(t *testing.T, r *session.Registry, spec session.Spec) *session.Session {
	t.Helper()
	if spec.ID == "" {
		spec.ID = "c1"
	}
	if spec.Backoff.Initial == 0 {
		spec.Backoff = fastBackoff()
	}
	s, err := r.Open(context.Background(), spec, false)
	require.NoError(t, err)
	return s
}

func text(s string) session.Frame { return session.Frame{Data: []byte(s)} }

func waitStatus(t *testing.T, s *session.Session, want session.Status) {
	t.Helper()
	require.Eventually(t, func() bool { return s.Snapshot().Status == want }, waitFor, 5*time.Millisecond,
		"status %v, want %v", s.Snapshot().Status, want)
}

// Ensure a Send gets the server's reply.
func TestSendEcho(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo")})
	got, err := s.Send(context.Background(), text("hello"), time.Second)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got.Data))
	assert.Equal(t, session.StatusConnected, s.Snapshot().Status)
}

// Ensure binary frames go out and come back byte for byte.
func TestSendBinary(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo")})
	payload := []byte{0, 1, 2, 0xff, 0xfe, '\n'}
	got, err := s.Send(context.Background(), session.Frame{Data: payload, Binary: true}, time.Second)
	require.NoError(t, err)
	assert.True(t, got.Binary)
	assert.Equal(t, payload, got.Data)
}

// Ensure concurrent Sends each get their own reply when the server answers out of order.
func TestCorrelationOutOfOrder(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	for _, mode := range []correlation.Mode{correlation.ModeAuto, correlation.ModeJSONField} {
		t.Run(mode.String(), func(t *testing.T) {
			s := open(t, r, session.Spec{ID: "rpc-" + mode.String(), URL: ws.URL("/jsonrpc"), Correlation: correlation.Config{Mode: mode}})
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					// Later requests answer sooner: replies arrive in reverse order.
					msg := fmt.Sprintf(`{"id":%d,"delay_ms":%d}`, i, (20-i)*5)
					got, err := s.Send(context.Background(), text(msg), 5*time.Second)
					if !assert.NoError(t, err) {
						return
					}
					var reply struct {
						ID     int             `json:"id"`
						Result json.RawMessage `json:"result"`
					}
					require.NoError(t, json.Unmarshal(got.Data, &reply))
					assert.Equal(t, i, reply.ID)
					assert.JSONEq(t, msg, string(reply.Result))
				})
			}
			wg.Wait()
		})
	}
}

// Ensure json_field rejects a message without the field and a second Send with a waiting id.
func TestCorrelationJSONFieldErrors(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/jsonrpc"), Correlation: correlation.Config{Mode: correlation.ModeJSONField, Field: "id"}})
	_, err := s.Send(context.Background(), text(`{"method":"x"}`), time.Second)
	assert.ErrorIs(t, err, correlation.ErrNoID)

	done := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), text(`{"id":"same","delay_ms":300}`), 5*time.Second)
		done <- err
	}()
	require.Eventually(t, func() bool { return len(ws.Received()) == 1 }, waitFor, 5*time.Millisecond)
	_, err = s.Send(context.Background(), text(`{"id":"same"}`), time.Second)
	assert.ErrorIs(t, err, session.ErrDuplicateID)
	require.NoError(t, <-done)
}

// Ensure prefix mode puts a 16-byte id in front and strips it from the reply.
func TestCorrelationPrefix(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/prefix"), Correlation: correlation.Config{Mode: correlation.ModePrefix}})
	got, err := s.Send(context.Background(), text("ping"), time.Second)
	require.NoError(t, err)
	assert.Equal(t, "re:ping", string(got.Data))
	sent := ws.Received()
	require.Len(t, sent, 1)
	assert.Len(t, sent[0], 16+len("ping"))
}

// Ensure auto mode gives a reply to an id match and the next unclaimed frame to Sends
// without an id; frames that answer a Send are not published, the others are.
func TestAutoModeRoutingAndPublishing(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, rec := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/jsonrpc"), Publish: session.PublishOptions{Topic: "t"}})
	got, err := s.Send(context.Background(), text(`{"id":1}`), time.Second)
	require.NoError(t, err)
	assert.Contains(t, string(got.Data), `"id":1`)
	got, err = s.Send(context.Background(), text("plain"), time.Second) // echoed, FIFO
	require.NoError(t, err)
	assert.Equal(t, "plain", string(got.Data))
	require.NoError(t, s.SendRaw(context.Background(), text("unsolicited")))
	require.Eventually(t, func() bool { return len(rec.frames()) == 1 }, waitFor, 5*time.Millisecond)
	f := rec.frames()[0]
	assert.Equal(t, "unsolicited", string(f.Data))
	assert.Equal(t, uint64(1), f.Seq)
}

// Ensure a Send without a reply times out and the connection keeps working.
func TestSendTimeout(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/stream")})
	_, err := s.Send(context.Background(), text("x"), 50*time.Millisecond)
	assert.ErrorIs(t, err, session.ErrTimeout)
	require.NoError(t, s.SendRaw(context.Background(), text("y")))
	require.Eventually(t, func() bool { return len(ws.Received()) == 2 }, waitFor, 5*time.Millisecond)
}

// Ensure frames are published in order with consecutive sequence numbers, across a burst.
func TestPublishOrder(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, rec := newRegistry(t, testConfig())
	open(t, r, session.Spec{URL: ws.URL("/burst?n=500"), Publish: session.PublishOptions{Topic: "t"}})
	require.Eventually(t, func() bool { return len(rec.frames()) == 500 }, waitFor, 5*time.Millisecond)
	for i, m := range rec.frames() {
		assert.Equal(t, uint64(i+1), m.Seq)
		assert.JSONEq(t, fmt.Sprintf(`{"seq":%d}`, i+1), string(m.Data))
	}
}

// Ensure publish failures are retried in order and a full buffer drops the oldest frames
// (DropOldest).
func TestPublishRetryAndDrop(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := testConfig()
	cfg.PublishBuffer = 10
	r, rec := newRegistry(t, cfg)
	rec.setFail(true)
	s := open(t, r, session.Spec{URL: ws.URL("/burst?n=100"), Publish: session.PublishOptions{Topic: "t", Overflow: session.DropOldest}})
	require.Eventually(t, func() bool { return s.Snapshot().Dropped > 0 }, waitFor, 5*time.Millisecond)
	rec.setFail(false)
	require.Eventually(t, func() bool { return len(rec.frames()) >= 10 }, waitFor, 5*time.Millisecond)
	frames := rec.frames()
	for i := 1; i < len(frames); i++ {
		assert.Greater(t, frames[i].Seq, frames[i-1].Seq, "order must be kept")
	}
	assert.Equal(t, uint64(100), frames[len(frames)-1].Seq, "the newest frames are kept")
	// Drops are reported as a frames-dropped event with counts; the status does not change.
	assert.NotContains(t, rec.statuses(), "ERROR", "a publish problem is not a connection error")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var reported bool
	for _, e := range rec.events {
		if e.CloudEventType() == publish.FramesDroppedEventType {
			reported = true
			assert.Positive(t, e.DroppedFrames["buffer_full"])
			assert.Equal(t, "CONNECTED", e.Status)
		}
	}
	assert.True(t, reported, "drops are reported as a frames-dropped event")
}

// Ensure a drop fails waiting Sends at once, and auto-reconnect re-dials, re-sends the
// on-connect messages and counts the reconnect.
func TestReconnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, rec := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/drop?after=2&echo=0"), AutoReconnect: true, OnConnect: []session.Frame{text("login")}})
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), text("x"), time.Minute) // 2nd frame: the server drops
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, session.ErrDropped)
	case <-time.After(waitFor):
		t.Fatal("a waiting Send did not fail when the socket dropped")
	}
	require.Eventually(t, func() bool { return s.Snapshot().Reconnects >= 1 }, waitFor, 5*time.Millisecond)
	waitStatus(t, s, session.StatusConnected)
	require.Eventually(t, func() bool {
		n := 0
		for _, m := range ws.Received() {
			if m == "login" {
				n++
			}
		}
		return n >= 2
	}, waitFor, 5*time.Millisecond, "on-connect messages must be sent after every handshake")
	assert.Subset(t, rec.statuses(), []string{"CONNECTED", "CONNECTING"})
	assert.NotEmpty(t, s.Snapshot().LastError)
}

// Ensure a connection without auto-reconnect settles in DISCONNECTED after a clean close and
// in ERROR after any other close.
func TestNoReconnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	tests := []struct {
		path string
		want session.Status
	}{
		{"/close?code=1000", session.StatusDisconnected},
		{"/close?code=4001", session.StatusError},
		{"/drop", session.StatusError},
	}
	for i, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			s := open(t, r, session.Spec{ID: fmt.Sprint("n", i), URL: ws.URL(tt.path)})
			waitStatus(t, s, tt.want)
			assert.NotEmpty(t, s.Snapshot().LastError)
			_, err := s.Send(context.Background(), text("x"), time.Second)
			assert.ErrorIs(t, err, session.ErrNotConnected)
		})
	}
}

// Ensure a server that stops answering pings is detected as dead.
func TestKeepaliveDetectsStall(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/stall")})
	waitStatus(t, s, session.StatusError)
	assert.Contains(t, s.Snapshot().LastError, "pong")
}

// Ensure the idle watchdog ends a socket that receives no frames.
func TestIdleWatchdog(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo"), IdleTimeout: 150 * time.Millisecond})
	waitStatus(t, s, session.StatusError)
	assert.Contains(t, s.Snapshot().LastError, "idle")
}

// Ensure reconnecting stops with ERROR once the attempt limit is reached.
func TestMaxAttempts(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	b := fastBackoff()
	b.MaxAttempts = 2
	s := open(t, r, session.Spec{URL: ws.URL("/close?code=1001"), AutoReconnect: true, Backoff: b})
	waitStatus(t, s, session.StatusError)
	assert.Contains(t, s.Snapshot().LastError, "gave up")
}

// Ensure handshake failures say why.
func TestDialFailures(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := testConfig()
	cfg.HandshakeTimeout = 200 * time.Millisecond
	r, _ := newRegistry(t, cfg)
	tests := []struct {
		url  string
		want string
	}{
		{"ws://127.0.0.1:1/", "refused"},
		{ws.URL("/reject?status=403"), "HTTP 403"},
		{ws.URL("/hang"), "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := r.Open(context.Background(), session.Spec{ID: "c1", URL: tt.url, AutoReconnect: true, Backoff: fastBackoff()}, false)
			assert.ErrorIs(t, err, session.ErrDial)
			assert.Contains(t, err.Error(), tt.want)
			assert.Zero(t, r.Len(), "a failed first handshake keeps nothing")
		})
	}
}

// Ensure headers and subprotocols are sent on the handshake.
func TestHeadersAndSubprotocols(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	h := http.Header{}
	h.Set("Authorization", "Bearer t0ken")
	h.Set("Origin", "https://example.com")
	s := open(t, r, session.Spec{URL: ws.URL("/headers"), Headers: h, Subprotocols: []string{"v2.feed"}, Correlation: correlation.Config{Mode: correlation.ModeNext}})
	got, err := s.Send(context.Background(), text("x"), time.Second) // the server answers with its header report
	require.NoError(t, err)
	assert.JSONEq(t, `{"authorization":"Bearer t0ken","origin":"https://example.com","subprotocol":"v2.feed"}`, string(got.Data))
	assert.Equal(t, "v2.feed", s.Snapshot().Subprotocol)
}

// Ensure Close sends a normal close frame and the registry forgets the session.
func TestCloseNormal(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, rec := newRegistry(t, testConfig())
	open(t, r, session.Spec{URL: ws.URL("/echo")})
	require.True(t, r.Close(context.Background(), "c1", 1000, "disconnected by request"))
	require.Eventually(t, func() bool { return len(ws.CloseCodes()) == 1 }, waitFor, 5*time.Millisecond)
	assert.Equal(t, []int{1000}, ws.CloseCodes())
	assert.Nil(t, r.Get("c1"))
	assert.False(t, r.Close(context.Background(), "c1", 1000, ""))
	st := rec.statuses()
	assert.Equal(t, "DISCONNECTED", st[len(st)-1])
}

// Ensure Open of a live id returns the same session: never two sockets for one connection.
func TestOpenIdempotent(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	a := open(t, r, session.Spec{URL: ws.URL("/echo")})
	b := open(t, r, session.Spec{URL: ws.URL("/echo")})
	assert.Same(t, a, b)
	// The server counts a socket once its handler runs, which may be just after the client
	// saw the handshake complete.
	require.Eventually(t, func() bool { return ws.Open() >= 1 }, waitFor, 5*time.Millisecond)
	assert.Equal(t, 1, ws.Open())
}

// Ensure resuming an auto-reconnect connection whose server is down keeps retrying.
func TestResumeRetries(t *testing.T) {
	r, _ := newRegistry(t, testConfig())
	s, err := r.Open(context.Background(), session.Spec{ID: "c1", URL: "ws://127.0.0.1:1/", AutoReconnect: true, Backoff: fastBackoff()}, true)
	require.NoError(t, err)
	assert.Equal(t, session.StatusConnecting, s.Snapshot().Status)
	_, err = s.Send(context.Background(), text("x"), time.Second)
	assert.ErrorIs(t, err, session.ErrConnecting)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*session.Config)
	}{
		{"handshake", func(c *session.Config) { c.HandshakeTimeout = 0 }},
		{"write", func(c *session.Config) { c.WriteTimeout = 0 }},
		{"ping", func(c *session.Config) { c.PingInterval = 0 }},
		{"pong", func(c *session.Config) { c.PongTimeout = 0 }},
		{"read limit", func(c *session.Config) { c.ReadLimit = 0 }},
		{"buffer", func(c *session.Config) { c.PublishBuffer = 0 }},
		{"close", func(c *session.Config) { c.CloseTimeout = 0 }},
	}
	require.NoError(t, session.DefaultConfig().Validate())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := session.DefaultConfig()
			tt.modify(&c)
			assert.Error(t, c.Validate())
		})
	}
}

// Ensure URL credentials become a Basic Authorization header (the handshake cannot carry them).
func TestURLCredentials(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	url := strings.Replace(ws.URL("/headers"), "ws://", "ws://user:pa%20ss@", 1)
	s := open(t, r, session.Spec{URL: url})
	got, err := s.Send(context.Background(), text("x"), time.Second)
	require.NoError(t, err)
	var report struct{ Authorization string }
	require.NoError(t, json.Unmarshal(got.Data, &report))
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("user:pa ss")), report.Authorization)
}

// Ensure a Close that arrives while the socket is being dialed (the actor left this instance)
// cancels that Open: its socket is not kept.
func TestCloseCancelsOpenInFlight(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := testConfig()
	cfg.HandshakeTimeout = 500 * time.Millisecond
	r, _ := newRegistry(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := r.Open(context.Background(), session.Spec{ID: "c1", URL: ws.URL("/hang"), AutoReconnect: true, Backoff: fastBackoff()}, true)
		done <- err
	}()
	require.Eventually(t, func() bool { return ws.Hanging() == 1 }, waitFor, time.Millisecond, "the dial is in flight")
	r.Close(context.Background(), "c1", 1001, "moved")
	assert.ErrorIs(t, <-done, session.ErrMoved)
	assert.Nil(t, r.Get("c1"))
}

// Ensure every reconnect goes through the configured dialer (the SSRF guard): a target the
// guard refuses on reconnect is not reached, and the refusal shows in lastError.
func TestReconnectIsGuarded(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := testConfig()
	loopback, err := netguard.NewPolicy([]string{"127.0.0.0/8", "::1"}, nil)
	require.NoError(t, err)
	allow := &netguard.Dialer{Policy: loopback}
	deny := &netguard.Dialer{} // the default policy: loopback is denied
	var dials atomic.Int32
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return allow.DialContext(ctx, network, addr) // the first handshake is allowed…
		}
		return deny.DialContext(ctx, network, addr) // …then the policy says no
	}
	r, _ := newRegistry(t, cfg)
	b := fastBackoff()
	b.MaxAttempts = 2
	s := open(t, r, session.Spec{URL: ws.URL("/close?code=1001"), AutoReconnect: true, Backoff: b})
	waitStatus(t, s, session.StatusError)
	assert.Contains(t, s.Snapshot().LastError, "denied by the default rule for loopback")
	assert.GreaterOrEqual(t, dials.Load(), int32(3), "each reconnect attempt dials through the guard")
	assert.Equal(t, 1, ws.Accepted(), "no refused attempt reached the server")
}

// Ensure the per-connection and per-registry limits refuse what is beyond them, each with its
// own error, and leave the connection working.
func TestLimits(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := testConfig()
	cfg.MaxPendingSends = 2
	cfg.MaxMessageBytes = 64
	cfg.MaxConnections = 2
	r, _ := newRegistry(t, cfg)
	s := open(t, r, session.Spec{ID: "a", URL: ws.URL("/jsonrpc?cid=lim")})

	t.Run("outbound message size", func(t *testing.T) {
		err := s.SendRaw(context.Background(), text(strings.Repeat("x", 65)))
		require.ErrorIs(t, err, session.ErrMessageTooLarge)
		assert.Contains(t, err.Error(), "65 bytes, the limit is 64")
		_, err = s.Send(context.Background(), text(strings.Repeat("x", 65)), time.Second)
		require.ErrorIs(t, err, session.ErrMessageTooLarge)
		require.NoError(t, s.SendRaw(context.Background(), text(strings.Repeat("x", 64))))
	})

	t.Run("Sends waiting on one connection", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 2 { // two Sends the server answers after 500 ms
			wg.Go(func() {
				_, err := s.Send(context.Background(), text(fmt.Sprintf(`{"id":%d,"delay_ms":500}`, i)), 5*time.Second)
				assert.NoError(t, err)
			})
		}
		require.Eventually(t, func() bool { return ws.Stats("lim").MaxPending >= 2 }, waitFor, 5*time.Millisecond)
		_, err := s.Send(context.Background(), text(`{"id":9}`), time.Second)
		require.ErrorIs(t, err, session.ErrTooManyPending)
		wg.Wait()
		_, err = s.Send(context.Background(), text(`{"id":10}`), 5*time.Second)
		require.NoError(t, err, "the limit frees as replies arrive")
	})

	t.Run("connections per registry", func(t *testing.T) {
		open(t, r, session.Spec{ID: "b", URL: ws.URL("/echo")})
		_, err := r.Open(context.Background(), session.Spec{ID: "c", URL: ws.URL("/echo"), Backoff: fastBackoff()}, false)
		require.ErrorIs(t, err, session.ErrTooManyConnections)
		r.Close(context.Background(), "b", 1000, "test")
		open(t, r, session.Spec{ID: "c", URL: ws.URL("/echo")})
	})
}

// Ensure an inbound frame above the read limit closes the socket with 1009 (message too
// big), is reported, and the connection reconnects.
func TestInboundFrameLimit(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := testConfig()
	cfg.ReadLimit = 1024
	r, rec := newRegistry(t, cfg)
	s := open(t, r, session.Spec{URL: ws.URL("/big?bytes=4096"), AutoReconnect: true})
	require.Eventually(t, func() bool { return s.Snapshot().Reconnects >= 1 }, waitFor, 5*time.Millisecond)
	require.Eventually(t, func() bool { return slices.Contains(ws.CloseCodes(), 1009) }, waitFor, 5*time.Millisecond,
		"close codes %v", ws.CloseCodes())
	assert.Contains(t, s.Snapshot().LastError, "larger than the limit of 1024 bytes")
	assert.Contains(t, rec.statuses(), "CONNECTING")
	assert.Empty(t, rec.frames(), "the oversized frame is not published")
}

// Ensure hostile or broken servers never crash the service, never block other connections,
// and leak no goroutines (goleak checks the whole package at exit).
func TestHostileServers(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := testConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	// The healthy neighbour must not lose its socket to the keepalive on a loaded machine
	// (the race detector, parallel packages): a pong may take longer than testConfig allows.
	cfg.PongTimeout = 2 * time.Second
	r, rec := newRegistry(t, cfg)
	// A healthy neighbour that must keep answering promptly throughout.
	good := open(t, r, session.Spec{ID: "good", URL: ws.URL("/echo")})
	neighbourOK := func(t *testing.T) {
		t.Helper()
		start := time.Now()
		got, err := good.Send(context.Background(), text("ping"), time.Second)
		require.NoError(t, err)
		assert.Equal(t, "ping", string(got.Data))
		assert.Less(t, time.Since(start), time.Second, "a hostile server slowed a healthy connection")
	}

	t.Run("garbage instead of frames", func(t *testing.T) {
		s := open(t, r, session.Spec{ID: "garbage", URL: ws.URL("/garbage"), AutoReconnect: true})
		require.Eventually(t, func() bool { return s.Snapshot().Reconnects >= 2 }, waitFor, 5*time.Millisecond)
		assert.NotEmpty(t, s.Snapshot().LastError)
		neighbourOK(t)
		r.Close(context.Background(), "garbage", 1000, "test")
	})

	t.Run("invalid UTF-8 in a text frame", func(t *testing.T) {
		s := open(t, r, session.Spec{ID: "utf8", URL: ws.URL("/badutf8"), Publish: session.PublishOptions{Topic: "t-utf8"}})
		require.Eventually(t, func() bool { return len(rec.frames()) >= 1 }, waitFor, 5*time.Millisecond)
		got, err := s.Send(context.Background(), text("after"), time.Second)
		require.NoError(t, err, "the connection survives the frame")
		assert.Equal(t, "after", string(got.Data))
		neighbourOK(t)
		r.Close(context.Background(), "utf8", 1000, "test")
	})

	t.Run("fragmented message with a ping in between", func(t *testing.T) {
		before := len(rec.frames())
		s := open(t, r, session.Spec{ID: "frag", URL: ws.URL("/fragments"), Publish: session.PublishOptions{Topic: "t-frag"}})
		require.Eventually(t, func() bool { return len(rec.frames()) > before }, waitFor, 5*time.Millisecond)
		assert.Equal(t, "hello world", string(rec.frames()[before].Data), "fragments are reassembled")
		assert.Equal(t, session.StatusConnected, s.Snapshot().Status)
		r.Close(context.Background(), "frag", 1000, "test")
	})

	t.Run("close storm", func(t *testing.T) {
		b := fastBackoff()
		b.Initial, b.Max = 50*time.Millisecond, 200*time.Millisecond
		s := open(t, r, session.Spec{ID: "storm", URL: ws.URL("/closestorm"), AutoReconnect: true, Backoff: b})
		require.Eventually(t, func() bool { return s.Snapshot().Reconnects >= 3 }, waitFor, 5*time.Millisecond)
		// Backoff (50–200 ms caps, full jitter) bounds the reconnect rate: never a busy loop.
		// Counted over a fixed window: a rate needs one, there is no condition to wait for.
		n0 := ws.Accepted()
		<-time.After(time.Second)
		assert.Less(t, ws.Accepted()-n0, 60, "reconnects per second under a close storm")
		neighbourOK(t)
		r.Close(context.Background(), "storm", 1000, "test")
	})

	t.Run("server that never reads", func(t *testing.T) {
		s := open(t, r, session.Spec{ID: "noread", URL: ws.URL("/noread"), AutoReconnect: true})
		chunk := session.Frame{Data: make([]byte, 1<<20), Binary: true}
		var err error
		deadline := time.Now().Add(waitFor)
		for err == nil && time.Now().Before(deadline) { // fill the TCP buffers until a write times out
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			err = s.SendRaw(ctx, chunk)
			cancel()
			assert.Less(t, time.Since(start), 2*time.Second, "a blocked write is bounded by the write timeout")
		}
		require.Error(t, err)
		neighbourOK(t)
		r.Close(context.Background(), "noread", 1000, "test")
	})

	t.Run("handshake that never completes", func(t *testing.T) {
		c2 := cfg
		c2.HandshakeTimeout = 200 * time.Millisecond
		r2, _ := newRegistry(t, c2)
		_, err := r2.Open(context.Background(), session.Spec{ID: "hang", URL: ws.URL("/hang"), Backoff: fastBackoff()}, false)
		require.ErrorIs(t, err, session.ErrDial)
		neighbourOK(t)
	})
}
