package actors

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dapr/go-sdk/actor"
	"github.com/dapr/go-sdk/actor/state"
	dapr "github.com/dapr/go-sdk/client"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/lhash"
)

// State keys of a directory shard.
const (
	// metaKey holds the header of the shard's table (lhash.Meta) and lhash.BucketKey(n) its
	// buckets: connection id → holder gRPC address ("" when not known). See docs/scaling.md.
	metaKey = "lh"
	// membersKey (map[id]true) and holdersKey (map[id]holder) are the format before the
	// table, rewritten whole on every change; a shard still in it is converted when loaded.
	membersKey = "members"
	holdersKey = "holders"
	// watchdogKey records the period of the shard's watchdog reminder once registered, so
	// that Add registers it once (and again when --watchdog-interval changes).
	watchdogKey = "watchdog"
	// instancesKey (shard "0" only): instance gRPC address → when it last announced itself.
	instancesKey = "instances"
	// shardsKey (shard "0" only): the shard count the directory was first used with.
	shardsKey = "shards"
)

// loadParallel bounds the bucket reads in flight when a shard reads all its buckets
// (Members, the watchdog's snapshot) after it was activated.
const loadParallel = 8

// instanceTTL is how long an announcement counts; instances announce every AnnounceEvery.
const (
	instanceTTL   = 2 * time.Minute
	AnnounceEvery = 30 * time.Second
)

// maxInstances bounds the announced instances shard "0" keeps: anything that can call the
// directory (any Dapr app of the namespace, unless Dapr's access control says otherwise) could
// otherwise grow it without end. Past it the oldest announcement is forgotten; live instances
// announce again within AnnounceEvery.
const maxInstances = 1024

// maxAddrLength bounds an instance address (host:port) recorded in the directory.
const maxAddrLength = 262

// validInstanceAddr reports whether a is a host:port the directory may record. Whether an
// instance may be dialed at it is the peer policy's decision, when it is dialed.
func validInstanceAddr(a string) bool {
	if a == "" || len(a) > maxAddrLength {
		return false
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return false
	}
	if !validPort(port) {
		return false
	}
	for _, c := range []byte(host) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Directory is the actor that keeps a shard of the set of connection ids, which instance
// holds each socket, and the shard's failover watchdog reminder. Its methods run one at a
// time (Dapr's turn-based concurrency), which is what keeps the set consistent without ETags.
//
// The shard's entries live in a linear hash table (package lhash) over its actor state: a
// small header and buckets of about lhash.Capacity entries, read on first use and kept while
// the actor is active. A change rewrites the one bucket it touches (and the header), so its
// cost does not grow with the shard.
type Directory struct {
	actor.ServerImplBaseCtx
	deps *Deps
	// tab is the shard's table once loaded in this activation (nil: not loaded).
	tab *lhash.Table
	// newState returns a fresh state manager (tests set it; nil: the Go SDK's).
	newState func() actor.StateManagerContext
}

// Type implements actor.ServerContext.
func (d *Directory) Type() string { return DirectoryType }

func (d *Directory) log() *zap.Logger { return d.deps.Log.With(zap.String("directory_shard", d.ID())) }

// loadMap reads a JSON object state key into m (left empty when the key is missing).
func loadMap[V any](ctx context.Context, d *Directory, key string) (map[string]V, error) {
	sm := d.GetStateManager()
	m := map[string]V{}
	ok, err := sm.Contains(ctx, key)
	if err != nil || !ok {
		return m, err
	}
	if err := sm.Get(ctx, key, &m); err != nil {
		d.readFailed()
		return nil, err
	}
	if m == nil {
		m = map[string]V{}
	}
	return m, nil
}

// readFailed forgets everything read in this activation. The Go SDK's state manager caches
// the (empty) reply of a failed read as if it were the stored value; left in place, the next
// change would write that emptiness over the stored bucket. Reads happen before changes, so
// nothing unsaved of this turn is lost.
func (d *Directory) readFailed() {
	d.tab = nil
	sm, err := freshState(DirectoryType, d.ID(), d.newState)
	if err != nil {
		d.log().Error("cannot renew the directory's state manager after a failed read", zap.Error(err))
		return
	}
	d.SetStateManager(sm)
}

// freshState returns a new, empty state manager for actor typ/id: newState's when set (tests),
// else one over the process-wide Dapr client the SDK gave the actor.
func freshState(typ, id string, newState func() actor.StateManagerContext) (actor.StateManagerContext, error) {
	if newState != nil {
		return newState(), nil
	}
	c, err := dapr.NewClient()
	if err != nil {
		return nil, err
	}
	return state.NewActorStateManagerContext(typ, id, state.NewDaprStateAsyncProvider(c)), nil
}

// table returns the shard's table: its header is read on the first call of an activation,
// its buckets when first needed. Entries still in the former format are moved into it then.
func (d *Directory) table(ctx context.Context) (*lhash.Table, error) {
	if d.tab != nil {
		return d.tab, nil
	}
	sm := d.GetStateManager()
	ok, err := sm.Contains(ctx, metaKey)
	if err != nil {
		return nil, err
	}
	t := lhash.New()
	if ok {
		var m lhash.Meta
		if err := sm.Get(ctx, metaKey, &m); err != nil {
			d.readFailed()
			return nil, err
		}
		if t, err = lhash.Open(m, d.loadBucket); err != nil {
			return nil, err
		}
	}
	if err := d.absorbFormer(ctx, t); err != nil {
		return nil, err
	}
	d.tab = t
	return t, nil
}

// loadBucket reads bucket n; the table calls it from several goroutines when it reads all.
func (d *Directory) loadBucket(ctx context.Context, n uint32) (lhash.Bucket, error) {
	var b lhash.Bucket
	if err := d.GetStateManager().Get(ctx, lhash.BucketKey(n), &b); err != nil {
		return nil, err
	}
	return b, nil
}

// absorbFormer moves entries in the former format (two whole maps) into t and removes the
// old keys, all saved with this turn in one transaction: a shard written before the table
// existed is converted on its first call, and ids that an instance of an earlier version
// added after the conversion (during a rolling upgrade) are taken in on the next activation.
// (Removals such an instance made are not seen here; the watchdog removes ids whose
// connection no longer exists.)
func (d *Directory) absorbFormer(ctx context.Context, t *lhash.Table) error {
	sm := d.GetStateManager()
	had, err := sm.Contains(ctx, membersKey)
	if err != nil || !had {
		return err
	}
	m := map[string]bool{}
	if err := sm.Get(ctx, membersKey, &m); err != nil {
		d.readFailed()
		return err
	}
	h, err := loadMap[string](ctx, d, holdersKey)
	if err != nil {
		return err
	}
	n := 0
	for id, member := range m {
		if !member {
			continue
		}
		holder, _, err := t.Get(ctx, id)
		if err != nil {
			return err
		}
		if h[id] != "" {
			holder = h[id]
		}
		if err := t.Put(ctx, id, holder); err != nil {
			return err
		}
		n++
	}
	if err := d.write(ctx, t); err != nil {
		return err
	}
	for _, k := range []string{membersKey, holdersKey} {
		if err := sm.Remove(ctx, k); err != nil {
			return err
		}
	}
	d.log().Info("directory shard: entries in the former format moved into the bucketed table", zap.Int("connections", n),
		zap.Int("shard_connections", t.Len()), zap.Uint32("buckets", t.Meta().Buckets))
	if n > 0 {
		// A shard written by a re-sharding procedure (docs/scaling.md) has no reminder yet.
		if e := d.ensureWatchdog(ctx); e != nil {
			d.log().Warn("directory shard: watchdog reminder not registered; the next Add retries", zap.String("error", e.Message))
		}
	}
	return nil
}

// write hands what changed in t to the state manager, which saves it when the turn ends.
func (d *Directory) write(ctx context.Context, t *lhash.Table) error {
	c := t.Changes()
	sm := d.GetStateManager()
	if c.Meta != nil {
		if err := sm.Set(ctx, metaKey, *c.Meta); err != nil {
			return err
		}
	}
	for n, b := range c.Put {
		if err := sm.Set(ctx, lhash.BucketKey(n), b); err != nil {
			return err
		}
	}
	for _, n := range c.Delete {
		if err := sm.Remove(ctx, lhash.BucketKey(n)); err != nil {
			return err
		}
	}
	return nil
}

// readErr answers a failed read; it drops what this activation read (see readFailed).
func (d *Directory) readErr(err error) *ErrorInfo {
	d.readFailed()
	return errorf(CodeUnavailable, "read directory: %v", err)
}

func (d *Directory) saved(ctx context.Context, t *lhash.Table) *Reply {
	if err := d.write(ctx, t); err != nil {
		return &Reply{Error: errorf(CodeInternal, "update directory: %v", err)}
	}
	return &Reply{}
}

// Add adds a connection id and records its holder. See [DirectoryMethodAdd].
func (d *Directory) Add(ctx context.Context, in *MemberArgs) (*Reply, error) {
	if in.Holder != "" && !validInstanceAddr(in.Holder) {
		return &Reply{Error: errorf(CodeInvalidArgument, "holder must be an instance's host:port")}, nil
	}
	t, err := d.table(ctx)
	if err != nil {
		return &Reply{Error: d.readErr(err)}, nil
	}
	old, _, err := t.Get(ctx, in.ID)
	if err != nil {
		return &Reply{Error: d.readErr(err)}, nil
	}
	if e := d.ensureWatchdog(ctx); e != nil {
		return &Reply{Error: e}, nil
	}
	holder := in.Holder
	if holder == "" {
		holder = old // an Add without a holder keeps the one recorded
	}
	if err := t.Put(ctx, in.ID, holder); err != nil {
		return &Reply{Error: d.readErr(err)}, nil
	}
	return d.saved(ctx, t), nil
}

// AddMany adds connection ids with their holders in one turn: one transaction however many
// there are. See [DirectoryMethodAddMany].
func (d *Directory) AddMany(ctx context.Context, in *HoldersArgs) (*Reply, error) {
	if len(in.Holders) == 0 {
		return &Reply{}, nil
	}
	if len(in.Holders) > MaxAddMany {
		return &Reply{Error: errorf(CodeInvalidArgument, "at most %d ids per call, got %d", MaxAddMany, len(in.Holders))}, nil
	}
	for id, holder := range in.Holders {
		if ValidateID(id) != nil || !validInstanceAddr(holder) {
			return &Reply{Error: errorf(CodeInvalidArgument, "every id must be a connection id and every holder an instance's host:port")}, nil
		}
	}
	t, err := d.table(ctx)
	if err != nil {
		return &Reply{Error: d.readErr(err)}, nil
	}
	if e := d.ensureWatchdog(ctx); e != nil {
		return &Reply{Error: e}, nil
	}
	for id, holder := range in.Holders {
		if err := t.Put(ctx, id, holder); err != nil {
			return &Reply{Error: d.readErr(err)}, nil
		}
	}
	return d.saved(ctx, t), nil
}

// Remove removes a connection id. See [DirectoryMethodRemove].
func (d *Directory) Remove(ctx context.Context, in *MemberArgs) (*Reply, error) {
	t, err := d.table(ctx)
	if err != nil {
		return &Reply{Error: d.readErr(err)}, nil
	}
	had, err := t.Delete(ctx, in.ID)
	if err != nil {
		return &Reply{Error: d.readErr(err)}, nil
	}
	if t.Len() == 0 {
		d.dropWatchdog(ctx) // an empty shard has nothing to watch
	}
	if !had {
		return &Reply{}, nil
	}
	return d.saved(ctx, t), nil
}

// SetHolders records the holders of members. See [DirectoryMethodSetHolders].
func (d *Directory) SetHolders(ctx context.Context, in *HoldersArgs) (*Reply, error) {
	t, err := d.table(ctx)
	if err != nil {
		return &Reply{Error: d.readErr(err)}, nil
	}
	changed := false
	for id, addr := range in.Holders {
		if !validInstanceAddr(addr) {
			continue
		}
		old, member, err := t.Get(ctx, id)
		if err != nil {
			return &Reply{Error: d.readErr(err)}, nil
		}
		if member && old != addr {
			// A member's bucket is read already: Put of a member cannot fail.
			if err := t.Put(ctx, id, addr); err != nil {
				return &Reply{Error: d.readErr(err)}, nil
			}
			changed = true
		}
	}
	if !changed {
		return &Reply{}, nil
	}
	return d.saved(ctx, t), nil
}

// entries returns every member and its holder.
func (d *Directory) entries(ctx context.Context) (map[string]string, error) {
	t, err := d.table(ctx)
	if err != nil {
		return nil, err
	}
	all := make(map[string]string, t.Len())
	if err := t.All(ctx, loadParallel, func(id, holder string) { all[id] = holder }); err != nil {
		return nil, err
	}
	return all, nil
}

// Members lists the connection ids in lexical order, all of them or the first in.Limit after
// in.After. See [DirectoryMethodMembers].
func (d *Directory) Members(ctx context.Context, in *MembersArgs) (*MembersReply, error) {
	all, err := d.entries(ctx)
	if err != nil {
		return &MembersReply{Reply: Reply{Error: d.readErr(err)}}, nil
	}
	ids := make([]string, 0, len(all))
	holders := map[string]bool{}
	for id, h := range all {
		if in.Limit <= 0 || id > in.After {
			ids = append(ids, id)
		}
		if h != "" {
			holders[h] = true
		}
	}
	sort.Strings(ids)
	if in.Limit > 0 && len(ids) > in.Limit {
		ids = ids[:in.Limit]
	}
	if inst, err := loadMap[int64](ctx, d, instancesKey); err == nil {
		for a, seen := range inst {
			if time.Since(time.Unix(seen, 0)) < instanceTTL {
				holders[a] = true
			}
		}
	}
	hs := make([]string, 0, len(holders))
	for a := range holders {
		hs = append(hs, a)
	}
	sort.Strings(hs)
	return &MembersReply{IDs: ids, Holders: hs}, nil
}

// Announce records that an instance is up, and checks that it uses the directory's shard
// count. See [DirectoryMethodAnnounce].
func (d *Directory) Announce(ctx context.Context, in *AnnounceArgs) (*Reply, error) {
	if !validInstanceAddr(in.Addr) {
		return &Reply{Error: errorf(CodeInvalidArgument, "addr must be the instance's gRPC host:port")}, nil
	}
	if in.Shards != 0 {
		if e := d.checkShards(ctx, in.Shards); e != nil {
			return &Reply{Error: e}, nil
		}
	}
	inst, err := loadMap[int64](ctx, d, instancesKey)
	if err != nil {
		return &Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}, nil
	}
	remember(inst, in.Addr, time.Now())
	if err := d.GetStateManager().Set(ctx, instancesKey, inst); err != nil {
		return &Reply{Error: errorf(CodeInternal, "update directory: %v", err)}, nil
	}
	return &Reply{}, nil
}

// checkShards records the shard count n on first use, and refuses an instance that counts
// differently: it would look for ids in other shards than the one they are in.
func (d *Directory) checkShards(ctx context.Context, n int) *ErrorInfo {
	if n < 1 || n > MaxDirectoryShards {
		return errorf(CodeInvalidArgument, "shards must be between 1 and %d, got %d", MaxDirectoryShards, n)
	}
	sm := d.GetStateManager()
	ok, err := sm.Contains(ctx, shardsKey)
	if err != nil {
		return errorf(CodeUnavailable, "read directory: %v", err)
	}
	var got int
	if !ok {
		// No count recorded: a new directory takes n; one written by an earlier version (which
		// always used DefaultDirectoryShards) has announcements or entries already.
		prior := false
		for _, k := range []string{instancesKey, membersKey, metaKey} {
			has, err := sm.Contains(ctx, k)
			if err != nil {
				return errorf(CodeUnavailable, "read directory: %v", err)
			}
			prior = prior || has
		}
		got = n
		if prior {
			got = DefaultDirectoryShards
		}
		if err := sm.Set(ctx, shardsKey, got); err != nil {
			return errorf(CodeInternal, "update directory: %v", err)
		}
	} else if err := sm.Get(ctx, shardsKey, &got); err != nil {
		return d.readErr(err)
	}
	if got != n {
		return errorf(CodeFailedPrecondition, "this instance runs with --directory-shards %d but the directory in this state store was created with %d shards; "+
			"start every instance with --directory-shards %d (changing the count needs the procedure in docs/scaling.md)", n, got, got)
	}
	return nil
}

// Has says whether id is a member. See [DirectoryMethodHas].
func (d *Directory) Has(ctx context.Context, in *MemberArgs) (*HasReply, error) {
	t, err := d.table(ctx)
	if err != nil {
		return &HasReply{Reply: Reply{Error: d.readErr(err)}}, nil
	}
	_, ok, err := t.Get(ctx, in.ID)
	if err != nil {
		return &HasReply{Reply: Reply{Error: d.readErr(err)}}, nil
	}
	return &HasReply{Member: ok}, nil
}

// remember records that the instance at addr announced itself at now: it forgets
// instances gone for longer than instanceTTL and, past maxInstances, the oldest one.
func remember(inst map[string]int64, addr string, now time.Time) {
	for a, seen := range inst {
		if now.Sub(time.Unix(seen, 0)) >= instanceTTL {
			delete(inst, a)
		}
	}
	if _, ok := inst[addr]; !ok && len(inst) >= maxInstances {
		oldest, first := "", int64(0)
		for a, seen := range inst {
			if oldest == "" || seen < first || seen == first && a < oldest {
				oldest, first = a, seen
			}
		}
		delete(inst, oldest)
	}
	inst[addr] = now.Unix()
}

// Ping does nothing. See [DirectoryMethodPing].
func (d *Directory) Ping(context.Context, *Empty) (*Reply, error) { return &Reply{}, nil }

// ReminderCall implements actor.ReminderCallee: the shard's watchdog reminder fires on
// whichever instance hosts the shard now and hands the members and their recorded holders to
// that instance's watchdog, which checks them outside this turn (it calls connection actors,
// which call back into this shard).
func (d *Directory) ReminderCall(name string, _ []byte, _, _ string) {
	if name != watchdogReminder || d.deps.watchdog == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.deps.WatchdogInterval+10*time.Second)
	defer cancel()
	snap, err := d.entries(ctx)
	if err != nil {
		d.readFailed()
		d.log().Warn("watchdog: read directory", zap.Error(err))
		return
	}
	d.deps.watchdog.submit(d.ID(), snap)
}

// ensureWatchdog registers the shard's watchdog reminder unless it is registered with the
// configured period already.
func (d *Directory) ensureWatchdog(ctx context.Context) *ErrorInfo {
	if d.deps.Reminders == nil {
		return nil
	}
	p := d.deps.WatchdogInterval.String()
	sm := d.GetStateManager()
	if ok, _ := sm.Contains(ctx, watchdogKey); ok {
		var got string
		if err := sm.Get(ctx, watchdogKey, &got); err == nil && got == p {
			return nil
		}
	}
	err := d.deps.Reminders.RegisterActorReminder(ctx, &dapr.RegisterActorReminderRequest{
		ActorType: DirectoryType, ActorID: d.ID(), Name: watchdogReminder,
		DueTime: p, Period: p, FailurePolicy: &dapr.JobFailurePolicyDrop{},
	})
	if err != nil {
		d.log().Error("register watchdog reminder", zap.Error(err))
		return errorf(CodeUnavailable, "cannot register the failover reminder (is the Dapr scheduler running?); retry later")
	}
	if err := sm.Set(ctx, watchdogKey, p); err != nil {
		return errorf(CodeInternal, "record watchdog reminder: %v", err)
	}
	return nil
}

func (d *Directory) dropWatchdog(ctx context.Context) {
	if d.deps.Reminders == nil {
		return
	}
	err := d.deps.Reminders.UnregisterActorReminder(ctx, &dapr.UnregisterActorReminderRequest{
		ActorType: DirectoryType, ActorID: d.ID(), Name: watchdogReminder,
	})
	if err != nil {
		d.log().Warn("unregister watchdog reminder", zap.Error(err))
		return
	}
	// Overwrite, not Remove: go-sdk v1.15's Remove of a key not read in this activation does
	// nothing, and a stale period left behind would stop ensureWatchdog from registering the
	// reminder again — no failover for the shard.
	_ = d.GetStateManager().Set(ctx, watchdogKey, "")
}

// directoryShards is the number of directory actors this process uses (--directory-shards).
var directoryShards atomic.Uint32

func init() { directoryShards.Store(DefaultDirectoryShards) }

// SetDirectoryShards sets the number of directory actors, once at start (--directory-shards).
// Every instance must use the same count: shard "0" records it and refuses Announces that
// differ (see [DirectoryMethodAnnounce]).
func SetDirectoryShards(n int) error {
	if n < 1 || n > MaxDirectoryShards {
		return fmt.Errorf("the directory shard count must be between 1 and %d, got %d", MaxDirectoryShards, n)
	}
	directoryShards.Store(uint32(n))
	return nil
}

// DirectoryShardCount returns the number of directory actors (ids "0" … count-1).
func DirectoryShardCount() int { return int(directoryShards.Load()) }

// DirectoryShard returns the directory actor id that holds connection id.
func DirectoryShard(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return strconv.Itoa(int(h.Sum32() % directoryShards.Load()))
}

// NewDirectoryFactory returns the factory of the directory actor.
func NewDirectoryFactory(deps *Deps) actor.FactoryContext {
	return func() actor.ServerContext { return &Directory{deps: deps} }
}
