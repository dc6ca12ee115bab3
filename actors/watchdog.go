package actors

import (
	"cmp"
	"context"
	"maps"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/route"
)

// HeldChecker asks the instance at a gRPC address which of ids it holds a socket for.
type HeldChecker interface {
	Held(ctx context.Context, addr string, ids []string) ([]string, error)
}

// Limits of one watchdog round.
const (
	heldTimeout   = 2 * time.Second // a holder that does not answer in time counts as gone
	locateTimeout = 30 * time.Second
	// DefaultReviveConcurrency is [Deps.ReviveConcurrency] when unset.
	DefaultReviveConcurrency = 32
)

// watchdog brings back connections whose recorded holder no longer holds their socket: that
// instance died, was stopped, lost its sidecar, or placement moved the actor away. Each
// directory shard's reminder hands it the shard's members with their recorded holders. What
// it does with them is decided by package route ([route.PlanCheck], [route.Judge],
// [route.Record]): it asks each holder (one call per instance, not per connection), calls
// Locate on every connection nobody holds, which activates its actor wherever placement puts
// it and opens the socket there, and records the new holders. One reminder per shard
// replaces one per connection (docs/scaling.md).
//
// The Host owns it: start when serving, shutdown when stopping.
type watchdog struct {
	self     string // this instance's address
	interval time.Duration
	holds    func(id string) bool // this instance holds the socket
	dir      watchdogDirectory
	peers    HeldChecker // nil: other instances cannot be asked
	log      *zap.Logger

	// sem bounds the Locates of all rounds together; rounds run side by side, so shards whose
	// reminders fire while a large round re-establishes connections are not kept waiting.
	sem chan struct{}

	mu          sync.Mutex
	pending     map[string]map[string]string // shard → member → recorded holder
	unreachable map[string]time.Time         // holder address → until when it counts as gone
	locating    map[string]bool              // ids a round is locating now: no other round does
	// active are the shards a round is checking now. A shard's next snapshot waits for that
	// round: until it has recorded the new holders the directory still names the dead one, and
	// locating those connections again and again would take the bound from those waiting.
	active  map[string]bool
	running bool
	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

// watchdogDirectory is what the watchdog calls on the actors ([*Client]).
type watchdogDirectory interface {
	Locate(ctx context.Context, id string) (ConnectionInfo, error)
	SetHolders(ctx context.Context, shard string, holders map[string]string) error
	RemoveMember(ctx context.Context, id string) error
}

func newWatchdog(deps *Deps) *watchdog {
	w := &watchdog{self: deps.InstanceAddr, interval: deps.WatchdogInterval, dir: deps.Directory, peers: deps.Peers,
		log: deps.Log, holds: func(id string) bool { return deps.Registry.Get(id) != nil },
		pending: map[string]map[string]string{}, unreachable: map[string]time.Time{}, locating: map[string]bool{},
		active: map[string]bool{}, wake: make(chan struct{}, 1)}
	w.sem = make(chan struct{}, cmp.Or(max(deps.ReviveConcurrency, 0), DefaultReviveConcurrency))
	return w
}

func (w *watchdog) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		return
	}
	w.running = true
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.run(ctx, w.done)
}

func (w *watchdog) shutdown() {
	w.mu.Lock()
	if !w.running {
		w.mu.Unlock()
		return
	}
	w.running = false
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	cancel()
	<-done
}

// submit queues a shard's snapshot; a newer snapshot of the same shard replaces one not yet
// checked, and a shard's snapshot waits while a round checks that shard, so a slow round never
// piles up work.
func (w *watchdog) submit(shard string, members map[string]string) {
	w.mu.Lock()
	if !w.running {
		w.mu.Unlock()
		return // stopping: the shard's next reminder fires on whichever instance hosts it then
	}
	w.pending[shard] = members
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run starts a round for whatever shards are pending whenever one is submitted. Rounds run
// side by side (their Locates share w.sem): after an instance dies, each shard's reminder fires
// at its own moment, and a shard must not wait for the round of an earlier one to finish.
func (w *watchdog) run(ctx context.Context, done chan struct{}) {
	var rounds sync.WaitGroup
	defer func() {
		rounds.Wait()
		close(done)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch := map[string]map[string]string{}
		for shard, m := range w.pending {
			if !w.active[shard] {
				batch[shard] = m
				w.active[shard] = true
				delete(w.pending, shard)
			}
		}
		w.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		rounds.Go(func() {
			w.round(ctx, batch)
			w.mu.Lock()
			for shard := range batch {
				delete(w.active, shard)
				// Read before this round recorded the new holders: stale. The shard's next
				// reminder brings a fresh one.
				delete(w.pending, shard)
			}
			waiting := len(w.pending) > 0
			w.mu.Unlock()
			if waiting {
				select {
				case w.wake <- struct{}{}:
				default:
				}
			}
		})
	}
}

// round checks the members of every shard in batch and revives those nobody holds.
func (w *watchdog) round(ctx context.Context, batch map[string]map[string]string) {
	members := map[string]string{}
	for _, m := range batch {
		maps.Copy(members, m)
	}
	check := route.PlanCheck(members, w.self, w.peers != nil, w.gone)
	var here route.Answer
	for _, id := range check.Here {
		if w.holds(id) {
			here.Held = append(here.Held, id)
		}
	}
	answers, failures := w.ask(ctx, check.Ask)
	verdict := route.Judge(check, here, answers, ctx.Err() != nil)
	w.markGone(verdict.Gone, failures)
	if len(verdict.Locate) == 0 {
		return
	}
	w.log.Info("watchdog: re-establishing connections no instance holds", zap.Int("connections", len(verdict.Locate)),
		zap.Int("directory_shards", len(batch)))
	results := w.locate(ctx, verdict.Locate)
	records := route.Record(results)
	byShard := map[string]map[string]string{}
	for id, holder := range records.Holders {
		shard := DirectoryShard(id)
		if byShard[shard] == nil {
			byShard[shard] = map[string]string{}
		}
		byShard[shard][id] = holder
	}
	// Bounded: a shard's next round waits for this one.
	rctx, cancel := context.WithTimeout(ctx, locateTimeout)
	defer cancel()
	for shard, h := range byShard {
		if err := w.dir.SetHolders(rctx, shard, h); err != nil {
			w.log.Warn("watchdog: record holders; the next round retries", zap.String("directory_shard", shard), zap.Error(err))
		}
	}
	for _, id := range records.Remove { // in the directory, but the connection no longer exists
		if err := w.dir.RemoveMember(rctx, id); err != nil {
			w.log.Warn("watchdog: remove stale directory entry", zap.String(logkey.ConnectionID, id), zap.Error(err))
		}
	}
}

// gone reports whether the holder at addr did not answer in a recent round.
func (w *watchdog) gone(addr string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().Before(w.unreachable[addr])
}

// markGone counts holders that did not answer as gone for one interval (their connections go
// elsewhere meanwhile), and forgets those whose time has passed.
func (w *watchdog) markGone(holders []string, failures map[string]error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for addr, until := range w.unreachable {
		if !now.Before(until) {
			delete(w.unreachable, addr)
		}
	}
	for _, addr := range holders {
		w.log.Info("watchdog: holder instance does not answer; its connections go elsewhere", zap.String("holder", addr), zap.Error(failures[addr]))
		w.unreachable[addr] = now.Add(w.interval)
	}
}

// ask asks every holder at once which of its ids it holds. An instance that cannot be asked
// in time has no answer (its error is in failures); Locate then asks the actor, the authority,
// where the socket is.
func (w *watchdog) ask(ctx context.Context, byHolder map[string][]string) (map[string]route.Answer, map[string]error) {
	answers := make(map[string]route.Answer, len(byHolder))
	failures := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for holder, ids := range byHolder {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, heldTimeout)
			defer cancel()
			held, err := w.peers.Held(cctx, holder, ids)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				answers[holder] = route.Answer{Failed: true}
				failures[holder] = err
				return
			}
			answers[holder] = route.Answer{Held: held}
		})
	}
	wg.Wait()
	return answers, failures
}

// locate calls Locate on each of ids, at most cap(w.sem) at a time across all rounds. An id
// another round is locating already is left to it (no result here: this round records nothing
// for it).
func (w *watchdog) locate(ctx context.Context, ids []string) map[string]route.Located {
	results := make(map[string]route.Located, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		w.mu.Lock()
		busy := w.locating[id]
		if !busy {
			w.locating[id] = true
		}
		w.mu.Unlock()
		if busy {
			continue
		}
		select {
		case w.sem <- struct{}{}:
		case <-ctx.Done():
			w.mu.Lock()
			delete(w.locating, id)
			w.mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() {
				<-w.sem
				w.mu.Lock()
				delete(w.locating, id)
				w.mu.Unlock()
			}()
			cctx, cancel := context.WithTimeout(ctx, locateTimeout)
			defer cancel()
			info, err := w.dir.Locate(cctx, id)
			var l route.Located
			switch {
			case CodeOf(err) == CodeNotFound:
				l.Result = route.Missing
			case err != nil:
				l.Result = route.LocateFailed
				w.log.Warn("watchdog: re-establish connection; the next round retries", zap.String(logkey.ConnectionID, id), zap.Error(err))
			default:
				l.Addr = info.InstanceAddr
			}
			mu.Lock()
			results[id] = l
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}
