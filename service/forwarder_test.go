package service

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/route"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// holderInstance is another instance's API on loopback: it answers forwarded calls with err
// (or a reply) and records what arrived.
type holderInstance struct {
	pb.UnimplementedWebSocketManagerServer
	err error

	mu  sync.Mutex
	md  metadata.MD
	req *pb.SendRequest
	raw int
}

func (h *holderInstance) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	h.mu.Lock()
	h.md, _ = metadata.FromIncomingContext(ctx)
	h.req = req
	h.mu.Unlock()
	if h.err != nil {
		return nil, h.err
	}
	return &pb.SendResponse{Response: "re:" + req.GetMessage()}, nil
}

func (h *holderInstance) SendRaw(context.Context, *pb.SendRawRequest) (*pb.SendRawResponse, error) {
	h.mu.Lock()
	h.raw++
	h.mu.Unlock()
	if h.err != nil {
		return nil, h.err
	}
	return &pb.SendRawResponse{}, nil
}

func startHolder(t *testing.T, err error) (*holderInstance, string) {
	t.Helper()
	l, lerr := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, lerr)
	h := &holderInstance{err: err}
	srv := grpc.NewServer()
	pb.RegisterWebSocketManagerServer(srv, h)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return h, l.Addr().String()
}

// Ensure the forwarder decides only how a forwarded call ended: the holder's answer is final
// and passed on unchanged (its status, not one remade here); a call that did not reach the
// socket there is Missed, so that the router lets the actor decide.
func TestForwarder(t *testing.T) {
	tests := []struct {
		name      string
		holderErr error
		want      route.Forwarded
		wantCode  codes.Code
	}{
		{"holder answers", nil, route.Answered, codes.OK},
		{"holder's NOT_FOUND is final and unchanged", status.Error(codes.NotFound, "connection \"c1\" not found"), route.Answered, codes.NotFound},
		{"holder's DEADLINE_EXCEEDED is final", status.Error(codes.DeadlineExceeded, "no reply"), route.Answered, codes.DeadlineExceeded},
		{"holder no longer holds it (ABORTED): missed", status.Error(codes.Aborted, "not held"), route.Missed, codes.Aborted},
		{"holder stopping (UNAVAILABLE): missed", status.Error(codes.Unavailable, "shutting down"), route.Missed, codes.Unavailable},
		{"holder refuses this instance's peer proof: missed", status.Error(codes.Unauthenticated, "the peer proof is not valid"), route.Missed, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, addr := startHolder(t, tt.holderErr)
			cfg := DefaultConfig()
			cfg.PeerKeys = NewPeerKeys([]string{"k"})
			s := New(cfg, nil, zap.NewNop())
			defer s.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			reply, got, err := s.Forwarder().ForwardSend(ctx, addr, "c1", actors.SendArgs{Message: "m"}, 1500*time.Millisecond)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantCode, status.Code(err))
			if tt.holderErr != nil {
				assert.Equal(t, status.Convert(tt.holderErr).Message(), status.Convert(err).Message(), "the holder's message as it is")
			} else {
				assert.Equal(t, "re:m", reply.Response)
			}
			h.mu.Lock()
			assert.Equal(t, int32(1500), h.req.GetTimeoutMs(), "the resolved timeout travels")
			assert.Equal(t, "c1", h.req.GetId())
			assert.NotEmpty(t, h.md.Get(forwardedKey), "marked as forwarded")
			assert.NotEmpty(t, h.md.Get(peerProofKey), "with a peer proof")
			h.mu.Unlock()

			gotRaw, err := s.Forwarder().ForwardSendRaw(ctx, addr, "c1", actors.SendArgs{Message: "m"})
			assert.Equal(t, tt.want, gotRaw)
			assert.Equal(t, tt.wantCode, status.Code(err))
		})
	}
}

// Ensure an address this instance may not call is Missed without any call: no peer key, or
// the peer policy refuses it.
func TestForwarderMissesWithoutCalling(t *testing.T) {
	h, addr := startHolder(t, nil)
	for name, cfg := range map[string]func(*Config){
		"no peer key": func(*Config) {},
		"refused by the policy": func(c *Config) {
			c.PeerKeys = NewPeerKeys([]string{"k"})
			p := testPeers(t, "10.0.0.0/8").policy
			c.PeerPolicy = &p
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			cfg(&c)
			s := New(c, nil, zap.NewNop())
			defer s.Close()
			_, got, err := s.Forwarder().ForwardSend(t.Context(), addr, "c1", actors.SendArgs{Message: "m"}, time.Second)
			assert.Equal(t, route.Missed, got)
			assert.Error(t, err)
			got, err = s.Forwarder().ForwardSendRaw(t.Context(), addr, "c1", actors.SendArgs{Message: "m"})
			assert.Equal(t, route.Missed, got)
			assert.Error(t, err)
		})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Nil(t, h.req, "nothing reached the holder")
	assert.Zero(t, h.raw)
}
