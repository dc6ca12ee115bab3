// Package ratelimit is the token bucket behind a connection's send_rate: per_second tokens
// a second, at most burst at once. It only computes; callers wait with their own timers and
// contexts, so that the bucket can run on a fake clock in tests and never holds a lock while
// anyone waits.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Limits of a rate (the API's send_rate validation).
const (
	MaxPerSecond = 1e6
	MaxBurst     = 1000000
)

// Forever is a maxWait with no bound.
const Forever = time.Duration(math.MaxInt64)

// Bucket is a token bucket. It starts full. Safe for concurrent use.
type Bucket struct {
	rate  float64 // tokens a second, > 0
	burst float64 // ≥ 1
	now   func() time.Time

	mu     sync.Mutex
	tokens float64 // negative: callers are queued for tokens not yet earned
	last   time.Time
}

// New returns a full bucket of perSecond tokens a second and burst at most (burst ≤ 0: 1).
// now is the clock (nil: time.Now). perSecond must be positive.
func New(perSecond float64, burst int, now func() time.Time) *Bucket {
	if now == nil {
		now = time.Now
	}
	b := max(float64(burst), 1)
	return &Bucket{rate: perSecond, burst: b, now: now, tokens: b, last: now()}
}

// PerSecond and Burst return the bucket's rate.
func (b *Bucket) PerSecond() float64 { return b.rate }

// Burst returns the most tokens the bucket holds.
func (b *Bucket) Burst() int { return int(b.burst) }

// Reserve takes a token for a caller that may wait at most maxWait for it. It returns how long
// the caller must wait before it goes (0: at once). If that would be longer than maxWait,
// nothing is taken, ok is false, and wait is how long the caller would have had to wait.
// Callers are served in the order they reserved: each reservation pushes the next one back.
func (b *Bucket) Reserve(maxWait time.Duration) (wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance()
	left := b.tokens - 1
	if left >= 0 {
		b.tokens = left
		return 0, true
	}
	wait = b.durationOf(-left)
	if wait > maxWait {
		return wait, false
	}
	b.tokens = left
	return wait, true
}

// Unreserve gives back a token Reserve took for a caller that did not go after all (its call
// ended while it waited), so that it does not slow down those behind it.
func (b *Bucket) Unreserve() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance()
	b.tokens = min(b.tokens+1, b.burst)
}

// advance adds the tokens earned since last. Call with mu held.
func (b *Bucket) advance() {
	now := b.now()
	if d := now.Sub(b.last); d > 0 { // a clock that went back earns nothing until it passes last again
		b.tokens = min(b.tokens+d.Seconds()*b.rate, b.burst)
		b.last = now
	}
}

// durationOf returns the time n tokens take to earn, rounded up so that a caller that waited
// it finds them earned.
func (b *Bucket) durationOf(n float64) time.Duration {
	s := n / b.rate
	if s >= Forever.Seconds() {
		return Forever
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
