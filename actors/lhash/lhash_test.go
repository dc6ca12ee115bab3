package lhash

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// store is a table's backing store as the directory actor keeps it: JSON per key.
type store struct {
	data  map[string][]byte
	reads atomic.Int64
	fail  bool
}

func newStore() *store { return &store{data: map[string][]byte{}} }

func (s *store) load(_ context.Context, n uint32) (Bucket, error) {
	s.reads.Add(1)
	if s.fail {
		return nil, errors.New("store down")
	}
	raw, ok := s.data[BucketKey(n)]
	if !ok {
		return nil, fmt.Errorf("bucket %d missing", n)
	}
	var b Bucket
	return b, json.Unmarshal(raw, &b)
}

// apply writes c and returns the bytes written.
func (s *store) apply(t *testing.T, c Changes) int {
	t.Helper()
	written := 0
	if c.Meta != nil {
		raw, err := json.Marshal(c.Meta)
		require.NoError(t, err)
		s.data["meta"] = raw
		written += len(raw)
	}
	for n, b := range c.Put {
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		s.data[BucketKey(n)] = raw
		written += len(raw)
	}
	for _, n := range c.Delete {
		delete(s.data, BucketKey(n))
	}
	return written
}

// reopen reads the table back from the store, as a newly activated actor does.
func (s *store) reopen(t *testing.T) *Table {
	t.Helper()
	raw, ok := s.data["meta"]
	if !ok { // never written, as the directory treats a shard without a header
		return New()
	}
	var m Meta
	require.NoError(t, json.Unmarshal(raw, &m))
	tab, err := Open(m, s.load)
	require.NoError(t, err)
	return tab
}

// Ensure the addressing follows linear hashing: buckets below the split pointer use one
// more bit of the hash.
func TestBucketOf(t *testing.T) {
	h := uint64(0b1011_0110)
	tests := []struct {
		meta Meta
		want uint32
	}{
		{Meta{Level: 0, Split: 0, Buckets: 1}, 0},
		{Meta{Level: 1, Split: 0, Buckets: 2}, 0b0},
		{Meta{Level: 1, Split: 1, Buckets: 3}, 0b10}, // bucket 0 is split: two bits
		{Meta{Level: 2, Split: 0, Buckets: 4}, 0b10},
		{Meta{Level: 2, Split: 2, Buckets: 6}, 0b10}, // 2 not below the split pointer
		{Meta{Level: 2, Split: 3, Buckets: 7}, 0b110},
		{Meta{Level: 3, Split: 6, Buckets: 14}, 0b110}, // 6 not below the split pointer
		{Meta{Level: 3, Split: 7, Buckets: 15}, 0b0110},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.meta.bucketOfHash(h), "%+v", tt.meta)
	}
}

// Ensure a split and a merge move the pointer and level as linear hashing does, and undo
// each other.
func TestSplitMergePlan(t *testing.T) {
	tests := []struct {
		meta     Meta
		next     Meta
		from, to uint32
	}{
		{Meta{Level: 0, Split: 0, Buckets: 1}, Meta{Level: 1, Split: 0, Buckets: 2}, 0, 1},
		{Meta{Level: 1, Split: 0, Buckets: 2}, Meta{Level: 1, Split: 1, Buckets: 3}, 0, 2},
		{Meta{Level: 1, Split: 1, Buckets: 3}, Meta{Level: 2, Split: 0, Buckets: 4}, 1, 3},
		{Meta{Level: 3, Split: 5, Buckets: 13}, Meta{Level: 3, Split: 6, Buckets: 14}, 5, 13},
	}
	for _, tt := range tests {
		next, from, to := tt.meta.splitPlan()
		assert.Equal(t, tt.next, next)
		assert.Equal(t, [2]uint32{tt.from, tt.to}, [2]uint32{from, to})
		require.NoError(t, next.Check())
		back, into, gone := next.mergePlan()
		assert.Equal(t, tt.meta, back, "merge undoes the split")
		assert.Equal(t, [2]uint32{tt.from, tt.to}, [2]uint32{into, gone})
	}
}

// Ensure headers that this package cannot have written are refused.
func TestMetaCheck(t *testing.T) {
	tests := []struct {
		meta Meta
		ok   bool
	}{
		{Empty(), true},
		{Meta{Level: 2, Split: 3, Buckets: 7, Count: 100}, true},
		{Meta{Buckets: 0}, false},
		{Meta{Level: 1, Split: 2, Buckets: 4}, false},
		{Meta{Level: 1, Split: 1, Buckets: 2}, false},
		{Meta{Level: 40, Buckets: 1}, false},
		{Meta{Buckets: 1, Count: -1}, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ok, tt.meta.Check() == nil, "%+v", tt.meta)
	}
}

// Ensure the ids of one directory shard spread evenly over its buckets: the bucket hash
// must not repeat the shard hash's low bits.
func TestBucketsFillEvenly(t *testing.T) {
	tab := New()
	ctx := context.Background()
	for i := 0; tab.Len() < 10000; i++ {
		id := "conn-" + strconv.Itoa(i)
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		if h.Sum32()%64 != 7 { // only the ids of shard "7"
			continue
		}
		require.NoError(t, tab.Put(ctx, id, "10.0.0.1:5002"))
	}
	m := tab.Meta()
	assert.GreaterOrEqual(t, int(m.Buckets), 10000/Capacity)
	largest := 0
	for n := range m.Buckets {
		largest = max(largest, len(tab.buckets[n]))
	}
	// Unsplit buckets of the round hold about 2×Capacity; allow for chance, not for bias.
	assert.LessOrEqual(t, largest, 4*Capacity, "largest bucket of %d", m.Buckets)
}

// Ensure an add rewrites one bucket and the header, not the table: failed reads change
// nothing, and a reopened table finds every entry.
func TestPutDeleteWritesOneBucket(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	tab := New()
	for i := range 1000 {
		require.NoError(t, tab.Put(ctx, "id-"+strconv.Itoa(i), ""))
	}
	s.apply(t, tab.Changes())

	tab = s.reopen(t)
	require.NoError(t, tab.Put(ctx, "new", "h:1"))
	c := tab.Changes()
	require.NotNil(t, c.Meta)
	assert.LessOrEqual(t, len(c.Put), 2, "one bucket, two on a split")
	assert.LessOrEqual(t, s.reads.Load(), int64(2))
	s.apply(t, c)

	require.NoError(t, tab.Put(ctx, "new", "h:2"))
	c = tab.Changes()
	assert.Nil(t, c.Meta, "a changed value leaves the header alone")
	assert.Len(t, c.Put, 1)
	s.apply(t, c)
	require.NoError(t, tab.Put(ctx, "new", "h:2"))
	assert.True(t, tab.Changes().Empty(), "nothing changed, nothing written")

	s.fail = true
	tab = s.reopen(t)
	before := tab.Meta()
	assert.Error(t, tab.Put(ctx, "other", ""))
	_, err := tab.Delete(ctx, "new")
	assert.Error(t, err)
	assert.Equal(t, before, tab.Meta())
	assert.True(t, tab.Changes().Empty())

	s.fail = false
	tab = s.reopen(t)
	v, ok, err := tab.Get(ctx, "new")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "h:2", v)
	assert.Equal(t, 1001, tab.Len())
}

// FuzzTable runs random sequences of adds and removes against a map, writing every change
// to a store and sometimes reopening the table from it: every id must be found with its
// value, the count must be right, and no entry may be lost across splits and merges.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add(make([]byte, 600))
	seq := make([]byte, 0, 4000)
	for i := range 1000 {
		seq = binary.LittleEndian.AppendUint32(seq, uint32(i)*2) // adds, then ...
	}
	for i := range 1000 {
		seq = binary.LittleEndian.AppendUint32(seq, uint32(i)*2+1) // ... removes
	}
	f.Add(seq)
	f.Fuzz(func(t *testing.T, ops []byte) {
		ctx := context.Background()
		s := newStore()
		tab := New()
		want := map[string]string{}
		for i := 0; i+4 <= len(ops); i += 4 {
			op := binary.LittleEndian.Uint32(ops[i:])
			id := "c" + strconv.Itoa(int(op>>1)%1500)
			if op&1 == 0 {
				v := strconv.Itoa(i)
				require.NoError(t, tab.Put(ctx, id, v))
				want[id] = v
			} else {
				had, err := tab.Delete(ctx, id)
				require.NoError(t, err)
				_, ok := want[id]
				assert.Equal(t, ok, had)
				delete(want, id)
			}
			s.apply(t, tab.Changes())
			require.NoError(t, tab.Meta().Check())
			if op>>28 == 0xf { // now and then, as after a reactivation
				tab = s.reopen(t)
			}
		}
		tab = s.reopen(t)
		assert.Equal(t, len(want), tab.Len())
		got := map[string]string{}
		require.NoError(t, tab.All(ctx, 4, func(id, v string) { got[id] = v }))
		assert.Equal(t, want, got)
		for id, v := range want {
			g, ok, err := tab.Get(ctx, id)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, v, g)
			assert.Equal(t, tab.Meta().BucketOf(id), bucketHolding(tab, id), "id in the bucket its hash names")
		}
		// Exactly the buckets below the count exist in the store (once anything was written).
		m := tab.Meta()
		_, written := s.data["meta"]
		for n := range m.Buckets + 4 {
			_, ok := s.data[BucketKey(n)]
			assert.Equal(t, written && n < m.Buckets, ok, "bucket %d of %d", n, m.Buckets)
		}
		if len(want) == 0 {
			assert.Equal(t, uint32(1), m.Buckets, "an emptied table shrinks back to one bucket")
		}
	})
}

func bucketHolding(tab *Table, id string) uint32 {
	for n, b := range tab.buckets {
		if _, ok := b[id]; ok {
			return n
		}
	}
	return ^uint32(0)
}

// Ensure Build converts a whole map (the directory's old format) into a table.
func TestBuild(t *testing.T) {
	in := map[string]string{}
	for i := range 500 {
		in["id-"+strconv.Itoa(i)] = ""
	}
	in["id-7"] = "h:1"
	tab := Build(in)
	s := newStore()
	s.apply(t, tab.Changes())
	got := map[string]string{}
	require.NoError(t, s.reopen(t).All(context.Background(), 8, func(id, v string) { got[id] = v }))
	assert.True(t, maps.Equal(in, got))
}

// BenchmarkAdd measures the bytes an add rewrites (one bucket, the header, now and then a
// split) at 100 to 100,000 entries per shard, next to the former format, which rewrote the
// shard's whole member and holder maps. Ids have one length, so that only the size differs.
func BenchmarkAdd(b *testing.B) {
	for _, size := range []int{100, 1000, 10000, 100000} {
		b.Run(fmt.Sprintf("lhash/entries=%d", size), func(b *testing.B) {
			ctx := context.Background()
			tab := New()
			for i := range size {
				_ = tab.Put(ctx, fmt.Sprintf("conn-%08d", i), "10.0.0.1:5002")
			}
			tab.Changes()
			written, largest := 0, 0
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("bench-%07d", i)
				_ = tab.Put(ctx, id, "10.0.0.1:5002")
				add := changedBytes(tab.Changes())
				_, _ = tab.Delete(ctx, id) // back to size: every add is at the same size
				remove := changedBytes(tab.Changes())
				written += add + remove
				largest = max(largest, add, remove)
			}
			b.ReportMetric(float64(written)/float64(2*b.N), "bytes/op")
			b.ReportMetric(float64(largest), "max-bytes/op")
		})
	}
	for _, size := range []int{100, 10000} {
		b.Run(fmt.Sprintf("whole-maps/entries=%d", size), func(b *testing.B) {
			members, holders := map[string]bool{}, map[string]string{}
			for i := range size {
				id := fmt.Sprintf("conn-%08d", i)
				members[id], holders[id] = true, "10.0.0.1:5002"
			}
			written := 0
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("bench-%07d", i)
				members[id], holders[id] = true, "10.0.0.1:5002"
				m, _ := json.Marshal(members)
				h, _ := json.Marshal(holders)
				written += len(m) + len(h)
				delete(members, id)
				delete(holders, id)
			}
			b.ReportMetric(float64(written)/float64(b.N), "bytes/op")
		})
	}
}

func changedBytes(c Changes) int {
	n := 0
	if c.Meta != nil {
		raw, _ := json.Marshal(c.Meta)
		n += len(raw)
	}
	for _, bk := range c.Put {
		raw, _ := json.Marshal(bk)
		n += len(raw)
	}
	return n
}
