package actors

import (
	"context"
	"errors"
	"time"

	"github.com/dapr/go-sdk/actor"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// stateKey is the actor state key of the persisted [spec].
const stateKey = "spec"

// spec is what the caller asked for; it survives the process in the actor state store.
type spec struct {
	URL           string    `json:"url"`
	AutoReconnect bool      `json:"autoReconnect"`
	Topic         string    `json:"topic,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Deps are what the actors of one process share.
type Deps struct {
	// InstanceID names this process in List.
	InstanceID string
	// Registry holds this process's sockets.
	Registry *session.Registry
	// Directory is the client used to keep the directory actor up to date.
	Directory *Client
	// MaxSendTimeout bounds the in-turn wait of [ConnectionMethodSend].
	MaxSendTimeout time.Duration
	Log            *zap.Logger
}

// Connection is the actor of one managed connection. Its exported methods are the actor's
// contract (see the ConnectionMethod constants); keep helpers unexported.
type Connection struct {
	actor.ServerImplBaseCtx
	deps *Deps
}

// Type implements actor.ServerContext.
func (c *Connection) Type() string { return ConnectionType }

func (c *Connection) log() *zap.Logger {
	return c.deps.Log.With(zap.String(logkey.ConnectionID, c.ID()))
}

// loadSpec returns the persisted spec, or nil if the connection does not exist.
func (c *Connection) loadSpec(ctx context.Context) (*spec, error) {
	sm := c.GetStateManager()
	// Contains before Get: the SDK caches a zero value for a missing key on Get.
	ok, err := sm.Contains(ctx, stateKey)
	if err != nil || !ok {
		return nil, err
	}
	var s spec
	if err := sm.Get(ctx, stateKey, &s); err != nil {
		return nil, err
	}
	if s.URL == "" {
		return nil, nil
	}
	return &s, nil
}

// existing loads the spec and turns "missing" and "unreadable" into reply errors.
func (c *Connection) existing(ctx context.Context) (*spec, *ErrorInfo) {
	s, err := c.loadSpec(ctx)
	if err != nil {
		c.log().Error("read actor state", zap.Error(err))
		return nil, errorf(CodeUnavailable, "cannot read the connection's state from the actor state store; retry later")
	}
	if s == nil {
		return nil, errorf(CodeNotFound, "connection %q not found", c.ID())
	}
	return s, nil
}

// ensure returns this process's session of the connection, dialing it if this process does
// not hold one yet (the actor was activated here after the socket's previous holder went away).
func (c *Connection) ensure(ctx context.Context, s *spec) (*session.Session, error) {
	if sess := c.deps.Registry.Get(c.ID()); sess != nil {
		return sess, nil
	}
	sess, err := c.deps.Registry.Open(ctx, session.Spec{ID: c.ID(), URL: s.URL})
	if err != nil {
		return nil, err
	}
	sess.SetTopic(s.Topic)
	return sess, nil
}

func (c *Connection) info(s *spec, sess *session.Session, dialErr error) ConnectionInfo {
	in := ConnectionInfo{
		ID:            c.ID(),
		URL:           s.URL,
		AutoReconnect: s.AutoReconnect,
		Topic:         s.Topic,
		CreatedAt:     s.CreatedAt,
		InstanceID:    c.deps.InstanceID,
		Status:        StatusError,
	}
	if dialErr != nil {
		in.LastError = dialErr.Error()
		return in
	}
	snap := sess.Snapshot()
	in.Status = snap.Status.String()
	in.LastError = snap.LastError
	return in
}

// Open dials the server and records the connection. See [ConnectionMethodOpen].
func (c *Connection) Open(ctx context.Context, in *OpenArgs) (*InfoReply, error) {
	existing, err := c.loadSpec(ctx)
	if err != nil {
		c.log().Error("read actor state", zap.Error(err))
		return &InfoReply{Reply: Reply{Error: errorf(CodeUnavailable, "cannot read the actor state store; retry later")}}, nil
	}
	if existing != nil {
		return &InfoReply{Reply: Reply{Error: errorf(CodeAlreadyExists, "connection %q already exists", c.ID())}}, nil
	}
	s := &spec{URL: in.URL, AutoReconnect: in.AutoReconnect, CreatedAt: in.CreatedAt}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now().UTC()
	}
	sess, err := c.deps.Registry.Open(ctx, session.Spec{ID: c.ID(), URL: s.URL})
	if err != nil {
		return &InfoReply{Reply: Reply{Error: errorf(CodeUnavailable, "cannot connect to the server: %v", err)}}, nil
	}
	if err := c.deps.Directory.AddMember(ctx, c.ID()); err != nil {
		c.deps.Registry.Close(ctx, c.ID())
		c.log().Error("add to directory", zap.Error(err))
		return &InfoReply{Reply: Reply{Error: errorf(CodeUnavailable, "cannot record the connection in the directory; retry later")}}, nil
	}
	if err := c.GetStateManager().Set(ctx, stateKey, s); err != nil {
		c.deps.Registry.Close(ctx, c.ID())
		return &InfoReply{Reply: Reply{Error: errorf(CodeInternal, "record connection: %v", err)}}, nil
	}
	return &InfoReply{Connection: c.info(s, sess, nil)}, nil // the SDK saves state after a nil error
}

// Close closes the socket and forgets the connection. See [ConnectionMethodClose].
func (c *Connection) Close(ctx context.Context, _ *Empty) (*Reply, error) {
	if _, e := c.existing(ctx); e != nil {
		return &Reply{Error: e}, nil
	}
	c.deps.Registry.Close(ctx, c.ID())
	if err := c.GetStateManager().Remove(ctx, stateKey); err != nil {
		return &Reply{Error: errorf(CodeInternal, "forget connection: %v", err)}, nil
	}
	if err := c.SaveState(ctx); err != nil {
		c.log().Error("save actor state", zap.Error(err))
		return &Reply{Error: errorf(CodeUnavailable, "cannot update the actor state store; retry later")}, nil
	}
	if err := c.deps.Directory.RemoveMember(ctx, c.ID()); err != nil {
		// The connection is gone; a stale directory entry is skipped by List.
		c.log().Warn("remove from directory", zap.Error(err))
	}
	return &Reply{}, nil
}

// Info describes the connection. See [ConnectionMethodInfo].
func (c *Connection) Info(ctx context.Context, _ *Empty) (*InfoReply, error) {
	return c.Locate(ctx, nil)
}

// Locate makes sure this process holds the socket and describes the connection.
// See [ConnectionMethodLocate].
func (c *Connection) Locate(ctx context.Context, _ *Empty) (*InfoReply, error) {
	s, e := c.existing(ctx)
	if e != nil {
		return &InfoReply{Reply: Reply{Error: e}}, nil
	}
	sess, err := c.ensure(ctx, s)
	return &InfoReply{Connection: c.info(s, sess, err)}, nil
}

// StartPublish publishes every inbound frame to a topic. See [ConnectionMethodStartPublish].
func (c *Connection) StartPublish(ctx context.Context, in *PublishArgs) (*Reply, error) {
	return c.setTopic(ctx, in.Topic)
}

// StopPublish stops publishing. See [ConnectionMethodStopPublish].
func (c *Connection) StopPublish(ctx context.Context, _ *Empty) (*Reply, error) {
	return c.setTopic(ctx, "")
}

func (c *Connection) setTopic(ctx context.Context, topic string) (*Reply, error) {
	s, e := c.existing(ctx)
	if e != nil {
		return &Reply{Error: e}, nil
	}
	s.Topic = topic
	if err := c.GetStateManager().Set(ctx, stateKey, s); err != nil {
		return &Reply{Error: errorf(CodeInternal, "record topic: %v", err)}, nil
	}
	if sess := c.deps.Registry.Get(c.ID()); sess != nil {
		sess.SetTopic(topic)
	}
	return &Reply{}, nil
}

// SendRaw writes a message without waiting for a reply. See [ConnectionMethodSendRaw].
func (c *Connection) SendRaw(ctx context.Context, in *SendArgs) (*Reply, error) {
	sess, e := c.connected(ctx)
	if e != nil {
		return &Reply{Error: e}, nil
	}
	if err := sess.SendRaw(ctx, in.Message); err != nil {
		return &Reply{Error: SessionError(err)}, nil
	}
	return &Reply{}, nil
}

// Send writes a message and waits for the reply inside the actor's turn.
// See [ConnectionMethodSend].
func (c *Connection) Send(ctx context.Context, in *SendArgs) (*SendReply, error) {
	sess, e := c.connected(ctx)
	if e != nil {
		return &SendReply{Reply: Reply{Error: e}}, nil
	}
	timeout := time.Duration(in.TimeoutMS) * time.Millisecond
	if timeout <= 0 || timeout > c.deps.MaxSendTimeout {
		timeout = c.deps.MaxSendTimeout
	}
	resp, err := sess.Send(ctx, in.Message, timeout)
	if err != nil {
		return &SendReply{Reply: Reply{Error: SessionError(err)}}, nil
	}
	return &SendReply{Response: resp}, nil
}

func (c *Connection) connected(ctx context.Context) (*session.Session, *ErrorInfo) {
	s, e := c.existing(ctx)
	if e != nil {
		return nil, e
	}
	sess, err := c.ensure(ctx, s)
	if err != nil {
		return nil, errorf(CodeUnavailable, "cannot connect to the server: %v", err)
	}
	return sess, nil
}

// SessionError turns a session failure into the error a caller sees.
func SessionError(err error) *ErrorInfo {
	switch {
	case errors.Is(err, session.ErrTimeout):
		return errorf(CodeDeadlineExceeded, "no reply from the server within the timeout")
	case errors.Is(err, session.ErrNotConnected):
		return errorf(CodeFailedPrecondition, "the connection is not open (%v); Disconnect it and Connect again", err)
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(CodeDeadlineExceeded, "the call's deadline passed")
	case errors.Is(err, context.Canceled):
		return errorf(CodeDeadlineExceeded, "the call was cancelled")
	}
	return errorf(CodeInternal, "%v", err)
}

// NewConnectionFactory returns the factory the actor runtime uses to create connection
// actors. It has no side effects (the SDK calls it once at registration to learn the type).
func NewConnectionFactory(deps *Deps) actor.FactoryContext {
	return func() actor.ServerContext { return &Connection{deps: deps} }
}
