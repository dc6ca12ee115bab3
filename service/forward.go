package service

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (p *peers) client(addr string) (pb.WebSocketManagerClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[addr]; c != nil {
		return pb.NewWebSocketManagerClient(c), nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	p.conns[addr] = c
	return pb.NewWebSocketManagerClient(c), nil
}

func forwardCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
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
