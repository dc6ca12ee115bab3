package service

import (
	"context"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
	"github.com/websocketmanager/websocketmanager/actors/route"
	"github.com/websocketmanager/websocketmanager/actors/session"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Connections is what the facade needs from the actor layer ([actors.Router] implements it).
type Connections interface {
	Connect(ctx context.Context, id string, in actors.ConnectArgs) (actors.ConnectionInfo, error)
	Disconnect(ctx context.Context, id string) error
	// List returns the connections q selects and the next page's token ([actors.Router.List]).
	List(ctx context.Context, q actors.ListQuery) ([]actors.ConnectionInfo, string, error)
	StartPublish(ctx context.Context, id string, args actors.PublishArgs) error
	StopPublish(ctx context.Context, id string) error
	// Send and SendRaw route the call themselves ([actors.Router] asks [route.Next]); a call
	// forwarded to another instance returns that instance's status as is.
	Send(ctx context.Context, id string, in actors.SendArgs, timeout time.Duration, scope route.Scope) (actors.SendReply, error)
	SendRaw(ctx context.Context, id string, in actors.SendArgs, scope route.Scope) error
	// WatchFrames follows a connection's frames: a watch here, or the address of the instance
	// holding it ([actors.Router.WatchFrames]).
	WatchFrames(ctx context.Context, id string, from *uint64, includeReplies, onlyHere bool) (*session.Watcher, string, error)
	// Instances returns the gRPC addresses of the instances holding connections.
	Instances(ctx context.Context) ([]string, error)
}

// Config holds the facade's defaults and limits.
type Config struct {
	// DefaultSendTimeout applies when a Send has timeout_ms ≤ 0. Default 10s.
	DefaultSendTimeout time.Duration
	// MaxSendTimeout is the largest timeout_ms accepted. Default 5m.
	MaxSendTimeout time.Duration
	// PeerKeys prove this instance to other instances (forwarded Sends, the failover
	// watchdog's Held, event following); nil or empty: no calls to other instances.
	// PeerCreds is their transport security (nil: plaintext).
	PeerKeys  *PeerKeys
	PeerCreds credentials.TransportCredentials
	// PeerPolicy decides which instance addresses from the directory may be dialed; nil:
	// PeerPolicy(nil, nil). PeerRefused, if set, counts the addresses it refused.
	PeerPolicy  *netguard.Policy
	PeerRefused func()
	// MaxWatchStreams and MaxWatchStreamsPerCaller bound the WatchEvents streams this
	// instance serves (streams other instances open to follow it are not counted); 0: no limit.
	MaxWatchStreams          int
	MaxWatchStreamsPerCaller int
	// SelfAddr is this instance's advertise address (a watch does not follow itself).
	SelfAddr string
	// Events feeds WatchEvents; nil answers it with UNIMPLEMENTED.
	Events *EventHub
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{DefaultSendTimeout: 10 * time.Second, MaxSendTimeout: 5 * time.Minute,
		MaxWatchStreams: 1024, MaxWatchStreamsPerCaller: 64}
}

// Server implements the WebSocketManager gRPC service.
type Server struct {
	pb.UnimplementedWebSocketManagerServer
	cfg   Config
	conns Connections
	log   *zap.Logger
	newID func() string
	peers peers
	hub   *EventHub
	watch *streamLimiter
}

// HeldChecker returns the client of other instances' peer API (for the failover watchdog);
// it shares the server's connections to them.
func (s *Server) HeldChecker() actors.HeldChecker { return &s.peers }

// HeldLister returns the client of other instances' ListHeld (for List); it shares the
// server's connections to them.
func (s *Server) HeldLister() actors.PeerLister { return &s.peers }

// Close releases the connections to other instances.
func (s *Server) Close() { s.peers.close() }

// scopeOf is where this call may be answered: anywhere, or — when another instance forwarded
// it here (proved by its peer proof, see isForwarded) — only through this instance's socket.
func scopeOf(ctx context.Context) route.Scope {
	if isForwarded(ctx) {
		return route.HereOnly
	}
	return route.Anywhere
}

var _ pb.WebSocketManagerServer = (*Server)(nil)

// New returns the facade over conns.
func New(cfg Config, conns Connections, log *zap.Logger) *Server {
	policy := cfg.PeerPolicy
	if policy == nil {
		p, _ := PeerPolicy(nil, nil) // the default entries parse
		policy = &p
	}
	return &Server{cfg: cfg, conns: conns, log: log, newID: uuid.NewString, hub: cfg.Events,
		peers: peers{keys: cfg.PeerKeys, creds: cfg.PeerCreds, policy: *policy, log: log, refusedHook: cfg.PeerRefused},
		watch: newStreamLimiter(cfg.MaxWatchStreams, cfg.MaxWatchStreamsPerCaller)}
}

// invalid refuses a request; like every error of the handlers, it becomes a gRPC status at
// the boundary (StatusUnary).
func invalid(format string, args ...any) error {
	return actors.Errorf(actors.CodeInvalidArgument, format, args...)
}

// requireID checks the id of every call on an existing connection by the rule Connect
// applies, so that no malformed id reaches an actor.
func requireID(id string) error {
	if id == "" {
		return invalid("id is required: the connection_id returned by Connect")
	}
	if e := actors.ValidateID(id); e != nil {
		return e.Err()
	}
	return nil
}

// Connect opens a connection and returns its id once the first handshake succeeded.
func (s *Server) Connect(ctx context.Context, req *pb.ConnectRequest) (*pb.ConnectResponse, error) {
	args := connectArgs(req)
	if e := args.Validate(); e != nil {
		return nil, e.Err()
	}
	id := req.GetConnectionId()
	if id == "" {
		id = s.newID()
	} else if e := actors.ValidateID(id); e != nil {
		return nil, e.Err()
	}
	info, err := s.conns.Connect(ctx, id, args)
	if err != nil {
		return nil, err
	}
	return &pb.ConnectResponse{ConnectionId: id, Status: statusOf(info.Status)}, nil
}

// List returns every connection of every instance, optionally filtered by tags and status,
// whole (oldest first) or in pages in id order.
func (s *Server) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	status, err := statusName(req.GetStatus())
	if err != nil {
		return nil, err
	}
	infos, next, err := s.conns.List(ctx, actors.ListQuery{Tags: req.GetTags(), Status: status,
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	resp := &pb.ListResponse{Connections: make([]*pb.WebSocketConnection, 0, len(infos)), NextPageToken: next}
	for _, in := range infos {
		resp.Connections = append(resp.Connections, connectionOf(in))
	}
	return resp, nil
}

// Disconnect closes a connection with a normal close frame and forgets it.
func (s *Server) Disconnect(ctx context.Context, req *pb.DisconnectRequest) (*pb.DisconnectResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.conns.Disconnect(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &pb.DisconnectResponse{}, nil
}

// StartPublish publishes the connection's inbound frames to a topic.
func (s *Server) StartPublish(ctx context.Context, req *pb.StartPublishRequest) (*pb.StartPublishResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	if e := actors.ValidateTopic(req.GetTopic()); e != nil {
		return nil, e.Err()
	}
	args := publishArgs(req)
	if e := actors.ValidatePublish(args.PublishSettings); e != nil {
		return nil, e.Err()
	}
	if err := s.conns.StartPublish(ctx, req.GetId(), args); err != nil {
		return nil, err
	}
	return &pb.StartPublishResponse{}, nil
}

// StopPublish stops publishing the connection's frames. It is idempotent.
func (s *Server) StopPublish(ctx context.Context, req *pb.StopPublishRequest) (*pb.StopPublishResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.conns.StopPublish(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &pb.StopPublishResponse{}, nil
}

func sendArgs(msg string, binary []byte) (actors.SendArgs, error) {
	if len(binary) > 0 && msg != "" {
		return actors.SendArgs{}, invalid("give either message (a text frame) or binary_message (a binary frame), not both")
	}
	return actors.SendArgs{Message: msg, BinaryMessage: binary}, nil
}

// Send writes a message and waits for the reply.
func (s *Server) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	timeout, err := s.sendTimeout(req.GetTimeoutMs())
	if err != nil {
		return nil, err
	}
	args, err := sendArgs(req.GetMessage(), req.GetBinaryMessage())
	if err != nil {
		return nil, err
	}
	args.FailFast = req.GetFailFast()
	r, err := s.conns.Send(ctx, req.GetId(), args, timeout, scopeOf(ctx))
	if err != nil {
		return nil, err
	}
	return &pb.SendResponse{Response: r.Response, BinaryResponse: r.BinaryResponse, Binary: r.Binary}, nil
}

func (s *Server) sendTimeout(ms int32) (time.Duration, error) {
	if ms <= 0 {
		return s.cfg.DefaultSendTimeout, nil
	}
	d := time.Duration(ms) * time.Millisecond
	if d > s.cfg.MaxSendTimeout {
		return 0, invalid("timeout_ms %d is above the maximum of %d", ms, s.cfg.MaxSendTimeout.Milliseconds())
	}
	return d, nil
}

// SendRaw writes a message without waiting for a reply.
func (s *Server) SendRaw(ctx context.Context, req *pb.SendRawRequest) (*pb.SendRawResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	args, err := sendArgs(req.GetMessage(), req.GetBinaryMessage())
	if err != nil {
		return nil, err
	}
	args.FailFast = req.GetFailFast()
	if err := s.conns.SendRaw(ctx, req.GetId(), args, scopeOf(ctx)); err != nil {
		return nil, err
	}
	return &pb.SendRawResponse{}, nil
}

// forwardSend sends req to the instance at addr; its answer (a gRPC status) is returned as is.
// An address this instance may not call (no peer key, refused by the peer policy) answers
// UNAVAILABLE without any call: the actor's own Send decides then.
func (s *Server) forwardSend(ctx context.Context, addr string, req *pb.SendRequest) (*pb.SendResponse, error) {
	c, err := s.peers.client(addr)
	if err != nil {
		return nil, actors.Errorf(actors.CodeUnavailable, "%v", err)
	}
	return c.Send(s.peers.forwardCtx(ctx, addr), req)
}

func (s *Server) forwardSendRaw(ctx context.Context, addr string, req *pb.SendRawRequest) (*pb.SendRawResponse, error) {
	c, err := s.peers.client(addr)
	if err != nil {
		return nil, actors.Errorf(actors.CodeUnavailable, "%v", err)
	}
	return c.SendRaw(s.peers.forwardCtx(ctx, addr), req)
}

// forwardFailed logs a forwarded call that did not reach the socket (the actor path follows);
// a peer that refuses this instance's proof is a misconfiguration worth a warning.
func (s *Server) forwardFailed(addr string, err error) {
	if peerRefusal(err) {
		s.log.Warn("another instance refused this instance's peer proof; sending through the actor instead (instances must share a peer key)",
			zap.String("address", addr), zap.Error(err))
		return
	}
	s.log.Debug("forwarded call did not reach the socket; sending through the actor", zap.String("address", addr), zap.Error(err))
}
