package actors

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session"
)

// Ensure send_rate is validated with INVALID_ARGUMENT naming the field.
func TestValidateSendRate(t *testing.T) {
	cases := []struct {
		rate *SendRateArgs
		want string // "" valid, else a substring of the message
	}{
		{rate: nil},
		{rate: &SendRateArgs{PerSecond: 20, Burst: 5}},
		{rate: &SendRateArgs{PerSecond: 0.001}},
		{rate: &SendRateArgs{PerSecond: 1e6, Burst: 1000000}},
		{rate: &SendRateArgs{}, want: "send_rate.per_second 0 must be above 0"},
		{rate: &SendRateArgs{PerSecond: -1}, want: "send_rate.per_second -1"},
		{rate: &SendRateArgs{PerSecond: 1e6 + 1}, want: "at most 1e+06"},
		{rate: &SendRateArgs{PerSecond: math.NaN()}, want: "send_rate.per_second NaN"},
		{rate: &SendRateArgs{PerSecond: math.Inf(1)}, want: "send_rate.per_second +Inf"},
		{rate: &SendRateArgs{PerSecond: 1, Burst: 1000001}, want: "send_rate.burst 1000001 is outside 0..1000000"},
		{rate: &SendRateArgs{PerSecond: 1, Burst: -1}, want: "send_rate.burst -1"},
	}
	for _, tc := range cases {
		a := ConnectArgs{URL: "ws://example.com/", SendRate: tc.rate}
		e := a.Validate()
		if tc.want == "" {
			assert.Nil(t, e, "%+v", tc.rate)
			continue
		}
		require.NotNil(t, e, "%+v", tc.rate)
		assert.Equal(t, CodeInvalidArgument, e.Code)
		assert.Contains(t, e.Message, tc.want)
	}
}

// Ensure List shows the burst in effect and the session gets the rate.
func TestSendRateShown(t *testing.T) {
	var none *SendRateArgs
	assert.Nil(t, none.shown())
	assert.Equal(t, session.SendRate{}, none.session())
	r := &SendRateArgs{PerSecond: 2.5}
	assert.Equal(t, &SendRateArgs{PerSecond: 2.5, Burst: 1}, r.shown())
	assert.Equal(t, session.SendRate{PerSecond: 2.5}, r.session())
}

// Ensure the actor's mode never waits in its turn, and a refusal carries the time to wait.
func TestSendRateModes(t *testing.T) {
	cases := []struct {
		in           SendArgs
		here, inTurn session.RateMode
	}{
		{in: SendArgs{}, here: session.RateWait, inTurn: session.RateDefer},
		{in: SendArgs{FailFast: true}, here: session.RateFailFast, inTurn: session.RateFailFast},
		{in: SendArgs{RateRetry: true}, here: session.RateWait, inTurn: session.RateDeferAgain},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.here, tc.in.frame().Rate)
		assert.Equal(t, tc.inTurn, tc.in.inTurnRateMode())
	}
	e := SessionError(&session.ThrottledError{Rate: session.SendRate{PerSecond: 20, Burst: 5}, RetryAfter: 1500 * time.Microsecond})
	assert.Equal(t, CodeResourceExhausted, e.Code)
	assert.Equal(t, int64(2), e.RetryAfterMS)
	var ae *Error
	require.ErrorAs(t, e.Err(), &ae)
	assert.Equal(t, int64(2), ae.RetryAfterMS, "the time to wait travels with the error")
	assert.Contains(t, e.Message, "20/s (burst 5)")
	e = SessionError(&session.ThrottledError{RetryAfter: time.Second, PastDeadline: true})
	assert.Equal(t, CodeResourceExhausted, e.Code)
	assert.Zero(t, e.RetryAfterMS, "a refusal past the deadline is final")
}

// Ensure the router waits out the actor's retryAfterMs outside the turn and calls again with
// RateRetry, gives up at once when the wait would outlast the deadline or the Send's timeout,
// and never retries a fail-fast call.
func TestViaActor(t *testing.T) {
	throttledErr := func(ms int64) error {
		return (&ErrorInfo{Code: CodeResourceExhausted, Message: "over the connection's send rate", RetryAfterMS: ms}).Err()
	}
	cases := []struct {
		name     string
		in       SendArgs
		within   time.Duration
		deadline time.Duration // 0: none
		answers  []error       // the actor's answers in turn
		calls    int
		code     Code // "" success
	}{
		{name: "success at once", answers: []error{nil}, calls: 1},
		{name: "waits and retries", answers: []error{throttledErr(1), throttledErr(1), nil}, calls: 3},
		{name: "fail fast is final", in: SendArgs{FailFast: true}, answers: []error{throttledErr(1)}, calls: 1, code: CodeResourceExhausted},
		{name: "past the deadline", deadline: time.Minute, answers: []error{throttledErr(3600_000)}, calls: 1, code: CodeResourceExhausted},
		{name: "past the Send timeout", within: time.Second, answers: []error{throttledErr(2000)}, calls: 1, code: CodeResourceExhausted},
		{name: "other errors pass", answers: []error{Errorf(CodeResourceExhausted, "too many pending")}, calls: 1, code: CodeResourceExhausted},
		{name: "final refusal", answers: []error{(&ErrorInfo{Code: CodeResourceExhausted, Message: "past deadline"}).Err()}, calls: 1, code: CodeResourceExhausted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			var got []SendArgs
			_, err := viaActor(ctx, tc.in, tc.within, func(in SendArgs, left time.Duration) (int, error) {
				got = append(got, in)
				if tc.within > 0 {
					assert.LessOrEqual(t, left, tc.within)
				}
				return 0, tc.answers[len(got)-1]
			})
			assert.Equal(t, tc.code, CodeOf(err))
			require.Len(t, got, tc.calls)
			assert.False(t, got[0].RateRetry)
			for _, in := range got[1:] {
				assert.True(t, in.RateRetry, "a retry is not counted again")
			}
		})
	}
}
