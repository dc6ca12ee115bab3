package actors

import (
	"context"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/netguard"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// Router carries API calls to the actor of each connection. Send and SendRaw are the
// exception that keeps actor turns short and the hot path free of actor calls:
//
//   - when this process holds the connection's socket, they use it directly. A session exists
//     here only while the connection's actor is active here (the actor opens it; deactivation
//     closes it), so the local session is the actor's own socket — no call is needed to find it;
//   - otherwise the router asks the actor (a short turn, which also activates the actor and
//     opens the socket wherever placement puts it) and sends locally if that is here;
//   - when another process holds the socket, the actor's own Send is used (it waits inside the
//     actor's turn).
//
// Many Sends can therefore be in flight on one connection.
type Router struct {
	client     *Client
	registry   *session.Registry
	instanceID string
	dial       *netguard.Policy // nil: no check before the actor's
}

// WithDialPolicy makes Connect refuse a URL whose host the SSRF guard denies by itself (an
// address in any spelling, a name on the deny-list) before calling the actor: the actor would
// refuse it too, but calling it activates it, and an activated actor stays in memory for the
// idle timeout. The actor's own check, on the address actually dialed, stays the guard.
func (r *Router) WithDialPolicy(p netguard.Policy) *Router {
	r.dial = &p
	return r
}

// NewRouter returns a router for this process.
func NewRouter(client *Client, registry *session.Registry, instanceID string) *Router {
	return &Router{client: client, registry: registry, instanceID: instanceID}
}

// Connect dials for connection id. See [ConnectionMethodConnect].
func (r *Router) Connect(ctx context.Context, id string, in ConnectArgs) (ConnectionInfo, error) {
	if r.dial != nil {
		if u, err := url.Parse(in.URL); err == nil {
			if _, err := r.dial.CheckHost(u.Hostname()); err != nil {
				return ConnectionInfo{}, errorf(CodePermissionDenied, "%v", err).Err()
			}
		}
	}
	return r.client.Connect(ctx, id, in)
}

// Disconnect closes and forgets connection id.
func (r *Router) Disconnect(ctx context.Context, id string) error {
	if err := r.known(ctx, id); err != nil {
		return err
	}
	return r.client.Disconnect(ctx, id)
}

// StartPublish publishes connection id's inbound frames to topic.
func (r *Router) StartPublish(ctx context.Context, id, topic string) error {
	if err := r.known(ctx, id); err != nil {
		return err
	}
	return r.client.StartPublish(ctx, id, topic)
}

// StopPublish stops publishing connection id's frames.
func (r *Router) StopPublish(ctx context.Context, id string) error {
	if err := r.known(ctx, id); err != nil {
		return err
	}
	return r.client.StopPublish(ctx, id)
}

// known answers NOT_FOUND for an id that is neither held here nor in the directory, before
// any call to its actor: calling the actor of an unknown id would activate it, and an active
// actor stays in memory (here and in the sidecar) for the whole idle timeout. The directory
// shards are few and always active, so asking them costs no activation.
func (r *Router) known(ctx context.Context, id string) error {
	if r.registry.Get(id) != nil {
		return nil
	}
	ok, err := r.client.IsMember(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(CodeNotFound, "connection %q not found; List shows the existing connections", id).Err()
	}
	return nil
}

// HeldElsewhere says that another instance holds the connection's socket: the caller may send
// there directly (see [Router.Send]).
type HeldElsewhere struct {
	InstanceID, Addr string
}

func (e *HeldElsewhere) Error() string { return "connection held by instance " + e.InstanceID }

// Route says where a Send or SendRaw for connection id goes.
type Route int

// Routes.
const (
	// RouteAny sends locally when this instance holds the socket and returns [*HeldElsewhere]
	// when another instance does and can be reached directly.
	RouteAny Route = iota
	// RouteLocal sends only through this instance's socket: the call was forwarded here; if the
	// socket is not here (any more), the answer is ABORTED.
	RouteLocal
	// RouteActor sends through the actor's own Send when the socket is not here.
	RouteActor
)

// SendRaw writes a message through connection id without waiting for a reply.
func (r *Router) SendRaw(ctx context.Context, id string, in SendArgs, route Route) error {
	sess, err := r.local(ctx, id, route)
	if err != nil {
		return err
	}
	if sess != nil {
		if err := sess.SendRaw(ctx, in.frame()); err != nil {
			return SessionError(err).Err()
		}
		return nil
	}
	return r.client.SendRaw(ctx, id, in)
}

// Send writes a message through connection id and waits up to timeout for the reply.
func (r *Router) Send(ctx context.Context, id string, in SendArgs, timeout time.Duration, route Route) (SendReply, error) {
	sess, err := r.local(ctx, id, route)
	if err != nil {
		return SendReply{}, err
	}
	if sess != nil {
		f, err := sess.Send(ctx, in.frame(), timeout)
		if err != nil {
			return SendReply{}, SessionError(err).Err()
		}
		return *replyOf(f), nil
	}
	in.TimeoutMS = timeout.Milliseconds()
	return r.client.Send(ctx, id, in)
}

// Instances returns the gRPC addresses of the instances that hold connections.
func (r *Router) Instances(ctx context.Context) ([]string, error) { return r.client.Holders(ctx) }

// Holds reports whether this process holds the connection's socket.
func (r *Router) Holds(id string) bool { return r.registry.Get(id) != nil }

// local returns the session if this process holds the connection's socket. When another
// process holds it: [*HeldElsewhere] for RouteAny (if its address is known), ABORTED for
// RouteLocal, and nil (use the actor) for RouteActor.
func (r *Router) local(ctx context.Context, id string, route Route) (*session.Session, error) {
	if sess := r.registry.Get(id); sess != nil {
		return sess, nil
	}
	if route == RouteLocal {
		return nil, errorf(CodeAborted, "connection %q is not held by this instance", id).Err()
	}
	if err := r.known(ctx, id); err != nil {
		return nil, err
	}
	info, err := r.client.Locate(ctx, id)
	if err != nil {
		return nil, err
	}
	if info.InstanceID == r.instanceID {
		return r.registry.Get(id), nil
	}
	if route == RouteAny && info.InstanceAddr != "" {
		return nil, &HeldElsewhere{InstanceID: info.InstanceID, Addr: info.InstanceAddr}
	}
	return nil, nil
}

// listConcurrency bounds the Get calls one List makes at once.
const listConcurrency = 16

// List describes every connection whose tags hold all pairs of filter, oldest first.
func (r *Router) List(ctx context.Context, filter map[string]string) ([]ConnectionInfo, error) {
	ids, err := r.client.Members(ctx)
	if err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		out   = make([]ConnectionInfo, 0, len(ids))
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, listConcurrency)
	)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			info, err := r.client.Get(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if matches(info.Tags, filter) {
					out = append(out, info)
				}
			case CodeOf(err) == CodeNotFound: // removed since Members was read
			case first == nil:
				first = err
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func matches(tags, filter map[string]string) bool {
	for k, v := range filter {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}
