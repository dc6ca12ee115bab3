package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shardCalls is a directory whose AddMany calls wait until released, one at a time, and are
// recorded.
type shardCalls struct {
	mu      sync.Mutex
	calls   []map[string]string
	started chan struct{}
	release chan error
}

func newShardCalls() *shardCalls {
	return &shardCalls{started: make(chan struct{}, 100), release: make(chan error)}
}

func (s *shardCalls) call(_ context.Context, _ string, holders map[string]string) error {
	s.mu.Lock()
	s.calls = append(s.calls, maps.Clone(holders))
	s.mu.Unlock()
	s.started <- struct{}{}
	return <-s.release
}

func (s *shardCalls) recorded() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Adds to a shard made while its call is under way go together in the next call, each gets
// that call's outcome, and nothing is left waiting.
func TestAddBatcherGathersWaitingAdds(t *testing.T) {
	var b addBatcher
	s := newShardCalls()
	results := make(chan error, 10)
	go func() { results <- b.add(t.Context(), "7", "first", "h:1", s.call) }()
	<-s.started // "first" is being added alone
	for i := range 5 {
		go func() { results <- b.add(t.Context(), "7", fmt.Sprintf("later-%d", i), "h:1", s.call) }()
	}
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.shards["7"].waiting) == 5
	}, 5*time.Second, time.Millisecond)
	s.release <- nil
	<-s.started
	boom := errors.New("store down")
	s.release <- boom
	var errs []error
	for range 6 {
		errs = append(errs, <-results)
	}
	calls := s.recorded()
	require.Len(t, calls, 2)
	assert.Equal(t, map[string]string{"first": "h:1"}, calls[0])
	assert.Len(t, calls[1], 5, "the five Adds that waited go in one call")
	assert.Equal(t, 1, countNil(errs))
	assert.Equal(t, 5, len(errs)-countNil(errs), "each Add of the failed call gets its error")
	b.mu.Lock()
	assert.Empty(t, b.shards, "an idle shard keeps no queue")
	b.mu.Unlock()
}

func countNil(errs []error) int {
	n := 0
	for _, e := range errs {
		if e == nil {
			n++
		}
	}
	return n
}

// An Add whose caller gives up before any call takes it is not made; one already in a call is
// seen through; other shards never wait for this one.
func TestAddBatcherCancelAndShards(t *testing.T) {
	var b addBatcher
	s := newShardCalls()
	done := make(chan error, 3)
	go func() { done <- b.add(t.Context(), "1", "a", "h:1", s.call) }()
	<-s.started
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- b.add(ctx, "1", "gives-up", "h:1", s.call) }()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.shards["1"].waiting) == 1
	}, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	other := make(chan error, 1)
	go func() { other <- b.add(t.Context(), "2", "b", "h:1", s.call) }()
	<-s.started // shard 2's call starts while shard 1's is still under way
	s.release <- nil
	s.release <- nil
	require.NoError(t, <-done)
	require.NoError(t, <-other)
	for _, c := range s.recorded() {
		assert.NotContains(t, c, "gives-up")
	}
}

// No call carries more than MaxAddMany ids; the rest go in the next one.
func TestAddBatcherCapsCalls(t *testing.T) {
	var b addBatcher
	s := newShardCalls()
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.add(t.Context(), "3", "first", "h:1", s.call) })
	<-s.started
	n := MaxAddMany + 10
	for i := range n {
		wg.Go(func() { _ = b.add(t.Context(), "3", fmt.Sprintf("id-%d", i), "h:1", s.call) })
	}
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.shards["3"].waiting) == n
	}, 5*time.Second, time.Millisecond)
	go func() {
		for range 3 {
			s.release <- nil
		}
	}()
	wg.Wait()
	calls := s.recorded()
	require.Len(t, calls, 3)
	assert.Len(t, calls[1], MaxAddMany)
	assert.Len(t, calls[2], 10)
}
