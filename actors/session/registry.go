package session

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// Registry owns every session of the process.
type Registry struct {
	cfg Config
	pub publish.Publisher
	log *zap.Logger

	mu       sync.Mutex
	sessions map[string]*Session
}

// NewRegistry returns an empty registry whose sessions publish through pub.
func NewRegistry(cfg Config, pub publish.Publisher, log *zap.Logger) *Registry {
	return &Registry{cfg: cfg, pub: pub, log: log, sessions: make(map[string]*Session)}
}

// Open dials spec and keeps the session under spec.ID, replacing (and closing) a session
// that is no longer connected. A connected session with that id is returned as it is.
func (r *Registry) Open(ctx context.Context, spec Spec) (*Session, error) {
	if s := r.Get(spec.ID); s != nil {
		if s.Snapshot().Status == StatusConnected {
			return s, nil
		}
		r.Close(ctx, spec.ID)
	}
	log := r.log.With(zap.String(logkey.ConnectionID, spec.ID))
	s, err := dial(ctx, spec, r.cfg, r.pub, log)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	old := r.sessions[spec.ID]
	r.sessions[spec.ID] = s
	r.mu.Unlock()
	if old != nil { // a concurrent Open won the race; never keep two sockets for one id
		old.close(ctx)
	}
	log.Info("connected")
	return s, nil
}

// Get returns the session with that id, or nil.
func (r *Registry) Get(id string) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id]
}

// Close closes the session with that id with a normal close frame and forgets it.
// It reports whether there was one.
func (r *Registry) Close(ctx context.Context, id string) bool {
	r.mu.Lock()
	s := r.sessions[id]
	delete(r.sessions, id)
	r.mu.Unlock()
	if s == nil {
		return false
	}
	s.close(ctx)
	return true
}

// Len returns the number of sessions held.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Shutdown closes every session and waits for their goroutines, or until ctx ends.
func (r *Registry) Shutdown(ctx context.Context) {
	r.mu.Lock()
	all := r.sessions
	r.sessions = make(map[string]*Session)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.close(ctx) })
	}
	wg.Wait()
}
