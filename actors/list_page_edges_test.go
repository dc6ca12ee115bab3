package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// A paged List over the real Client.Directory (not the generous listActors fake) must
// still page through every unheld id. When the directory's read stops at exactly page_size
// known ids and no instance reports more, mergeList sees no sign of more and returns no
// next_page_token although the cut shard has more ids (a bug the review of this change found).
func TestPagedListReachesEveryUnheldID(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  func() []string
	}{
		{"one shard", func() []string {
			var ids []string
			for i := 0; len(ids) < 10; i++ {
				if id := fmt.Sprintf("u-%d", i); DirectoryShard(id) == "5" {
					ids = append(ids, id)
				}
			}
			return ids
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := slices.Sorted(slices.Values(tc.ids()))
			for _, size := range []int{1, 5, 7} {
				c := NewClient(newPagedShards(all))
				r := (&Router{actors: c, sessions: &fakeSessions{}}).WithLists(&fakeLocal{addr: "self:1"}, &fakePeers{}, zap.NewNop())
				var paged []string
				token := ""
				for range len(all) + 1 {
					page, next, err := r.List(context.Background(), ListQuery{PageSize: size, PageToken: token})
					require.NoError(t, err)
					for _, in := range page {
						paged = append(paged, in.ID)
					}
					if next == "" {
						break
					}
					token = next
				}
				assert.Equal(t, len(all), len(paged), "page size %d: ids reached by paging", size)
			}
		})
	}
}

// signallingLocal is this instance: it says when it was asked, and can hold more later.
type signallingLocal struct {
	mu    sync.Mutex
	infos []ConnectionInfo
	asked chan struct{}
}

func (l *signallingLocal) InstanceAddr() string { return "self:1" }
func (l *signallingLocal) ListHeld(q HeldQuery) ([]ConnectionInfo, bool) {
	l.mu.Lock()
	infos := slices.Clone(l.infos)
	l.mu.Unlock()
	select {
	case l.asked <- struct{}{}:
	default:
	}
	return pageOf(infos, q)
}

// connectDuringRead is a directory read during which this instance completes a Connect (held
// first, then added to the directory — the order Connect uses), after the instance was asked.
type connectDuringRead struct {
	listActors
	local *signallingLocal
}

func (d *connectDuringRead) Directory(ctx context.Context, after string, limit int) ([]string, []string, error) {
	select {
	case <-d.local.asked:
	case <-time.After(time.Second): // asked after the read (the order before the change)
	}
	d.local.mu.Lock()
	d.local.infos = append(d.local.infos, ConnectionInfo{ID: "new", Status: StatusConnected, InstanceID: "A"})
	d.local.mu.Unlock()
	d.ids = append(d.ids, "new")
	return d.listActors.Directory(ctx, after, limit)
}

// This instance is asked after the directory is read, not while: else a connection that
// completes its Connect meanwhile is in the directory but not in the instance's answer, and
// List shows it CONNECTING, "held by no instance now (its instance stopped ...)".
func TestListDuringConnectShowsNoFalseUnheld(t *testing.T) {
	local := &signallingLocal{asked: make(chan struct{}, 1)}
	dir := &connectDuringRead{listActors: listActors{holders: []string{"self:1"}}, local: local}
	r := (&Router{actors: dir, sessions: &fakeSessions{}}).WithLists(local, &fakePeers{}, zap.NewNop())
	all, _, err := r.List(context.Background(), ListQuery{PageSize: 10})
	require.NoError(t, err)
	for _, in := range all {
		assert.NotEqual(t, UnheldReason, in.LastError, "%s is held by this instance, listed as held by none", in.ID)
	}
}
