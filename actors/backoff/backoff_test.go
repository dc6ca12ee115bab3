package backoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
