package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// Errors a session returns. Callers match them with errors.Is.
var (
	// ErrNotConnected means the socket is not open (it dropped or was closed).
	ErrNotConnected = errors.New("connection is not open")
	// ErrTimeout means no reply arrived in time.
	ErrTimeout = errors.New("no reply within the timeout")
	// ErrDial means the handshake with the server failed.
	ErrDial = errors.New("handshake failed")
)

// Status is the state of a session.
type Status int

// Statuses, in the order a session normally passes them.
const (
	StatusConnecting Status = iota + 1
	StatusConnected
	StatusDisconnected
	StatusError
)

func (s Status) String() string {
	switch s {
	case StatusConnecting:
		return "CONNECTING"
	case StatusConnected:
		return "CONNECTED"
	case StatusDisconnected:
		return "DISCONNECTED"
	case StatusError:
		return "ERROR"
	}
	return "UNKNOWN"
}

// Spec says what to connect to.
type Spec struct {
	ID  string
	URL string
}

// Snapshot is what a session looks like at one moment.
type Snapshot struct {
	Status    Status
	Topic     string
	LastError string
}

type outFrame struct {
	data []byte
	done chan error // size 1
}

type waiter struct {
	reply chan []byte // size 1
}

// Session is one live outbound WebSocket connection.
type Session struct {
	spec Spec
	cfg  Config
	log  *zap.Logger
	pub  publish.Publisher
	conn *websocket.Conn

	// ctx is the session's own lifetime (not a request's): it ends when the session closes.
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	out      chan outFrame
	pubq     chan publish.Message
	readDone chan struct{}

	// sendMu keeps "register waiter, queue frame" atomic so replies pair with requests in order.
	sendMu sync.Mutex

	mu      sync.Mutex
	status  Status
	lastErr string
	topic   string
	waiters []*waiter
	seq     uint64
	dropped uint64
}

// dial opens the socket and starts the session's goroutines.
func dial(ctx context.Context, spec Spec, cfg Config, pub publish.Publisher, log *zap.Logger) (*Session, error) {
	d := websocket.Dialer{HandshakeTimeout: cfg.HandshakeTimeout}
	dctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	conn, resp, err := d.DialContext(dctx, spec.URL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: server answered the upgrade with HTTP %d", ErrDial, resp.StatusCode)
		}
		return nil, fmt.Errorf("%w: %v", ErrDial, err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	conn.SetReadLimit(cfg.ReadLimit)

	sctx, scancel := context.WithCancel(context.Background())
	s := &Session{
		spec:     spec,
		cfg:      cfg,
		log:      log,
		pub:      pub,
		conn:     conn,
		ctx:      sctx,
		cancel:   scancel,
		out:      make(chan outFrame, 64),
		pubq:     make(chan publish.Message, cfg.PublishQueue),
		readDone: make(chan struct{}),
		status:   StatusConnected,
	}
	s.wg.Add(3)
	go s.readLoop()
	go s.writeLoop()
	go s.publishLoop()
	return s, nil
}

// ID returns the connection id.
func (s *Session) ID() string { return s.spec.ID }

// Snapshot returns the current status, topic and last error.
func (s *Session) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{Status: s.status, Topic: s.topic, LastError: s.lastErr}
}

// SetTopic starts publishing inbound frames to topic; "" stops publishing.
func (s *Session) SetTopic(topic string) {
	s.mu.Lock()
	s.topic = topic
	s.mu.Unlock()
}

// SendRaw writes msg as a text frame and returns once it is written.
func (s *Session) SendRaw(ctx context.Context, msg string) error {
	done, err := s.enqueue(ctx, []byte(msg), nil)
	if err != nil {
		return err
	}
	return s.waitWritten(ctx, done)
}

// Send writes msg as a text frame and waits for the reply: the next inbound frame not claimed
// by an earlier Send. It waits at most until ctx ends or timeout passes.
func (s *Session) Send(ctx context.Context, msg string, timeout time.Duration) (string, error) {
	w := &waiter{reply: make(chan []byte, 1)}
	done, err := s.enqueue(ctx, []byte(msg), w)
	if err != nil {
		return "", err
	}
	defer s.removeWaiter(w)
	if err := s.waitWritten(ctx, done); err != nil {
		return "", err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case data, ok := <-w.reply:
		if !ok {
			return "", ErrNotConnected
		}
		return string(data), nil
	case <-timer.C:
		return "", ErrTimeout
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (s *Session) enqueue(ctx context.Context, data []byte, w *waiter) (chan error, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	if s.status != StatusConnected {
		s.mu.Unlock()
		return nil, ErrNotConnected
	}
	if w != nil {
		s.waiters = append(s.waiters, w)
	}
	s.mu.Unlock()
	f := outFrame{data: data, done: make(chan error, 1)}
	select {
	case s.out <- f:
		return f.done, nil
	case <-s.ctx.Done():
		return nil, ErrNotConnected
	case <-ctx.Done():
		if w != nil {
			s.removeWaiter(w)
		}
		return nil, ctx.Err()
	}
}

func (s *Session) waitWritten(ctx context.Context, done chan error) error {
	select {
	case err := <-done:
		return err
	case <-s.ctx.Done():
		return ErrNotConnected
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Session) removeWaiter(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}

// readLoop is the only reader of the socket.
func (s *Session) readLoop() {
	defer s.wg.Done()
	defer close(s.readDone)
	defer close(s.pubq) // the reader is the only sender on pubq
	deadline := s.cfg.PingInterval + s.cfg.PongTimeout
	_ = s.conn.SetReadDeadline(time.Now().Add(deadline))
	s.conn.SetPongHandler(func(string) error {
		return s.conn.SetReadDeadline(time.Now().Add(deadline))
	})
	for {
		typ, data, err := s.conn.ReadMessage()
		if err != nil {
			s.ended(err)
			return
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(deadline))
		s.deliver(typ, data)
	}
}

// deliver hands one inbound frame to the oldest waiting Send and to the publisher.
func (s *Session) deliver(typ int, data []byte) {
	s.mu.Lock()
	if len(s.waiters) > 0 {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		w.reply <- data
	}
	topic := s.topic
	var m publish.Message
	if topic != "" {
		s.seq++
		m = publish.Message{ConnectionID: s.spec.ID, Topic: topic, Data: data, Binary: typ == websocket.BinaryMessage, Seq: s.seq}
	}
	s.mu.Unlock()
	if topic == "" {
		return
	}
	select {
	case s.pubq <- m:
	default:
		s.mu.Lock()
		s.dropped++
		n := s.dropped
		s.mu.Unlock()
		s.log.Warn("publish queue full, frame dropped", zap.String(logkey.Topic, topic), zap.Uint64("dropped_total", n))
	}
}

// ended records why the socket ended and fails every waiting Send.
func (s *Session) ended(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == StatusConnected {
		var ce *websocket.CloseError
		switch {
		case s.ctx.Err() != nil:
			s.status = StatusDisconnected // closed by us
		case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway):
			s.status = StatusDisconnected
			s.lastErr = fmt.Sprintf("server closed the connection (%d %s)", ce.Code, ce.Text)
		default:
			s.status = StatusError
			s.lastErr = err.Error()
		}
		s.log.Info("connection ended", zap.Stringer("status", s.status), zap.String("reason", s.lastErr))
	}
	for _, w := range s.waiters {
		close(w.reply)
	}
	s.waiters = nil
	s.cancel()
}

// writeLoop is the only writer of data frames and pings.
func (s *Session) writeLoop() {
	defer s.wg.Done()
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case f := <-s.out:
			_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			err := s.conn.WriteMessage(websocket.TextMessage, f.data)
			if err != nil {
				err = fmt.Errorf("%w: write: %v", ErrNotConnected, err)
			}
			f.done <- err
		case <-ping.C:
			_ = s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WriteTimeout))
		case <-s.ctx.Done():
			return
		}
	}
}

// publishLoop publishes queued frames in order until the reader closes the queue.
func (s *Session) publishLoop() {
	defer s.wg.Done()
	for m := range s.pubq {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.pub.Publish(ctx, m)
		cancel()
		if err != nil {
			s.log.Warn("publish failed", zap.String(logkey.Topic, m.Topic), zap.Uint64("sequence", m.Seq), zap.Error(err))
		}
	}
}

// close sends a normal close frame, waits briefly for the server's answer and releases
// everything the session holds. It is safe to call more than once.
func (s *Session) close(ctx context.Context) {
	s.mu.Lock()
	wasOpen := s.status == StatusConnected
	if wasOpen {
		s.status = StatusDisconnected
	}
	s.mu.Unlock()
	s.cancel()
	if wasOpen {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.cfg.CloseTimeout))
		t := time.NewTimer(s.cfg.CloseTimeout)
		select {
		case <-s.readDone:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	_ = s.conn.Close()
	s.wg.Wait()
}
