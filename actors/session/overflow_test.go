package session

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// eventRecorder keeps every event it was given (body and frames), optionally gated.
type eventRecorder struct {
	gatedPublisher
	mu     sync.Mutex
	events []*publish.Frames
}

func (r *eventRecorder) Publish(ctx context.Context, f *publish.Frames) error {
	if err := r.gatedPublisher.Publish(ctx, f); err != nil {
		return err
	}
	r.mu.Lock()
	r.events = append(r.events, f)
	r.mu.Unlock()
	return nil
}

func (r *eventRecorder) all() []*publish.Frames {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*publish.Frames(nil), r.events...)
}

// batchOf decodes a batch event's count and its elements' sequences.
func batchOf(t *testing.T, f *publish.Frames) (typ string, count int, seqs []string) {
	t.Helper()
	var ev struct {
		Type  string `json:"type"`
		Count int    `json:"count"`
		Data  []struct {
			Sequence string `json:"sequence"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(f.Body(), &ev))
	for _, e := range ev.Data {
		seqs = append(seqs, e.Sequence)
	}
	return ev.Type, ev.Count, seqs
}

// Ensure frames that wait while a publish is in progress go out together as one batch event,
// in order, cut at batch_max_frames, at batch_max_bytes and at a change of topic.
func TestBatchesCut(t *testing.T) {
	tests := []struct {
		name       string
		opts       PublishOptions
		frames     int
		size       int
		topicEvery int // a new topic every n frames (0: one topic)
		want       []int
	}{
		{"by frames", PublishOptions{BatchMaxFrames: 4}, 11, 10, 0, []int{1, 4, 4, 2}},
		// Each element is its data plus ~70 bytes of sequence and time: two fit in 300.
		{"by bytes", PublishOptions{BatchMaxFrames: 100, BatchMaxBytes: 300}, 7, 50, 0, []int{1, 2, 2, 2}},
		{"a frame above the byte limit goes alone", PublishOptions{BatchMaxFrames: 100, BatchMaxBytes: 100}, 3, 500, 0, []int{1, 1, 1}},
		{"by topic", PublishOptions{BatchMaxFrames: 100}, 9, 10, 3, []int{1, 3, 3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &eventRecorder{}
			o := newTestOutbox(t, DefaultConfig(), &budget{limit: 1 << 30}, pub)
			tt.opts.Topic = "t"
			o.setOptions(tt.opts)
			mk := func(seq int) publish.Message {
				m := frame(uint64(seq), tt.size)
				m.Data = []byte(fmt.Sprintf("%0*d", tt.size, seq))
				if tt.topicEvery > 0 {
					m.Topic = fmt.Sprint("t", (seq-2+tt.topicEvery)/tt.topicEvery)
				}
				return m
			}
			o.pushInFlight(t, &pub.gatedPublisher, mk(1)) // the first goes alone: nothing else waited
			for seq := 2; seq <= tt.frames; seq++ {
				o.push(mk(seq))
			}
			pub.setOpen()
			require.Eventually(t, func() bool { return len(pub.published()) == tt.frames }, 10*time.Second, time.Millisecond)
			var sizes []int
			next := 1
			for _, ev := range pub.all() {
				typ, count, seqs := batchOf(t, ev)
				assert.Equal(t, publish.BatchEventType, typ)
				assert.Len(t, seqs, count)
				for _, s := range seqs {
					assert.Equal(t, fmt.Sprint(next), s, "in sequence order")
					next++
				}
				for _, m := range ev.Msgs {
					assert.Equal(t, ev.Topic, m.Topic, "one topic per event")
				}
				sizes = append(sizes, count)
			}
			assert.Equal(t, tt.want, sizes)
			o.close(time.Second)
		})
	}
}

// Ensure batch_max_delay_ms holds a partial batch until the delay passed since its first frame
// (or until it is full), and with no delay an idle feed's frame is published at once.
func TestBatchDelay(t *testing.T) {
	for _, tt := range []struct {
		name  string
		delay time.Duration
		max   int
		push  int
		want  []int
	}{
		{"no delay: published at once, alone", 0, 100, 1, []int{1}},
		{"delay: a partial batch waits for the rest", 300 * time.Millisecond, 100, 5, []int{5}},
		{"a full batch does not wait", time.Hour, 3, 6, []int{3, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pub := &eventRecorder{}
			pub.setOpen()
			o := newTestOutbox(t, DefaultConfig(), &budget{limit: 1 << 30}, pub)
			o.setOptions(PublishOptions{Topic: "t", BatchMaxFrames: tt.max, BatchMaxDelay: tt.delay})
			start := time.Now()
			for seq := 1; seq <= tt.push; seq++ {
				m := frame(uint64(seq), 10)
				m.ReceivedAt = time.Now()
				o.push(m)
			}
			require.Eventually(t, func() bool { return len(pub.published()) == tt.push }, 10*time.Second, time.Millisecond)
			var sizes []int
			for _, ev := range pub.all() {
				sizes = append(sizes, len(ev.Msgs))
			}
			assert.Equal(t, tt.want, sizes)
			if tt.delay > 0 && tt.delay < time.Hour {
				assert.GreaterOrEqual(t, time.Since(start), tt.delay, "the partial batch waited for the delay")
			}
			o.close(time.Second)
		})
	}
}

// Ensure Backpressure never drops for lack of room: the pusher (the socket's reader) waits
// while the buffer is full, the pause is visible, and every frame is published in order.
func TestBackpressureWaitsInsteadOfDropping(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishBuffer = 4
	m := metrics.New(func() map[string]int { return nil })
	cfg.Metrics = m
	pub := &eventRecorder{}
	o := newTestOutbox(t, cfg, &budget{limit: 1 << 30}, pub)
	o.setOptions(PublishOptions{Topic: "t", Overflow: Backpressure})
	o.pushInFlight(t, &pub.gatedPublisher, frame(1, 10))
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for seq := uint64(2); seq <= 50; seq++ {
			o.push(frame(seq, 10))
		}
	}()
	require.Eventually(t, func() bool { since, _ := o.paused(); return !since.IsZero() }, 10*time.Second, time.Millisecond,
		"the reader pauses when the buffer is full")
	select {
	case <-pushed:
		t.Fatal("push returned while the buffer was full")
	default:
	}
	pub.setOpen()
	<-pushed
	require.Eventually(t, func() bool { return len(pub.published()) == 50 }, 10*time.Second, time.Millisecond)
	for i, seq := range pub.published() {
		require.Equal(t, uint64(i+1), seq, "every frame, in order")
	}
	_, dropped := o.droppedCounts()
	assert.Zero(t, dropped)
	since, total := o.paused()
	assert.True(t, since.IsZero(), "resumed")
	assert.Positive(t, total, "the pause is counted")
	o.close(time.Second)
}

// Ensure a reader paused by Backpressure is released when the session closes (the frame it
// held is counted closed), and when StartPublish switches the policy.
func TestBackpressureReleased(t *testing.T) {
	for _, tt := range []struct {
		name    string
		release func(o *testOutbox)
		reason  string
	}{
		{"by close", func(o *testOutbox) { o.cancel() }, metrics.DropClosed},
		{"by a policy that drops", func(o *testOutbox) { o.setOptions(PublishOptions{Topic: "t", Overflow: DropNewest}) }, metrics.DropBufferFull},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PublishBuffer = 1
			pub := &eventRecorder{}
			o := newTestOutbox(t, cfg, &budget{limit: 1 << 30}, pub)
			o.setOptions(PublishOptions{Topic: "t", Overflow: Backpressure})
			o.pushInFlight(t, &pub.gatedPublisher, frame(1, 10))
			o.push(frame(2, 10))
			done := make(chan struct{})
			go func() { defer close(done); o.push(frame(3, 10)) }()
			require.Eventually(t, func() bool { since, _ := o.paused(); return !since.IsZero() }, 10*time.Second, time.Millisecond)
			tt.release(o)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the paused reader was not released")
			}
			byReason, _ := o.droppedCounts()
			assert.Equal(t, map[string]uint64{tt.reason: 1}, byReason)
			pub.setOpen()
			o.close(time.Second)
		})
	}
}

// Ensure with Backpressure a failing publish is retried past the retry timeout (nothing is
// dropped as publish_failed), while the other policies give up.
func TestBackpressureRetriesWithoutEnd(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishRetryFor = 50 * time.Millisecond
	failing := true
	var mu sync.Mutex
	pub := &eventRecorder{}
	pub.fail = func(publish.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return fmt.Errorf("broker down")
		}
		return nil
	}
	pub.setOpen()
	o := newTestOutbox(t, cfg, &budget{limit: 1 << 30}, pub)
	o.setOptions(PublishOptions{Topic: "t", Overflow: Backpressure})
	o.push(frame(1, 10))
	require.Eventually(t, func() bool { return pub.tries(1) >= 4 }, 10*time.Second, time.Millisecond, "retried past the retry timeout")
	_, dropped := o.droppedCounts()
	assert.Zero(t, dropped)
	mu.Lock()
	failing = false
	mu.Unlock()
	require.Eventually(t, func() bool { return len(pub.published()) == 1 }, 10*time.Second, time.Millisecond)
	o.close(time.Second)
}
