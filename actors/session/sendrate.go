package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/ratelimit"
)

// SendRate limits what the service sends on a connection (Send, SendRaw, on-connect
// messages): PerSecond frames a second, at most Burst at once (≤ 0: 1). PerSecond ≤ 0: no limit.
type SendRate struct {
	PerSecond float64
	Burst     int
}

// String is the rate as List and errors show it, e.g. "20/s (burst 5)".
func (r SendRate) String() string {
	return strconv.FormatFloat(r.PerSecond, 'g', -1, 64) + "/s (burst " + strconv.Itoa(max(r.Burst, 1)) + ")"
}

// RateMode says what a Send or SendRaw over the connection's send rate does.
type RateMode int

// Rate modes.
const (
	// RateWait waits for the rate in the caller's goroutine, within its ctx deadline (and a
	// Send's timeout). A wait that would outlast them is refused at once (ErrThrottled), not
	// slept into a DEADLINE_EXCEEDED: the caller learns now that it is over the limit.
	RateWait RateMode = iota
	// RateFailFast refuses at once (fail_fast).
	RateFailFast
	// RateDefer refuses at once with the time to wait in the error, counted as a call that
	// waited: the connection's actor never waits in its turn, its caller waits and calls again.
	RateDefer
	// RateDeferAgain is RateDefer for that call again: it was counted already.
	RateDeferAgain
)

// ErrThrottled: the call is over the connection's send rate and did not wait for it. The
// error is a [*ThrottledError].
var ErrThrottled = errors.New("over the connection's send rate")

// ThrottledError says how long the refused call would have had to wait.
type ThrottledError struct {
	Rate       SendRate
	RetryAfter time.Duration
	// PastDeadline: the call would have waited, but not that long (its deadline or timeout).
	PastDeadline bool
}

func (e *ThrottledError) Error() string {
	if e.PastDeadline {
		return fmt.Sprintf("%v of %v: the wait of %v would outlast the call's deadline", ErrThrottled, e.Rate, e.RetryAfter.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v of %v: the next send may go in %v", ErrThrottled, e.Rate, e.RetryAfter.Round(time.Millisecond))
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// sendRate is a session's limiter; it outlives sockets, so reconnects (and their on-connect
// messages) do not reset it.
type sendRate struct {
	rate      SendRate
	bucket    *ratelimit.Bucket
	throttled atomic.Uint64
}

func newSendRate(r SendRate, now func() time.Time) *sendRate {
	if r.PerSecond <= 0 {
		return nil
	}
	return &sendRate{rate: r, bucket: ratelimit.New(r.PerSecond, r.Burst, now)}
}

// SendRate returns the connection's send rate (PerSecond 0: none) and how many Sends and
// SendRaws waited for it or were refused by it on this instance.
func (s *Session) SendRate() (SendRate, uint64) {
	if s.rate == nil {
		return SendRate{}, 0
	}
	return s.rate.rate, s.rate.throttled.Load()
}

// Throttle outcomes (wsmanager_send_throttled_total's outcome label).
const (
	throttleWaited  = "waited"
	throttleRefused = "refused"
)

func (s *Session) countThrottled(outcome string) {
	s.rate.throttled.Add(1)
	s.cfg.Metrics.SendThrottled(outcome)
}

// throttle takes a token of the send rate for f, waiting for it as f.Rate says, bounded by
// ctx's deadline and within (> 0: a Send's timeout). It returns how long it waited. It runs
// before the write lock is taken: a waiting call holds up no other writer, ping or close.
func (s *Session) throttle(ctx context.Context, f Frame, within time.Duration) (time.Duration, error) {
	r := s.rate
	if r == nil || len(f.Data) > s.cfg.MaxMessageBytes { // write refuses an oversized message
		return 0, nil
	}
	maxWait := ratelimit.Forever
	if f.Rate != RateWait {
		maxWait = 0
	}
	if d, ok := ctx.Deadline(); ok {
		maxWait = min(maxWait, max(time.Until(d), 0))
	}
	if within > 0 {
		maxWait = min(maxWait, within)
	}
	wait, ok := r.bucket.Reserve(maxWait)
	if !ok {
		switch f.Rate {
		case RateWait, RateFailFast:
			s.countThrottled(throttleRefused)
		case RateDefer:
			s.countThrottled(throttleWaited)
		}
		return 0, &ThrottledError{Rate: r.rate, RetryAfter: wait, PastDeadline: f.Rate == RateWait}
	}
	if wait == 0 {
		return 0, nil
	}
	s.countThrottled(throttleWaited)
	if err := s.sleep(ctx, wait); err != nil {
		r.bucket.Unreserve()
		return 0, err
	}
	return wait, nil
}

// throttleOnConnect waits for the send rate before an on-connect message: those never fail
// for the rate, they wait as long as ctx (the dial's) lets them.
func (s *Session) throttleOnConnect(ctx context.Context) error {
	if s.rate == nil {
		return nil
	}
	wait, _ := s.rate.bucket.Reserve(ratelimit.Forever)
	if wait == 0 {
		return nil
	}
	if err := s.sleep(ctx, wait); err != nil {
		s.rate.bucket.Unreserve()
		return err
	}
	return nil
}

// sleep waits d, or until ctx ends or the session closes.
func (s *Session) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}
