package actors

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// gatedDirectory is a directory whose Locate of a "slow-" id waits until released, and which
// counts the Locates in flight.
type gatedDirectory struct {
	fakeDirectory
	release  chan struct{}
	inFlight atomic.Int32
	peak     atomic.Int32
	calls    sync.Map // id → *atomic.Int32
}

func (d *gatedDirectory) Locate(ctx context.Context, id string) (ConnectionInfo, error) {
	n := d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	for {
		p := d.peak.Load()
		if n <= p || d.peak.CompareAndSwap(p, n) {
			break
		}
	}
	c, _ := d.calls.LoadOrStore(id, new(atomic.Int32))
	c.(*atomic.Int32).Add(1)
	if len(id) > 5 && id[:5] == "slow-" {
		select {
		case <-d.release:
		case <-ctx.Done():
		}
	}
	return ConnectionInfo{InstanceAddr: wdSelf}, nil
}

// A shard whose reminder fires while another shard's round is still re-establishing
// connections is handled at once, not after that round; the Locates of all rounds together
// stay within the bound; an id two rounds both see is located once.
func TestWatchdogRoundsRunSideBySide(t *testing.T) {
	dir := &gatedDirectory{fakeDirectory: fakeDirectory{holders: map[string]string{}, shards: map[string]bool{}},
		release: make(chan struct{})}
	const bound = 6
	w := &watchdog{self: wdSelf, interval: time.Minute, dir: dir, peers: &fakeHeld{asked: map[string][]string{}}, log: zap.NewNop(),
		holds:   func(string) bool { return false },
		pending: map[string]map[string]string{}, unreachable: map[string]time.Time{}, wake: make(chan struct{}, 1),
		locating: map[string]bool{}, active: map[string]bool{}, sem: make(chan struct{}, bound)}
	w.start()
	defer w.shutdown()

	// Shard A: 4 connections whose Locate hangs, one of them listed by both shards.
	slow := map[string]string{"slow-shared": wdB}
	for i := range 3 {
		slow[fmt.Sprintf("slow-%d", i)] = wdB
	}
	w.submit("A", slow)
	require.Eventually(t, func() bool { return dir.inFlight.Load() == 4 }, 5*time.Second, time.Millisecond,
		"shard A's round should be locating its slow connections")

	// Shard B fires meanwhile: its 20 connections come back while A's round still waits.
	fast := map[string]string{"slow-shared": wdB}
	for i := range 20 {
		fast[fmt.Sprintf("fast-%d", i)] = wdB
	}
	w.submit("B", fast)
	require.Eventually(t, func() bool {
		for i := range 20 {
			if _, ok := dir.calls.Load(fmt.Sprintf("fast-%d", i)); !ok {
				return false
			}
		}
		return true
	}, 5*time.Second, time.Millisecond, "shard B waited for shard A's round")
	close(dir.release)
	require.Eventually(t, func() bool { return dir.inFlight.Load() == 0 }, 5*time.Second, time.Millisecond)

	assert.LessOrEqual(t, dir.peak.Load(), int32(bound), "Locates in flight across rounds")
	c, ok := dir.calls.Load("slow-shared")
	require.True(t, ok)
	assert.Equal(t, int32(1), c.(*atomic.Int32).Load(), "an id both rounds saw is located once")
}

// recordGate is a directory whose SetHolders waits until released.
type recordGate struct {
	gatedDirectory
	record chan struct{}
}

func (d *recordGate) SetHolders(ctx context.Context, shard string, h map[string]string) error {
	select {
	case <-d.record:
	case <-ctx.Done():
	}
	return d.gatedDirectory.SetHolders(ctx, shard, h)
}

// A shard's next round waits for its current one, and the snapshots read meanwhile (naming
// the dead holder still) are dropped: a connection a round has re-established is not located
// again before its new holder is recorded. After an instance holding thousands died, repeated
// Locates of those already back took the bound from those still waiting.
func TestWatchdogDoesNotLocateWhatItRevivedAgain(t *testing.T) {
	dir := &recordGate{gatedDirectory: gatedDirectory{fakeDirectory: fakeDirectory{holders: map[string]string{}, shards: map[string]bool{}},
		release: make(chan struct{})}, record: make(chan struct{})}
	w := &watchdog{self: wdSelf, interval: time.Minute, dir: dir, peers: &fakeHeld{asked: map[string][]string{}}, log: zap.NewNop(),
		holds:   func(string) bool { return false },
		pending: map[string]map[string]string{}, unreachable: map[string]time.Time{}, wake: make(chan struct{}, 1),
		locating: map[string]bool{}, active: map[string]bool{}, sem: make(chan struct{}, 4)}
	w.start()
	defer w.shutdown()
	members := map[string]string{"a": wdB, "b": wdB}
	w.submit("S", members)
	require.Eventually(t, func() bool {
		_, a := dir.calls.Load("a")
		_, b := dir.calls.Load("b")
		return a && b
	}, 5*time.Second, time.Millisecond, "the first round located both and waits to record them")
	for range 3 { // the shard's reminder fires again meanwhile, naming the dead holder still
		w.submit("S", members)
	}
	close(dir.record)
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.active) == 0 && len(w.pending) == 0
	}, 5*time.Second, time.Millisecond)
	held := w.peers.(*fakeHeld)
	held.mu.Lock()
	assert.Len(t, held.asked[wdB], 2, "one round checked the shard: the snapshots read meanwhile were stale")
	held.mu.Unlock()
	for _, id := range []string{"a", "b"} {
		c, ok := dir.calls.Load(id)
		require.True(t, ok)
		assert.Equal(t, int32(1), c.(*atomic.Int32).Load(), "%s located once", id)
	}
}
