package service

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// forwardedKey marks a call one instance forwarded to the instance that holds the socket.
const forwardedKey = "x-wsm-forwarded"

// isForwarded reports whether the incoming call was forwarded by another instance.
func isForwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// peers sends Sends and SendRaws straight to the instance that holds a connection's socket,
// over one gRPC client connection per instance address.
type peers struct {
	token string                           // bearer token for other instances' APIs, if they need one
	creds credentials.TransportCredentials // nil: plaintext

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (p *peers) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[addr]; c != nil {
		return c, nil
	}
	creds := p.creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peers) client(addr string) (pb.WebSocketManagerClient, error) {
	c, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewWebSocketManagerClient(c), nil
}

// Held implements [actors.HeldChecker] over the peer API of the instance at addr.
func (p *peers) Held(ctx context.Context, addr string, ids []string) ([]string, error) {
	c, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	r, err := pb.NewWebSocketManagerPeerClient(c).Held(bearer(ctx, p.token), &pb.HeldRequest{Ids: ids})
	if err != nil {
		return nil, err
	}
	return r.GetHeld(), nil
}

// Holder says whether this instance holds a connection's socket.
type Holder interface {
	Holds(id string) bool
}

// Peer serves the instance-to-instance API (WebSocketManagerPeer).
type Peer struct {
	pb.UnimplementedWebSocketManagerPeerServer
	holder Holder
}

// NewPeer returns the peer API over this instance's sockets.
func NewPeer(h Holder) *Peer { return &Peer{holder: h} }

// Held returns the requested ids whose socket this instance holds.
func (p *Peer) Held(_ context.Context, in *pb.HeldRequest) (*pb.HeldResponse, error) {
	if len(in.GetIds()) > maxHeldIDs {
		return nil, status.Errorf(codes.InvalidArgument, "at most %d ids per call", maxHeldIDs)
	}
	out := &pb.HeldResponse{}
	for _, id := range in.GetIds() {
		if p.holder.Holds(id) {
			out.Held = append(out.Held, id)
		}
	}
	return out, nil
}

// maxHeldIDs bounds one Held call (a watchdog round asks about at most the whole directory).
const maxHeldIDs = 1 << 20

// forwardCtx marks a call as forwarded and carries this instance's token.
func (p *peers) forwardCtx(ctx context.Context) context.Context {
	return bearer(metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"), p.token)
}

// retryViaActor reports whether a forwarded call failed because the socket was not there (any
// more) or the instance could not be reached: then the actor decides.
func retryViaActor(err error) bool {
	c := status.Code(err)
	return c == codes.Aborted || c == codes.Unavailable
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
