package actors

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
)

// HeldChecker asks the instance at a gRPC address which of ids it holds a socket for.
type HeldChecker interface {
	Held(ctx context.Context, addr string, ids []string) ([]string, error)
}

// Limits of one watchdog round.
const (
	heldTimeout       = 2 * time.Second // a holder that does not answer in time counts as gone
	reviveConcurrency = 32
)

// watchdog brings back connections whose recorded holder no longer holds their socket: that
// instance died, was stopped, lost its sidecar, or placement moved the actor away. Each
// directory shard's reminder hands it the shard's members with their recorded holders; it
// asks each holder (one call per instance, not per connection), and calls Locate on every
// connection nobody holds, which activates its actor wherever placement puts it and opens
// the socket there. One reminder per shard replaces one per connection (docs/scaling.md).
//
// The Host owns it: start when serving, shutdown when stopping.
type watchdog struct {
	deps *Deps

	mu          sync.Mutex
	pending     map[string]map[string]string // shard → member → recorded holder
	unreachable map[string]time.Time         // holder address → until when it counts as gone
	running     bool
	wake        chan struct{}
	cancel      context.CancelFunc
	done        chan struct{}
}

func newWatchdog(deps *Deps) *watchdog {
	return &watchdog{deps: deps, pending: map[string]map[string]string{}, unreachable: map[string]time.Time{},
		wake: make(chan struct{}, 1)}
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
// checked, so a slow round never piles up work.
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

func (w *watchdog) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch := w.pending
		w.pending = map[string]map[string]string{}
		w.mu.Unlock()
		if len(batch) > 0 {
			w.round(ctx, batch)
		}
	}
}

// round checks the members of every shard in batch and revives those nobody holds.
func (w *watchdog) round(ctx context.Context, batch map[string]map[string]string) {
	byHolder := map[string][]string{}
	var revive []string
	for _, members := range batch {
		for id, holder := range members {
			if holder == "" {
				revive = append(revive, id)
				continue
			}
			byHolder[holder] = append(byHolder[holder], id)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for holder, ids := range byHolder {
		wg.Go(func() {
			held := w.held(ctx, holder, ids)
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if !held[id] {
					revive = append(revive, id)
				}
			}
		})
	}
	wg.Wait()
	if len(revive) == 0 || ctx.Err() != nil {
		return
	}
	w.deps.Log.Info("watchdog: re-establishing connections no instance holds", zap.Int("connections", len(revive)))

	holders := map[string]map[string]string{} // shard → id → new holder
	var gone []string
	sem := make(chan struct{}, reviveConcurrency)
	for _, id := range revive {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			info, err := w.deps.Directory.Locate(cctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case CodeOf(err) == CodeNotFound:
				gone = append(gone, id)
			case err != nil:
				w.deps.Log.Warn("watchdog: re-establish connection; the next round retries", zap.String(logkey.ConnectionID, id), zap.Error(err))
			case info.InstanceAddr != "":
				shard := DirectoryShard(id)
				if holders[shard] == nil {
					holders[shard] = map[string]string{}
				}
				holders[shard][id] = info.InstanceAddr
			}
		})
	}
	wg.Wait()
	for shard, h := range holders {
		if err := w.deps.Directory.SetHolders(ctx, shard, h); err != nil {
			w.deps.Log.Warn("watchdog: record holders; the next round retries", zap.String("directory_shard", shard), zap.Error(err))
		}
	}
	for _, id := range gone { // in the directory, but the connection no longer exists
		if err := w.deps.Directory.RemoveMember(ctx, id); err != nil {
			w.deps.Log.Warn("watchdog: remove stale directory entry", zap.String(logkey.ConnectionID, id), zap.Error(err))
		}
	}
}

// held returns which of ids the instance at holder holds. An instance that cannot be asked
// holds nothing; Locate then asks the actor, the authority, where the socket is.
func (w *watchdog) held(ctx context.Context, holder string, ids []string) map[string]bool {
	held := make(map[string]bool, len(ids))
	if holder == w.deps.InstanceAddr {
		for _, id := range ids {
			if w.deps.Registry.Get(id) != nil {
				held[id] = true
			}
		}
		return held
	}
	w.mu.Lock()
	down := time.Now().Before(w.unreachable[holder])
	w.mu.Unlock()
	if down || w.deps.Peers == nil {
		return held
	}
	cctx, cancel := context.WithTimeout(ctx, heldTimeout)
	defer cancel()
	got, err := w.deps.Peers.Held(cctx, holder, ids)
	if err != nil {
		if ctx.Err() == nil {
			w.deps.Log.Info("watchdog: holder instance does not answer; its connections go elsewhere", zap.String("holder", holder), zap.Error(err))
			w.mu.Lock()
			w.unreachable[holder] = time.Now().Add(w.deps.WatchdogInterval)
			w.mu.Unlock()
		}
		return held
	}
	for _, id := range got {
		held[id] = true
	}
	return held
}
