package actors

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// AddMany adds every id with its holder in one turn and one transaction, and refuses a call
// that is too large or names something that is not an id or an instance address — adding
// nothing then.
func TestDirectoryAddMany(t *testing.T) {
	s := newStateStore()
	d := activate(s, "5")
	addMany := func(h map[string]string) *Reply {
		return turn(t, d, func(ctx context.Context) (*Reply, error) { return d.AddMany(ctx, &HoldersArgs{Holders: h}) })
	}
	batch := map[string]string{}
	for i := range MaxAddMany {
		batch["id-"+strconv.Itoa(i)] = "10.0.0.1:5002"
	}
	saves := len(s.saves)
	require.Nil(t, addMany(batch).Error)
	assert.Equal(t, saves+1, len(s.saves), "one transaction for the whole call")
	assert.Len(t, members(t, d).IDs, MaxAddMany)
	assert.True(t, has(t, d, "id-"+strconv.Itoa(MaxAddMany-1)))

	assert.Equal(t, CodeInvalidArgument, addMany(map[string]string{"new-1": "not an address"}).Error.Code)
	assert.Equal(t, CodeInvalidArgument, addMany(map[string]string{"bad id\n": "10.0.0.1:5002"}).Error.Code)
	tooMany := map[string]string{}
	for i := range MaxAddMany + 1 {
		tooMany["x-"+strconv.Itoa(i)] = "10.0.0.1:5002"
	}
	assert.Equal(t, CodeInvalidArgument, addMany(tooMany).Error.Code)
	assert.False(t, has(t, d, "new-1"))
	assert.Len(t, members(t, d).IDs, MaxAddMany)

	// Seen the same way by the next activation (another instance).
	assert.Len(t, members(t, activate(s, "5")).IDs, MaxAddMany)
}

// Members with a limit lists only the first ids after the given one, in order; holders are
// all the shard's holders still.
func TestDirectoryMembersPage(t *testing.T) {
	s := newStateStore()
	d := activate(s, "6")
	for i := range 50 {
		require.Nil(t, add(t, d, "id-"+strconv.Itoa(100+i), "10.0.0."+strconv.Itoa(i%2+1)+":5002").Error)
	}
	page := func(after string, limit int) *MembersReply {
		return turn(t, d, func(ctx context.Context) (*MembersReply, error) {
			return d.Members(ctx, &MembersArgs{After: after, Limit: limit})
		})
	}
	r := page("id-120", 3)
	assert.Equal(t, []string{"id-121", "id-122", "id-123"}, r.IDs)
	assert.Len(t, r.Holders, 2)
	assert.Equal(t, []string{"id-148", "id-149"}, page("id-147", 10).IDs)
	assert.Empty(t, page("id-149", 10).IDs)
	assert.Len(t, page("", 0).IDs, 50, "no limit: everything")
}
