package session

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/metrics"

	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// outbox is a session's bounded buffer of frames waiting to be published, in arrival order.
// A publisher goroutine runs only while frames wait (a connection that does not publish costs
// no goroutine); it publishes one frame at a time and retries a failed publish with backoff, so
// order is kept. When the buffer is full the oldest waiting frame is dropped and counted.
type outbox struct {
	pub    publish.Publisher
	log    *zap.Logger
	limit  int
	onDrop func(total uint64)
	ctx    context.Context // the session's lifetime
	wg     *sync.WaitGroup // the session's: the publisher goroutine is the session's

	mu       sync.Mutex
	queue    []publish.Message
	dropped  uint64
	lastDrop time.Time
	running  bool
	metrics  *metrics.Metrics
}

func newOutbox(limit int, pub publish.Publisher, log *zap.Logger, onDrop func(uint64), ctx context.Context, wg *sync.WaitGroup, m *metrics.Metrics) *outbox {
	return &outbox{pub: pub, log: log, limit: limit, onDrop: onDrop, ctx: ctx, wg: wg, metrics: m}
}

// push queues m and starts the publisher if it is not running. It is called by the session's
// reader, which holds a count of the session's WaitGroup, so Add here never races with Wait.
func (o *outbox) push(m publish.Message) {
	o.mu.Lock()
	var report bool
	if len(o.queue) >= o.limit {
		o.queue[0] = publish.Message{}
		o.queue = o.queue[1:]
		o.dropped++
		o.metrics.Dropped()
		// Report at most once a second: a full buffer drops many frames in a row.
		if time.Since(o.lastDrop) >= time.Second {
			o.lastDrop = time.Now()
			report = true
		}
	}
	o.queue = append(o.queue, m)
	total := o.dropped
	start := !o.running && o.ctx.Err() == nil
	if start {
		o.running = true
		o.wg.Add(1)
	}
	o.mu.Unlock()
	if report {
		o.log.Warn("publish buffer full, oldest frames dropped", zap.Uint64("dropped_total", total))
		o.onDrop(total)
	}
	if start {
		go o.run()
	}
}

func (o *outbox) droppedTotal() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// next takes the oldest frame; ok is false when there is none (or the session is closing),
// and then the publisher stops.
func (o *outbox) next() (publish.Message, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 || o.ctx.Err() != nil {
		o.running = false
		return publish.Message{}, false
	}
	m := o.queue[0]
	o.queue[0] = publish.Message{}
	o.queue = o.queue[1:]
	return m, true
}

// requeue puts back a frame the publisher could not publish before the session closed.
func (o *outbox) requeue(m publish.Message) {
	o.mu.Lock()
	o.queue = append([]publish.Message{m}, o.queue...)
	o.mu.Unlock()
}

func (o *outbox) run() {
	defer o.wg.Done()
	for {
		m, ok := o.next()
		if !ok {
			return
		}
		if !o.publish(o.ctx, m) {
			o.requeue(m) // flush tries once more
		}
	}
}

// publish retries m with backoff until it is accepted or ctx ends. An attempt in progress is
// not cut short by ctx (only by its own timeout): cancelling a publish the component may
// already have accepted would publish the frame twice.
func (o *outbox) publish(ctx context.Context, m publish.Message) bool {
	delay := 50 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		start := time.Now()
		err := o.pub.Publish(pctx, m)
		cancel()
		o.metrics.Published(time.Since(start), err)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
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

// flush publishes what is left, for at most grace, after the session's goroutines returned.
func (o *outbox) flush(ctx context.Context, grace time.Duration) {
	fctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	for {
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.mu.Unlock()
			return
		}
		m := o.queue[0]
		o.queue = o.queue[1:]
		o.mu.Unlock()
		if !o.publish(fctx, m) {
			return
		}
	}
}
