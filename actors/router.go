package actors

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/netguard"
	"github.com/websocketmanager/websocketmanager/actors/route"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// Router carries API calls to the actor of each connection. Send and SendRaw are the
// exception that keeps actor turns short and the hot path free of actor calls: where each one
// goes is decided step by step by [route.Next] (this instance's session, the holder instance,
// or the actor's own turn; see docs/architecture.md), and the router only carries each step
// out. Many Sends can therefore be in flight on one connection.
type Router struct {
	actors     connectionActors
	sessions   localSessions
	instanceID string
	dial       *netguard.Policy // nil: no check before the actor's
	forward    Forwarder        // nil: Sends to another instance's socket go through the actor
	local      HeldLister       // nil: List is not wired (see WithLists)
	peers      PeerLister
	listLog    *zap.Logger // names instances that do not answer a List (see WithLists)
	// lastHolders are the instances the directory named at the last List: the next List asks
	// them while it reads the directory, not after.
	lastHolders atomic.Pointer[[]string]
}

// connectionActors is what the router calls on the actors: [*Client] in production.
type connectionActors interface {
	Connect(ctx context.Context, id string, in ConnectArgs) (ConnectionInfo, error)
	Disconnect(ctx context.Context, id string) error
	Get(ctx context.Context, id string) (ConnectionInfo, error)
	Locate(ctx context.Context, id string) (ConnectionInfo, error)
	StartPublish(ctx context.Context, id string, args PublishArgs) error
	StopPublish(ctx context.Context, id string) error
	Send(ctx context.Context, id string, in SendArgs) (SendReply, error)
	SendRaw(ctx context.Context, id string, in SendArgs) error
	IsMember(ctx context.Context, id string) (bool, error)
	Directory(ctx context.Context, after string, limit int) (ids, holders []string, err error)
	Holders(ctx context.Context) ([]string, error)
}

// localSession is a socket this instance holds ([*session.Session]).
type localSession interface {
	Send(ctx context.Context, f session.Frame, timeout time.Duration) (session.Frame, error)
	SendRaw(ctx context.Context, f session.Frame) error
	Watch(from *uint64, includeReplies bool) (*session.Watcher, error)
}

// localSessions finds this instance's session of a connection (nil: none).
type localSessions interface {
	session(id string) localSession
}

type registrySessions struct{ r *session.Registry }

func (s registrySessions) session(id string) localSession {
	if sess := s.r.Get(id); sess != nil {
		return sess
	}
	return nil // not a typed nil
}

// Forwarder carries out the router's [route.Forward] step: it calls the instance at addr
// (the service's peer client, which applies the peer policy and proves the call). It answers
// [route.Missed] when the call did not reach the socket there (nothing was sent); otherwise
// the holder's answer, reply or error, is final and returned as it is.
type Forwarder interface {
	ForwardSend(ctx context.Context, addr, id string, in SendArgs, timeout time.Duration) (SendReply, route.Forwarded, error)
	ForwardSendRaw(ctx context.Context, addr, id string, in SendArgs) (route.Forwarded, error)
}

// WithForwarder lets Send and SendRaw forward to the instance holding the socket. Set it
// before serving.
func (r *Router) WithForwarder(f Forwarder) *Router {
	r.forward = f
	return r
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
	return &Router{actors: client, sessions: registrySessions{registry}, instanceID: instanceID}
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
	return r.actors.Connect(ctx, id, in)
}

// Disconnect closes and forgets connection id.
func (r *Router) Disconnect(ctx context.Context, id string) error {
	if err := r.known(ctx, id); err != nil {
		return err
	}
	return r.actors.Disconnect(ctx, id)
}

// WatchFrames follows connection id's inbound frames: a watch of the session held here, or
// else the gRPC address of the instance that holds it (the caller forwards the stream there).
// With onlyHere (a call another instance forwarded) it never looks elsewhere: a connection not
// held here is UNAVAILABLE, so the caller resumes through whichever instance holds it now.
func (r *Router) WatchFrames(ctx context.Context, id string, from *uint64, includeReplies, onlyHere bool) (*session.Watcher, string, error) {
	watch := func(sess localSession) (*session.Watcher, string, error) {
		w, err := sess.Watch(from, includeReplies)
		if err != nil {
			return nil, "", SessionError(err).Err()
		}
		return w, "", nil
	}
	if sess := r.sessions.session(id); sess != nil {
		return watch(sess)
	}
	if onlyHere {
		return nil, "", errorf(CodeUnavailable, "connection %q is not held by this instance (it moved); watch again", id).Err()
	}
	if err := r.known(ctx, id); err != nil {
		return nil, "", err
	}
	info, err := r.actors.Locate(ctx, id) // the holder: established where the actor lives
	if err != nil {
		return nil, "", err
	}
	if sess := r.sessions.session(id); sess != nil {
		return watch(sess)
	}
	if info.InstanceID == r.instanceID || info.InstanceAddr == "" {
		return nil, "", errorf(CodeUnavailable, "connection %q is not established on any instance now (%s); watch again", id, info.Status).Err()
	}
	return nil, info.InstanceAddr, nil
}

// StartPublish publishes connection id's inbound frames as args say.
func (r *Router) StartPublish(ctx context.Context, id string, args PublishArgs) error {
	if err := r.known(ctx, id); err != nil {
		return err
	}
	return r.actors.StartPublish(ctx, id, args)
}

// StopPublish stops publishing connection id's frames.
func (r *Router) StopPublish(ctx context.Context, id string) error {
	if err := r.known(ctx, id); err != nil {
		return err
	}
	return r.actors.StopPublish(ctx, id)
}

// known answers NOT_FOUND for an id that is neither held here nor in the directory, before
// any call to its actor: calling the actor of an unknown id would activate it, and an active
// actor stays in memory (here and in the sidecar) for the whole idle timeout. The directory
// shards are few and always active, so asking them costs no activation.
func (r *Router) known(ctx context.Context, id string) error {
	if r.sessions.session(id) != nil {
		return nil
	}
	ok, err := r.actors.IsMember(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(id)
	}
	return nil
}

func notFound(id string) error {
	return errorf(CodeNotFound, "connection %q not found; List shows the existing connections", id).Err()
}

// SendRaw writes a message through connection id without waiting for a reply.
func (r *Router) SendRaw(ctx context.Context, id string, in SendArgs, scope route.Scope) error {
	_, err := deliver(ctx, r, id, scope, carriers[struct{}]{
		here: func(sess localSession) (struct{}, error) {
			if err := sess.SendRaw(ctx, in.frame()); err != nil {
				return struct{}{}, SessionError(err).Err()
			}
			return struct{}{}, nil
		},
		forward: func(addr string) (struct{}, route.Forwarded, error) {
			f, err := r.forward.ForwardSendRaw(ctx, addr, id, in)
			return struct{}{}, f, err
		},
		actor: func() (struct{}, error) {
			return viaActor(ctx, in, 0, func(in SendArgs, _ time.Duration) (struct{}, error) {
				return struct{}{}, r.actors.SendRaw(ctx, id, in)
			})
		},
	})
	return err
}

// Send writes a message through connection id and waits up to timeout for the reply.
func (r *Router) Send(ctx context.Context, id string, in SendArgs, timeout time.Duration, scope route.Scope) (SendReply, error) {
	return deliver(ctx, r, id, scope, carriers[SendReply]{
		here: func(sess localSession) (SendReply, error) {
			f, err := sess.Send(ctx, in.frame(), timeout)
			if err != nil {
				return SendReply{}, SessionError(err).Err()
			}
			return *replyOf(f), nil
		},
		forward: func(addr string) (SendReply, route.Forwarded, error) {
			return r.forward.ForwardSend(ctx, addr, id, in, timeout)
		},
		actor: func() (SendReply, error) {
			return viaActor(ctx, in, timeout, func(in SendArgs, left time.Duration) (SendReply, error) {
				in.TimeoutMS = max(left.Milliseconds(), 1)
				return r.actors.Send(ctx, id, in)
			})
		},
	})
}

// carriers carry out the steps of [route.Next] that differ between Send and SendRaw.
type carriers[T any] struct {
	here    func(localSession) (T, error)
	forward func(addr string) (T, route.Forwarded, error)
	actor   func() (T, error)
}

// deliver gathers the facts [route.Next] asks for and carries out its decision. Each fact is
// learnt once, so this makes at most one directory call, one Locate and one forward.
func deliver[T any](ctx context.Context, r *Router, id string, scope route.Scope, c carriers[T]) (T, error) {
	var zero T
	f := route.Facts{Scope: scope, CanForward: r.forward != nil}
	for range route.MaxSteps {
		sess := r.sessions.session(id)
		f.HeldHere = sess != nil
		switch step := route.Next(f); step {
		case route.SendHere:
			return c.here(sess)
		case route.NotHeldHere:
			return zero, errorf(CodeAborted, "connection %q is not held by this instance", id).Err()
		case route.AskDirectory:
			ok, err := r.actors.IsMember(ctx, id)
			if err != nil {
				return zero, err
			}
			f.Member = route.MembershipOf(ok)
		case route.NotFound:
			return zero, notFound(id)
		case route.Locate:
			info, err := r.actors.Locate(ctx, id)
			if err != nil {
				return zero, err
			}
			f.Located = true
			f.Holder = route.Holder{Here: info.InstanceID == r.instanceID, Addr: info.InstanceAddr}
		case route.Forward:
			v, outcome, err := c.forward(f.Holder.Addr)
			if outcome == route.Answered {
				return v, err
			}
			f.ForwardMissed = true
		case route.ViaActor:
			return c.actor()
		default:
			return zero, fmt.Errorf("route connection %q: unknown step %v", id, step)
		}
	}
	// Unreachable: route.TestEveryWalkEndsWithOneLocateAtMost.
	return zero, fmt.Errorf("route connection %q: no decision after %d steps", id, route.MaxSteps)
}

// Instances returns the gRPC addresses of the instances that hold connections.
func (r *Router) Instances(ctx context.Context) ([]string, error) { return r.actors.Holders(ctx) }

// Holds reports whether this process holds the connection's socket.
func (r *Router) Holds(id string) bool { return r.sessions.session(id) != nil }

func matches(tags, filter map[string]string) bool {
	for k, v := range filter {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}
