package actors

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/go-sdk/actor"
	"github.com/dapr/go-sdk/actor/state"
	dapr "github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/lhash"
)

// stateStore stands in for the sidecar's actor state API behind the Go SDK's own state
// manager, so that these tests see what the SDK really reads and writes.
type stateStore struct {
	dapr.Client // only the two methods below are called

	mu        sync.Mutex
	data      map[string][]byte // key → JSON, one shard's keys
	reads     int
	failReads bool
	saves     [][]*dapr.ActorStateOperation
}

func newStateStore() *stateStore { return &stateStore{data: map[string][]byte{}} }

func (s *stateStore) GetActorState(_ context.Context, in *dapr.GetActorStateRequest) (*dapr.GetActorStateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.failReads {
		return nil, errors.New("state store unreachable")
	}
	return &dapr.GetActorStateResponse{Data: s.data[in.KeyName]}, nil
}

func (s *stateStore) SaveStateTransactionally(_ context.Context, _, _ string, ops []*dapr.ActorStateOperation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		switch op.OperationType {
		case "upsert":
			s.data[op.Key] = op.Value
		case "delete":
			delete(s.data, op.Key)
		}
	}
	s.saves = append(s.saves, ops)
	return nil
}

// lastSave returns the keys and bytes of the last save.
func (s *stateStore) lastSave() (keys []string, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.saves) == 0 {
		return nil, 0
	}
	for _, op := range s.saves[len(s.saves)-1] {
		keys = append(keys, op.OperationType+" "+op.Key)
		bytes += len(op.Value)
	}
	return keys, bytes
}

func (s *stateStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// activate returns shard id as a newly activated actor over s.
func activate(s *stateStore, id string) *Directory {
	d := &Directory{deps: &Deps{Log: zap.NewNop()}}
	d.SetID(id)
	d.newState = func() actor.StateManagerContext {
		return state.NewActorStateManagerContext(DirectoryType, id, state.NewDaprStateAsyncProvider(s))
	}
	d.SetStateManager(d.newState())
	return d
}

// turn runs one method the way the SDK does: the method, then the save of its state.
func turn[R any](t *testing.T, d *Directory, call func(context.Context) (R, error)) R {
	t.Helper()
	ctx := context.Background()
	r, err := call(ctx)
	require.NoError(t, err)
	require.NoError(t, d.SaveState(ctx))
	return r
}

func add(t *testing.T, d *Directory, id, holder string) *Reply {
	t.Helper()
	return turn(t, d, func(ctx context.Context) (*Reply, error) { return d.Add(ctx, &MemberArgs{ID: id, Holder: holder}) })
}

func members(t *testing.T, d *Directory) *MembersReply {
	t.Helper()
	return turn(t, d, func(ctx context.Context) (*MembersReply, error) { return d.Members(ctx, &MembersArgs{}) })
}

func has(t *testing.T, d *Directory, id string) bool {
	t.Helper()
	r := turn(t, d, func(ctx context.Context) (*HasReply, error) { return d.Has(ctx, &MemberArgs{ID: id}) })
	require.Nil(t, r.Error)
	return r.Member
}

// Ensure the directory's methods keep their contract over the bucketed table, also after the
// shard is activated again elsewhere.
func TestDirectoryContract(t *testing.T) {
	s := newStateStore()
	d := activate(s, "3")
	assert.False(t, has(t, d, "a"))
	assert.Empty(t, members(t, d).IDs)
	for i := range 200 {
		require.Nil(t, add(t, d, "id-"+strconv.Itoa(i), "10.0.0."+strconv.Itoa(i%3+1)+":5002").Error)
	}
	require.Nil(t, add(t, d, "id-7", "").Error, "an Add without a holder")
	assert.Equal(t, CodeInvalidArgument, add(t, d, "x", "not an address").Error.Code)
	r := turn(t, d, func(ctx context.Context) (*Reply, error) {
		return d.SetHolders(ctx, &HoldersArgs{Holders: map[string]string{"id-8": "10.0.0.9:5002", "stranger": "10.0.0.9:5002", "id-9": "bad"}})
	})
	require.Nil(t, r.Error)
	r = turn(t, d, func(ctx context.Context) (*Reply, error) { return d.Remove(ctx, &MemberArgs{ID: "id-0"}) })
	require.Nil(t, r.Error)

	for _, d := range []*Directory{d, activate(s, "3")} {
		m := members(t, d)
		require.Nil(t, m.Error)
		assert.Len(t, m.IDs, 199)
		assert.IsNonDecreasing(t, m.IDs)
		assert.NotContains(t, m.IDs, "id-0")
		assert.NotContains(t, m.IDs, "stranger", "SetHolders ignores ids that are not members")
		assert.Equal(t, []string{"10.0.0.1:5002", "10.0.0.2:5002", "10.0.0.3:5002", "10.0.0.9:5002"}, m.Holders)
		assert.True(t, has(t, d, "id-7"))
		assert.False(t, has(t, d, "id-0"))
		all, err := d.entries(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "10.0.0.2:5002", all["id-7"], "an Add without a holder keeps the recorded one")
		assert.Equal(t, "10.0.0.9:5002", all["id-8"])
		assert.Equal(t, "10.0.0.1:5002", all["id-9"], "an invalid address is not recorded")
	}
	for i := 1; i < 200; i++ {
		r := turn(t, d, func(ctx context.Context) (*Reply, error) {
			return d.Remove(ctx, &MemberArgs{ID: "id-" + strconv.Itoa(i)})
		})
		require.Nil(t, r.Error)
	}
	assert.Empty(t, members(t, activate(s, "3")).IDs)
	var keys []string
	for k := range s.data {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{metaKey, lhash.BucketKey(0)}, keys, "an emptied shard shrinks back to one bucket")
}

// Ensure an Add writes the same few keys and bytes, and reads the same few keys after an
// activation, at 100 entries per shard as at 10,000: the Go SDK saves only the keys set in
// the turn, not every key it has cached.
func TestDirectoryAddCostIsFlat(t *testing.T) {
	type cost struct{ keys, bytes, reads int }
	measure := func(size int) cost {
		s := newStateStore()
		d := activate(s, "5")
		for i := range size {
			require.Nil(t, add(t, d, "conn-"+strconv.Itoa(i), "10.0.0.1:5002").Error)
		}
		d = activate(s, "5") // a fresh activation reads what it needs
		before := s.readCount()
		require.Nil(t, add(t, d, "new-connection", "10.0.0.2:5002").Error)
		keys, bytes := s.lastSave()
		c := cost{len(keys), bytes, s.readCount() - before}
		// And once more, with the shard's keys cached: only the new bucket is read.
		before = s.readCount()
		require.Nil(t, add(t, d, "another-connection", "10.0.0.2:5002").Error)
		keys2, _ := s.lastSave()
		assert.LessOrEqual(t, len(keys2), 3)
		assert.LessOrEqual(t, s.readCount()-before, 2)
		t.Logf("%6d entries: add wrote %d keys (%v), %d bytes; read %d keys", size, len(keys), keys, bytes, c.reads)
		return c
	}
	small, large := measure(100), measure(10000)
	for _, c := range []cost{small, large} {
		assert.LessOrEqual(t, c.keys, 3, "one bucket and the header, two buckets on a split")
		assert.LessOrEqual(t, c.reads, 4, "header, its bucket, a bucket to split")
		assert.LessOrEqual(t, c.bytes, 3*lhash.Capacity*64, "at most a few buckets of ~2×Capacity entries")
	}
	assert.LessOrEqual(t, large.bytes, 4*small.bytes, "100 vs 10,000 entries: %d vs %d bytes", small.bytes, large.bytes)
}

// Ensure a shard stored in the former format (two whole maps) is converted when first loaded,
// keeps every entry and holder, and loses the old keys.
func TestDirectoryConvertsFormerFormat(t *testing.T) {
	s := newStateStore()
	var m, h strings.Builder
	m.WriteString("{")
	h.WriteString(`{"stale":"10.0.0.5:5002",`)
	for i := range 1000 {
		if i > 0 {
			m.WriteString(",")
			h.WriteString(",")
		}
		m.WriteString(`"c` + strconv.Itoa(i) + `":true`)
		h.WriteString(`"c` + strconv.Itoa(i) + `":"10.0.0.` + strconv.Itoa(i%2+1) + `:5002"`)
	}
	m.WriteString(`,"c-no-holder":true}`)
	h.WriteString("}")
	s.data[membersKey], s.data[holdersKey] = []byte(m.String()), []byte(h.String())
	s.data[watchdogKey] = []byte(`"3s"`)

	d := activate(s, "9")
	assert.True(t, has(t, d, "c500"), "converted on the first call, whatever it is")
	assert.NotContains(t, s.data, membersKey)
	assert.NotContains(t, s.data, holdersKey)
	assert.Contains(t, s.data, metaKey)
	assert.Contains(t, s.data, watchdogKey, "other keys stay")

	for _, d := range []*Directory{d, activate(s, "9")} {
		r := members(t, d)
		assert.Len(t, r.IDs, 1001)
		assert.Contains(t, r.IDs, "c-no-holder")
		assert.NotContains(t, r.IDs, "stale", "a holder without membership is not a member")
		assert.Equal(t, []string{"10.0.0.1:5002", "10.0.0.2:5002"}, r.Holders)
	}
	var meta lhash.Meta
	require.NoError(t, activate(s, "9").GetStateManager().Get(context.Background(), metaKey, &meta))
	assert.Equal(t, 1001, meta.Count)
	assert.Greater(t, meta.Buckets, uint32(1000/lhash.Capacity-1))
}

// Ensure a failed read loses nothing: the SDK caches a failed read's empty reply, which the
// shard must not take for the stored bucket and write back.
func TestDirectoryReadFailureLosesNothing(t *testing.T) {
	s := newStateStore()
	d := activate(s, "1")
	for i := range 300 {
		require.Nil(t, add(t, d, "c"+strconv.Itoa(i), "10.0.0.1:5002").Error)
	}
	d = activate(s, "1")
	assert.True(t, has(t, d, "c1")) // header and one bucket cached; the rest is not
	s.failReads = true
	for i := range 20 {
		r := add(t, d, "new-"+strconv.Itoa(i), "10.0.0.1:5002")
		if r.Error != nil {
			assert.Equal(t, CodeUnavailable, r.Error.Code)
		}
	}
	assert.Equal(t, CodeUnavailable, members(t, d).Error.Code)
	s.failReads = false
	r := members(t, d)
	require.Nil(t, r.Error)
	for i := range 300 {
		assert.Contains(t, r.IDs, "c"+strconv.Itoa(i))
	}
	assert.Len(t, members(t, activate(s, "1")).IDs, len(r.IDs), "what this activation sees is what is stored")
}

// Ensure shard "0" records the first shard count announced and refuses instances that count
// differently, with a message that says what to do.
func TestDirectoryShardCountIsChecked(t *testing.T) {
	s := newStateStore()
	announce := func(d *Directory, shards int) *ErrorInfo {
		return turn(t, d, func(ctx context.Context) (*Reply, error) {
			return d.Announce(ctx, &AnnounceArgs{Addr: "10.0.0.1:5002", Shards: shards})
		}).Error
	}
	d := activate(s, "0")
	assert.Nil(t, announce(d, 0), "an announce without a count checks nothing")
	assert.Nil(t, announce(d, 64))
	assert.Nil(t, announce(d, 64))
	for _, d := range []*Directory{d, activate(s, "0")} {
		e := announce(d, 128)
		require.NotNil(t, e)
		assert.Equal(t, CodeFailedPrecondition, e.Code)
		assert.Contains(t, e.Message, "--directory-shards 64")
		assert.Contains(t, e.Message, "docs/scaling.md")
	}
	assert.Equal(t, CodeInvalidArgument, announce(d, MaxDirectoryShards+1).Code)
}

// Ensure --directory-shards decides the shards ids go to.
func TestSetDirectoryShards(t *testing.T) {
	t.Cleanup(func() { require.NoError(t, SetDirectoryShards(DefaultDirectoryShards)) })
	assert.Error(t, SetDirectoryShards(0))
	assert.Error(t, SetDirectoryShards(MaxDirectoryShards+1))
	require.NoError(t, SetDirectoryShards(5))
	assert.Equal(t, 5, DirectoryShardCount())
	seen := map[string]bool{}
	for i := range 1000 {
		seen[DirectoryShard("conn-"+strconv.Itoa(i))] = true
	}
	assert.Equal(t, map[string]bool{"0": true, "1": true, "2": true, "3": true, "4": true}, seen)
}

// Ensure ids an instance of the earlier version adds in the former format after a shard was
// converted (a rolling upgrade) are taken into the table on the next activation, with nothing
// the table held lost.
func TestDirectoryTakesInFormerFormatWrittenLater(t *testing.T) {
	s := newStateStore()
	d := activate(s, "4")
	for i := range 100 {
		require.Nil(t, add(t, d, "c"+strconv.Itoa(i), "10.0.0.1:5002").Error)
	}
	// What the earlier version writes when it hosts the shard: it finds no "members" key and
	// writes the ids it added since.
	s.data[membersKey] = []byte(`{"late":true,"c5":true}`)
	s.data[holdersKey] = []byte(`{"late":"10.0.0.7:5002"}`)

	d = activate(s, "4")
	r := members(t, d)
	assert.Len(t, r.IDs, 101)
	assert.Contains(t, r.IDs, "late")
	all, err := d.entries(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.7:5002", all["late"])
	assert.Equal(t, "10.0.0.1:5002", all["c5"], "a holder the former format lacks is kept")
	assert.NotContains(t, s.data, membersKey)
	assert.NotContains(t, s.data, holdersKey)
	assert.Len(t, members(t, activate(s, "4")).IDs, 101)
}

type reminders struct {
	mu         sync.Mutex
	registered []string
}

func (r *reminders) RegisterActorReminder(_ context.Context, in *dapr.RegisterActorReminderRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.registered = append(r.registered, in.ActorID+"/"+in.Name+" every "+in.Period)
	return nil
}

func (r *reminders) UnregisterActorReminder(context.Context, *dapr.UnregisterActorReminderRequest) error {
	return nil
}

// Ensure a shard written in the former format by the re-sharding procedure (no reminder, no
// watchdog key) registers its watchdog reminder when it converts itself, so that its
// connections are looked after without waiting for an Add.
func TestDirectoryConversionRegistersWatchdog(t *testing.T) {
	s := newStateStore()
	s.data[membersKey] = []byte(`{"a":true}`)
	s.data[holdersKey] = []byte(`{"a":"10.0.0.1:5002"}`)
	d := activate(s, "70")
	r := &reminders{}
	d.deps.Reminders, d.deps.WatchdogInterval = r, 3*time.Second
	assert.Equal(t, []string{"a"}, members(t, d).IDs)
	assert.Equal(t, []string{"70/watchdog every 3s"}, r.registered)
	assert.JSONEq(t, `"3s"`, string(s.data[watchdogKey]))
}

// Ensure a shard emptied in a fresh activation registers its watchdog again on the next Add
// (go-sdk's Remove of an unread key does nothing; a stale period must not survive).
func TestDirectoryReRegistersWatchdogAfterEmptying(t *testing.T) {
	s := newStateStore()
	d := activate(s, "71")
	r := &reminders{}
	d.deps.Reminders, d.deps.WatchdogInterval = r, 3*time.Second
	require.Nil(t, add(t, d, "a", "10.0.0.1:5002").Error)
	require.Equal(t, []string{"71/watchdog every 3s"}, r.registered)

	d = activate(s, "71") // a fresh activation: nothing read yet
	d.deps.Reminders, d.deps.WatchdogInterval = r, 3*time.Second
	rm := turn(t, d, func(ctx context.Context) (*Reply, error) { return d.Remove(ctx, &MemberArgs{ID: "a"}) })
	require.Nil(t, rm.Error)

	d = activate(s, "71")
	d.deps.Reminders, d.deps.WatchdogInterval = r, 3*time.Second
	require.Nil(t, add(t, d, "b", "10.0.0.1:5002").Error)
	assert.Equal(t, []string{"71/watchdog every 3s", "71/watchdog every 3s"}, r.registered, "the emptied shard's reminder is registered again")
}

// Ensure a directory written before the shard count was recorded counts as the only count
// earlier versions used: an upgrade that changes --directory-shards is refused, not accepted.
func TestDirectoryShardCountOfAnEarlierVersion(t *testing.T) {
	s := newStateStore()
	s.data[instancesKey] = []byte(`{"10.0.0.9:5002":1}`)
	d := activate(s, "0")
	e := turn(t, d, func(ctx context.Context) (*Reply, error) {
		return d.Announce(ctx, &AnnounceArgs{Addr: "10.0.0.1:5002", Shards: 16})
	}).Error
	require.NotNil(t, e)
	assert.Equal(t, CodeFailedPrecondition, e.Code)
	assert.Contains(t, e.Message, "--directory-shards 64")
	assert.Nil(t, turn(t, d, func(ctx context.Context) (*Reply, error) {
		return d.Announce(ctx, &AnnounceArgs{Addr: "10.0.0.1:5002", Shards: DefaultDirectoryShards})
	}).Error)
}
