// Package lhash is linear hashing over a key-value store whose keys cannot be listed (Dapr
// actor state): a small header ([Meta]) and numbered buckets, each holding the entries whose
// hash falls into it. The table grows and shrinks one bucket at a time, so adding or removing
// an entry rewrites one bucket (plus the header, and on a split or merge one more bucket),
// whatever the size of the table. It holds no goroutines and does no I/O of its own: a
// [Loader] reads buckets, and [Table.Changes] says what to write.
package lhash

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Capacity is the average number of entries per bucket above which the table splits a
// bucket. Buckets not yet split in the current round hold up to about twice as many.
const Capacity = 32

// Bucket maps entry ids to their value (a directory shard: connection id → holder address,
// "" when unknown).
type Bucket map[string]string

// Meta is the table's header: constant size whatever the number of entries.
type Meta struct {
	// Level: at the start of the current round the table had 2^Level buckets.
	Level uint8 `json:"l"`
	// Split is the next bucket to split; buckets below it are split in this round already.
	Split uint32 `json:"s"`
	// Buckets is the number of buckets, 2^Level + Split (kept to check the header).
	Buckets uint32 `json:"b"`
	// Count is the number of entries.
	Count int `json:"c"`
}

// Empty is the header of a table with no entries: one (empty) bucket.
func Empty() Meta { return Meta{Buckets: 1} }

// maxLevel bounds Level: 2^31 buckets is far past any actor's state.
const maxLevel = 31

// Check says whether m is a header this package could have written.
func (m Meta) Check() error {
	switch {
	case m.Level > maxLevel:
		return fmt.Errorf("level %d above %d", m.Level, maxLevel)
	case m.Split >= 1<<m.Level:
		return fmt.Errorf("split pointer %d not below 2^level %d", m.Split, uint32(1)<<m.Level)
	case m.Buckets != 1<<m.Level+m.Split:
		return fmt.Errorf("bucket count %d, want 2^%d+%d", m.Buckets, m.Level, m.Split)
	case m.Count < 0:
		return fmt.Errorf("negative entry count %d", m.Count)
	}
	return nil
}

// BucketKey is the state key of bucket n.
func BucketKey(n uint32) string { return "b/" + strconv.FormatUint(uint64(n), 10) }

// Hash is the hash that places an id in a bucket: FNV-1a 64 with a finalizer that spreads
// every input bit over the low bits. It must differ from the hash that chose the id's shard
// (FNV-1a 32 modulo the shard count): within one shard those low bits are all equal, and
// buckets chosen by them would not fill evenly.
func Hash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	// murmur3's fmix64.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// BucketOf returns the bucket that holds id under header m.
func (m Meta) BucketOf(id string) uint32 { return m.bucketOfHash(Hash(id)) }

func (m Meta) bucketOfHash(h uint64) uint32 {
	b := uint32(h & (1<<m.Level - 1))
	if b < m.Split {
		b = uint32(h & (1<<(m.Level+1) - 1))
	}
	return b
}

// needsSplit: the average bucket holds more than Capacity entries.
func (m Meta) needsSplit() bool { return m.Count > Capacity*int(m.Buckets) }

// needsMerge: one bucket fewer would still average at most half of Capacity (the gap to
// needsSplit keeps an add and a remove at the boundary from splitting and merging in turn).
func (m Meta) needsMerge() bool {
	return m.Buckets > 1 && 2*m.Count <= Capacity*int(m.Buckets-1)
}

// splitPlan returns the header after one split, the bucket split and the new bucket its
// entries move to.
func (m Meta) splitPlan() (next Meta, from, to uint32) {
	from, to = m.Split, m.Split+1<<m.Level
	next = m
	next.Split++
	next.Buckets++
	if next.Split == 1<<m.Level {
		next.Level++
		next.Split = 0
	}
	return next, from, to
}

// mergePlan undoes the last split: it returns the header after it, the bucket that takes the
// entries back and the (last) bucket that goes away.
func (m Meta) mergePlan() (next Meta, into, from uint32) {
	next = m
	if next.Split == 0 {
		next.Level--
		next.Split = 1 << next.Level
	}
	next.Split--
	next.Buckets--
	return next, next.Split, next.Buckets
}

// Loader reads bucket n of the table. Every bucket below Meta.Buckets exists in the store
// (possibly empty), except in a table that was never written. It may be called from several
// goroutines at once by [Table.All].
type Loader func(ctx context.Context, n uint32) (Bucket, error)

// Table is a linear hash table whose buckets are read on first use and kept. Its methods
// read what they need before they change anything, so a failed read leaves it unchanged.
// It is not safe for concurrent use (an actor's turns are one at a time).
type Table struct {
	meta      Meta
	load      Loader
	buckets   map[uint32]Bucket
	dirty     map[uint32]bool
	gone      map[uint32]bool
	metaDirty bool
}

// Open returns the table with header m whose buckets load reads.
func Open(m Meta, load Loader) (*Table, error) {
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("directory table header: %w", err)
	}
	return &Table{meta: m, load: load, buckets: map[uint32]Bucket{}, dirty: map[uint32]bool{}, gone: map[uint32]bool{}}, nil
}

// New returns an empty table that has never been written: its header and bucket 0 are
// written with its first change.
func New() *Table {
	t, _ := Open(Empty(), func(context.Context, uint32) (Bucket, error) {
		return nil, errors.New("lhash: a new table has no stored bucket")
	})
	t.buckets[0] = Bucket{}
	t.dirty[0] = true
	t.metaDirty = true
	return t
}

// Build returns a table holding entries, every bucket and the header to be written (the
// conversion of a whole map into the table).
func Build(entries map[string]string) *Table {
	t := New()
	for id, v := range entries {
		// Every bucket is in memory: nothing is loaded, nothing fails.
		_ = t.Put(context.Background(), id, v)
	}
	return t
}

// Meta returns the table's header.
func (t *Table) Meta() Meta { return t.meta }

// Len returns the number of entries.
func (t *Table) Len() int { return t.meta.Count }

func (t *Table) bucket(ctx context.Context, n uint32) (Bucket, error) {
	if b, ok := t.buckets[n]; ok {
		return b, nil
	}
	b, err := t.load(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("read bucket %d: %w", n, err)
	}
	if b == nil {
		b = Bucket{}
	}
	t.buckets[n] = b
	return b, nil
}

// Get returns the value of id and whether it is in the table.
func (t *Table) Get(ctx context.Context, id string) (string, bool, error) {
	b, err := t.bucket(ctx, t.meta.BucketOf(id))
	if err != nil {
		return "", false, err
	}
	v, ok := b[id]
	return v, ok, nil
}

// Put sets the value of id, splitting a bucket when the table grows past Capacity.
func (t *Table) Put(ctx context.Context, id, value string) error {
	n := t.meta.BucketOf(id)
	b, err := t.bucket(ctx, n)
	if err != nil {
		return err
	}
	if old, ok := b[id]; ok {
		if old != value {
			b[id] = value
			t.dirty[n] = true
		}
		return nil
	}
	grown := t.meta
	grown.Count++
	if grown.needsSplit() {
		// Read the bucket to split before changing anything.
		if _, err := t.bucket(ctx, grown.Split); err != nil {
			return err
		}
	}
	b[id] = value
	t.dirty[n] = true
	t.meta, t.metaDirty = grown, true
	if t.meta.needsSplit() {
		t.split()
	}
	return nil
}

// Delete removes id and says whether it was there, merging the last two buckets when the
// table has shrunk enough.
func (t *Table) Delete(ctx context.Context, id string) (bool, error) {
	n := t.meta.BucketOf(id)
	b, err := t.bucket(ctx, n)
	if err != nil {
		return false, err
	}
	if _, ok := b[id]; !ok {
		return false, nil
	}
	shrunk := t.meta
	shrunk.Count--
	if shrunk.needsMerge() {
		_, into, from := shrunk.mergePlan()
		if _, err := t.bucket(ctx, into); err != nil {
			return false, err
		}
		if _, err := t.bucket(ctx, from); err != nil {
			return false, err
		}
	}
	delete(b, id)
	t.dirty[n] = true
	t.meta, t.metaDirty = shrunk, true
	if t.meta.needsMerge() {
		t.merge()
	}
	return true, nil
}

// split moves the entries of the bucket at the split pointer that now hash one bit further
// into the new last bucket. Both are in memory.
func (t *Table) split() {
	next, from, to := t.meta.splitPlan()
	src := t.buckets[from]
	dst := Bucket{}
	for id, v := range src {
		if next.BucketOf(id) == to {
			dst[id] = v
			delete(src, id)
		}
	}
	t.buckets[to] = dst
	t.dirty[from], t.dirty[to] = true, true
	delete(t.gone, to)
	t.meta = next
}

// merge moves the last bucket's entries back into the bucket it was split from and drops
// it. Both are in memory.
func (t *Table) merge() {
	next, into, from := t.meta.mergePlan()
	dst := t.buckets[into]
	for id, v := range t.buckets[from] {
		dst[id] = v
	}
	delete(t.buckets, from)
	delete(t.dirty, from)
	t.gone[from] = true
	t.dirty[into] = true
	t.meta = next
}

// All reads every bucket not read yet (at most parallel at once) and calls f with each entry,
// in no particular order.
func (t *Table) All(ctx context.Context, parallel int, f func(id, value string)) error {
	if err := t.loadAll(ctx, parallel); err != nil {
		return err
	}
	for n := range t.meta.Buckets {
		for id, v := range t.buckets[n] {
			f(id, v)
		}
	}
	return nil
}

func (t *Table) loadAll(ctx context.Context, parallel int) error {
	var missing []uint32
	for n := range t.meta.Buckets {
		if _, ok := t.buckets[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	parallel = max(1, min(parallel, len(missing)))
	got := make([]Bucket, len(missing))
	errs := make([]error, len(missing))
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				got[i], errs[i] = t.load(ctx, missing[i])
			}
		}()
	}
	for i := range missing {
		next <- i
	}
	close(next)
	wg.Wait()
	// Keep what was read even when some read failed: the next call reads only the rest.
	var first error
	for i, n := range missing {
		if errs[i] != nil {
			if first == nil {
				first = fmt.Errorf("read bucket %d: %w", n, errs[i])
			}
			continue
		}
		if got[i] == nil {
			got[i] = Bucket{}
		}
		t.buckets[n] = got[i]
	}
	return first
}

// Changes is what to write to the store after changes to a table.
type Changes struct {
	// Meta is the new header, nil when it did not change.
	Meta *Meta
	// Put holds the buckets to write whole.
	Put map[uint32]Bucket
	// Delete lists the buckets to remove (merged away).
	Delete []uint32
}

// Empty says whether there is nothing to write.
func (c Changes) Empty() bool { return c.Meta == nil && len(c.Put) == 0 && len(c.Delete) == 0 }

// Changes returns what changed since the last call, and forgets it: the caller writes it.
// The buckets returned are the table's own; they must not be changed.
func (t *Table) Changes() Changes {
	var c Changes
	if t.metaDirty {
		m := t.meta
		c.Meta = &m
	}
	if len(t.dirty) > 0 {
		c.Put = make(map[uint32]Bucket, len(t.dirty))
		for n := range t.dirty {
			c.Put[n] = t.buckets[n]
		}
	}
	for n := range t.gone {
		c.Delete = append(c.Delete, n)
	}
	t.metaDirty = false
	clear(t.dirty)
	clear(t.gone)
	return c
}
