// Package backoff is the one backoff of the service: how long to wait before the next attempt.
// Reconnects use [Config] (exponential with full jitter, an attempt limit, a reset after a
// stable period); publish retries, lifecycle retries and the test stacks' polling use
// [Schedule] (the same growth without jitter) and [Sleep]. The delays are pure: randomness is
// injected.
package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Config says how reconnect delays grow.
type Config struct {
	// Initial is the cap of the first delay. Default 500ms.
	Initial time.Duration
	// Max caps every delay. Default 30s.
	Max time.Duration
	// MaxAttempts ends retrying after this many failed attempts; 0 means unlimited.
	MaxAttempts int
	// StableAfter is how long a connection must stay up before the attempt count resets. Default 10s.
	StableAfter time.Duration
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{Initial: 500 * time.Millisecond, Max: 30 * time.Second, StableAfter: 10 * time.Second}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Initial <= 0:
		return errors.New("initial backoff must be positive")
	case c.Max < c.Initial:
		return errors.New("maximum backoff must be at least the initial backoff")
	case c.MaxAttempts < 0:
		return errors.New("maximum attempts must be 0 (unlimited) or more")
	case c.StableAfter < 0:
		return errors.New("stable-after must not be negative")
	}
	return nil
}

// Ceiling is the largest delay before attempt n (n ≥ 1): Initial·2^(n-1), capped at Max.
func (c Config) Ceiling(n int) time.Duration {
	return Schedule{Initial: c.Initial, Max: c.Max}.Delay(n)
}

// Delay is the wait before attempt n: uniform in [0, Ceiling(n)] ("full jitter"), so that many
// connections dropped at once do not re-dial in lockstep. r returns a float in [0, 1).
func (c Config) Delay(n int, r func() float64) time.Duration {
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(c.Ceiling(n)+1))
}

// Exhausted reports whether attempt n may not be made.
func (c Config) Exhausted(n int) bool { return c.MaxAttempts > 0 && n > c.MaxAttempts }

// Schedule is a deterministic backoff: the wait after failed attempt n (n ≥ 1) is
// Initial·Factor^(n-1), capped at Max. Retries of one caller's own work use it (no herd to
// spread, and a fixed schedule is easier to reason about in logs and tests).
type Schedule struct {
	Initial time.Duration
	// Max caps every delay; 0 means no cap.
	Max time.Duration
	// Factor is the growth per attempt; 0 means 2, 1 a constant delay.
	Factor int
}

// Delay is the wait after failed attempt n (n ≥ 1; smaller n count as 1).
func (s Schedule) Delay(n int) time.Duration {
	f := int64(max(s.Factor, 1))
	if s.Factor == 0 {
		f = 2
	}
	d := s.Initial
	for i := 1; i < n && f > 1 && (s.Max <= 0 || d < s.Max); i++ {
		if int64(d) > (1<<62)/f { // no overflow for an uncapped schedule
			return d
		}
		d = time.Duration(int64(d) * f)
	}
	if s.Max > 0 {
		return min(d, s.Max)
	}
	return d
}

// Sleep waits d, or less when ctx ends first; it reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Poll calls ok until it returns true (nil) or ctx ends (ctx's error), waiting s.Delay(n)
// after the n-th false. stop, when not nil, is asked after each false and ends the polling
// with its error (for example: the process being waited for exited).
func Poll(ctx context.Context, s Schedule, ok func() bool, stop func() error) error {
	for n := 1; ; n++ {
		if ok() {
			return nil
		}
		if stop != nil {
			if err := stop(); err != nil {
				return err
			}
		}
		if !Sleep(ctx, s.Delay(n)) {
			return ctx.Err()
		}
	}
}
