package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dapr/go-sdk/actor"
	dapr "github.com/dapr/go-sdk/client"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/backoff"
	"github.com/websocketmanager/websocketmanager/actors/correlation"
	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
	"github.com/websocketmanager/websocketmanager/actors/route"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// stateKey is the actor state key of the persisted [spec].
const stateKey = "spec"

// spec is what the caller asked for; it survives the process in the actor state store.
// Headers are in it (they are needed to reconnect): see docs/architecture.md ("Secrets").
type spec struct {
	ConnectArgs
	Topic string `json:"topic,omitempty"`
	// Publish holds the publish settings besides the topic (nil: the defaults).
	Publish *PublishSettings `json:"publish,omitempty"`
	// Instance is the instance that last established the socket; Epoch counts how often it
	// was established on an instance (it raises the publish sequence base, see SeqBase).
	Instance string `json:"instance,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
}

// Deps are what the actors of one process share.
type Deps struct {
	// InstanceID names this process in List.
	InstanceID string
	// InstanceAddr is the gRPC address other instances reach this one at (for forwarded Sends).
	InstanceAddr string
	// Registry holds this process's sockets.
	Registry *session.Registry
	// Directory is the client used to keep the directory actor up to date.
	Directory *Client
	// Backoff holds the service's reconnect defaults.
	Backoff backoff.Config
	// DefaultSendTimeout applies to an actor Send with no timeout; MaxSendTimeout bounds it.
	DefaultSendTimeout time.Duration
	MaxSendTimeout     time.Duration
	// Reminders registers the directory shards' watchdog reminders, which bring connections
	// back on another instance when the one holding them dies.
	Reminders Reminders
	// WatchdogInterval is the period of those reminders. Default 3s.
	WatchdogInterval time.Duration
	// ReviveConcurrency bounds how many connections this instance's watchdog re-establishes at
	// once (each is an actor call that dials on whichever instance placement picks), so that a
	// failover does not stampede the upstream servers. Default 32.
	ReviveConcurrency int
	// Peers asks other instances which sockets they hold (the watchdog's check).
	Peers HeldChecker
	Log   *zap.Logger
	// Credentials is checked at Connect for what the operator allows of secret headers and
	// TLS material (the registry's sessions read them at every dial).
	Credentials *credentials.Source
	// EgressProxies are the names a Connect may choose as egress_proxy.
	EgressProxies []string

	watchdog *watchdog // set by NewHost
	// held describes the sessions this process holds, for List without actor calls.
	held heldSpecs
}

// Reminders is the slice of the Dapr client that manages actor reminders.
type Reminders interface {
	RegisterActorReminder(ctx context.Context, in *dapr.RegisterActorReminderRequest) error
	UnregisterActorReminder(ctx context.Context, in *dapr.UnregisterActorReminderRequest) error
}

// watchdogReminder is the name of each directory shard's reminder, and of the per-connection
// reminder earlier versions registered (see [Connection.ReminderCall]).
const watchdogReminder = "watchdog"

// Connection is the actor of one managed connection. Its exported methods are the actor's
// contract (see the ConnectionMethod constants); keep helpers unexported.
type Connection struct {
	actor.ServerImplBaseCtx
	deps *Deps
	// newState returns a fresh state manager (tests set it; nil: the Go SDK's).
	newState func() actor.StateManagerContext
}

// Type implements actor.ServerContext.
func (c *Connection) Type() string { return ConnectionType }

func (c *Connection) log() *zap.Logger {
	return c.deps.Log.With(zap.String(logkey.ConnectionID, c.ID()))
}

// loadSpec returns the persisted spec, or nil if the connection does not exist, in one read of
// the state store. The Go SDK's Get of a missing key fails with an error of its own that wraps
// nothing (a failed read wraps the sidecar's error, a bad value the decoder's), and caches a
// zero spec, which reads as missing (no URL) until the turn sets one. After a failed read the
// state manager is replaced: its cached zero value must never be taken for the stored spec.
func (c *Connection) loadSpec(ctx context.Context) (*spec, error) {
	var s spec
	if err := c.GetStateManager().Get(ctx, stateKey, &s); err != nil {
		if errors.Unwrap(err) == nil {
			return nil, nil // no such key (or removed in this turn)
		}
		if sm, ferr := freshState(ConnectionType, c.ID(), c.newState); ferr == nil {
			c.SetStateManager(sm)
		} else {
			c.log().Error("cannot renew the connection's state manager after a failed read", zap.Error(ferr))
		}
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
		return nil, errorf(CodeNotFound, "connection %q not found; List shows the existing connections", c.ID())
	}
	return s, nil
}

// sessionSpec turns the persisted spec into what the session needs, with service defaults.
func (c *Connection) sessionSpec(s *spec) session.Spec {
	corr, _ := s.Correlation.config() // validated at Connect
	b := c.deps.Backoff
	if s.Reconnect.InitialBackoffMS > 0 {
		b.Initial = time.Duration(s.Reconnect.InitialBackoffMS) * time.Millisecond
	}
	if s.Reconnect.MaxBackoffMS > 0 {
		b.Max = time.Duration(s.Reconnect.MaxBackoffMS) * time.Millisecond
	}
	b.Max = max(b.Max, b.Initial)
	if s.Reconnect.MaxAttempts > 0 {
		b.MaxAttempts = s.Reconnect.MaxAttempts
	}
	onConnect := make([]session.Frame, 0, len(s.OnConnectMessages))
	for _, m := range s.OnConnectMessages {
		onConnect = append(onConnect, session.Frame{Data: []byte(m)})
	}
	return session.Spec{
		ID:            c.ID(),
		URL:           s.URL,
		Headers:       header(s.Headers),
		Subprotocols:  s.Subprotocols,
		OnConnect:     onConnect,
		Correlation:   corr,
		AutoReconnect: s.AutoReconnect,
		Backoff:       b,
		IdleTimeout:   time.Duration(s.IdleTimeoutMS) * time.Millisecond,
		RetainFrames:  s.RetainFrames,
		RetainBytes:   s.RetainBytes,
		Publish:       s.publishOptions(),
		SeqBase:       (s.Epoch - 1) << 32, // the first instance publishes 1, 2, …
		SendRate:      s.SendRate.session(),
		// Inbound decoding: see session/decode.go.
		PermessageDeflate: s.PermessageDeflate,
		DecodeBinary:      s.decodeMode(),
		MaxDecodedBytes:   s.MaxDecodedBytes,
		SecretHeaders:     s.SecretHeaders,
		TLS:               s.TLS,
		EgressProxy:       s.EgressProxy,
	}
}

// ensure returns this process's session of the connection, establishing it if this process
// does not hold one yet: the actor was activated here after the instance that held the socket
// went away (or moved the actor here). [route.Activate] decides; the caller persists s
// afterwards.
func (c *Connection) ensure(ctx context.Context, s *spec) (*session.Session, error) {
	sess := c.deps.Registry.Get(c.ID())
	act := route.Activate(sess != nil, s.AutoReconnect)
	if act == route.UseHeld {
		c.deps.held.set(c.ID(), s)
		return sess, nil
	}
	prev := s.Instance
	s.Instance = c.deps.InstanceID
	s.Epoch++
	// Persist the new epoch before the first frame can be published with it: sequence numbers
	// must never go backwards, even if this instance dies right after.
	if err := c.GetStateManager().Set(ctx, stateKey, s); err != nil {
		return nil, fmt.Errorf("record takeover: %w", err)
	}
	if err := c.SaveState(ctx); err != nil {
		return nil, fmt.Errorf("record takeover: %w", err)
	}
	ss := c.sessionSpec(s)
	ss.Reason = route.TakeoverReason(prev, c.deps.InstanceID)
	c.log().Info("establishing connection on this instance", zap.String("previous_instance", prev), zap.Uint64("epoch", s.Epoch))
	var err error
	if act == route.MarkLost {
		sess, err = c.deps.Registry.Lost(ss, fmt.Sprintf("the socket was lost with instance %s; auto_reconnect is off, so it was not re-established: Disconnect and Connect again", orUnknown(prev)))
	} else {
		sess, err = c.deps.Registry.Open(ctx, ss, true)
	}
	if err == nil {
		c.deps.held.set(c.ID(), s)
	}
	return sess, err
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// ReminderCall implements actor.ReminderCallee for the per-connection watchdog reminder of
// earlier versions (contract version 1 registered one per connection; the directory shards'
// reminders replace them). A firing one migrates its connection: it records the connection
// with its holder in the directory, which registers the shard's reminder, and removes itself.
func (c *Connection) ReminderCall(name string, _ []byte, _, _ string) {
	if name != watchdogReminder {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.deps.WatchdogInterval+10*time.Second)
	defer cancel()
	s, err := c.loadSpec(ctx)
	if err != nil {
		c.log().Warn("legacy watchdog: read actor state", zap.Error(err))
		return
	}
	if s != nil {
		if _, err := c.ensure(ctx, s); err != nil {
			c.log().Warn("legacy watchdog: establish connection", zap.Error(err))
		}
		if err := c.SaveState(ctx); err != nil {
			c.log().Warn("legacy watchdog: save actor state", zap.Error(err))
			return
		}
		if err := c.deps.Directory.AddMember(ctx, c.ID(), c.deps.InstanceAddr); err != nil {
			c.log().Warn("legacy watchdog: record in directory; the reminder retries", zap.Error(err))
			return
		}
	}
	err = c.deps.Reminders.UnregisterActorReminder(ctx, &dapr.UnregisterActorReminderRequest{
		ActorType: ConnectionType, ActorID: c.ID(), Name: watchdogReminder,
	})
	if err != nil {
		c.log().Warn("unregister legacy watchdog reminder", zap.Error(err))
	}
}

func (c *Connection) info(s *spec, sess *session.Session, openErr error) ConnectionInfo {
	return c.deps.describe(c.ID(), s, sess, openErr)
}

// describe is the one place a ConnectionInfo is made, for the actor's Get and for List's
// ListHeld alike, so that both always say the same.
func (d *Deps) describe(id string, s *spec, sess *session.Session, openErr error) ConnectionInfo {
	corr, _ := s.Correlation.config()
	in := ConnectionInfo{
		ID:            id,
		URL:           RedactURL(s.URL),
		AutoReconnect: s.AutoReconnect,
		Topic:         s.Topic,
		Publish:       s.publishSettings(),
		CreatedAt:     s.CreatedAt,
		InstanceID:    d.InstanceID,
		InstanceAddr:  d.InstanceAddr,
		Tags:          s.Tags,
		Correlation:   CorrelationArgs{Mode: corr.Mode.String(), Field: corr.Field},
		Status:        StatusError,
		SendRate:      s.SendRate.shown(),
		TLS:           shownTLS(s.TLS),
		EgressProxy:   s.EgressProxy,
		// Only names: the values are read at every dial and never kept.
		SecretHeaderNames: secretHeaderNames(s.SecretHeaders),
	}
	if openErr != nil {
		in.LastError = openErr.Error()
		return in
	}
	snap := sess.Snapshot()
	in.Status = snap.Status.String()
	in.LastError = snap.LastError
	in.ReconnectCount = snap.Reconnects
	in.Subprotocol = snap.Subprotocol
	in.DroppedFrames = snap.Dropped
	in.DroppedFramesByReason = snap.DroppedByReason
	in.PublishPausedMS = snap.Paused.Milliseconds()
	_, in.ThrottledSends = sess.SendRate()
	in.Compression, in.DecodeRefused = sess.Compression()
	if !snap.PausedSince.IsZero() {
		t := snap.PausedSince.UTC()
		in.PublishPausedSince = &t
	}
	if !snap.ConnectedSince.IsZero() {
		t := snap.ConnectedSince
		in.ConnectedSince = &t
	}
	return in
}

// Connect dials the server and records the connection. See [ConnectionMethodConnect].
func (c *Connection) Connect(ctx context.Context, in *ConnectArgs) (*InfoReply, error) {
	fail := func(e *ErrorInfo) (*InfoReply, error) { return &InfoReply{Reply: Reply{Error: e}}, nil }
	if e := ValidateID(c.ID()); e != nil {
		return fail(e)
	}
	if e := in.Validate(); e != nil {
		return fail(e)
	}
	if e := c.deps.validateUpstream(in); e != nil {
		return fail(e)
	}
	existing, err := c.loadSpec(ctx)
	if err != nil {
		c.log().Error("read actor state", zap.Error(err))
		return fail(errorf(CodeUnavailable, "cannot read the actor state store; retry later"))
	}
	if existing != nil {
		return fail(errorf(CodeAlreadyExists, "connection %q already exists; Disconnect it first or choose another id", c.ID()))
	}
	s := &spec{ConnectArgs: *in, Instance: c.deps.InstanceID, Epoch: 1}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now().UTC()
	}
	sess, err := c.deps.Registry.Open(ctx, c.sessionSpec(s), false)
	if err != nil {
		var denied *netguard.DeniedError
		if errors.As(err, &denied) {
			return fail(errorf(CodePermissionDenied, "%v", denied))
		}
		if e, ok := credentialError(err); ok {
			return fail(e)
		}
		if errors.Is(err, session.ErrTooManyConnections) {
			return fail(errorf(CodeResourceExhausted, "%v; use another instance (scale out) or raise --max-connections", err))
		}
		return fail(errorf(CodeUnavailable, "cannot connect to %s: %v", RedactURL(s.URL), err))
	}
	c.deps.held.set(c.ID(), s) // forgotten again below if the connection is not kept
	// The directory records the connection and its holder; its shard's reminder is what
	// brings the connection back if this instance dies.
	if err := c.deps.Directory.AddMember(ctx, c.ID(), c.deps.InstanceAddr); err != nil {
		c.deps.Registry.Close(ctx, c.ID(), 1000, "connect failed")
		c.deps.held.forget(c.ID())
		c.log().Error("add to directory", zap.Error(err))
		var ae *Error
		if errors.As(err, &ae) && ae.Code == CodeUnavailable {
			return fail(&ErrorInfo{Code: CodeUnavailable, Message: ae.Message}) // e.g. no scheduler for the reminder
		}
		return fail(errorf(CodeUnavailable, "cannot record the connection in the directory; retry later"))
	}
	if err := c.GetStateManager().Set(ctx, stateKey, s); err != nil {
		c.deps.Registry.Close(ctx, c.ID(), 1000, "connect failed")
		c.deps.held.forget(c.ID())
		return fail(errorf(CodeInternal, "record connection: %v", err))
	}
	return &InfoReply{Connection: c.info(s, sess, nil)}, nil // the SDK saves state after a nil error
}

// Disconnect closes the socket and forgets the connection. See [ConnectionMethodDisconnect].
func (c *Connection) Disconnect(ctx context.Context, _ *Empty) (*Reply, error) {
	if _, e := c.existing(ctx); e != nil {
		return &Reply{Error: e}, nil
	}
	c.deps.Registry.Close(ctx, c.ID(), 1000, "disconnected by request")
	c.deps.held.forget(c.ID())
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

// Get describes the connection. See [ConnectionMethodGet].
func (c *Connection) Get(ctx context.Context, _ *Empty) (*InfoReply, error) {
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
	if e := ValidateTopic(in.Topic); e != nil {
		return &Reply{Error: e}, nil
	}
	if e := ValidatePublish(in.PublishSettings); e != nil {
		return &Reply{Error: e}, nil
	}
	return c.setPublish(ctx, in.Topic, in.PublishSettings)
}

// StopPublish stops publishing. See [ConnectionMethodStopPublish].
func (c *Connection) StopPublish(ctx context.Context, _ *Empty) (*Reply, error) {
	return c.setPublish(ctx, "", PublishSettings{})
}

func (c *Connection) setPublish(ctx context.Context, topic string, p PublishSettings) (*Reply, error) {
	s, e := c.existing(ctx)
	if e != nil {
		return &Reply{Error: e}, nil
	}
	var settings *PublishSettings
	if topic != "" && p != (PublishSettings{}) {
		settings = &p
	}
	if s.Topic != topic || !equalSettings(s.Publish, settings) {
		s.Topic, s.Publish = topic, settings
		if err := c.GetStateManager().Set(ctx, stateKey, s); err != nil {
			return &Reply{Error: errorf(CodeInternal, "record topic: %v", err)}, nil
		}
	}
	if sess := c.deps.Registry.Get(c.ID()); sess != nil {
		sess.SetPublish(s.publishOptions())
		c.deps.held.set(c.ID(), s)
	}
	return &Reply{}, nil
}

func equalSettings(a, b *PublishSettings) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// publishSettings are the settings to show in List: nil when not publishing.
func (s *spec) publishSettings() *PublishSettings {
	if s.Topic == "" {
		return nil
	}
	if s.Publish == nil {
		return &PublishSettings{Overflow: OverflowDropNewest}
	}
	p := *s.Publish
	if p.Overflow == "" {
		p.Overflow = OverflowDropNewest
	}
	return &p
}

// publishOptions turns the persisted settings into the session's.
func (s *spec) publishOptions() session.PublishOptions {
	o := session.PublishOptions{Topic: s.Topic}
	if s.Publish == nil {
		return o
	}
	p := s.Publish
	o.BatchMaxFrames, o.BatchMaxBytes = p.BatchMaxFrames, p.BatchMaxBytes
	o.BatchMaxDelay = time.Duration(p.BatchMaxDelayMS) * time.Millisecond
	o.IncludeReplies = p.IncludeReplies
	switch p.Overflow {
	case OverflowDropOldest:
		o.Overflow = session.DropOldest
	case OverflowBackpressure:
		o.Overflow = session.Backpressure
	}
	return o
}

// SendRaw writes a message without waiting for a reply. See [ConnectionMethodSendRaw].
func (c *Connection) SendRaw(ctx context.Context, in *SendArgs) (*Reply, error) {
	sess, e := c.held(ctx)
	if e != nil {
		return &Reply{Error: e}, nil
	}
	f := in.frame()
	f.Rate = in.inTurnRateMode()
	if err := sess.SendRaw(ctx, f); err != nil {
		return &Reply{Error: SessionError(err)}, nil
	}
	return &Reply{}, nil
}

// Send writes a message and waits for the reply inside the actor's turn.
// See [ConnectionMethodSend].
func (c *Connection) Send(ctx context.Context, in *SendArgs) (*SendReply, error) {
	sess, e := c.held(ctx)
	if e != nil {
		return &SendReply{Reply: Reply{Error: e}}, nil
	}
	timeout := time.Duration(in.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = c.deps.DefaultSendTimeout
	}
	if timeout > c.deps.MaxSendTimeout {
		return &SendReply{Reply: Reply{Error: errorf(CodeInvalidArgument, "timeoutMs %d is above the maximum of %d", in.TimeoutMS, c.deps.MaxSendTimeout.Milliseconds())}}, nil
	}
	out := in.frame()
	out.Rate = in.inTurnRateMode()
	f, err := sess.Send(ctx, out, timeout)
	if err != nil {
		return &SendReply{Reply: Reply{Error: SessionError(err)}}, nil
	}
	return replyOf(f), nil
}

func (in *SendArgs) frame() session.Frame {
	if len(in.BinaryMessage) > 0 {
		return session.Frame{Data: in.BinaryMessage, Binary: true, Rate: in.rateMode()}
	}
	return session.Frame{Data: []byte(in.Message), Rate: in.rateMode()}
}

func replyOf(f session.Frame) *SendReply {
	if f.Binary {
		return &SendReply{BinaryResponse: f.Data, Binary: true}
	}
	return &SendReply{Response: string(f.Data)}
}

func (c *Connection) held(ctx context.Context) (*session.Session, *ErrorInfo) {
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
	var throttled *session.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return throttledError(throttled)
	case errors.Is(err, session.ErrTimeout):
		return errorf(CodeDeadlineExceeded, "no reply from the server within the timeout")
	case errors.Is(err, session.ErrShuttingDown):
		return errorf(CodeUnavailable, "the instance holding the connection is shutting down; retry shortly")
	case errors.Is(err, session.ErrConnecting):
		return errorf(CodeUnavailable, "the connection is reconnecting; retry shortly")
	case errors.Is(err, session.ErrDropped):
		return errorf(CodeUnavailable, "the connection dropped before the reply arrived; retry once it is CONNECTED again")
	case errors.Is(err, session.ErrNotConnected), errors.Is(err, session.ErrClosed):
		return errorf(CodeFailedPrecondition, "the connection is not open (see lastError in List); Disconnect it and Connect again")
	case errors.Is(err, session.ErrTooManyPending):
		return errorf(CodeResourceExhausted, "%v; wait for replies or raise --max-pending-sends", err)
	case errors.Is(err, session.ErrMessageTooLarge):
		return errorf(CodeInvalidArgument, "%v (--max-outbound-message-bytes)", err)
	case errors.Is(err, session.ErrDuplicateID):
		return errorf(CodeAlreadyExists, "%v; use a unique correlation id per Send", err)
	case errors.Is(err, correlation.ErrNoID):
		return errorf(CodeInvalidArgument, "%v", err)
	case errors.Is(err, session.ErrTooManyWatchers):
		return errorf(CodeResourceExhausted, "%v; close a watch first", err)
	case errors.Is(err, session.ErrWatcherSlow):
		return errorf(CodeResourceExhausted, "%v", err)
	case errors.Is(err, session.ErrDisconnected):
		return errorf(CodeNotFound, "%v; a connection with this id would number its frames from 1 again", err)
	case errors.Is(err, session.ErrConnectionEnded):
		return errorf(CodeFailedPrecondition, "%v (see lastError in List)", err)
	case errors.Is(err, session.ErrWatchEnded):
		return errorf(CodeUnavailable, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(CodeDeadlineExceeded, "the call's deadline passed before the reply arrived")
	case errors.Is(err, context.Canceled):
		return errorf(CodeCanceled, "the call was cancelled")
	}
	return errorf(CodeInternal, "%v", err)
}

// NewConnectionFactory returns the factory the actor runtime uses to create connection
// actors. It has no side effects (the SDK calls it once at registration to learn the type).
func NewConnectionFactory(deps *Deps) actor.FactoryContext {
	return func() actor.ServerContext { return &Connection{deps: deps} }
}
