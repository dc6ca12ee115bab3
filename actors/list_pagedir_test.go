package actors

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// A paged List reads only each shard's first page_size ids after the token, yet its pages
// still hold every id once, in order — also when most ids are held by no answering instance
// and come from the directory alone.
func TestPagedListReadsAPageOfEachShard(t *testing.T) {
	local := &fakeLocal{addr: "self:1", infos: numbered("A", 0, 1000)}
	peers := &fakePeers{by: map[string][]ConnectionInfo{}, err: map[string]error{"b:1": context.DeadlineExceeded}}
	dir := &listActors{holders: []string{"self:1", "b:1"}}
	for i := range 3000 { // 1000 held here, 2000 by an instance that does not answer
		dir.ids = append(dir.ids, fmt.Sprintf("c%05d", i))
	}
	r := (&Router{actors: dir, sessions: &fakeSessions{}}).WithLists(local, peers, zap.NewNop())
	for _, size := range []int{3, 500, 5000} {
		var paged []string
		token := ""
		for {
			page, next, err := r.List(context.Background(), ListQuery{PageSize: size, PageToken: token})
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), size)
			for _, in := range page {
				paged = append(paged, in.ID)
			}
			if next == "" {
				break
			}
			token = next
		}
		assert.Equal(t, dir.ids, paged, "page size %d: every id once, in id order", size)
	}
}
