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

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// watchHolder is a holder instance whose WatchFrames ends at once with err.
type watchHolder struct {
	pb.UnimplementedWebSocketManagerServer
	err error
}

func (h *watchHolder) WatchFrames(*pb.WatchFramesRequest, pb.WebSocketManager_WatchFramesServer) error {
	return h.err
}

// fakeFrameStream is the caller's side of a WatchFrames stream, in process.
type fakeFrameStream struct {
	grpc.ServerStream
	ctx     context.Context
	mu      sync.Mutex
	trailer metadata.MD
	sent    []*pb.Frame
}

func (f *fakeFrameStream) Context() context.Context { return f.ctx }
func (f *fakeFrameStream) SetTrailer(md metadata.MD) {
	f.mu.Lock()
	f.trailer = metadata.Join(f.trailer, md)
	f.mu.Unlock()
}
func (f *fakeFrameStream) Send(m *pb.Frame) error       { f.sent = append(f.sent, m); return nil }
func (f *fakeFrameStream) SendHeader(metadata.MD) error { return nil }

// Ensure the relay passes the holder's own answers through (a watcher limit, a refused peer
// proof) without a resume trailer: only a holder that went away is UNAVAILABLE "watch again",
// which clients retry.
func TestRelayKeepsHolderStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"watcher limit at the holder", status.Error(codes.ResourceExhausted, "too many frame watchers")},
		{"holder refuses the peer proof", status.Error(codes.Unauthenticated, "the peer proof is not valid")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			srv := grpc.NewServer()
			pb.RegisterWebSocketManagerServer(srv, &watchHolder{err: tt.err})
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(srv.Stop)

			cfg := DefaultConfig()
			cfg.PeerKeys = NewPeerKeys([]string{"k"})
			s := New(cfg, nil, zap.NewNop())
			defer s.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			from := uint64(7)
			fs := &fakeFrameStream{ctx: ctx}
			err = s.relayFrames(ctx, l.Addr().String(), &pb.WatchFramesRequest{Id: "c1", FromSequence: &from}, fs)
			assert.Equal(t, status.Code(tt.err), status.Code(err), "the holder's status, not UNAVAILABLE: %v", err)
			assert.Empty(t, fs.trailer.Get(ResumeTrailer), "no resume trailer where watching again cannot help")
		})
	}
}
