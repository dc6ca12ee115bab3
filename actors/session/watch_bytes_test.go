package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Ensure a watcher's buffer is bounded by bytes too: a watcher that does not read is ended
// once the frames handed to it pass WatchBufferBytes, long before WatchBuffer frames.
func TestWatcherBufferBoundedByBytes(t *testing.T) {
	cfg := DefaultConfig()
	s := watchSession(t, cfg, 0)
	w, err := s.Watch(nil, false)
	require.NoError(t, err)
	for range 1024 {
		s.route(Frame{Data: make([]byte, 64<<10)}, time.Now())
	}
	assert.LessOrEqual(t, s.ring.held, cfg.RetainBytes, "the ring is bounded")
	w.mu.Lock()
	held := w.bytes
	w.mu.Unlock()
	assert.LessOrEqual(t, held, cfg.WatchBufferBytes, "the watcher holds at most its byte bound")
	select {
	case <-w.done:
	default:
		t.Fatal("a watcher whose frames pass its byte bound is ended")
	}
}
