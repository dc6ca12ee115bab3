package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/backoff"
	"github.com/websocketmanager/websocketmanager/actors/correlation"
	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/framecodec"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// Errors a session returns. Callers match them with errors.Is.
var (
	// ErrConnecting means the connection is re-dialing; try again shortly.
	ErrConnecting = errors.New("the connection is reconnecting")
	// ErrNotConnected means the connection is down for good (DISCONNECTED or ERROR).
	ErrNotConnected = errors.New("the connection is not open")
	// ErrDropped means the socket dropped while the Send waited for its reply.
	ErrDropped = errors.New("the connection dropped before the reply arrived")
	// ErrTimeout means no reply arrived in time.
	ErrTimeout = errors.New("no reply within the timeout")
	// ErrDial means the handshake with the server failed.
	ErrDial = errors.New("handshake failed")
	// ErrDuplicateID means another Send with the same correlation id is waiting.
	ErrDuplicateID = errors.New("another Send with the same correlation id is waiting on this connection")
	// ErrClosed means the session was closed.
	ErrClosed = errors.New("the connection was closed")
	// ErrTooManyPending: the connection already has the most Sends waiting that it allows.
	ErrTooManyPending = errors.New("too many Sends are waiting for a reply on this connection")
	// ErrMessageTooLarge: an outbound message is larger than the service allows.
	ErrMessageTooLarge = errors.New("the message is larger than the service allows")
)

// Status is the state of a session.
type Status int

// Statuses.
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

// Frame is a message with its frame type.
type Frame struct {
	Data   []byte
	Binary bool
	// Rate says what a Send or SendRaw over the connection's send rate does.
	Rate RateMode
}

// Spec is everything needed to establish the connection, the first time and on reconnect.
type Spec struct {
	ID            string
	URL           string
	Headers       http.Header
	Subprotocols  []string
	OnConnect     []Frame
	Correlation   correlation.Config
	AutoReconnect bool
	Backoff       backoff.Config
	// IdleTimeout: no inbound frame for this long → the socket is treated as dead. 0 = off.
	IdleTimeout time.Duration
	// Publish is how inbound frames are published (Topic "" publishes nothing).
	Publish PublishOptions
	// RetainFrames and RetainBytes bound the frames kept for watchers to resume from; 0 takes
	// Config.RetainFrames / Config.RetainBytes.
	RetainFrames int
	RetainBytes  int64
	// SeqBase is the sequence number before the first published frame. The actor raises it
	// each time the connection is established on another instance, so that sequence numbers
	// never go backwards when a connection moves.
	SeqBase uint64
	// Reason explains the session's first status event (e.g. "taken over from instance X").
	Reason string
	// PermessageDeflate asks the server for permessage-deflate; DecodeBinary decodes inbound
	// binary frames; MaxDecodedBytes bounds a decoded or inflated message (0: ReadLimit).
	PermessageDeflate bool
	DecodeBinary      framecodec.Mode
	MaxDecodedBytes   int64
	// SendRate limits Sends, SendRaws and on-connect messages (zero: no limit).
	SendRate SendRate
	// SecretHeaders are handshake headers read through Config.Credentials at every dial; TLS
	// is the wss:// TLS setting (nil: defaults). EgressProxy names the operator's proxy to
	// dial through ("" = default), passed to Config.Dial in its context (egress.ProxyFrom).
	SecretHeaders map[string]credentials.SecretRef
	TLS           *credentials.TLS
	EgressProxy   string
}

// Snapshot is what a session looks like at one moment.
type Snapshot struct {
	Status         Status
	Topic          string
	LastError      string
	Reconnects     int
	ConnectedSince time.Time
	Subprotocol    string
	// Publish is the publish settings in effect (Topic is the same as the field above).
	Publish PublishOptions
	// PausedSince is when the connection stopped reading because its publish buffer is full
	// (Backpressure); zero when it is not paused. Paused is the time paused in all.
	PausedSince time.Time
	Paused      time.Duration
	// Dropped is the number of inbound frames that were to be published and were not;
	// DroppedByReason splits it by reason (metrics.DropReasons; nil when none).
	Dropped         uint64
	DroppedByReason map[string]uint64
}

// Lifecycle receives the status changes of sessions, in order per session.
type Lifecycle interface {
	Emit(publish.Event)
}

// RedactURL returns u without user-info, for logs, events and List.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}

type waiter struct {
	reply chan Frame // size 1; closed without a value when the socket drops
}

// Session is one managed connection across reconnects.
type Session struct {
	spec       Spec
	redacted   string
	cfg        Config
	log        *zap.Logger
	events     Lifecycle
	instanceID string
	outbox     *outbox
	writePool  websocket.BufferPool // shared write buffers: a socket holds one only while writing

	// ctx is the session's own lifetime (not a request's): it ends when the session closes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// writeMu makes the caller of Send/SendRaw the writer: gorilla allows one writer at a
	// time. It is taken before mu and held across "register the waiter, write the frame", so
	// that waiters are registered in the order their frames go out.
	writeMu sync.Mutex

	mu             sync.Mutex
	status         Status
	lastErr        string
	reconnects     int
	connectedSince time.Time
	subprotocol    string
	publish        PublishOptions
	sock           *socket
	keyed          map[correlation.Key]*waiter
	fifo           []*waiter
	seq            uint64
	ring           ring
	watchers       map[*Watcher]struct{} // nil until the first watch
	ended          error                 // set when the connection ended for good: watches end with it
	watchLimit     *watchLimit
	decodeRefused  counter   // inbound frames refused by decoding
	rate           *sendRate // nil: no send rate
}

func newSession(spec Spec, cfg Config, b *budget, pub publish.Publisher, events Lifecycle, instanceID string, log *zap.Logger) *Session {
	spec.Correlation = spec.Correlation.Normalize()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		spec:       spec,
		redacted:   RedactURL(spec.URL),
		cfg:        cfg,
		log:        log,
		events:     events,
		instanceID: instanceID,
		ctx:        ctx,
		cancel:     cancel,
		status:     StatusConnecting,
		publish:    spec.Publish,
		keyed:      map[correlation.Key]*waiter{},
		seq:        spec.SeqBase,
		watchLimit: &watchLimit{max: int64(cfg.MaxWatchers)}, // the registry shares its own
	}
	s.ring = ring{maxFrames: cfg.RetainFrames, maxBytes: cfg.RetainBytes, budget: &budget{limit: cfg.RetainInstanceBytes}, firstLocal: spec.SeqBase + 1}
	if spec.RetainFrames > 0 {
		s.ring.maxFrames = spec.RetainFrames
	}
	if spec.RetainBytes > 0 {
		s.ring.maxBytes = spec.RetainBytes
	}
	s.outbox = newOutbox(cfg, b, pub, log, s.reportDrops, ctx, &s.wg)
	s.rate = newSendRate(spec.SendRate, nil)
	s.outbox.setOptions(spec.Publish)
	return s
}

// ID returns the connection id.
func (s *Session) ID() string { return s.spec.ID }

// Snapshot returns the current state.
func (s *Session) Snapshot() Snapshot {
	byReason, total := s.outbox.droppedCounts()
	pausedSince, paused := s.outbox.paused()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{
		Status:          s.status,
		Topic:           s.publish.Topic,
		Publish:         s.publish,
		PausedSince:     pausedSince,
		Paused:          paused,
		LastError:       s.lastErr,
		Reconnects:      s.reconnects,
		ConnectedSince:  s.connectedSince,
		Subprotocol:     s.subprotocol,
		Dropped:         total,
		DroppedByReason: byReason,
	}
}

// SetPublish sets how inbound frames are published from now on; a Topic of "" stops publishing
// (frames already waiting are still published to the topic they were received for).
func (s *Session) SetPublish(p PublishOptions) {
	s.mu.Lock()
	s.publish = p
	s.outbox.setOptions(p)
	s.mu.Unlock()
}

// setStatus records a status change and emits its lifecycle event. Call with s.mu held.
func (s *Session) setStatus(st Status, errText, reason string, attempt int) {
	prev := s.status
	s.status = st
	errText = clip(errText) // error texts may quote what a server sent; events queue by the thousand
	if errText != "" {
		s.lastErr = errText
	}
	if st != StatusConnected {
		s.connectedSince = time.Time{}
	}
	if s.events != nil {
		s.events.Emit(publish.Event{
			ConnectionID: s.spec.ID, URL: s.redacted, InstanceID: s.instanceID,
			Status: st.String(), PreviousStatus: prev.String(), Attempt: attempt,
			Error: errText, Reason: reason, Time: time.Now().UTC(),
		})
	}
	s.log.Info("status", zap.Stringer("status", st), zap.Stringer("previous", prev), zap.Int("attempt", attempt), zap.String("error", errText))
}

// maxEventText bounds the error text a session keeps and puts in events.
const maxEventText = 1024

func clip(s string) string {
	if len(s) <= maxEventText {
		return s
	}
	return strings.ToValidUTF8(s[:maxEventText], "") + "…"
}

// reportDrops records drops in last_error and emits a frames-dropped lifecycle event (the
// outbox rate-limits the calls). The status does not change: the connection is still up.
func (s *Session) reportDrops(counts map[string]uint64, latest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := dropText(counts, latest)
	s.lastErr = text
	if s.events != nil {
		s.events.Emit(publish.Event{
			ConnectionID: s.spec.ID, URL: s.redacted, InstanceID: s.instanceID,
			Status: s.status.String(), PreviousStatus: s.status.String(),
			Error: text, Reason: "frames dropped: " + latest, Time: time.Now().UTC(), DroppedFrames: counts,
		})
	}
}

// SendRaw writes a frame and returns once it is written.
func (s *Session) SendRaw(ctx context.Context, f Frame) error {
	if _, err := s.throttle(ctx, f, 0); err != nil {
		return err
	}
	_, err := s.write(ctx, f, false)
	return err
}

// Send writes a frame and waits for its reply as the connection's correlation mode defines
// it, at most until ctx ends or timeout passes.
func (s *Session) Send(ctx context.Context, f Frame, timeout time.Duration) (Frame, error) {
	waited, err := s.throttle(ctx, f, timeout) // the timeout covers the wait for the send rate
	if err != nil {
		return Frame{}, err
	}
	timeout -= waited
	w, err := s.write(ctx, f, true)
	if err != nil {
		return Frame{}, err
	}
	defer s.removeWaiter(w)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r, ok := <-w.reply:
		if !ok {
			return Frame{}, ErrDropped
		}
		return r, nil
	case <-timer.C:
		return Frame{}, ErrTimeout
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

func randomPrefix() [correlation.PrefixLen]byte {
	var p [correlation.PrefixLen]byte
	_, _ = rand.Read(p[:])
	p[6] = (p[6] & 0x0f) | 0x40 // a version 4 UUID, as documented
	p[8] = (p[8] & 0x3f) | 0x80
	return p
}

// write registers the waiter (before the frame is written, so a fast reply is never missed)
// and writes the frame on the current socket, in the caller's goroutine.
func (s *Session) write(ctx context.Context, f Frame, wait bool) (*waiter, error) {
	if len(f.Data) > s.cfg.MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(f.Data), s.cfg.MaxMessageBytes)
	}
	data, key := f.Data, correlation.Key("")
	if wait {
		var err error
		data, key, err = s.spec.Correlation.Outbound(f.Data, f.Binary, randomPrefix)
		if err != nil {
			return nil, err
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	switch s.status {
	case StatusConnected:
	case StatusConnecting:
		s.mu.Unlock()
		return nil, ErrConnecting
	default:
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, ErrNotConnected
	}
	var w *waiter
	if wait {
		if len(s.keyed)+len(s.fifo) >= s.cfg.MaxPendingSends {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w (%d)", ErrTooManyPending, s.cfg.MaxPendingSends)
		}
		w = &waiter{reply: make(chan Frame, 1)}
		if key != "" {
			if _, dup := s.keyed[key]; dup {
				s.mu.Unlock()
				return nil, ErrDuplicateID
			}
			s.keyed[key] = w
		} else {
			s.fifo = append(s.fifo, w)
		}
	}
	sock := s.sock
	s.mu.Unlock()
	deadline := time.Now().Add(s.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = sock.conn.SetWriteDeadline(deadline)
	if err := sock.conn.WriteMessage(frameType(f.Binary), data); err != nil {
		s.removeWaiter(w)
		sock.kill() // a failed write leaves the socket unusable; the reader ends and the supervisor takes over
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: write: %v", ErrDropped, err)
	}
	s.cfg.Metrics.FrameOut(f.Binary, len(data))
	return w, nil
}

func (s *Session) removeWaiter(w *waiter) {
	if w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeWaiterLocked(w)
}

func (s *Session) removeWaiterLocked(w *waiter) {
	if w == nil {
		return
	}
	for k, x := range s.keyed {
		if x == w {
			delete(s.keyed, k)
			return
		}
	}
	for i, x := range s.fifo {
		if x == w {
			s.fifo = append(s.fifo[:i], s.fifo[i+1:]...)
			return
		}
	}
}

// failWaiters fails every waiting Send at once (their socket is gone). Call with s.mu held.
func (s *Session) failWaiters() {
	for k, w := range s.keyed {
		close(w.reply)
		delete(s.keyed, k)
	}
	for _, w := range s.fifo {
		close(w.reply)
	}
	s.fifo = nil
}

// route hands an inbound frame to the Send it answers, and to the publisher unless it
// answered a Send (and the connection does not publish replies too). With Backpressure it
// returns only when the publish buffer took the frame.
func (s *Session) route(f Frame, at time.Time) {
	s.cfg.Metrics.FrameIn(f.Binary, len(f.Data))
	key, payload := s.spec.Correlation.Inbound(f.Data, f.Binary && !s.decodes())
	s.mu.Lock()
	var w *waiter
	var reply Frame
	if key != "" {
		if kw, ok := s.keyed[key]; ok {
			delete(s.keyed, key)
			w, reply = kw, Frame{Data: payload, Binary: f.Binary}
		}
	}
	if w == nil && len(s.fifo) > 0 && s.spec.Correlation.TakesUnclaimed() {
		w, reply = s.fifo[0], f
		s.fifo = s.fifo[1:]
	}
	// Every pushed frame takes the next number; a reply keeps the number of the frame before
	// it, so that the sequence of pushed frames has no gaps whether or not replies are sent on.
	if w == nil {
		s.seq++
	}
	s.recordLocked(Retained{Seq: s.seq, ReceivedAt: at, Data: f.Data, Binary: f.Binary, Reply: w != nil})
	topic := s.publish.Topic
	if topic == "" || (w != nil && !s.publish.IncludeReplies) {
		s.mu.Unlock()
		if w != nil {
			w.reply <- reply
		}
		return
	}
	m := publish.Message{ConnectionID: s.spec.ID, URL: s.redacted, Topic: topic, Data: f.Data, Binary: f.Binary, Seq: s.seq, ReceivedAt: at, Reply: w != nil}
	s.mu.Unlock()
	if w != nil {
		w.reply <- reply
	}
	s.outbox.push(m)
}

// close ends the session: a close frame with code on the current socket, then everything the
// session holds is released. For a normal close (1000, Disconnect) it waits briefly for the
// server's answering close frame; for going away (1001: shutdown, the actor leaving this
// instance, fencing) it does not, because the sidecar waits for this while it hands the actor
// to another instance, and must answer placement in time. Safe to call more than once.
// close ends the session: close frame, then the frames it received are published for up to
// flushFor (bounded by ctx).
func (s *Session) close(ctx context.Context, code int, reason string, flushFor time.Duration) {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.cancel()
	watchEnd := ErrWatchEnded // moved, fenced, shutting down: watch again through another instance
	if code == websocket.CloseNormalClosure {
		watchEnd = ErrDisconnected
	}
	s.endWatchersLocked(watchEnd, true)
	sock := s.sock
	wasUp := s.status == StatusConnected
	s.setStatus(StatusDisconnected, "", reason, 0)
	s.failWaiters()
	s.mu.Unlock()
	if sock != nil {
		if wasUp {
			msg := websocket.FormatCloseMessage(code, "")
			_ = sock.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.cfg.CloseTimeout))
			if code == websocket.CloseNormalClosure {
				t := time.NewTimer(s.cfg.CloseTimeout)
				select {
				case <-sock.readDone:
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
		}
		_ = sock.conn.Close()
	}
	// From here the frames left get flushFor, bounded by ctx: a publish attempt in progress
	// (the publisher's) included.
	deadline := time.Now().Add(flushFor)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.outbox.abandonAt(deadline)
	s.wg.Wait()
	s.outbox.flush(ctx, deadline)
}
