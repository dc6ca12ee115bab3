package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

func rated(s string, mode session.RateMode) session.Frame {
	return session.Frame{Data: []byte(s), Rate: mode}
}

func throttled(t *testing.T, s *session.Session) uint64 {
	t.Helper()
	_, n := s.SendRate()
	return n
}

// Ensure a call over the send rate is refused at once with fail_fast, and — without it — when
// the wait would outlast its deadline or a Send's timeout; nothing refused reaches the server.
func TestSendRateRefuses(t *testing.T) {
	slow := session.SendRate{PerSecond: 0.01, Burst: 2} // one token per 100 s after the burst
	cases := []struct {
		name     string
		call     func(s *session.Session) error
		deadline bool // PastDeadline
		retry    bool // RetryAfter set
	}{
		{name: "SendRaw fail fast", retry: true, call: func(s *session.Session) error {
			return s.SendRaw(context.Background(), rated("x", session.RateFailFast))
		}},
		{name: "Send fail fast", retry: true, call: func(s *session.Session) error {
			_, err := s.Send(context.Background(), rated("x", session.RateFailFast), time.Second)
			return err
		}},
		{name: "SendRaw past its deadline", deadline: true, retry: true, call: func(s *session.Session) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return s.SendRaw(ctx, rated("x", session.RateWait))
		}},
		{name: "Send past its timeout", deadline: true, retry: true, call: func(s *session.Session) error {
			_, err := s.Send(context.Background(), rated("x", session.RateWait), time.Second)
			return err
		}},
		{name: "deferred (the actor's turn)", retry: true, call: func(s *session.Session) error {
			return s.SendRaw(context.Background(), rated("x", session.RateDefer))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := sessiontest.NewServer(t, time.Hour)
			r, _ := newRegistry(t, testConfig())
			s := open(t, r, session.Spec{URL: ws.URL("/echo"), SendRate: slow})
			for range 2 {
				require.NoError(t, s.SendRaw(context.Background(), text("burst")))
			}
			start := time.Now()
			err := tc.call(s)
			require.ErrorIs(t, err, session.ErrThrottled)
			assert.Less(t, time.Since(start), 900*time.Millisecond, "refused at once, not after waiting")
			var te *session.ThrottledError
			require.True(t, errors.As(err, &te))
			assert.Equal(t, tc.deadline, te.PastDeadline)
			assert.Greater(t, te.RetryAfter, 90*time.Second)
			assert.Contains(t, err.Error(), "0.01/s (burst 2)")
			assert.Equal(t, uint64(1), throttled(t, s))
			rate, _ := s.SendRate()
			assert.Equal(t, slow, rate)
			require.Eventually(t, func() bool { return len(ws.Received()) == 2 }, waitFor, 5*time.Millisecond)
			assert.Equal(t, []string{"burst", "burst"}, ws.Received())
		})
	}
}

// Ensure calls over the rate wait for it and all go out, each wait counted once; a call
// deferred again (the actor path's retry) is not counted twice.
func TestSendRateWaits(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo"), SendRate: session.SendRate{PerSecond: 20, Burst: 1}})
	for range 5 {
		require.NoError(t, s.SendRaw(context.Background(), text("w")))
	}
	got, err := s.Send(context.Background(), text("reply"), 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "reply", string(got.Data))
	// Each call after the first waits ~50 ms unless the one before it took longer (a loaded
	// machine): the bucket refilled meanwhile. Exact counts are tested on a fake clock
	// (package ratelimit).
	n := throttled(t, s)
	assert.GreaterOrEqual(t, n, uint64(1))
	assert.LessOrEqual(t, n, uint64(5))
	require.Eventually(t, func() bool { return len(ws.Received()) == 6 }, waitFor, 5*time.Millisecond)

	// A deferred-again call refused once more is not counted again.
	slow := open(t, r, session.Spec{ID: "slow", URL: ws.URL("/echo"), SendRate: session.SendRate{PerSecond: 0.01}})
	require.NoError(t, slow.SendRaw(context.Background(), text("one")))
	require.ErrorIs(t, slow.SendRaw(context.Background(), rated("x", session.RateDeferAgain)), session.ErrThrottled)
	assert.Equal(t, uint64(0), throttled(t, slow))
}

// Ensure a call waiting for the rate holds no lock: the connection closes at once, the waiting
// call ends with ErrClosed, and a fail-fast call meanwhile is answered at once.
func TestSendRateWaitDoesNotBlock(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo"), SendRate: session.SendRate{PerSecond: 0.01}})
	require.NoError(t, s.SendRaw(context.Background(), text("one")))
	done := make(chan error, 1)
	go func() { done <- s.SendRaw(context.Background(), text("waits")) }()
	require.Eventually(t, func() bool { return throttled(t, s) == 1 }, waitFor, time.Millisecond)

	require.ErrorIs(t, s.SendRaw(context.Background(), rated("x", session.RateFailFast)), session.ErrThrottled)
	closed := make(chan struct{})
	go func() {
		r.Close(context.Background(), s.ID(), 1000, "test")
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatal("Close waited for the throttled SendRaw")
	}
	select {
	case err := <-done:
		assert.ErrorIs(t, err, session.ErrClosed)
	case <-time.After(waitFor):
		t.Fatal("the throttled SendRaw did not end with the connection")
	}
	assert.Equal(t, []string{"one"}, ws.Received())
}

// Ensure a caller that gives up while waiting gives its token back.
func TestSendRateCancelledWaitGivesBack(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo"), SendRate: session.SendRate{PerSecond: 0.01}})
	require.NoError(t, s.SendRaw(context.Background(), text("one")))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.SendRaw(ctx, text("waits")) }()
	require.Eventually(t, func() bool { return throttled(t, s) == 1 }, waitFor, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	// The queue is as before the cancelled call: the next one would wait ~100 s, not ~200 s.
	err := s.SendRaw(context.Background(), rated("x", session.RateFailFast))
	var te *session.ThrottledError
	require.True(t, errors.As(err, &te))
	assert.Less(t, te.RetryAfter, 101*time.Second)
}

// Ensure on-connect messages take tokens of the rate (they are sent, never refused).
func TestSendRateCountsOnConnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo"), SendRate: session.SendRate{PerSecond: 0.01, Burst: 2},
		OnConnect: []session.Frame{text("hello"), text("subscribe")}})
	require.Eventually(t, func() bool { return len(ws.Received()) == 2 }, waitFor, 5*time.Millisecond)
	require.ErrorIs(t, s.SendRaw(context.Background(), rated("x", session.RateFailFast)), session.ErrThrottled)

	fast := open(t, r, session.Spec{ID: "fast", URL: ws.URL("/echo"), SendRate: session.SendRate{PerSecond: 100, Burst: 1},
		OnConnect: []session.Frame{text("a"), text("b"), text("c")}})
	require.Eventually(t, func() bool { return len(ws.Received()) == 5 }, waitFor, 5*time.Millisecond)
	assert.Equal(t, session.StatusConnected, fast.Snapshot().Status)
	assert.Equal(t, uint64(0), throttled(t, fast), "on-connect waits are not Sends")
}

// Ensure a connection without a rate reports none.
func TestSendRateNone(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/echo")})
	for range 50 {
		require.NoError(t, s.SendRaw(context.Background(), rated("x", session.RateFailFast)))
	}
	rate, n := s.SendRate()
	assert.Equal(t, session.SendRate{}, rate)
	assert.Zero(t, n)
}
