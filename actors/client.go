package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"

	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/tracing"
)

// Invoker is the slice of the Dapr client that calls actors.
type Invoker interface {
	InvokeActor(ctx context.Context, in *dapr.InvokeActorRequest) (*dapr.InvokeActorResponse, error)
}

// Client calls the actors of this package through a Dapr sidecar, wherever they are active.
// Failures reported by an actor come back as [*Error]; transport failures keep the gRPC
// status the sidecar gave them.
type Client struct {
	dapr    Invoker
	metrics *metrics.Metrics
	adds    addBatcher
}

// WithMetrics makes the client record every actor call it makes.
func (c *Client) WithMetrics(m *metrics.Metrics) *Client {
	c.metrics = m
	return c
}

// NewClient returns a client that calls actors through inv.
func NewClient(inv Invoker) *Client { return &Client{dapr: inv} }

type replier interface{ errorInfo() *ErrorInfo }

func (c *Client) call(ctx context.Context, typ, id, method string, in any, out replier) (err error) {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s.%s: %w", typ, method, err)
	}
	ctx, span := tracing.StartClient(ctx, "actor "+typ+"/"+method,
		attribute.String("dapr.actor.type", typ), attribute.String("dapr.actor.id", id), attribute.String("dapr.actor.method", method))
	defer func() { tracing.End(span, err) }()
	start := time.Now()
	resp, err := c.dapr.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: typ, ActorID: id, Method: method, Data: data})
	if err != nil {
		c.metrics.ActorCall(typ, method, "transport_error", time.Since(start))
		return fmt.Errorf("invoke %s.%s: %w", typ, method, err)
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		c.metrics.ActorCall(typ, method, "bad_reply", time.Since(start))
		return fmt.Errorf("decode %s.%s reply: %w", typ, method, err)
	}
	if e := out.errorInfo(); e != nil {
		c.metrics.ActorCall(typ, method, strings.ToLower(string(e.Code)), time.Since(start))
		return &Error{Code: e.Code, Message: e.Message, RetryAfterMS: e.RetryAfterMS}
	}
	c.metrics.ActorCall(typ, method, "ok", time.Since(start))
	return nil
}

// Connect dials for connection id. See [ConnectionMethodConnect].
func (c *Client) Connect(ctx context.Context, id string, in ConnectArgs) (ConnectionInfo, error) {
	var r InfoReply
	err := c.call(ctx, ConnectionType, id, ConnectionMethodConnect, in, &r)
	return r.Connection, err
}

// Disconnect closes and forgets connection id. See [ConnectionMethodDisconnect].
func (c *Client) Disconnect(ctx context.Context, id string) error {
	return c.call(ctx, ConnectionType, id, ConnectionMethodDisconnect, Empty{}, &Reply{})
}

// Get describes connection id. See [ConnectionMethodGet].
func (c *Client) Get(ctx context.Context, id string) (ConnectionInfo, error) {
	var r InfoReply
	err := c.call(ctx, ConnectionType, id, ConnectionMethodGet, Empty{}, &r)
	return r.Connection, err
}

// Locate says which instance holds connection id. See [ConnectionMethodLocate].
func (c *Client) Locate(ctx context.Context, id string) (ConnectionInfo, error) {
	var r InfoReply
	err := c.call(ctx, ConnectionType, id, ConnectionMethodLocate, Empty{}, &r)
	return r.Connection, err
}

// StartPublish publishes connection id's inbound frames as args say. See [ConnectionMethodStartPublish].
func (c *Client) StartPublish(ctx context.Context, id string, args PublishArgs) error {
	return c.call(ctx, ConnectionType, id, ConnectionMethodStartPublish, args, &Reply{})
}

// StopPublish stops publishing connection id's frames. See [ConnectionMethodStopPublish].
func (c *Client) StopPublish(ctx context.Context, id string) error {
	return c.call(ctx, ConnectionType, id, ConnectionMethodStopPublish, Empty{}, &Reply{})
}

// Send writes a message and waits for the reply inside the actor's turn. See [ConnectionMethodSend].
func (c *Client) Send(ctx context.Context, id string, in SendArgs) (SendReply, error) {
	var r SendReply
	err := c.call(ctx, ConnectionType, id, ConnectionMethodSend, in, &r)
	return r, err
}

// SendRaw writes a message without waiting. See [ConnectionMethodSendRaw].
func (c *Client) SendRaw(ctx context.Context, id string, in SendArgs) error {
	return c.call(ctx, ConnectionType, id, ConnectionMethodSendRaw, in, &Reply{})
}

// AddMember adds id to the directory, held by the instance at holder. See [DirectoryMethodAdd].
//
// Adds to one shard made at the same time by this process go in one AddMany call (see
// addBatcher); an Add without a holder is made alone.
func (c *Client) AddMember(ctx context.Context, id, holder string) error {
	if holder == "" {
		return c.call(ctx, DirectoryType, DirectoryShard(id), DirectoryMethodAdd, MemberArgs{ID: id}, &Reply{})
	}
	err := c.adds.add(ctx, DirectoryShard(id), id, holder, func(ctx context.Context, shard string, holders map[string]string) error {
		return c.call(ctx, DirectoryType, shard, DirectoryMethodAddMany, HoldersArgs{Holders: holders}, &Reply{})
	})
	var ae *Error
	if err == nil || errors.As(err, &ae) || ctx.Err() != nil {
		return err
	}
	// Not answered by the shard: it may run on an instance of an earlier version, without
	// AddMany (a rolling upgrade). Add alone, as those do.
	return c.call(ctx, DirectoryType, DirectoryShard(id), DirectoryMethodAdd, MemberArgs{ID: id, Holder: holder}, &Reply{})
}

// IsMember says whether connection id is in the directory. See [DirectoryMethodHas].
func (c *Client) IsMember(ctx context.Context, id string) (bool, error) {
	var r HasReply
	err := c.call(ctx, DirectoryType, DirectoryShard(id), DirectoryMethodHas, MemberArgs{ID: id}, &r)
	return r.Member, err
}

// SetHolders records the holders of members of one directory shard. See [DirectoryMethodSetHolders].
func (c *Client) SetHolders(ctx context.Context, shard string, holders map[string]string) error {
	return c.call(ctx, DirectoryType, shard, DirectoryMethodSetHolders, HoldersArgs{Holders: holders}, &Reply{})
}

// RemoveMember removes id from the directory. See [DirectoryMethodRemove].
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.call(ctx, DirectoryType, DirectoryShard(id), DirectoryMethodRemove, MemberArgs{ID: id}, &Reply{})
}

// Ping calls a directory actor's no-op method: one bare actor call. See [DirectoryMethodPing].
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, DirectoryType, "0", DirectoryMethodPing, Empty{}, &Reply{})
}

// everyShard calls Members on every shard of shards (nil: all) at once, with the arguments
// args gives for it, and hands each reply to add (one at a time); it returns the first
// failure, after all calls ended.
func (c *Client) everyShard(ctx context.Context, shards []int, args func(shard int) MembersArgs, add func(shard int, r MembersReply)) error {
	if shards == nil {
		shards = make([]int, DirectoryShardCount())
		for i := range shards {
			shards[i] = i
		}
	}
	var (
		mu sync.Mutex
		g  errgroup.Group // no shared cancel: one shard's failure does not cut the others short
	)
	for _, shard := range shards {
		g.Go(func() error {
			var r MembersReply
			err := c.call(ctx, DirectoryType, strconv.Itoa(shard), DirectoryMethodMembers, args(shard), &r)
			mu.Lock()
			defer mu.Unlock()
			add(shard, r)
			return err
		})
	}
	return g.Wait()
}

// Members lists the connection ids of every directory shard. See [DirectoryMethodMembers].
func (c *Client) Members(ctx context.Context) ([]string, error) {
	ids, _, err := c.Directory(ctx, "", 0)
	return ids, err
}

// Directory reads every directory shard: the connection ids, and the distinct gRPC addresses
// of the instances recorded as holding them or announced recently (the instances that may have
// something to say). See [DirectoryMethodMembers].
//
// With limit > 0 it returns at least the limit + 1 smallest ids after after (and every id up
// to the largest of those; the one more tells a List page that another page follows), not all: ids spread evenly over the shards, so each shard is asked for
// about twice its share of a page, and only shards cut short before enough ids are known are
// asked again, after their last id. A page of 500 reads about 1,500 ids, not 64 × 500.
func (c *Client) Directory(ctx context.Context, after string, limit int) (ids, holders []string, err error) {
	seen := map[string]bool{}
	addHolders := func(r MembersReply) {
		for _, h := range r.Holders {
			if !seen[h] {
				seen[h] = true
				holders = append(holders, h)
			}
		}
	}
	if limit <= 0 {
		err = c.everyShard(ctx, nil, func(int) MembersArgs { return MembersArgs{} }, func(_ int, r MembersReply) {
			ids = append(ids, r.IDs...)
			addHolders(r)
		})
		return ids, holders, err
	}
	per := min(limit, 2*limit/DirectoryShardCount()+16)
	from := map[int]string{} // shard → the id its next page starts after
	startAfter := func(shard int) string {
		if a, ok := from[shard]; ok {
			return a
		}
		return after
	}
	var shards []int // nil: all of them
	for {
		cut := map[int]string{} // shards cut short → their last id
		err = c.everyShard(ctx, shards, func(shard int) MembersArgs {
			return MembersArgs{After: startAfter(shard), Limit: per}
		}, func(shard int, r MembersReply) {
			// A shard of an earlier version answers all its ids: keep those after what was asked.
			lo := startAfter(shard)
			n := 0
			for _, id := range r.IDs {
				if id > lo {
					ids = append(ids, id)
					n++
				}
			}
			addHolders(r)
			if n >= per {
				cut[shard] = r.IDs[len(r.IDs)-1]
			}
		})
		if err != nil || len(cut) == 0 {
			return ids, holders, err
		}
		// Every id up to the smallest cut is known; more than a page of them decide the page
		// and tell List that another one follows.
		bound := ""
		for _, last := range cut {
			if bound == "" || last < bound {
				bound = last
			}
		}
		known := 0
		for _, id := range ids {
			if id <= bound {
				known++
			}
		}
		if known > limit {
			return ids, holders, nil
		}
		shards = shards[:0:0]
		for shard, last := range cut {
			shards = append(shards, shard)
			from[shard] = last
		}
	}
}

// Announce records that the instance at addr is up, and checks that the directory has this
// process's shard count (FAILED_PRECONDITION if not). See [DirectoryMethodAnnounce].
func (c *Client) Announce(ctx context.Context, addr string) error {
	return c.call(ctx, DirectoryType, "0", DirectoryMethodAnnounce, AnnounceArgs{Addr: addr, Shards: DirectoryShardCount()}, &Reply{})
}

// Holders returns the distinct gRPC addresses of the instances the directory records as
// holding connections or announced recently. See [Client.Directory].
func (c *Client) Holders(ctx context.Context) ([]string, error) {
	_, holders, err := c.Directory(ctx, "", 0)
	return holders, err
}
