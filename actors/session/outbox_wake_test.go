package session

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

func nowFrame(seq uint64, n int) publish.Message {
	m := frame(seq, n)
	m.ReceivedAt = time.Now()
	return m
}

// Ensure a publisher waiting for a partial batch (batch_max_delay_ms) publishes at once when
// the connection's buffer fills, instead of frames being dropped while it sleeps out the delay.
func TestFullBufferWakesBatchPublisher(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishBuffer = 10
	pub := &eventRecorder{}
	pub.setOpen()
	o := newTestOutbox(t, cfg, &budget{limit: 1 << 30}, pub)
	o.setOptions(PublishOptions{Topic: "t", BatchMaxFrames: 100, BatchMaxDelay: 5 * time.Second})
	// A long-lived session consumed setOptions' wake token long ago.
	select {
	case <-o.wake:
	default:
	}
	o.push(nowFrame(1, 10))
	require.Eventually(t, publisherWaitsForBatch, 10*time.Second, time.Millisecond)
	for seq := uint64(2); seq <= 10; seq++ { // the buffer is now full
		o.push(nowFrame(seq, 10))
	}
	start := time.Now()
	ok := assert.Eventually(t, func() bool { return len(pub.published()) > 0 }, 2*time.Second, time.Millisecond,
		"a full buffer should make the publisher publish at once, not after the 5s batch delay")
	if ok {
		t.Logf("published after %v", time.Since(start))
	}
	o.push(nowFrame(11, 10))
	_, total := o.droppedCounts()
	assert.Zero(t, total, "frame 11 is dropped as buffer_full although the publisher is idle")
	o.close(6 * time.Second)
}

// Ensure with a small --max-publish-bytes (64 KiB, the envelope reserve) batches leave room for
// their envelope: frames each publishable alone are never dropped as too_large together.
func TestSmallMaxPublishBytesDropsBatches(t *testing.T) {
	const limit = 64 << 10
	cfg := DefaultConfig()
	cfg.MaxPublishBytes = limit
	pub := publish.NewDapr(&sizeClient{}, "pubsub").WithMaxRequestBytes(limit)
	o := newTestOutbox(t, cfg, &budget{limit: 1 << 30}, pub)
	o.setOptions(PublishOptions{Topic: "t", BatchMaxFrames: 200, BatchMaxDelay: 5 * time.Second})
	for seq := uint64(1); seq <= 200; seq++ {
		m := nowFrame(seq, 1000)
		m.Binary = false
		for i := range m.Data {
			m.Data[i] = 'a'
		}
		o.push(m) // the 200th fills the batch and wakes the publisher
	}
	require.Eventually(t, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.held == 0
	}, 10*time.Second, time.Millisecond)
	by, _ := o.droppedCounts()
	assert.Zero(t, by[metrics.DropTooLarge], "1000-byte frames are each publishable; none should be dropped as too_large")
	o.close(time.Second)
}

// Ensure switching away from BACKPRESSURE also ends the endless retry of the event being
// published: the retry timeout applies again, so one event a broker never takes cannot block
// the connection's publishing until Disconnect.
func TestPolicyChangeEndsEndlessRetry(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PublishRetryFor = 100 * time.Millisecond
	pub := &gatedPublisher{fail: func(publish.Message) error { return errors.New("broker says no") }}
	pub.setOpen()
	o := newTestOutbox(t, cfg, &budget{limit: 1 << 30}, pub)
	o.setOptions(PublishOptions{Topic: "t", Overflow: Backpressure})
	o.push(nowFrame(1, 10))
	require.Eventually(t, func() bool { return pub.tries(1) >= 3 }, 10*time.Second, time.Millisecond)
	o.setOptions(PublishOptions{Topic: "t", Overflow: DropNewest})
	assert.Eventually(t, func() bool {
		by, _ := o.droppedCounts()
		return by[metrics.DropPublishFailed] == 1
	}, 15*time.Second, 10*time.Millisecond, "after leaving BACKPRESSURE the event should give up after --publish-retry-timeout")
	o.close(100 * time.Millisecond)
}

// publisherWaitsForBatch reports whether a publisher goroutine is parked in take's select.
func publisherWaitsForBatch() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, "(*outbox).take(") {
			return true
		}
	}
	return false
}
