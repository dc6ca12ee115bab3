package service

import (
	"context"
	"net/url"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/websocketmanager/websocketmanager/actors"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Connections is what the facade needs from the actor layer ([actors.Router] implements it).
type Connections interface {
	Open(ctx context.Context, id string, in actors.OpenArgs) (actors.ConnectionInfo, error)
	Close(ctx context.Context, id string) error
	List(ctx context.Context) ([]actors.ConnectionInfo, error)
	StartPublish(ctx context.Context, id, topic string) error
	StopPublish(ctx context.Context, id string) error
	Send(ctx context.Context, id, msg string, timeout time.Duration) (string, error)
	SendRaw(ctx context.Context, id, msg string) error
}

// Config holds the facade's defaults and limits.
type Config struct {
	// DefaultSendTimeout applies when a Send has timeout_ms ≤ 0. Default 10s.
	DefaultSendTimeout time.Duration
	// MaxSendTimeout is the largest timeout_ms accepted. Default 5m.
	MaxSendTimeout time.Duration
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{DefaultSendTimeout: 10 * time.Second, MaxSendTimeout: 5 * time.Minute}
}

// Server implements the WebSocketManager gRPC service.
type Server struct {
	pb.UnimplementedWebSocketManagerServer
	cfg   Config
	conns Connections
	log   *zap.Logger
	newID func() string
}

var _ pb.WebSocketManagerServer = (*Server)(nil)

// New returns the facade over conns.
func New(cfg Config, conns Connections, log *zap.Logger) *Server {
	return &Server{cfg: cfg, conns: conns, log: log, newID: uuid.NewString}
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// validURL checks that raw is a ws:// or wss:// URL with a host.
func validURL(raw string) error {
	if raw == "" {
		return invalid("url is required, e.g. ws://host:port/path")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("url is not a valid URL: %v", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return invalid("url scheme must be ws or wss, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return invalid("url must name a host, e.g. ws://host:port/path")
	}
	return nil
}

func requireID(id string) error {
	if id == "" {
		return invalid("id is required: the connection_id returned by Connect")
	}
	return nil
}

// Connect opens a connection and returns its id once the handshake succeeded.
func (s *Server) Connect(ctx context.Context, req *pb.ConnectRequest) (*pb.ConnectResponse, error) {
	if err := validURL(req.GetUrl()); err != nil {
		return nil, err
	}
	id := s.newID()
	info, err := s.conns.Open(ctx, id, actors.OpenArgs{
		URL:           req.GetUrl(),
		AutoReconnect: req.GetAutoReconnect(),
		CreatedAt:     time.Now().UTC(),
	})
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &pb.ConnectResponse{ConnectionId: id, Status: statusOf(info.Status)}, nil
}

// List returns every connection of every instance.
func (s *Server) List(ctx context.Context, _ *pb.ListRequest) (*pb.ListResponse, error) {
	infos, err := s.conns.List(ctx)
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	resp := &pb.ListResponse{Connections: make([]*pb.WebSocketConnection, 0, len(infos))}
	for _, in := range infos {
		resp.Connections = append(resp.Connections, &pb.WebSocketConnection{
			Id:         in.ID,
			Url:        in.URL,
			Status:     statusOf(in.Status),
			InstanceId: in.InstanceID,
			Topic:      in.Topic,
			CreatedAt:  timestamppb.New(in.CreatedAt),
		})
	}
	return resp, nil
}

// Disconnect closes a connection with a normal close frame and forgets it.
func (s *Server) Disconnect(ctx context.Context, req *pb.DisconnectRequest) (*pb.DisconnectResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.conns.Close(ctx, req.GetId()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &pb.DisconnectResponse{}, nil
}

// StartPublish publishes the connection's inbound frames to a topic.
func (s *Server) StartPublish(ctx context.Context, req *pb.StartPublishRequest) (*pb.StartPublishResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	if req.GetTopic() == "" {
		return nil, invalid("topic is required")
	}
	if err := s.conns.StartPublish(ctx, req.GetId(), req.GetTopic()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &pb.StartPublishResponse{}, nil
}

// StopPublish stops publishing the connection's frames.
func (s *Server) StopPublish(ctx context.Context, req *pb.StopPublishRequest) (*pb.StopPublishResponse, error) {
	if err := requireID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.conns.StopPublish(ctx, req.GetId()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &pb.StopPublishResponse{}, nil
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
	resp, err := s.conns.Send(ctx, req.GetId(), req.GetMessage(), timeout)
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &pb.SendResponse{Response: resp}, nil
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
	if err := s.conns.SendRaw(ctx, req.GetId(), req.GetMessage()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &pb.SendRawResponse{}, nil
}

func statusOf(name string) pb.ConnectionStatus {
	if v, ok := pb.ConnectionStatus_value[name]; ok {
		return pb.ConnectionStatus(v)
	}
	return pb.ConnectionStatus_UNKNOWN
}
