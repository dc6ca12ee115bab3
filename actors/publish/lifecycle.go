package publish

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/backoff"
)

// Lifecycle publishes lifecycle events in order per connection without blocking the caller:
// events are spread over a few workers by connection id, each publishing its events one by
// one, so two events of one connection never overtake each other.
type Lifecycle struct {
	pub    Publisher
	topic  string
	log    *zap.Logger
	shards []chan Event
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
}

// NewLifecycle returns a dispatcher for topic; an empty topic turns lifecycle events off.
// queue bounds the events waiting per worker; when full, new events are dropped and logged.
func NewLifecycle(pub Publisher, topic string, workers, queue int, log *zap.Logger) *Lifecycle {
	l := &Lifecycle{pub: pub, topic: topic, log: log}
	if topic != "" {
		for range workers {
			l.shards = append(l.shards, make(chan Event, queue))
		}
	}
	return l
}

// Start starts the workers.
func (l *Lifecycle) Start() {
	for _, ch := range l.shards {
		l.wg.Go(func() { l.work(ch) })
	}
}

// Emit queues an event.
func (l *Lifecycle) Emit(e Event) {
	if len(l.shards) == 0 {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(e.ConnectionID))
	select {
	case l.shards[h.Sum32()%uint32(len(l.shards))] <- e:
	default:
		l.log.Warn("lifecycle queue full, event dropped", zap.String("connection_id", e.ConnectionID), zap.String("status", e.Status))
	}
}

// lifecycleRetry is the wait after a failed lifecycle publish: 100ms, then 400ms (3 attempts).
var lifecycleRetry = backoff.Schedule{Initial: 100 * time.Millisecond, Factor: 4}

func (l *Lifecycle) work(ch chan Event) {
	for e := range ch {
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := l.pub.PublishEvent(ctx, l.topic, e)
			cancel()
			if err == nil {
				break
			}
			if attempt == 3 {
				l.log.Warn("lifecycle event not published", zap.String("connection_id", e.ConnectionID), zap.String("status", e.Status), zap.Error(err))
				break
			}
			// Not cut short by Stop: Stop publishes what is queued, bounded by its own ctx.
			backoff.Sleep(context.Background(), lifecycleRetry.Delay(attempt))
		}
	}
}

// Stop stops accepting events, publishes the queued ones and waits for the workers, or until
// ctx ends.
func (l *Lifecycle) Stop(ctx context.Context) {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, ch := range l.shards {
			close(ch)
		}
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
