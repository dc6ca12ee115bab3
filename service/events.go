package service

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

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
		return status.Error(codes.Unimplemented, "this instance does not serve events")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	local := s.hub.subscribe(req.GetConnectionId())
	defer s.hub.unsubscribe(local)

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
			return status.Error(codes.Unavailable, "this instance is shutting down; watch again")
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
			mu.Lock()
			skip := following[addr] || addr == s.cfg.SelfAddr
			following[addr] = true
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
	st, err := c.WatchEvents(s.peers.forwardCtx(ctx), &pb.WatchEventsRequest{ConnectionId: id, ThisInstanceOnly: true})
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
