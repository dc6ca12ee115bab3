package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pagedShards answers Members as the directory shards do, from ids spread by DirectoryShard,
// and counts the ids it sends.
type pagedShards struct {
	mu     sync.Mutex
	shards map[string][]string // sorted
	sent   int
	calls  int
}

func newPagedShards(ids []string) *pagedShards {
	p := &pagedShards{shards: map[string][]string{}}
	for _, id := range ids {
		p.shards[DirectoryShard(id)] = append(p.shards[DirectoryShard(id)], id)
	}
	for _, s := range p.shards {
		sort.Strings(s)
	}
	return p
}

func (p *pagedShards) InvokeActor(_ context.Context, in *dapr.InvokeActorRequest) (*dapr.InvokeActorResponse, error) {
	var a MembersArgs
	if err := json.Unmarshal(in.Data, &a); err != nil {
		return nil, err
	}
	var out []string
	for _, id := range p.shards[in.ActorID] {
		if a.Limit <= 0 || id > a.After {
			out = append(out, id)
		}
	}
	if a.Limit > 0 && len(out) > a.Limit {
		out = out[:a.Limit]
	}
	p.mu.Lock()
	p.sent += len(out)
	p.calls++
	p.mu.Unlock()
	data, _ := json.Marshal(MembersReply{IDs: out, Holders: []string{"h:1"}})
	return &dapr.InvokeActorResponse{Data: data}, nil
}

// A paged read returns every id up to the page's last, whatever the spread over the shards,
// and reads a small multiple of the page, not a page per shard.
func TestDirectoryPageReadsWhatThePageNeeds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		ids  func() []string
	}{
		{"even spread", func() []string {
			var ids []string
			for i := range 20000 {
				ids = append(ids, fmt.Sprintf("c-%06d", i))
			}
			return ids
		}},
		{"a few shards only", func() []string {
			// ids chosen to land in three shards: each shard's cut decides.
			var ids []string
			for i := 0; len(ids) < 3000; i++ {
				id := "s-" + strconv.Itoa(i)
				if sh := DirectoryShard(id); sh == "1" || sh == "2" || sh == "3" {
					ids = append(ids, id)
				}
			}
			return ids
		}},
		{"fewer ids than a page", func() []string { return []string{"a", "b", "c"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := tc.ids()
			sorted := slices.Sorted(slices.Values(all))
			p := newPagedShards(all)
			c := NewClient(p)
			for range 20 {
				limit := []int{1, 7, 500, 5000}[rng.IntN(4)]
				after := ""
				if rng.IntN(3) > 0 {
					after = sorted[rng.IntN(len(sorted))]
				}
				p.mu.Lock()
				p.sent, p.calls = 0, 0
				p.mu.Unlock()
				got, holders, err := c.Directory(context.Background(), after, limit)
				require.NoError(t, err)
				assert.Equal(t, []string{"h:1"}, holders)
				i := sort.SearchStrings(sorted, after)
				if i < len(sorted) && sorted[i] == after {
					i++
				}
				want := sorted[i:min(len(sorted), i+limit)]
				gotSet := map[string]bool{}
				for _, id := range got {
					require.Greater(t, id, after)
					gotSet[id] = true
				}
				for _, id := range want {
					require.True(t, gotSet[id], "%s missing (after %q, limit %d)", id, after, limit)
				}
				if tc.name == "even spread" && limit >= 500 {
					assert.LessOrEqual(t, p.sent, 4*limit+64*16, "ids read for a page of %d", limit)
				}
			}
		})
	}
}
