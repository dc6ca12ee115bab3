package service

import (
	"context"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/publish"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// watcherBuffer is how many events may wait for one slow watcher before it skips some.
const watcherBuffer = 256

// EventHub hands this instance's lifecycle events to the WatchEvents streams served here. It
// never blocks the sessions that emit: a watcher that falls behind skips events and is told
// how many.
type EventHub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	done     chan struct{} // closed by Close
	once     sync.Once
}

type watcher struct {
	ch      chan *pb.LifecycleEvent
	id      string // connection filter
	skipped uint64 // guarded by EventHub.mu
}

// NewEventHub returns an empty hub.
func NewEventHub() *EventHub {
	return &EventHub{watchers: map[*watcher]struct{}{}, done: make(chan struct{})}
}

// Close ends every WatchEvents stream (the instance is stopping: they would hold its graceful
// stop open).
func (h *EventHub) Close() { h.once.Do(func() { close(h.done) }) }

// Emit implements the session registry's lifecycle sink.
func (h *EventHub) Emit(e publish.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.watchers) == 0 {
		return
	}
	ev := eventToPB(e)
	for w := range h.watchers {
		if w.id != "" && w.id != e.ConnectionID {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			w.skipped++
		}
	}
}

func (h *EventHub) subscribe(id string) *watcher {
	w := &watcher{ch: make(chan *pb.LifecycleEvent, watcherBuffer), id: id}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *EventHub) unsubscribe(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// takeSkipped returns and resets the number of events w missed.
func (h *EventHub) takeSkipped(w *watcher) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := w.skipped
	w.skipped = 0
	return n
}

func eventToPB(e publish.Event) *pb.LifecycleEvent {
	return &pb.LifecycleEvent{
		ConnectionId: e.ConnectionID, Url: e.URL, InstanceId: e.InstanceID,
		Status:         pb.ConnectionStatus(pb.ConnectionStatus_value[e.Status]),
		PreviousStatus: pb.ConnectionStatus(pb.ConnectionStatus_value[e.PreviousStatus]),
		Attempt:        int32(e.Attempt), Error: e.Error, Reason: e.Reason, Time: timestamppb.New(e.Time),
	}
}

// peerRefresh is how often a watch looks for instances it does not follow yet.
const peerRefresh = 5 * time.Second

// WatchEvents implements the WebSocketManager WatchEvents RPC: this instance's events, and —
// unless this_instance_only — those of every other instance that holds connections, followed
// through their own WatchEvents (found through the directory, again every few seconds).
func (s *Server) WatchEvents(req *pb.WatchEventsRequest, stream pb.WebSocketManager_WatchEventsServer) error {
	if s.hub == nil {
		return actors.Errorf(actors.CodeUnimplemented, "this instance does not serve events")
	}
	if !fromPeer(stream.Context()) { // a peer following this instance is bounded by its own limits
		release, err := s.watch.acquire(callerOf(stream.Context()))
		if err != nil {
			return err
		}
		defer release()
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	local := s.hub.subscribe(req.GetConnectionId())
	defer s.hub.unsubscribe(local)
	// Headers now, before any event (which may be long in coming): an HTTP caller gets its
	// response once the stream is accepted, and sees this instance's events from here. (A
	// refused stream may carry headers too, with its status: they do not mean "accepted".)
	if err := stream.SendHeader(nil); err != nil {
		return err
	}

	out := make(chan *pb.LifecycleEvent, watcherBuffer)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, runs first): every follower has returned
	defer cancel()
	if !req.GetThisInstanceOnly() {
		wg.Go(func() { s.followPeers(ctx, req.GetConnectionId(), out, &wg) })
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.hub.done:
			return actors.Errorf(actors.CodeUnavailable, "this instance is shutting down; watch again")
		case ev := <-local.ch:
			if n := s.hub.takeSkipped(local); n > 0 {
				if err := stream.Send(&pb.LifecycleEvent{Skipped: n}); err != nil {
					return err
				}
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		case ev := <-out:
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// followPeers streams the events of the other instances into out until ctx ends.
func (s *Server) followPeers(ctx context.Context, id string, out chan<- *pb.LifecycleEvent, wg *sync.WaitGroup) {
	following := map[string]bool{}
	var mu sync.Mutex
	t := time.NewTicker(peerRefresh)
	defer t.Stop()
	for {
		addrs, err := s.conns.Instances(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Debug("watch events: find instances", zap.Error(err))
		}
		for _, addr := range addrs {
			if addr == s.cfg.SelfAddr {
				continue
			}
			if err := s.peers.check(addr); err != nil {
				s.peers.refuse(addr, err) // logged once; the next refresh looks again
				continue
			}
			mu.Lock()
			// Bounded: the directory may name any number of addresses.
			skip := following[addr] || len(following) >= maxPeerConns
			if !skip {
				following[addr] = true
			}
			mu.Unlock()
			if skip {
				continue
			}
			wg.Go(func() {
				defer func() { mu.Lock(); delete(following, addr); mu.Unlock() }()
				s.followPeer(ctx, addr, id, out)
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) followPeer(ctx context.Context, addr, id string, out chan<- *pb.LifecycleEvent) {
	c, err := s.peers.client(addr)
	if err != nil {
		return
	}
	st, err := c.WatchEvents(s.peers.peerCtx(ctx, addr), &pb.WatchEventsRequest{ConnectionId: id, ThisInstanceOnly: true})
	if err != nil {
		return
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			return // the next refresh follows it again if it is still there
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// streamLimiter bounds concurrent streams in all and per caller.
type streamLimiter struct {
	max, perCaller int // 0: no limit

	mu    sync.Mutex
	total int
	by    map[string]int // caller → open streams; bounded by total
}

func newStreamLimiter(max, perCaller int) *streamLimiter {
	return &streamLimiter{max: max, perCaller: perCaller, by: map[string]int{}}
}

// acquire takes a stream for caller, or answers RESOURCE_EXHAUSTED; release gives it back.
func (l *streamLimiter) acquire(caller string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return nil, actors.Errorf(actors.CodeResourceExhausted, "this instance serves %d WatchEvents streams already (--max-watch-streams); watch again later or through another instance", l.max)
	}
	if l.perCaller > 0 && l.by[caller] >= l.perCaller {
		return nil, actors.Errorf(actors.CodeResourceExhausted, "this caller has %d WatchEvents streams open on this instance already (--max-watch-streams-per-caller); close one first", l.perCaller)
	}
	l.total++
	l.by[caller]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.by[caller]--; l.by[caller] <= 0 {
				delete(l.by, caller)
			}
		})
	}, nil
}

// callerOf names the caller of a stream for the per-caller limit: the accepted API token it
// authenticated with (as authentication named it: every spelling of the header is one
// caller; without tokens configured, a header anyone can vary names nobody), else its
// verified client certificate, else its network address (REST calls reach the gRPC server
// in-process with the HTTP client's address).
func callerOf(ctx context.Context) string {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok && ci.token != "" {
		return "token:" + ci.token
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
		return "cert:" + ti.State.VerifiedChains[0][0].Subject.String()
	}
	if p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		host = p.Addr.String()
	}
	return "addr:" + host
}
