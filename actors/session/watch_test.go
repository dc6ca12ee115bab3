package session

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// watchSession is a session without a socket: frames are handed to route as the reader would.
func watchSession(t *testing.T, cfg Config, seqBase uint64) *Session {
	t.Helper()
	s := newSession(Spec{ID: "w", URL: "ws://h/", SeqBase: seqBase}, cfg, &budget{limit: 1 << 40}, nopPublisher{}, nil, "i", zap.NewNop())
	t.Cleanup(func() {
		s.mu.Lock()
		s.cancel()
		s.endWatchersLocked(ErrWatchEnded, true)
		s.mu.Unlock()
	})
	return s
}

func push(s *Session, n int) {
	for range n {
		s.route(Frame{Data: []byte("f")}, time.Now())
	}
}

func ptr(v uint64) *uint64 { return &v }

// next reads n frames (or gaps) from w, as "seq" or "gap a-b reason".
func next(t *testing.T, w *Watcher, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for range n {
		f, gap, err := w.Next(ctx)
		require.NoError(t, err)
		if gap != nil {
			out = append(out, fmt.Sprintf("gap %d-%d %s", gap.From, gap.To, gap.Reason))
			continue
		}
		out = append(out, fmt.Sprint(f.Seq))
	}
	return out
}

// Ensure a watch delivers live frames in order, a resume delivers the retained frames from its
// sequence and then the live ones without a gap or a repeat, and frames asked for that are not
// retained are announced as a gap first (older than the ring; before a move to this instance).
func TestWatchResume(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RetainFrames = 5
	tests := []struct {
		name    string
		seqBase uint64
		before  int // frames before the watch
		from    *uint64
		want    []string // after the watch starts, 2 more frames are pushed
	}{
		{"live only", 0, 3, nil, []string{"4", "5"}},
		{"resume within the ring", 0, 3, ptr(2), []string{"2", "3", "4", "5"}},
		{"resume from 0: everything retained", 0, 3, ptr(0), []string{"1", "2", "3", "4", "5"}},
		{"resume from the next frame", 0, 3, ptr(4), []string{"4", "5"}},
		{"resume older than the ring", 0, 8, ptr(1), []string{"gap 1-3 not_retained", "4", "5", "6", "7", "8", "9", "10"}},
		{"resume across a move", 1 << 32, 2, ptr(7), []string{fmt.Sprintf("gap 7-%d moved", 1<<32), fmt.Sprint(1<<32 + 1), fmt.Sprint(1<<32 + 2), fmt.Sprint(1<<32 + 3), fmt.Sprint(1<<32 + 4)}},
		{"resume from the future skips what comes before", 0, 1, ptr(3), []string{"3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := watchSession(t, cfg, tt.seqBase)
			push(s, tt.before)
			w, err := s.Watch(tt.from, false)
			require.NoError(t, err)
			push(s, 2)
			assert.Equal(t, tt.want, next(t, w, len(tt.want)))
		})
	}
}

// Ensure a watcher that does not read is ended (ErrWatcherSlow) with the sequence to resume
// from, without slowing the connection or another watcher; a resume from there has no gap.
func TestSlowWatcher(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WatchBuffer = 4
	cfg.RetainFrames = 100
	s := watchSession(t, cfg, 0)
	slow, err := s.Watch(nil, false)
	require.NoError(t, err)
	fast, err := s.Watch(nil, false)
	require.NoError(t, err)
	for i := 1; i <= 20; i++ {
		push(s, 1) // never blocks, whatever the watchers do
		assert.Equal(t, []string{fmt.Sprint(i)}, next(t, fast, 1))
	}
	var got []string
	var end error
	for {
		f, _, err := slow.Next(context.Background())
		if err != nil {
			end = err
			break
		}
		got = append(got, fmt.Sprint(f.Seq))
	}
	assert.Equal(t, []string{"1", "2", "3", "4"}, got, "what was buffered is still delivered")
	require.ErrorIs(t, end, ErrWatcherSlow)
	from, ok := ResumeFrom(end)
	require.True(t, ok)
	assert.Equal(t, uint64(5), from)
	again, err := s.Watch(&from, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"5", "6"}, next(t, again, 2), "the resume has no gap")
}

// Ensure the watcher limits hold per connection and per instance, and a closed watch frees
// its place; closing the session ends every watch with ErrWatchEnded.
func TestWatcherLimitsAndEnd(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxWatchersPerConnection = 2
	s := watchSession(t, cfg, 0)
	s.watchLimit = &watchLimit{max: 3}
	a, err := s.Watch(nil, false)
	require.NoError(t, err)
	_, err = s.Watch(nil, false)
	require.NoError(t, err)
	_, err = s.Watch(nil, false)
	require.ErrorIs(t, err, ErrTooManyWatchers)
	a.Close()
	c, err := s.Watch(nil, false)
	require.NoError(t, err, "a closed watch frees its place")

	other := watchSession(t, cfg, 0)
	other.watchLimit = s.watchLimit
	_, err = other.Watch(nil, false)
	require.NoError(t, err)
	_, err = other.Watch(nil, false)
	require.ErrorIs(t, err, ErrTooManyWatchers, "the instance limit counts every connection's watchers")

	push(s, 1)
	s.mu.Lock()
	s.cancel()
	s.endWatchersLocked(ErrWatchEnded, true)
	s.mu.Unlock()
	assert.Equal(t, []string{"1"}, next(t, c, 1))
	_, _, err = c.Next(context.Background())
	require.ErrorIs(t, err, ErrWatchEnded)
	from, _ := ResumeFrom(err)
	assert.Equal(t, uint64(2), from)
	assert.True(t, errors.Is(err, ErrWatchEnded))
}

// Ensure retention is bounded by bytes per connection and by the instance budget, and every
// retained byte is released when the session ends.
func TestRetentionBounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RetainFrames = 1000
	cfg.RetainBytes = 10 * (512 + frameOverhead)
	s := watchSession(t, cfg, 0)
	shared := &budget{limit: 15 * (512 + frameOverhead)}
	s.ring.budget = shared
	for range 50 {
		s.route(Frame{Data: make([]byte, 0, 512)}, time.Now())
	}
	assert.Len(t, s.ring.frames, 10, "bounded by the connection's bytes")
	o := watchSession(t, cfg, 0)
	o.ring.budget = shared
	for range 50 {
		o.route(Frame{Data: make([]byte, 0, 512)}, time.Now())
	}
	assert.Len(t, o.ring.frames, 5, "bounded by what the instance has left")
	w, err := o.Watch(ptr(1), false)
	require.NoError(t, err)
	assert.Equal(t, []string{"gap 1-45 not_retained", "46"}, next(t, w, 2))
	s.mu.Lock()
	s.endWatchersLocked(ErrWatchEnded, true)
	s.mu.Unlock()
	o.mu.Lock()
	o.endWatchersLocked(ErrWatchEnded, true)
	o.mu.Unlock()
	assert.Zero(t, shared.used.Load(), "every retained byte is released")
}
