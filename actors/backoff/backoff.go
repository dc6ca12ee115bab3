// Package backoff computes reconnect delays: exponential growth with full jitter, capped, with
// an optional limit on attempts. It is pure: randomness is injected.
package backoff

import (
	"errors"
	"math/rand/v2"
	"time"
)

// Config says how delays grow.
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
	d := c.Initial
	for i := 1; i < n && d < c.Max; i++ {
		d *= 2
	}
	return min(d, c.Max)
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
