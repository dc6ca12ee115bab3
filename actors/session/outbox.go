package session

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/backoff"
	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// frameOverhead is what a waiting frame costs beyond its payload (the Message and its slot in
// the queue), so that a flood of empty frames is bounded by bytes too, not only by count.
const frameOverhead = 128

// frameCost is the memory a waiting frame holds: its payload's capacity (a frame read from
// the socket may have more capacity than length) plus the fixed overhead.
func frameCost(m publish.Message) int64 { return int64(cap(m.Data)) + frameOverhead }

// dropReportEvery is the most often a connection reports drops as a lifecycle event: the
// first drop at once, then at most one event per period however fast frames go.
const dropReportEvery = 10 * time.Second

// budget is the bytes all publish buffers of a registry may hold together. It is reserved
// before a frame is queued and released when the frame is published, dropped, or abandoned
// with its session, so it never leaks and never goes below zero.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) {
	if b.used.Add(-n) < 0 {
		panic("session: publish budget released more than was reserved")
	}
}

// outbox is a session's bounded buffer of frames waiting to be published, in arrival order.
// A publisher goroutine runs only while frames wait (a connection that does not publish costs
// no goroutine); it publishes one frame at a time and retries a failed publish with backoff, so
// order is kept. The buffer is bounded by frames (limit) and by bytes, per connection
// (limitBytes) and per registry (budget); when a bound is reached the oldest waiting frames are
// dropped, counted by reason. A frame the pub/sub refuses as too large is dropped, not retried.
type outbox struct {
	pub        publish.Publisher
	log        *zap.Logger
	limit      int
	limitBytes int64
	retryFor   time.Duration // how long one frame's publish is retried
	budget     *budget
	onDrop     func(counts map[string]uint64, latest string)
	ctx        context.Context // the session's lifetime
	// abandon ends when the session's close gives up on publishing: it cuts short even an
	// attempt in progress, so that a close (a shutdown) ends in the time it was given.
	abandon     context.Context
	abandonNow  context.CancelFunc
	abandonOnce sync.Once
	wg          *sync.WaitGroup // the session's: the publisher goroutine is the session's
	metrics     *metrics.Metrics

	mu       sync.Mutex
	queue    []publish.Message
	held     int64 // bytes of the queue and of the frame being published, all reserved from budget
	inflight int64 // bytes of the frame being published (part of held)
	dropped  map[string]uint64
	lastDrop time.Time
	running  bool
}

func newOutbox(cfg Config, b *budget, pub publish.Publisher, log *zap.Logger, onDrop func(map[string]uint64, string), ctx context.Context, wg *sync.WaitGroup) *outbox {
	abandon, abandonNow := context.WithCancel(context.Background())
	return &outbox{pub: pub, log: log, limit: cfg.PublishBuffer, limitBytes: cfg.PublishBufferBytes, retryFor: cfg.PublishRetryFor, budget: b,
		onDrop: onDrop, ctx: ctx, abandon: abandon, abandonNow: abandonNow, wg: wg, metrics: cfg.Metrics, dropped: map[string]uint64{}}
}

// abandonAt makes every publish attempt give up at deadline. Called once, by close.
func (o *outbox) abandonAt(deadline time.Time) {
	o.abandonOnce.Do(func() { time.AfterFunc(time.Until(deadline), o.abandonNow) })
}

// dropOldestLocked drops the oldest waiting frame. Call with o.mu held and the queue not empty.
func (o *outbox) dropOldestLocked(reason string) {
	c := frameCost(o.queue[0])
	o.queue[0] = publish.Message{}
	o.queue = o.queue[1:]
	o.releaseLocked(c)
	o.countLocked(reason, 1)
}

func (o *outbox) releaseLocked(c int64) {
	o.held -= c
	o.budget.release(c)
}

// countLocked counts n drops for reason.
func (o *outbox) countLocked(reason string, n int) {
	o.dropped[reason] += uint64(n)
	o.metrics.Dropped(reason, n)
}

// reportLocked returns what to report, if a report is due. Call with o.mu held after drops.
func (o *outbox) reportLocked() map[string]uint64 {
	if time.Since(o.lastDrop) < dropReportEvery {
		return nil
	}
	o.lastDrop = time.Now()
	counts := make(map[string]uint64, len(o.dropped))
	for k, v := range o.dropped {
		counts[k] = v
	}
	return counts
}

func (o *outbox) report(counts map[string]uint64, latest string) {
	if counts == nil {
		return
	}
	o.log.Warn("inbound frames dropped instead of published", zap.String("reason", latest), zap.Any("dropped", counts))
	o.onDrop(counts, latest)
}

// push queues m and starts the publisher if it is not running. It is called by the session's
// reader, which holds a count of the session's WaitGroup, so Add here never races with Wait.
func (o *outbox) push(m publish.Message) {
	cost := frameCost(m)
	o.mu.Lock()
	latest, ok := o.admitLocked(cost)
	var counts map[string]uint64
	if latest != "" {
		counts = o.reportLocked()
	}
	if !ok {
		o.mu.Unlock()
		o.report(counts, latest)
		return
	}
	o.queue = append(o.queue, m)
	o.held += cost
	start := !o.running && o.ctx.Err() == nil
	if start {
		o.running = true
		o.wg.Add(1)
	}
	o.mu.Unlock()
	o.report(counts, latest)
	if start {
		go o.run()
	}
}

// admitLocked makes room for a frame of cost bytes, oldest frames first, and reserves its
// bytes from the budget. ok false: the frame itself is dropped (it cannot fit even with every
// waiting frame gone). latest is the reason of the last drop it made ("" for none).
func (o *outbox) admitLocked(cost int64) (latest string, ok bool) {
	if o.inflight+cost > o.limitBytes { // it cannot fit even with every waiting frame gone: they stay
		o.countLocked(metrics.DropBufferFull, 1)
		return metrics.DropBufferFull, false
	}
	for len(o.queue) > 0 && (len(o.queue) >= o.limit || o.held+cost > o.limitBytes) {
		o.dropOldestLocked(metrics.DropBufferFull)
		latest = metrics.DropBufferFull
	}
	for !o.budget.reserve(cost) {
		if len(o.queue) == 0 {
			o.countLocked(metrics.DropInstanceBudget, 1)
			return metrics.DropInstanceBudget, false
		}
		// The instance is full: this connection makes room from its own waiting frames, so a
		// flood on one connection does not take the room of the others.
		o.dropOldestLocked(metrics.DropInstanceBudget)
		latest = metrics.DropInstanceBudget
	}
	return latest, true
}

// droppedCounts returns the drops so far by reason, and their total.
func (o *outbox) droppedCounts() (map[string]uint64, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var total uint64
	var out map[string]uint64
	for k, v := range o.dropped {
		if out == nil {
			out = make(map[string]uint64, len(o.dropped))
		}
		out[k] = v
		total += v
	}
	return out, total
}

// next takes the oldest frame; ok is false when there is none (or the session is closing),
// and then the publisher stops. The frame's bytes stay held until done.
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
	o.inflight = frameCost(m)
	return m, true
}

// done releases a frame taken by next that was published or dropped for good.
func (o *outbox) done(m publish.Message, result outcome) {
	o.mu.Lock()
	o.inflight = 0
	o.releaseLocked(frameCost(m))
	var counts map[string]uint64
	reason := map[outcome]string{rejected: metrics.DropTooLarge, gaveUp: metrics.DropPublishFailed}[result]
	if reason != "" {
		o.countLocked(reason, 1)
		counts = o.reportLocked()
	}
	o.mu.Unlock()
	o.report(counts, reason)
}

// requeue puts back a frame the publisher could not publish before the session closed.
func (o *outbox) requeue(m publish.Message) {
	o.mu.Lock()
	o.inflight = 0
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
		if r := o.publish(o.ctx, m); r == interrupted {
			o.requeue(m) // flush tries once more
		} else {
			o.done(m, r)
		}
	}
}

// outcome is how a publish ended.
type outcome int

const (
	published   outcome = iota
	rejected            // the pub/sub refuses the frame for good (too large); not retried
	gaveUp              // every attempt failed for the retry timeout; dropped
	interrupted         // ctx ended before the frame was published
)

// attemptTimeout bounds one publish attempt.
const attemptTimeout = 10 * time.Second

// publishRetry is the wait after a failed publish: 50ms doubling to 5s.
var publishRetry = backoff.Schedule{Initial: 50 * time.Millisecond, Max: 5 * time.Second}

// publish retries m with backoff until it is accepted, refused for good, or ctx ends. An
// attempt in progress is not cut short by ctx's cancellation (only by its own timeout, or by
// ctx's deadline): cancelling a publish the component may already have accepted would publish
// the frame twice, but a deadline is a promise to the caller (a shutdown must end in time).
func (o *outbox) publish(ctx context.Context, m publish.Message) outcome {
	var failingSince time.Time
	for attempt := 1; ; attempt++ {
		timeout := attemptTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(d))
		}
		if timeout <= 0 {
			return interrupted
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		stop := context.AfterFunc(o.abandon, cancel)
		start := time.Now()
		err := o.pub.Publish(pctx, m)
		stop()
		cancel()
		o.metrics.Published(time.Since(start), err)
		if err == nil {
			return published
		}
		if publish.Permanent(err) {
			o.log.Warn("frame not published: the pub/sub refuses it for good", zap.String("topic", m.Topic), zap.Uint64("sequence", m.Seq),
				zap.Int("bytes", len(m.Data)), zap.Error(err))
			return rejected
		}
		if ctx.Err() != nil {
			return interrupted
		}
		if failingSince.IsZero() {
			failingSince = start
		} else if time.Since(failingSince) >= o.retryFor {
			o.log.Warn("frame not published: every attempt failed for the publish retry timeout; dropped", zap.String("topic", m.Topic),
				zap.Uint64("sequence", m.Seq), zap.Duration("retried_for", time.Since(failingSince)), zap.Error(err))
			return gaveUp
		}
		o.log.Warn("publish failed, retrying", zap.String("topic", m.Topic), zap.Uint64("sequence", m.Seq), zap.Error(err))
		if !backoff.Sleep(ctx, publishRetry.Delay(attempt)) {
			return interrupted
		}
	}
}

// flush publishes what is left until deadline (and within ctx), after the session's
// goroutines returned. What it cannot publish in time is dropped and counted (closed); every
// byte the outbox held is released when it returns.
func (o *outbox) flush(ctx context.Context, deadline time.Time) {
	o.abandonAt(deadline)
	defer o.abandonNow()
	fctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.mu.Unlock()
			return
		}
		m := o.queue[0]
		o.queue[0] = publish.Message{}
		o.queue = o.queue[1:]
		o.mu.Unlock()
		r := o.publish(fctx, m)
		if r != interrupted {
			o.done(m, r)
			continue
		}
		o.mu.Lock()
		o.releaseLocked(frameCost(m))
		n := 1
		for len(o.queue) > 0 {
			o.releaseLocked(frameCost(o.queue[0]))
			o.queue[0] = publish.Message{}
			o.queue = o.queue[1:]
			n++
		}
		o.countLocked(metrics.DropClosed, n)
		o.mu.Unlock()
		o.log.Warn("frames not published before the connection closed", zap.Int("frames", n))
		return
	}
}

// dropText describes drops for last_error: the latest reason first, then every count.
func dropText(counts map[string]uint64, latest string) string {
	var total uint64
	keys := make([]string, 0, len(counts))
	for k, v := range counts {
		total += v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	what := map[string]string{
		metrics.DropBufferFull:     "publish buffer full",
		metrics.DropInstanceBudget: "publish buffers of this instance full",
		metrics.DropTooLarge:       "frame too large for the pub/sub",
		metrics.DropClosed:         "connection closed before its frames were published",
		metrics.DropPublishFailed:  "publish failed for the retry timeout",
	}[latest]
	if what == "" {
		what = "frames dropped"
	}
	return fmt.Sprintf("%s: %d inbound frames dropped so far (%s)", what, total, strings.Join(parts, ", "))
}
