package session

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// outbox is a session's bounded buffer of frames waiting to be published, in arrival order.
// One goroutine drains it and retries a failed publish with backoff, so order is kept; when
// the buffer is full the oldest waiting frame is dropped and counted.
type outbox struct {
	pub    publish.Publisher
	log    *zap.Logger
	limit  int
	onDrop func(total uint64)

	mu       sync.Mutex
	queue    []publish.Message
	dropped  uint64
	lastDrop time.Time
	notify   chan struct{} // size 1
	closed   chan struct{}
	once     sync.Once
}

func newOutbox(limit int, pub publish.Publisher, log *zap.Logger, onDrop func(uint64)) *outbox {
	return &outbox{pub: pub, log: log, limit: limit, onDrop: onDrop, notify: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (o *outbox) push(m publish.Message) {
	o.mu.Lock()
	var report bool
	if len(o.queue) >= o.limit {
		o.queue = o.queue[1:]
		o.dropped++
		// Report at most once a second: a full buffer drops many frames in a row.
		if time.Since(o.lastDrop) >= time.Second {
			o.lastDrop = time.Now()
			report = true
		}
	}
	o.queue = append(o.queue, m)
	total := o.dropped
	o.mu.Unlock()
	if report {
		o.log.Warn("publish buffer full, oldest frames dropped", zap.Uint64("dropped_total", total))
		o.onDrop(total)
	}
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *outbox) droppedTotal() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

func (o *outbox) pop() (publish.Message, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 {
		return publish.Message{}, false
	}
	m := o.queue[0]
	o.queue[0] = publish.Message{}
	o.queue = o.queue[1:]
	return m, true
}

// run publishes until ctx ends; the frames left then are flushed by close.
func (o *outbox) run(ctx context.Context) {
	for {
		m, ok := o.pop()
		if !ok {
			select {
			case <-o.notify:
				continue
			case <-ctx.Done():
				return
			}
		}
		o.publish(ctx, m)
	}
}

// publish retries m with backoff until it is accepted or ctx ends.
func (o *outbox) publish(ctx context.Context, m publish.Message) bool {
	delay := 50 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := o.pub.Publish(pctx, m)
		cancel()
		if err == nil {
			return true
		}
		o.log.Warn("publish failed, retrying", zap.String("topic", m.Topic), zap.Uint64("sequence", m.Seq), zap.Error(err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// close publishes what is left, for at most grace, after run has returned.
func (o *outbox) close(ctx context.Context, grace time.Duration) {
	o.once.Do(func() {
		fctx, cancel := context.WithTimeout(ctx, grace)
		defer cancel()
		for {
			m, ok := o.pop()
			if !ok || !o.publish(fctx, m) {
				return
			}
		}
	})
}
