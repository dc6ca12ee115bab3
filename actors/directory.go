package actors

import (
	"context"
	"hash/fnv"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/dapr/go-sdk/actor"
	dapr "github.com/dapr/go-sdk/client"
	"go.uber.org/zap"
)

// State keys of a directory shard.
const (
	membersKey = "members" // map[id]true
	holdersKey = "holders" // map[id]holder gRPC address
	// watchdogKey records the period of the shard's watchdog reminder once registered, so
	// that Add registers it once (and again when --watchdog-interval changes).
	watchdogKey = "watchdog"
	// instancesKey (shard "0" only): instance gRPC address → when it last announced itself.
	instancesKey = "instances"
)

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
type Directory struct {
	actor.ServerImplBaseCtx
	deps *Deps
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
		return nil, err
	}
	if m == nil {
		m = map[string]V{}
	}
	return m, nil
}

func (d *Directory) load(ctx context.Context) (map[string]bool, map[string]string, error) {
	m, err := loadMap[bool](ctx, d, membersKey)
	if err != nil {
		return nil, nil, err
	}
	h, err := loadMap[string](ctx, d, holdersKey)
	if err != nil {
		return nil, nil, err
	}
	return m, h, nil
}

// Add adds a connection id and records its holder. See [DirectoryMethodAdd].
func (d *Directory) Add(ctx context.Context, in *MemberArgs) (*Reply, error) {
	m, h, err := d.load(ctx)
	if err != nil {
		return &Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}, nil
	}
	if in.Holder != "" && !validInstanceAddr(in.Holder) {
		return &Reply{Error: errorf(CodeInvalidArgument, "holder must be an instance's host:port")}, nil
	}
	if e := d.ensureWatchdog(ctx); e != nil {
		return &Reply{Error: e}, nil
	}
	m[in.ID] = true
	if in.Holder != "" {
		h[in.ID] = in.Holder
	}
	return d.save(ctx, m, h), nil
}

// Remove removes a connection id. See [DirectoryMethodRemove].
func (d *Directory) Remove(ctx context.Context, in *MemberArgs) (*Reply, error) {
	m, h, err := d.load(ctx)
	if err != nil {
		return &Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}, nil
	}
	delete(m, in.ID)
	delete(h, in.ID)
	if len(m) == 0 {
		d.dropWatchdog(ctx) // an empty shard has nothing to watch
	}
	return d.save(ctx, m, h), nil
}

// SetHolders records the holders of members. See [DirectoryMethodSetHolders].
func (d *Directory) SetHolders(ctx context.Context, in *HoldersArgs) (*Reply, error) {
	m, h, err := d.load(ctx)
	if err != nil {
		return &Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}, nil
	}
	for id, addr := range in.Holders {
		if m[id] && validInstanceAddr(addr) {
			h[id] = addr
		}
	}
	return d.save(ctx, m, h), nil
}

func (d *Directory) save(ctx context.Context, m map[string]bool, h map[string]string) *Reply {
	sm := d.GetStateManager()
	if err := sm.Set(ctx, membersKey, m); err != nil {
		return &Reply{Error: errorf(CodeInternal, "update directory: %v", err)}
	}
	if err := sm.Set(ctx, holdersKey, h); err != nil {
		return &Reply{Error: errorf(CodeInternal, "update directory: %v", err)}
	}
	return &Reply{}
}

// Members lists the connection ids in lexical order. See [DirectoryMethodMembers].
func (d *Directory) Members(ctx context.Context, _ *Empty) (*MembersReply, error) {
	m, h, err := d.load(ctx)
	if err != nil {
		return &MembersReply{Reply: Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}}, nil
	}
	ids := make([]string, 0, len(m))
	holders := map[string]bool{}
	for id := range m {
		ids = append(ids, id)
		if h[id] != "" {
			holders[h[id]] = true
		}
	}
	sort.Strings(ids)
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

// Announce records that an instance is up. See [DirectoryMethodAnnounce].
func (d *Directory) Announce(ctx context.Context, in *AnnounceArgs) (*Reply, error) {
	if !validInstanceAddr(in.Addr) {
		return &Reply{Error: errorf(CodeInvalidArgument, "addr must be the instance's gRPC host:port")}, nil
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

// Has says whether id is a member. See [DirectoryMethodHas].
func (d *Directory) Has(ctx context.Context, in *MemberArgs) (*HasReply, error) {
	m, err := loadMap[bool](ctx, d, membersKey)
	if err != nil {
		return &HasReply{Reply: Reply{Error: errorf(CodeUnavailable, "read directory: %v", err)}}, nil
	}
	return &HasReply{Member: m[in.ID]}, nil
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
	m, h, err := d.load(ctx)
	if err != nil {
		d.log().Warn("watchdog: read directory", zap.Error(err))
		return
	}
	snap := make(map[string]string, len(m))
	for id := range m {
		snap[id] = h[id]
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
	_ = d.GetStateManager().Remove(ctx, watchdogKey)
}

// DirectoryShard returns the directory actor id that holds connection id.
func DirectoryShard(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return strconv.Itoa(int(h.Sum32() % DirectoryShards))
}

// NewDirectoryFactory returns the factory of the directory actor.
func NewDirectoryFactory(deps *Deps) actor.FactoryContext {
	return func() actor.ServerContext { return &Directory{deps: deps} }
}
