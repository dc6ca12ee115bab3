package actors

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"sync"
	"testing"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/websocketmanager/websocketmanager/actors/tracing"
)

// shardInvoker answers Members for every directory shard: shard n holds "id-n", held by
// "holder-(n%2)"; the shards in fail answer with a transport error.
type shardInvoker struct {
	mu    sync.Mutex
	calls map[string]int
	fail  map[string]bool
	seen  []string // traceparent of each call
}

func (f *shardInvoker) InvokeActor(ctx context.Context, in *dapr.InvokeActorRequest) (*dapr.InvokeActorResponse, error) {
	f.mu.Lock()
	f.calls[in.ActorID]++
	md, _ := metadata.FromOutgoingContext(ctx)
	f.seen = append(f.seen, md.Get("traceparent")...)
	f.mu.Unlock()
	if in.ActorType != DirectoryType || in.Method != DirectoryMethodMembers {
		return nil, errors.New("unexpected call " + in.ActorType + "." + in.Method)
	}
	if f.fail[in.ActorID] {
		return nil, errors.New("sidecar unreachable")
	}
	n, _ := strconv.Atoi(in.ActorID)
	data, _ := json.Marshal(MembersReply{IDs: []string{"id-" + in.ActorID}, Holders: []string{"holder-" + strconv.Itoa(n%2)}})
	return &dapr.InvokeActorResponse{Data: data}, nil
}

// Ensure Members and Holders ask every directory shard once and merge the replies, and that a
// failing shard fails the call after the others answered (the caller gets what there is).
func TestEveryShard(t *testing.T) {
	tests := []struct {
		name    string
		fail    map[string]bool
		wantIDs int
		wantErr bool
	}{
		{"all answer", nil, DirectoryShardCount(), false},
		{"one shard unreachable", map[string]bool{"7": true}, DirectoryShardCount() - 1, true},
		{"every shard unreachable", func() map[string]bool {
			m := map[string]bool{}
			for i := range DirectoryShardCount() {
				m[strconv.Itoa(i)] = true
			}
			return m
		}(), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &shardInvoker{calls: map[string]int{}, fail: tt.fail}
			c := NewClient(inv)
			ids, err := c.Members(context.Background())
			assert.Equal(t, tt.wantErr, err != nil, "%v", err)
			assert.Len(t, ids, tt.wantIDs)
			assert.Len(t, inv.calls, DirectoryShardCount(), "every shard asked")
			for shard, n := range inv.calls {
				assert.Equal(t, 1, n, "shard %s asked once", shard)
			}

			holders, err := c.Holders(context.Background())
			assert.Equal(t, tt.wantErr, err != nil)
			sort.Strings(holders)
			if tt.wantIDs > 0 {
				assert.Equal(t, []string{"holder-0", "holder-1"}, holders, "distinct holders")
			} else {
				assert.Empty(t, holders)
			}
		})
	}
}

// Ensure an actor call carries the caller's trace to the sidecar.
func TestActorCallCarriesTrace(t *testing.T) {
	inv := &shardInvoker{calls: map[string]int{}}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx, span := tracing.StartServer(context.Background(), nil, "List", parent, "")
	defer span.End()
	_, err := NewClient(inv).Members(ctx)
	require.NoError(t, err)
	require.Len(t, inv.seen, DirectoryShardCount())
	for _, tp := range inv.seen {
		assert.Contains(t, tp, "4bf92f3577b34da6a3ce929d0e0e4736")
	}
}
