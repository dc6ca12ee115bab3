package actors

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// slowDirectory is a directory read that takes until an instance was asked (or a second).
type slowDirectory struct {
	listActors
	peers *fakePeers
	saw   []bool // per read: whether an instance had been asked before it ended
}

func (d *slowDirectory) Directory(ctx context.Context, after string, limit int) ([]string, []string, error) {
	deadline := time.Now().Add(time.Second)
	asked := false
	for time.Now().Before(deadline) && !asked {
		d.peers.mu.Lock()
		asked = d.peers.calls["b:1"] > d.callsBefore()
		d.peers.mu.Unlock()
		if !asked {
			time.Sleep(time.Millisecond)
		}
	}
	d.saw = append(d.saw, asked)
	return d.listActors.Directory(ctx, after, limit)
}

func (d *slowDirectory) callsBefore() int { return len(d.saw) * 1 }

// The instances the last List found are asked while the directory is read, so a List takes
// the longer of the two, not their sum; an instance the directory names for the first time is
// asked after it, and every List answers the same.
func TestListAsksKnownInstancesWhileReadingTheDirectory(t *testing.T) {
	peers := &fakePeers{by: map[string][]ConnectionInfo{"b:1": numbered("B", 10, 20)}}
	dir := &slowDirectory{listActors: listActors{holders: []string{"self:1", "b:1"}}, peers: peers}
	for i := range 20 {
		dir.ids = append(dir.ids, numbered("", i, i+1)[0].ID)
	}
	r := (&Router{actors: dir, sessions: &fakeSessions{}}).WithLists(&fakeLocal{addr: "self:1", infos: numbered("A", 0, 10)}, peers, zap.NewNop())
	for range 2 {
		all, _, err := r.List(context.Background(), ListQuery{PageSize: 100})
		require.NoError(t, err)
		require.Len(t, all, 20)
		for _, in := range all {
			assert.NotEmpty(t, in.InstanceID, in.ID)
		}
	}
	assert.Equal(t, []bool{false, true}, dir.saw, "the first List learns the instances, the second asks them at once")
}
