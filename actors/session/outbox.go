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

// Overflow is what a connection does with an inbound frame its full publish buffer cannot take.
type Overflow int

// Overflow policies (StartPublishRequest.overflow).
const (
	// DropNewest drops the frame that does not fit. The default.
	DropNewest Overflow = iota
	// DropOldest drops the oldest waiting frames to make room.
	DropOldest
	// Backpressure stops reading the socket until the frame fits; nothing is dropped for lack
	// of room, and a failing publish is retried without end.
	Backpressure
)

func (o Overflow) String() string {
	switch o {
	case DropOldest:
		return "DROP_OLDEST"
	case Backpressure:
		return "BACKPRESSURE"
	}
	return "DROP_NEWEST"
}

// PublishOptions are how a connection publishes its inbound frames (StartPublish).
type PublishOptions struct {
	// Topic is the pub/sub topic; "" does not publish.
	Topic string
	// BatchMaxFrames above 1 publishes waiting frames together as batch events of at most this
	// many frames; 0 or 1 publishes one event per frame.
	BatchMaxFrames int
	// BatchMaxBytes bounds a batch event's data; 0 (or more than the pub/sub accepts): what the
	// pub/sub accepts (Config.MaxPublishBytes less publish.EnvelopeReserve).
	BatchMaxBytes int
	// BatchMaxDelay is how long a partial batch may wait for more frames; 0 does not wait.
	BatchMaxDelay time.Duration
	// IncludeReplies publishes the frames that answered a Send too.
	IncludeReplies bool
	// Overflow is what happens when the buffer is full.
	Overflow Overflow
}

func (p PublishOptions) batching() bool { return p.BatchMaxFrames > 1 }

// outbox is a session's bounded buffer of frames waiting to be published, in arrival order.
// A publisher goroutine runs only while frames wait (a connection that does not publish costs
// no goroutine); it publishes one event at a time (one frame, or a batch of the frames waiting)
// and retries a failed publish with backoff, so order is kept. The buffer is bounded by frames
// (limit) and by bytes, per connection (limitBytes) and per registry (budget); when a bound is
// reached the overflow policy drops the new frame, drops the oldest, or makes the reader wait
// (backpressure). An event the pub/sub refuses as too large is dropped, not retried.
type outbox struct {
	pub        publish.Publisher
	log        *zap.Logger
	limit      int
	limitBytes int64
	maxEvent   int           // the largest batch data the pub/sub accepts
	retryFor   time.Duration // how long one event's publish is retried (not with Backpressure)
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
	// wake tells a publisher waiting for a batch to fill, and a reader paused by backpressure,
	// that something changed (frames came, room was made, the options changed).
	wake  chan struct{}
	space chan struct{}

	mu          sync.Mutex
	opts        PublishOptions
	queue       []publish.Message
	held        int64 // bytes of the queue and of the frames being published, all reserved from budget
	inflight    int64 // bytes of the frames being published (part of held)
	dropped     map[string]uint64
	lastDrop    time.Time
	running     bool
	pausedSince time.Time     // zero unless the reader waits for room
	pausedTotal time.Duration // ended pauses
}

func newOutbox(cfg Config, b *budget, pub publish.Publisher, log *zap.Logger, onDrop func(map[string]uint64, string), ctx context.Context, wg *sync.WaitGroup) *outbox {
	abandon, abandonNow := context.WithCancel(context.Background())
	// A batch's data leaves room for its envelope: the reserve, or half of a small limit.
	maxEvent := cfg.MaxPublishBytes - min(publish.EnvelopeReserve, cfg.MaxPublishBytes/2)
	return &outbox{pub: pub, log: log, limit: cfg.PublishBuffer, limitBytes: cfg.PublishBufferBytes, maxEvent: maxEvent,
		retryFor: cfg.PublishRetryFor, budget: b, onDrop: onDrop, ctx: ctx, abandon: abandon, abandonNow: abandonNow, wg: wg,
		metrics: cfg.Metrics, dropped: map[string]uint64{}, wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// setOptions changes how frames are published from now on.
func (o *outbox) setOptions(p PublishOptions) {
	o.mu.Lock()
	o.opts = p
	o.mu.Unlock()
	signal(o.wake)
	signal(o.space)
}

// paused reports since when the reader has waited for room (zero if it does not) and the
// time paused in all, the current pause included.
func (o *outbox) paused() (since time.Time, total time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	total = o.pausedTotal
	if !o.pausedSince.IsZero() {
		total += time.Since(o.pausedSince)
	}
	return o.pausedSince, total
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
// With Backpressure it returns only when m is queued or the session closes.
func (o *outbox) push(m publish.Message) {
	cost := frameCost(m)
	o.mu.Lock()
	var latest string
	var ok bool
	if o.opts.Overflow == Backpressure {
		latest, ok = o.waitLocked(cost)
	} else {
		latest, ok = o.admitLocked(cost, o.opts.Overflow)
	}
	var counts map[string]uint64
	if latest != "" {
		counts = o.reportLocked()
	}
	if !ok {
		wake := o.batchReadyLocked()
		o.mu.Unlock()
		if wake {
			signal(o.wake)
		}
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
	full := o.batchReadyLocked()
	o.mu.Unlock()
	o.report(counts, latest)
	if full {
		signal(o.wake)
	}
	if start {
		go o.run()
	}
}

// batchReadyLocked reports whether a publisher waiting for a fuller batch should stop waiting:
// the batch is full by frames or bytes, or the buffer is (frames would be dropped, or the
// reader paused, while it waits).
func (o *outbox) batchReadyLocked() bool {
	return o.opts.batching() && (len(o.queue) >= o.opts.BatchMaxFrames || o.held-o.inflight >= int64(o.batchLimit(o.opts)) ||
		!o.fitsLocked(frameOverhead) || !o.pausedSince.IsZero())
}

// fitsLocked reports whether a frame of cost bytes fits the connection's buffer as it is.
func (o *outbox) fitsLocked(cost int64) bool {
	return len(o.queue) < o.limit && o.held+cost <= o.limitBytes
}

// admitLocked makes room for a frame of cost bytes as the policy says and reserves its bytes
// from the budget. ok false: the frame itself is dropped. latest is the reason of the last
// drop it made ("" for none).
func (o *outbox) admitLocked(cost int64, policy Overflow) (latest string, ok bool) {
	if policy == DropNewest {
		if !o.fitsLocked(cost) {
			o.countLocked(metrics.DropBufferFull, 1)
			return metrics.DropBufferFull, false
		}
		if !o.budget.reserve(cost) {
			o.countLocked(metrics.DropInstanceBudget, 1)
			return metrics.DropInstanceBudget, false
		}
		return "", true
	}
	if o.inflight+cost > o.limitBytes { // it cannot fit even with every waiting frame gone: they stay
		o.countLocked(metrics.DropBufferFull, 1)
		return metrics.DropBufferFull, false
	}
	for len(o.queue) > 0 && !o.fitsLocked(cost) {
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

// budgetPoll is how often a paused reader looks at the instance budget, which other
// connections' publishers free without telling this one.
const budgetPoll = 20 * time.Millisecond

// waitLocked (Backpressure) waits, not reading the socket, until a frame of cost bytes fits
// and its bytes are reserved. A frame larger than the whole buffer is taken when nothing else
// is held. ok false: the session closed first (the frame is counted closed), or the frame is
// larger than the instance budget itself (instance_budget). Call with o.mu held; it is held
// again on return.
func (o *outbox) waitLocked(cost int64) (latest string, ok bool) {
	if cost > o.budget.limit {
		o.countLocked(metrics.DropInstanceBudget, 1)
		return metrics.DropInstanceBudget, false
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
		if !o.pausedSince.IsZero() {
			d := time.Since(o.pausedSince)
			o.pausedTotal += d
			o.pausedSince = time.Time{}
			o.metrics.Resumed(d)
		}
	}()
	for {
		if (o.fitsLocked(cost) || o.held == 0) && o.budget.reserve(cost) {
			return "", true
		}
		if o.ctx.Err() != nil {
			o.countLocked(metrics.DropClosed, 1)
			return metrics.DropClosed, false
		}
		if o.opts.Overflow != Backpressure { // StartPublish changed the policy meanwhile
			return o.admitLocked(cost, o.opts.Overflow)
		}
		if o.pausedSince.IsZero() {
			o.pausedSince = time.Now()
			o.metrics.Paused()
			o.log.Debug("publish buffer full: not reading the socket until there is room")
		}
		o.mu.Unlock()
		signal(o.wake) // a publisher waiting for a fuller batch must not wait now
		if t == nil {
			t = time.NewTimer(budgetPoll)
		} else {
			t.Reset(budgetPoll)
		}
		select {
		case <-o.space:
		case <-t.C:
		case <-o.ctx.Done():
		}
		o.mu.Lock()
	}
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

// take removes the frames of the next event from the queue; their bytes stay held (in flight)
// until done or giveBack. Without batching that is the oldest frame. With batching it is the
// oldest frames of one topic, up to the batch's frame and byte limits, after waiting up to the
// batch delay (measured from the oldest frame's arrival) for a partial batch to fill. ok false:
// nothing to publish (or the session is closing, unless flushing): the publisher stops.
func (o *outbox) take(flushing bool) (ms []publish.Message, opts PublishOptions, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		if len(o.queue) == 0 || (!flushing && o.ctx.Err() != nil) {
			if !flushing {
				o.running = false
			}
			return nil, o.opts, false
		}
		opts = o.opts
		if !opts.batching() {
			break
		}
		wait := time.Until(o.queue[0].ReceivedAt.Add(opts.BatchMaxDelay))
		if flushing || wait <= 0 || o.batchReadyLocked() {
			break
		}
		o.mu.Unlock()
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		select {
		case <-o.wake:
		case <-t.C:
		case <-o.ctx.Done():
		}
		o.mu.Lock()
	}
	n, size := 1, len(o.queue[0].Data)
	if opts.batching() {
		limit := o.batchLimit(opts)
		for n < len(o.queue) && n < opts.BatchMaxFrames && o.queue[n].Topic == o.queue[0].Topic && size+len(o.queue[n].Data) <= limit {
			size += len(o.queue[n].Data)
			n++
		}
	}
	ms = make([]publish.Message, n)
	copy(ms, o.queue[:n])
	clear(o.queue[:n])
	o.queue = o.queue[n:]
	for _, m := range ms {
		o.inflight += frameCost(m)
	}
	return ms, opts, true
}

// batchLimit is the most bytes of a batch event's data.
func (o *outbox) batchLimit(opts PublishOptions) int {
	if opts.BatchMaxBytes > 0 && opts.BatchMaxBytes < o.maxEvent {
		return opts.BatchMaxBytes
	}
	return o.maxEvent
}

// build makes the event of frames taken: a single-frame event, or a batch event of as many of
// them as fit its byte limit; rest are the frames that did not fit.
func (o *outbox) build(ms []publish.Message, opts PublishOptions) (ev *publish.Frames, rest []publish.Message) {
	if !opts.batching() {
		return publish.Single(ms[0]), ms[1:]
	}
	b := publish.NewBatchBuilder(o.batchLimit(opts))
	for _, m := range ms {
		if !b.Add(m) {
			break
		}
	}
	return b.Frames(), ms[b.Len():]
}

// giveBack puts frames taken but not published back at the head of the queue, in order.
func (o *outbox) giveBack(ms []publish.Message) {
	if len(ms) == 0 {
		return
	}
	o.mu.Lock()
	for _, m := range ms {
		o.inflight -= frameCost(m)
	}
	o.queue = append(append(make([]publish.Message, 0, len(ms)+len(o.queue)), ms...), o.queue...)
	o.mu.Unlock()
}

// done releases frames taken by take that were published or dropped for good.
func (o *outbox) done(ms []publish.Message, result outcome) {
	o.mu.Lock()
	for _, m := range ms {
		c := frameCost(m)
		o.inflight -= c
		o.releaseLocked(c)
	}
	var counts map[string]uint64
	reason := map[outcome]string{rejected: metrics.DropTooLarge, gaveUp: metrics.DropPublishFailed}[result]
	if reason != "" {
		o.countLocked(reason, len(ms))
		counts = o.reportLocked()
	} else {
		o.metrics.PublishedFrames(len(ms))
	}
	o.mu.Unlock()
	signal(o.space)
	o.report(counts, reason)
}

func (o *outbox) run() {
	defer o.wg.Done()
	for {
		ms, opts, ok := o.take(false)
		if !ok {
			return
		}
		ev, rest := o.build(ms, opts)
		o.giveBack(rest)
		if r := o.publish(o.ctx, ev, o.backpressure); r == interrupted {
			o.giveBack(ev.Msgs) // flush tries once more
		} else {
			o.done(ev.Msgs, r)
		}
	}
}

// outcome is how a publish ended.
type outcome int

const (
	published   outcome = iota
	rejected            // the pub/sub refuses the event for good (too large); not retried
	gaveUp              // every attempt failed for the retry timeout; dropped
	interrupted         // ctx ended before the event was published
)

// attemptTimeout bounds one publish attempt.
const attemptTimeout = 10 * time.Second

// publishRetry is the wait after a failed publish: 50ms doubling to 5s.
var publishRetry = backoff.Schedule{Initial: 50 * time.Millisecond, Max: 5 * time.Second}

// backpressure reports whether the connection publishes with Backpressure now.
func (o *outbox) backpressure() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opts.Overflow == Backpressure
}

// publish retries ev with backoff until it is accepted, refused for good, or ctx ends; unless
// endless says so (asked at each failure: the policy may change), it gives up after the retry
// timeout. An attempt in progress is not cut short by
// ctx's cancellation (only by its own timeout, or by ctx's deadline): cancelling a publish the
// component may already have accepted would publish the frames twice, but a deadline is a
// promise to the caller (a shutdown must end in time).
func (o *outbox) publish(ctx context.Context, ev *publish.Frames, endless func() bool) outcome {
	var failingSince time.Time
	first, last := ev.Msgs[0].Seq, ev.Msgs[len(ev.Msgs)-1].Seq
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
		err := o.pub.Publish(pctx, ev)
		stop()
		cancel()
		o.metrics.Published(time.Since(start), err)
		if err == nil {
			return published
		}
		if publish.Permanent(err) {
			o.log.Warn("frames not published: the pub/sub refuses the event for good", zap.String("topic", ev.Topic),
				zap.Uint64("first_sequence", first), zap.Uint64("last_sequence", last), zap.Int("bytes", len(ev.Body())), zap.Error(err))
			return rejected
		}
		if ctx.Err() != nil {
			return interrupted
		}
		if failingSince.IsZero() {
			failingSince = start
		} else if time.Since(failingSince) >= o.retryFor && !endless() {
			o.log.Warn("frames not published: every attempt failed for the publish retry timeout; dropped", zap.String("topic", ev.Topic),
				zap.Uint64("first_sequence", first), zap.Uint64("last_sequence", last), zap.Duration("retried_for", time.Since(failingSince)), zap.Error(err))
			return gaveUp
		}
		o.log.Warn("publish failed, retrying", zap.String("topic", ev.Topic), zap.Uint64("first_sequence", first), zap.Uint64("last_sequence", last), zap.Error(err))
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
		ms, opts, ok := o.take(true)
		if !ok {
			return
		}
		ev, rest := o.build(ms, opts)
		o.giveBack(rest)
		r := o.publish(fctx, ev, func() bool { return false })
		if r != interrupted {
			o.done(ev.Msgs, r)
			continue
		}
		o.giveBack(ev.Msgs)
		o.mu.Lock()
		n := len(o.queue)
		for len(o.queue) > 0 {
			o.releaseLocked(frameCost(o.queue[0]))
			o.queue[0] = publish.Message{}
			o.queue = o.queue[1:]
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
