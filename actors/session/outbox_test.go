package session

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/publish"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// gatedPublisher publishes nothing until opened; fail decides the error of an attempt (nil
// publishes). It records what it published and how often each sequence number was tried.
type gatedPublisher struct {
	gateOnce sync.Once
	gate     chan struct{} // closed when open
	mu       sync.Mutex
	open     bool
	fail     func(publish.Message) error
	done     []uint64
	attempts map[uint64]int
}

func (g *gatedPublisher) Publish(ctx context.Context, f *publish.Frames) error {
	m := f.Msgs[0]
	g.mu.Lock()
	if g.attempts == nil {
		g.attempts = map[uint64]int{}
	}
	for _, m := range f.Msgs {
		g.attempts[m.Seq]++
	}
	open, fail := g.open, g.fail
	g.mu.Unlock()
	if !open {
		select { // as a sidecar that does not answer, until it does
		case <-ctx.Done():
			return ctx.Err()
		case <-g.gateCh():
		}
	}
	if fail != nil {
		if err := fail(m); err != nil {
			return err
		}
	}
	g.mu.Lock()
	for _, m := range f.Msgs {
		g.done = append(g.done, m.Seq)
	}
	g.mu.Unlock()
	return nil
}

func (g *gatedPublisher) PublishEvent(context.Context, string, publish.Event) error { return nil }

func (g *gatedPublisher) gateCh() chan struct{} {
	g.gateOnce.Do(func() {
		if g.gate == nil {
			g.gate = make(chan struct{})
		}
	})
	return g.gate
}

func (g *gatedPublisher) setOpen() {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	close(g.gateCh())
}

func (g *gatedPublisher) published() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.done...)
}

func (g *gatedPublisher) tries(seq uint64) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempts[seq]
}

// testOutbox is an outbox as a session has it, with the session's reader count held (push
// may start the publisher only under it).
type testOutbox struct {
	*outbox
	cancel  context.CancelFunc
	wg      *sync.WaitGroup
	reports atomic.Int32
}

func newTestOutbox(t *testing.T, cfg Config, b *budget, pub publish.Publisher) *testOutbox {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wg := &sync.WaitGroup{}
	wg.Add(1) // the reader
	to := &testOutbox{cancel: cancel, wg: wg}
	to.outbox = newOutbox(cfg, b, pub, zap.NewNop(), func(map[string]uint64, string) { to.reports.Add(1) }, ctx, wg)
	return to
}

// close ends the outbox as a session's close does: the reader and publisher stop, then what
// is left gets grace to be published.
func (to *testOutbox) close(grace time.Duration) {
	deadline := time.Now().Add(grace)
	to.cancel()
	to.abandonAt(deadline)
	to.wg.Done()
	to.wg.Wait()
	to.flush(context.Background(), deadline)
}

func frame(seq uint64, n int) publish.Message {
	return publish.Message{ConnectionID: "c", Topic: "t", Seq: seq, Data: make([]byte, n)}
}

// pushInFlight pushes m and waits until the publisher is trying it, so that what happens to
// the frames pushed next does not depend on how fast the publisher goroutine starts.
func (to *testOutbox) pushInFlight(t *testing.T, pub *gatedPublisher, m publish.Message) {
	t.Helper()
	to.push(m)
	require.Eventually(t, func() bool { return pub.tries(m.Seq) > 0 }, 10*time.Second, time.Millisecond)
}

func (o *outbox) heldBytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held
}

// Ensure a connection's buffer is bounded by bytes: frames far below the frame count limit
// fill it, the overflow policy drops the newest or the oldest (buffer_full), the frames kept
// are published in order, and every byte is released afterwards.
func TestOutboxBoundedByBytes(t *testing.T) {
	for _, tt := range []struct {
		policy Overflow
		kept   []uint64 // after frame 1, which was in flight when the buffer filled
	}{
		{DropNewest, []uint64{2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{DropOldest, []uint64{92, 93, 94, 95, 96, 97, 98, 99, 100}},
	} {
		t.Run(fmt.Sprint(tt.policy), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PublishBuffer = 1024
			cfg.PublishBufferBytes = 10 * (1000 + frameOverhead)
			b := &budget{limit: 1 << 30}
			pub := &gatedPublisher{}
			o := newTestOutbox(t, cfg, b, pub)
			o.setOptions(PublishOptions{Topic: "t", Overflow: tt.policy})
			o.pushInFlight(t, pub, frame(1, 1000))
			for seq := uint64(2); seq <= 100; seq++ {
				o.push(frame(seq, 1000))
				require.LessOrEqual(t, o.heldBytes(), cfg.PublishBufferBytes, "frame %d", seq)
				require.Equal(t, o.heldBytes(), b.used.Load(), "the instance budget holds what the connection holds")
			}
			byReason, total := o.droppedCounts()
			assert.Equal(t, uint64(90), total, "100 frames, room for 10 (the one being published included)")
			assert.Equal(t, map[string]uint64{metrics.DropBufferFull: 90}, byReason)
			assert.Positive(t, o.reports.Load(), "drops are reported")
			assert.LessOrEqual(t, o.reports.Load(), int32(1), "reports are rate-limited")

			pub.setOpen()
			require.Eventually(t, func() bool { return len(pub.published()) == 10 }, 10*time.Second, time.Millisecond)
			got := pub.published()
			assert.Equal(t, uint64(1), got[0], "the frame in flight when the buffer filled is published")
			assert.Equal(t, tt.kept, got[1:], "the frames the policy keeps, in order")
			o.close(time.Second)
			assert.Zero(t, o.heldBytes())
			assert.Zero(t, b.used.Load(), "every byte is released")
		})
	}
}

// Ensure a single frame larger than the connection's byte budget is dropped at once (it can
// never fit), without displacing the frames that wait.
func TestOutboxFrameLargerThanBuffer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishBufferBytes = 4096
	b := &budget{limit: 1 << 30}
	pub := &gatedPublisher{}
	o := newTestOutbox(t, cfg, b, pub)
	o.pushInFlight(t, pub, frame(1, 100))
	o.push(frame(2, 100))
	o.push(frame(3, 5000))
	o.push(frame(4, 100))
	byReason, _ := o.droppedCounts()
	assert.Equal(t, map[string]uint64{metrics.DropBufferFull: 1}, byReason)
	pub.setOpen()
	require.Eventually(t, func() bool { return len(pub.published()) == 3 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, []uint64{1, 2, 4}, pub.published())
	o.close(time.Second)
	assert.Zero(t, b.used.Load())
}

// Ensure the instance budget bounds all connections together, and a connection that finds it
// full pays from its own frames (instance_budget), not from the others' (DropOldest; with
// DropNewest the frame that does not fit is dropped, see TestOverflowPolicies).
func TestOutboxInstanceBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishBufferBytes = 1 << 20
	cost := int64(1000 + frameOverhead)
	b := &budget{limit: 10 * cost}
	pubA, pubB := &gatedPublisher{}, &gatedPublisher{}
	a := newTestOutbox(t, cfg, b, pubA)
	a.setOptions(PublishOptions{Topic: "t", Overflow: DropOldest})
	a.pushInFlight(t, pubA, frame(1, 1000))
	for seq := uint64(2); seq <= 8; seq++ {
		a.push(frame(seq, 1000))
	}
	bo := newTestOutbox(t, cfg, b, pubB)
	bo.setOptions(PublishOptions{Topic: "t", Overflow: DropOldest})
	bo.pushInFlight(t, pubB, frame(1, 1000))
	for seq := uint64(2); seq <= 5; seq++ {
		bo.push(frame(seq, 1000))
		require.LessOrEqual(t, b.used.Load(), b.limit)
	}
	_, aDropped := a.droppedCounts()
	assert.Zero(t, aDropped, "the connection that filled the budget first keeps its frames")
	byReason, total := bo.droppedCounts()
	assert.Equal(t, uint64(3), total, "2 bytes-worth of frames fit; the 3rd, 4th, 5th each displace an older one")
	assert.Equal(t, map[string]uint64{metrics.DropInstanceBudget: 3}, byReason)
	assert.Equal(t, b.limit, b.used.Load())

	// A connection with nothing waiting drops the frame itself.
	c := newTestOutbox(t, cfg, b, &gatedPublisher{})
	c.push(frame(1, 1000))
	byReason, _ = c.droppedCounts()
	assert.Equal(t, map[string]uint64{metrics.DropInstanceBudget: 1}, byReason)

	pubA.setOpen()
	pubB.setOpen()
	require.Eventually(t, func() bool { return len(pubA.published()) == 8 && len(pubB.published()) == 2 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, []uint64{1, 5}, pubB.published(), "the frame in flight, then the newest")
	for _, o := range []*testOutbox{a, bo, c} {
		o.close(time.Second)
	}
	assert.Zero(t, b.used.Load(), "every byte is released")
}

// Ensure a frame the pub/sub refuses as too large is tried once, counted (too_large) and
// reported, and the frames behind it are published.
func TestOutboxTooLargeIsNotRetried(t *testing.T) {
	cfg := DefaultConfig()
	b := &budget{limit: 1 << 30}
	pub := &gatedPublisher{open: true, fail: func(m publish.Message) error {
		if len(m.Data) > 500 {
			return fmt.Errorf("publish to pubsub/t: %w: %d bytes", publish.ErrTooLarge, len(m.Data))
		}
		return nil
	}}
	o := newTestOutbox(t, cfg, b, pub)
	o.push(frame(1, 10))
	o.push(frame(2, 1000))
	o.push(frame(3, 10))
	require.Eventually(t, func() bool { return len(pub.published()) == 2 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, []uint64{1, 3}, pub.published())
	assert.Equal(t, 1, pub.tries(2), "a too-large frame is not retried")
	byReason, _ := o.droppedCounts()
	assert.Equal(t, map[string]uint64{metrics.DropTooLarge: 1}, byReason)
	assert.Equal(t, int32(1), o.reports.Load())
	o.close(time.Second)
	assert.Zero(t, b.used.Load())
}

// Ensure a frame that a broker refuses with an error not recognised as "too large" is
// retried only for the retry timeout and then dropped (publish_failed): it cannot stop every
// later frame of its connection for good.
func TestOutboxGivesUpAfterRetryTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishRetryFor = 300 * time.Millisecond
	b := &budget{limit: 1 << 30}
	pub := &gatedPublisher{open: true, fail: func(m publish.Message) error {
		if m.Seq == 2 {
			return fmt.Errorf("publish to pubsub/t: rpc error: code = Unknown desc = kafka: message too large for the broker")
		}
		return nil
	}}
	o := newTestOutbox(t, cfg, b, pub)
	o.push(frame(1, 10))
	o.push(frame(2, 10))
	o.push(frame(3, 10))
	require.Eventually(t, func() bool { return len(pub.published()) == 2 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, []uint64{1, 3}, pub.published(), "order kept, the refused frame skipped")
	assert.Greater(t, pub.tries(2), 1, "a failure not known to be permanent is retried first")
	byReason, _ := o.droppedCounts()
	assert.Equal(t, map[string]uint64{metrics.DropPublishFailed: 1}, byReason)
	o.close(time.Second)
	assert.Zero(t, b.used.Load())
}

// Ensure the budget never leaks and never goes negative, whatever happens to frames: many
// connections pushing concurrently into a small shared budget, publishes failing at random
// (retryable) or for good, sessions closing with frames left.
func TestBudgetNeverLeaks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishBuffer = 8
	cfg.PublishBufferBytes = 6000
	b := &budget{limit: 20000}
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 1))
			var mu sync.Mutex
			pub := &gatedPublisher{open: true, fail: func(m publish.Message) error {
				mu.Lock()
				defer mu.Unlock()
				switch r.IntN(4) {
				case 0:
					return fmt.Errorf("%w", publish.ErrTooLarge)
				case 1:
					return fmt.Errorf("pub/sub down")
				}
				return nil
			}}
			o := newTestOutbox(t, cfg, b, pub)
			for seq := range uint64(200) {
				mu.Lock()
				n := r.IntN(3000)
				mu.Unlock()
				o.push(frame(seq, n))
				if u := b.used.Load(); u < 0 || u > b.limit {
					t.Errorf("budget used %d, limit %d", u, b.limit)
				}
			}
			o.close(time.Duration(c%3) * 20 * time.Millisecond) // some give up with frames left
			if h := o.heldBytes(); h != 0 {
				t.Errorf("connection %d holds %d bytes after close", c, h)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, b.used.Load(), "every byte is released")
	assert.Panics(t, func() { b.release(1) }, "releasing what was not reserved is a bug, not a silent negative")
}

// Ensure flush gives up at its bound when every publish fails, and counts what it could not
// publish as closed: a shutdown never waits longer than it was given.
func TestFlushIsBounded(t *testing.T) {
	cfg := DefaultConfig()
	b := &budget{limit: 1 << 30}
	pub := &gatedPublisher{} // never answers
	o := newTestOutbox(t, cfg, b, pub)
	for seq := uint64(1); seq <= 5; seq++ {
		o.push(frame(seq, 100))
	}
	start := time.Now()
	o.close(200 * time.Millisecond)
	assert.Less(t, time.Since(start), 2*time.Second)
	byReason, _ := o.droppedCounts()
	assert.Equal(t, map[string]uint64{metrics.DropClosed: 5}, byReason)
	assert.Zero(t, b.used.Load())
}

// Ensure the default inbound frame limit and the default publish limit agree: the largest
// binary frame the service reads (and a JSON text frame as large) makes an event that the
// publisher sends, with the longest connection id and topic and a long URL.
func TestDefaultReadLimitIsPublishable(t *testing.T) {
	client := &sizeClient{}
	d := publish.NewDapr(client, "pubsub")
	id, topic := strings.Repeat("i", 128), strings.Repeat("t", 256)
	url := "wss://" + strings.Repeat("h", 8000) + "/path"
	jsonFrame := []byte(`"` + strings.Repeat("a", DefaultReadLimit-2) + `"`)
	for _, m := range []publish.Message{
		{ConnectionID: id, URL: url, Topic: topic, Data: make([]byte, DefaultReadLimit), Binary: true, Seq: 1 << 62, ReceivedAt: time.Now()},
		{ConnectionID: id, URL: url, Topic: topic, Data: jsonFrame, Seq: 1 << 62, ReceivedAt: time.Now()},
	} {
		require.NoError(t, d.Publish(context.Background(), publish.Single(m)))
		// …and alone in a batch event, as a batching connection publishes it.
		bb := publish.NewBatchBuilder(publish.DefaultMaxRequestBytes - publish.EnvelopeReserve)
		require.True(t, bb.Add(m))
		require.NoError(t, d.Publish(context.Background(), bb.Frames()))
	}
	assert.Equal(t, 4, client.calls)
	// A binary frame a reserve larger is not.
	err := d.Publish(context.Background(), publish.Single(publish.Message{ConnectionID: id, URL: url, Topic: topic, Data: make([]byte, DefaultReadLimit+publish.EnvelopeReserve), Binary: true}))
	assert.ErrorIs(t, err, publish.ErrTooLarge)
	assert.Equal(t, 4, client.calls, "a too-large event never reaches the sidecar")
}

type sizeClient struct{ calls int }

func (c *sizeClient) PublishEvent(context.Context, string, string, any, ...dapr.PublishEventOption) error {
	c.calls++
	return nil
}

// Ensure a shutdown whose ctx has no deadline, while the pub/sub answers no publish, returns
// within ShutdownFlush (it used to retry for an hour), counts the frames it could not publish
// as closed and releases every byte of the instance budget.
func TestShutdownWithoutDeadlineIsBounded(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	cfg := DefaultConfig()
	cfg.ShutdownFlush = 300 * time.Millisecond
	pub := &gatedPublisher{} // never answers
	r := NewRegistry(cfg, pub, nil, "i", zap.NewNop())
	r.Start()
	s, err := r.Open(context.Background(), Spec{ID: "c", URL: ws.URL("/burst?n=50"), Publish: PublishOptions{Topic: "t"}}, false)
	require.NoError(t, err)
	require.Eventually(t, func() bool { // all 50 read: one in flight, 49 waiting
		s.outbox.mu.Lock()
		defer s.outbox.mu.Unlock()
		return len(s.outbox.queue) == 49
	}, 10*time.Second, time.Millisecond)
	require.Positive(t, r.BufferedBytes())
	start := time.Now()
	r.Shutdown(context.Background())
	assert.Less(t, time.Since(start), 3*time.Second, "Shutdown is bounded by ShutdownFlush")
	assert.Zero(t, r.BufferedBytes(), "every byte is released")
	assert.Equal(t, uint64(50), s.Snapshot().DroppedByReason[metrics.DropClosed], "the 50 frames never published are counted")
}
