package actors

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/ratelimit"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// SendRateArgs is a connection's send rate limit: PerSecond Sends, SendRaws and on-connect
// messages a second, at most Burst at once (0: 1).
type SendRateArgs struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst,omitempty"`
}

// validate checks a send_rate (nil: none).
func (r *SendRateArgs) validate() *ErrorInfo {
	if r == nil {
		return nil
	}
	// NaN fails both comparisons.
	if !(r.PerSecond > 0 && r.PerSecond <= ratelimit.MaxPerSecond) {
		return errorf(CodeInvalidArgument, "send_rate.per_second %v must be above 0 and at most %g", r.PerSecond, float64(ratelimit.MaxPerSecond))
	}
	if r.Burst < 0 || r.Burst > ratelimit.MaxBurst {
		return errorf(CodeInvalidArgument, "send_rate.burst %d is outside 0..%d", r.Burst, ratelimit.MaxBurst)
	}
	return nil
}

// session turns the persisted rate into the session's.
func (r *SendRateArgs) session() session.SendRate {
	if r == nil {
		return session.SendRate{}
	}
	return session.SendRate{PerSecond: r.PerSecond, Burst: r.Burst}
}

// shown is the rate List shows: the burst in effect (0 reads 1).
func (r *SendRateArgs) shown() *SendRateArgs {
	if r == nil {
		return nil
	}
	return &SendRateArgs{PerSecond: r.PerSecond, Burst: max(r.Burst, 1)}
}

// rateMode is how a call outside the actor (the router, on this instance's session) meets the
// send rate: it waits within its deadline unless fail_fast.
func (in *SendArgs) rateMode() session.RateMode {
	if in.FailFast {
		return session.RateFailFast
	}
	return session.RateWait
}

// inTurnRateMode is how the actor's own Send and SendRaw meet the send rate: never waiting in
// the actor's turn (which would hold up every other call of the connection); a call that must
// wait is refused with the time to wait (retryAfterMs), and its caller waits and calls again
// ([viaActor]).
func (in *SendArgs) inTurnRateMode() session.RateMode {
	switch {
	case in.FailFast:
		return session.RateFailFast
	case in.RateRetry:
		return session.RateDeferAgain
	}
	return session.RateDefer
}

// throttledError is the reply of a call refused by the send rate.
func throttledError(te *session.ThrottledError) *ErrorInfo {
	e := errorf(CodeResourceExhausted, "%v; send less often, wait, or Connect with a higher send_rate", te)
	if !te.PastDeadline && te.RetryAfter > 0 {
		e.RetryAfterMS = max(1, int64(math.Ceil(float64(te.RetryAfter)/float64(time.Millisecond))))
	}
	return e
}

// viaActor makes the actor's Send or SendRaw (call) and, when the actor answers that the
// call must wait for the send rate, waits here — outside the actor's turn — and calls again.
// A wait that would outlast ctx's deadline or within (> 0: a Send's timeout, which covers the
// waits) is refused at once with RESOURCE_EXHAUSTED. call gets the time left of within.
func viaActor[T any](ctx context.Context, in SendArgs, within time.Duration, call func(SendArgs, time.Duration) (T, error)) (T, error) {
	start := time.Now()
	for {
		left := within
		if within > 0 {
			left = within - time.Since(start)
		}
		v, err := call(in, left)
		var e *Error
		if in.FailFast || !errors.As(err, &e) || e.Code != CodeResourceExhausted || e.RetryAfterMS <= 0 {
			return v, err
		}
		wait := time.Duration(e.RetryAfterMS) * time.Millisecond
		if d, ok := ctx.Deadline(); (ok && time.Until(d) < wait) || (within > 0 && left < wait) {
			return v, Errorf(CodeResourceExhausted, "%s (the wait would outlast the call's deadline)", e.Message)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, SessionError(ctx.Err()).Err()
		case <-t.C:
		}
		in.RateRetry = true // counted as throttled by the first call
	}
}
