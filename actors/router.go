package actors

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/session"
)

// Router carries API calls to the actor of each connection. Send is the exception that keeps
// actor turns short: the router asks the actor where the socket lives (a short turn) and, when
// it is this process, waits for the reply on the socket directly, so many Sends can be in
// flight on one connection. When another process holds the socket, the actor's own Send is used.
type Router struct {
	client     *Client
	registry   *session.Registry
	instanceID string
}

// NewRouter returns a router for this process.
func NewRouter(client *Client, registry *session.Registry, instanceID string) *Router {
	return &Router{client: client, registry: registry, instanceID: instanceID}
}

// Open dials url under id. See [ConnectionMethodOpen].
func (r *Router) Open(ctx context.Context, id string, in OpenArgs) (ConnectionInfo, error) {
	return r.client.Open(ctx, id, in)
}

// Close closes and forgets connection id.
func (r *Router) Close(ctx context.Context, id string) error { return r.client.Close(ctx, id) }

// StartPublish publishes connection id's inbound frames to topic.
func (r *Router) StartPublish(ctx context.Context, id, topic string) error {
	return r.client.StartPublish(ctx, id, topic)
}

// StopPublish stops publishing connection id's frames.
func (r *Router) StopPublish(ctx context.Context, id string) error {
	return r.client.StopPublish(ctx, id)
}

// SendRaw writes msg through connection id without waiting for a reply.
func (r *Router) SendRaw(ctx context.Context, id, msg string) error {
	return r.client.SendRaw(ctx, id, msg)
}

// Send writes msg through connection id and waits up to timeout for the reply.
func (r *Router) Send(ctx context.Context, id, msg string, timeout time.Duration) (string, error) {
	info, err := r.client.Locate(ctx, id)
	if err != nil {
		return "", err
	}
	if info.InstanceID == r.instanceID {
		if sess := r.registry.Get(id); sess != nil {
			resp, err := sess.Send(ctx, msg, timeout)
			if err != nil {
				e := SessionError(err)
				return "", &Error{Code: e.Code, Message: e.Message}
			}
			return resp, nil
		}
	}
	return r.client.Send(ctx, id, SendArgs{Message: msg, TimeoutMS: timeout.Milliseconds()})
}

// listConcurrency bounds the Info calls one List makes at once.
const listConcurrency = 16

// List describes every connection, oldest first.
func (r *Router) List(ctx context.Context) ([]ConnectionInfo, error) {
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
			info, err := r.client.Info(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out = append(out, info)
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
