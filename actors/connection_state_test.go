package actors

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/dapr/go-sdk/actor"
	"github.com/dapr/go-sdk/actor/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// connectionOver returns connection actor id as newly activated over s, with the Go SDK's own
// state manager.
func connectionOver(s *stateStore, id string) *Connection {
	c := &Connection{deps: &Deps{Log: zap.NewNop()}}
	c.SetID(id)
	c.newState = func() actor.StateManagerContext {
		return state.NewActorStateManagerContext(ConnectionType, id, state.NewDaprStateAsyncProvider(s))
	}
	c.SetStateManager(c.newState())
	return c
}

// The connection's spec is read with one state read, whether it exists or not; a failed read
// is an error (never "missing"), and the read after it goes to the store again rather than
// answering from a value the SDK cached from the failure.
func TestLoadSpecReadsOnce(t *testing.T) {
	ctx := context.Background()
	stored, err := json.Marshal(spec{ConnectArgs: ConnectArgs{URL: "ws://example.test/"}, Epoch: 3})
	require.NoError(t, err)

	t.Run("missing", func(t *testing.T) {
		s := newStateStore()
		c := connectionOver(s, "a")
		got, err := c.loadSpec(ctx)
		require.NoError(t, err)
		assert.Nil(t, got)
		assert.Equal(t, 1, s.readCount())
		got, err = c.loadSpec(ctx) // the SDK answers from its cache now
		require.NoError(t, err)
		assert.Nil(t, got)
		assert.Equal(t, 1, s.readCount())
	})
	t.Run("exists", func(t *testing.T) {
		s := newStateStore()
		s.data[stateKey] = stored
		c := connectionOver(s, "b")
		got, err := c.loadSpec(ctx)
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.Equal(t, "ws://example.test/", got.URL)
		assert.Equal(t, uint64(3), got.Epoch)
		assert.Equal(t, 1, s.readCount())
	})
	t.Run("failed read is not missing", func(t *testing.T) {
		s := newStateStore()
		s.data[stateKey] = stored
		s.failReads = true
		c := connectionOver(s, "c")
		got, err := c.loadSpec(ctx)
		require.Error(t, err)
		assert.Nil(t, got)
		s.mu.Lock()
		s.failReads = false
		s.mu.Unlock()
		got, err = c.loadSpec(ctx)
		require.NoError(t, err)
		require.NotNil(t, got, "the read after a failure must see the stored spec, not a cached empty one")
		assert.Equal(t, "ws://example.test/", got.URL)
	})
	t.Run("removed in this turn", func(t *testing.T) {
		s := newStateStore()
		s.data[stateKey] = stored
		c := connectionOver(s, "d")
		_, err := c.loadSpec(ctx)
		require.NoError(t, err)
		require.NoError(t, c.GetStateManager().Remove(ctx, stateKey))
		got, err := c.loadSpec(ctx)
		require.NoError(t, err)
		assert.Nil(t, got)
	})
}
