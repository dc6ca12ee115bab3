package backoff

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCeiling(t *testing.T) {
	c := Config{Initial: 500 * time.Millisecond, Max: 30 * time.Second}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 500 * time.Millisecond},
		{2, time.Second},
		{3, 2 * time.Second},
		{7, 30 * time.Second}, // 32s capped
		{1000, 30 * time.Second},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, c.Ceiling(tt.attempt), "attempt %d", tt.attempt)
	}
}

func TestDelayFullJitter(t *testing.T) {
	c := DefaultConfig()
	assert.Equal(t, time.Duration(0), c.Delay(3, func() float64 { return 0 }))
	assert.InDelta(t, float64(2*time.Second), float64(c.Delay(3, func() float64 { return 0.9999999999 })), float64(time.Millisecond))
	for range 1000 {
		d := c.Delay(4, nil)
		assert.True(t, d >= 0 && d <= 4*time.Second, "delay %v out of range", d)
	}
}

func TestExhausted(t *testing.T) {
	tests := []struct {
		max, attempt int
		want         bool
	}{
		{0, 1_000_000, false},
		{3, 3, false},
		{3, 4, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Config{MaxAttempts: tt.max}.Exhausted(tt.attempt))
	}
}

func TestValidate(t *testing.T) {
	assert.NoError(t, DefaultConfig().Validate())
	assert.Error(t, Config{Initial: 0, Max: time.Second}.Validate())
	assert.Error(t, Config{Initial: time.Second, Max: time.Millisecond}.Validate())
	assert.Error(t, Config{Initial: time.Second, Max: time.Second, MaxAttempts: -1}.Validate())
}

// The schedules the service uses, as documented: publish retries 50ms doubling to 5s,
// lifecycle retries 100ms then 400ms, test polling every 50ms.
func TestSchedule(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		want []time.Duration // after attempts 1, 2, …
	}{
		{"publish retry", Schedule{Initial: 50 * time.Millisecond, Max: 5 * time.Second},
			[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
				800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}},
		{"lifecycle retry", Schedule{Initial: 100 * time.Millisecond, Factor: 4}, []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 1600 * time.Millisecond}},
		{"polling", Schedule{Initial: 50 * time.Millisecond, Factor: 1}, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}},
		{"reconnect ceiling", Schedule{Initial: 500 * time.Millisecond, Max: 30 * time.Second},
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				assert.Equal(t, want, tt.s.Delay(i+1), "after attempt %d", i+1)
			}
		})
	}
	assert.Equal(t, 50*time.Millisecond, Schedule{Initial: 50 * time.Millisecond}.Delay(0), "attempt 0 counts as 1")
	assert.Positive(t, Schedule{Initial: time.Second}.Delay(1000), "an uncapped schedule does not overflow")
	c := DefaultConfig()
	for n := 1; n < 20; n++ {
		assert.Equal(t, Schedule{Initial: c.Initial, Max: c.Max}.Delay(n), c.Ceiling(n), "reconnects grow like every other retry")
	}
}

func TestSleep(t *testing.T) {
	assert.True(t, Sleep(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.False(t, Sleep(ctx, time.Hour), "a cancelled context ends the wait")
}

func TestPoll(t *testing.T) {
	fast := Schedule{Initial: time.Millisecond, Factor: 1}
	calls := 0
	require.NoError(t, Poll(context.Background(), fast, func() bool { calls++; return calls == 3 }, nil))
	assert.Equal(t, 3, calls, "polls until ok")

	gone := errors.New("process exited")
	assert.ErrorIs(t, Poll(context.Background(), fast, func() bool { return false }, func() error { return gone }), gone)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, Poll(ctx, Schedule{Initial: time.Hour}, func() bool { return false }, nil), context.Canceled)
}
