package ratelimit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/ratelimit"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type step struct {
	advance  time.Duration // moved before the call
	maxWait  time.Duration
	unreserv bool // call Unreserve instead of Reserve
	wait     time.Duration
	ok       bool
}

// Ensure the bucket lets a burst through at once, then spaces callers by 1/rate, refuses
// those who cannot wait long enough without taking a token, and gives tokens back.
func TestReserve(t *testing.T) {
	forever := ratelimit.Forever
	cases := []struct {
		name      string
		perSecond float64
		burst     int
		steps     []step
	}{
		{name: "burst then spaced", perSecond: 20, burst: 5, steps: []step{
			{maxWait: forever, ok: true}, {maxWait: forever, ok: true}, {maxWait: forever, ok: true},
			{maxWait: forever, ok: true}, {maxWait: forever, ok: true},
			{maxWait: forever, wait: 50 * time.Millisecond, ok: true},
			{maxWait: forever, wait: 100 * time.Millisecond, ok: true},
		}},
		{name: "burst 0 is 1", perSecond: 10, burst: 0, steps: []step{
			{maxWait: forever, ok: true},
			{maxWait: forever, wait: 100 * time.Millisecond, ok: true},
		}},
		{name: "refused takes nothing", perSecond: 10, burst: 1, steps: []step{
			{maxWait: 0, ok: true},
			{maxWait: 0, wait: 100 * time.Millisecond, ok: false},
			{maxWait: 99 * time.Millisecond, wait: 100 * time.Millisecond, ok: false},
			{maxWait: 100 * time.Millisecond, wait: 100 * time.Millisecond, ok: true},
		}},
		{name: "tokens refill up to burst only", perSecond: 10, burst: 2, steps: []step{
			{maxWait: 0, ok: true}, {maxWait: 0, ok: true},
			{advance: time.Hour, maxWait: 0, ok: true}, {maxWait: 0, ok: true},
			{maxWait: 0, wait: 100 * time.Millisecond, ok: false},
		}},
		{name: "time earns tokens", perSecond: 4, burst: 1, steps: []step{
			{maxWait: 0, ok: true},
			{advance: 100 * time.Millisecond, maxWait: 0, wait: 150 * time.Millisecond, ok: false},
			{advance: 150 * time.Millisecond, maxWait: 0, ok: true},
		}},
		{name: "unreserve gives the token back", perSecond: 1, burst: 1, steps: []step{
			{maxWait: 0, ok: true},
			{maxWait: forever, wait: time.Second, ok: true},
			{unreserv: true},
			{maxWait: forever, wait: time.Second, ok: true},
			{unreserv: true}, {unreserv: true}, {unreserv: true}, // never above burst
			{maxWait: 0, ok: true},
			{maxWait: 0, wait: time.Second, ok: false},
		}},
		{name: "tiny rate does not overflow", perSecond: 1e-300, burst: 1, steps: []step{
			{maxWait: 0, ok: true},
			{maxWait: forever, wait: forever, ok: true},
		}},
		{name: "top rate", perSecond: ratelimit.MaxPerSecond, burst: 1, steps: []step{
			{maxWait: 0, ok: true},
			{maxWait: forever, wait: time.Microsecond, ok: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1000, 0)}
			b := ratelimit.New(tc.perSecond, tc.burst, c.now)
			for i, s := range tc.steps {
				c.add(s.advance)
				if s.unreserv {
					b.Unreserve()
					continue
				}
				wait, ok := b.Reserve(s.maxWait)
				assert.Equal(t, s.ok, ok, "step %d ok", i)
				assert.Equal(t, s.wait, wait, "step %d wait", i)
			}
		})
	}
}

// Ensure a clock that goes back earns nothing, and earns again only once past where it was.
func TestClockBackwards(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	b := ratelimit.New(1, 1, c.now)
	_, ok := b.Reserve(0)
	require.True(t, ok)
	c.add(-10 * time.Second)
	_, ok = b.Reserve(0)
	assert.False(t, ok)
	c.add(10 * time.Second) // back where it was: still nothing earned
	_, ok = b.Reserve(0)
	assert.False(t, ok)
	c.add(time.Second)
	_, ok = b.Reserve(0)
	assert.True(t, ok)
}

// Ensure concurrent callers get distinct slots: n reservations at once are spaced over
// (n-burst)/rate.
func TestReserveConcurrent(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	b := ratelimit.New(100, 10, c.now)
	var (
		mu    sync.Mutex
		waits = map[time.Duration]int{}
		wg    sync.WaitGroup
	)
	for range 110 {
		wg.Go(func() {
			w, ok := b.Reserve(ratelimit.Forever)
			assert.True(t, ok)
			mu.Lock()
			waits[w]++
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, 10, waits[0])
	assert.Len(t, waits, 101) // 0 and 100 distinct slots of 10 ms
	_, hasLast := waits[time.Second]
	assert.True(t, hasLast)
}
