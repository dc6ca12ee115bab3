package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// Registry owns every session of the process.
type Registry struct {
	cfg        Config
	pub        publish.Publisher
	events     Lifecycle
	instanceID string
	log        *zap.Logger
	budget     *budget // the bytes all publish buffers may hold together
	retain     *budget // the bytes all retention rings may hold together
	watchLimit *watchLimit

	mu       sync.Mutex
	sessions map[string]*Session
	draining bool // set by Shutdown: no new sessions
	// opening holds the Opens that are dialing, so that a Close that comes meanwhile (the actor
	// was deactivated here) cancels them: a socket dialed for an actor that has left this
	// instance must never be kept.
	opening map[*pendingOpen]string

	writePool *sync.Pool

	pingStop chan struct{}
	pingDone chan struct{}
	stopOnce sync.Once
}

type pendingOpen struct{ cancelled bool }

// ErrMoved means the connection's actor left this instance while its socket was being dialed.
var ErrMoved = errors.New("the connection moved to another instance while it was being established")

// ErrShuttingDown means the instance is shutting down and opens no more sockets; the
// connection will be established on another instance.
var ErrShuttingDown = errors.New("this instance is shutting down")

// ErrTooManyConnections: this instance holds as many sockets as it may (MaxConnections).
var ErrTooManyConnections = errors.New("this instance holds as many connections as it may")

// NewRegistry returns an empty registry. Sessions publish frames through pub and status
// changes through events (nil: none).
func NewRegistry(cfg Config, pub publish.Publisher, events Lifecycle, instanceID string, log *zap.Logger) *Registry {
	return &Registry{cfg: cfg, pub: pub, events: events, instanceID: instanceID, log: log,
		budget: &budget{limit: cfg.PublishBufferInstanceBytes}, retain: &budget{limit: cfg.RetainInstanceBytes},
		watchLimit: &watchLimit{max: int64(cfg.MaxWatchers)},
		sessions:   make(map[string]*Session), opening: make(map[*pendingOpen]string), writePool: &sync.Pool{}}
}

// newSession makes a session that shares the registry's budgets, limits and buffers.
func (r *Registry) newSession(spec Spec, log *zap.Logger) *Session {
	s := newSession(spec, r.cfg, r.budget, r.pub, r.events, r.instanceID, log)
	s.writePool = r.writePool
	s.ring.budget = r.retain
	s.watchLimit = r.watchLimit
	return s
}

// RetainedBytes returns the bytes the retention rings of every session hold together.
func (r *Registry) RetainedBytes() int64 { return r.retain.used.Load() }

// BufferedBytes returns the bytes the publish buffers of every session hold together.
func (r *Registry) BufferedBytes() int64 { return r.budget.used.Load() }

// Start starts the keepalive pinger: one goroutine pings every connected socket each ping
// interval (instead of one timer goroutine per connection). Shutdown stops it.
func (r *Registry) Start() {
	r.pingStop, r.pingDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.pingDone)
		t := time.NewTicker(r.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-r.pingStop:
				return
			case <-t.C:
			}
			r.mu.Lock()
			all := make([]*Session, 0, len(r.sessions))
			for _, s := range r.sessions {
				all = append(all, s)
			}
			r.mu.Unlock()
			for _, s := range all {
				s.ping()
			}
		}
	}()
}

// Open establishes the connection of spec and keeps it under spec.ID. A session already held
// under that id is returned as it is: never two sockets for one connection.
//
// With resume false (a new connection) the first handshake must succeed, or Open fails and
// keeps nothing. With resume true (an existing connection taken over by this process) a failed
// first handshake of an auto-reconnecting connection leaves the session CONNECTING and
// retrying with backoff.
func (r *Registry) Open(ctx context.Context, spec Spec, resume bool) (*Session, error) {
	r.mu.Lock()
	if r.draining {
		r.mu.Unlock()
		return nil, ErrShuttingDown
	}
	if s := r.sessions[spec.ID]; s != nil {
		r.mu.Unlock()
		return s, nil
	}
	if max := r.cfg.MaxConnections; max > 0 && len(r.sessions)+len(r.opening) >= max {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w (%d)", ErrTooManyConnections, max)
	}
	pending := &pendingOpen{}
	r.opening[pending] = spec.ID
	r.mu.Unlock()
	log := r.log.With(zap.String(logkey.ConnectionID, spec.ID))
	s := r.newSession(spec, log)
	sock, sub, err := s.dial(ctx)
	r.mu.Lock()
	delete(r.opening, pending)
	old := r.sessions[spec.ID]
	switch {
	case err != nil && !(resume && spec.AutoReconnect):
	case pending.cancelled:
		err = ErrMoved
	case r.draining:
		err = ErrShuttingDown
	case old != nil: // a concurrent Open won
	default:
		r.sessions[spec.ID] = s
		r.mu.Unlock()
		if err != nil {
			s.startRetrying(err)
		} else {
			s.start(sock, sub)
		}
		return s, nil
	}
	r.mu.Unlock()
	s.cancel()
	if sock != nil {
		_ = sock.conn.Close()
	}
	if err == nil {
		return old, nil
	}
	return nil, err
}

// cancelOpening cancels the dials in flight for id ("" for all). Call with r.mu held.
func (r *Registry) cancelOpening(id string) {
	for p, pid := range r.opening {
		if id == "" || pid == id {
			p.cancelled = true
			delete(r.opening, p)
		}
	}
}

// Lost keeps a session for spec that has no socket and never dials: status ERROR with reason.
// It stands for a connection whose socket was lost with the instance that held it and that
// may not reconnect by itself (auto_reconnect off).
func (r *Registry) Lost(spec Spec, reason string) (*Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		return nil, ErrShuttingDown
	}
	if s := r.sessions[spec.ID]; s != nil {
		return s, nil
	}
	s := r.newSession(spec, r.log.With(zap.String(logkey.ConnectionID, spec.ID)))
	s.mu.Lock()
	s.setStatus(StatusError, reason, spec.Reason, 0)
	s.mu.Unlock()
	r.sessions[spec.ID] = s
	return s, nil
}

// StatusCounts returns the number of sessions in each status (lower-case names), for metrics.
func (r *Registry) StatusCounts() map[string]int {
	r.mu.Lock()
	all := make([]*Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		all = append(all, s)
	}
	r.mu.Unlock()
	out := map[string]int{}
	for _, s := range all {
		s.mu.Lock()
		out[strings.ToLower(s.status.String())]++
		s.mu.Unlock()
	}
	return out
}

// Get returns the session with that id, or nil.
func (r *Registry) Get(id string) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id]
}

// Close closes the session with that id with a close frame of the given code and forgets it.
// It reports whether there was one.
func (r *Registry) Close(ctx context.Context, id string, code int, reason string) bool {
	r.mu.Lock()
	r.cancelOpening(id)
	s := r.sessions[id]
	delete(r.sessions, id)
	r.mu.Unlock()
	if s == nil {
		return false
	}
	s.close(ctx, code, reason, r.cfg.CloseTimeout)
	return true
}

// Len returns the number of sessions held.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Shutdown closes every session with close code 1001 (going away) and waits for them, or
// until ctx ends. From then on Open fails with ErrShuttingDown: an actor call that reaches this
// instance while it stops must not open a socket that another instance is about to open.
func (r *Registry) Shutdown(ctx context.Context) {
	r.mu.Lock()
	r.draining = true
	r.mu.Unlock()
	// Publish what was received for as long as ctx allows (ShutdownFlush if ctx has no
	// deadline: a pub/sub that refuses everything must not hold the process): nothing accepted
	// is dropped at a planned stop that the pub/sub lets through.
	flushFor := r.cfg.ShutdownFlush
	if d, ok := ctx.Deadline(); ok {
		flushFor = max(time.Until(d), 0)
	}
	r.closeAll(ctx, 1001, "instance shutting down", flushFor)
	r.stopOnce.Do(func() {
		if r.pingStop != nil {
			close(r.pingStop)
			<-r.pingDone
		}
	})
}

// CloseAll closes every session with a close frame of the given code and forgets them all.
// The registry stays usable.
func (r *Registry) CloseAll(ctx context.Context, code int, reason string) {
	r.closeAll(ctx, code, reason, r.cfg.CloseTimeout)
}

func (r *Registry) closeAll(ctx context.Context, code int, reason string, flushFor time.Duration) {
	r.mu.Lock()
	all := r.sessions
	r.sessions = make(map[string]*Session)
	r.cancelOpening("")
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.close(ctx, code, reason, flushFor) })
	}
	wg.Wait()
}
