package service

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/credentials"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// fullInfo sets every field of a ConnectionInfo that List shows.
func fullInfo() actors.ConnectionInfo {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 123, time.UTC)
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
	return actors.ConnectionInfo{ID: "c1", URL: "wss://example.com/x", AutoReconnect: true, Status: actors.StatusConnected,
		InstanceID: "i1", Topic: "t", CreatedAt: t0, LastError: "e", ReconnectCount: 3, ConnectedSince: &t1,
		Tags: map[string]string{"a": "b"}, Subprotocol: "p", Correlation: actors.CorrelationArgs{Mode: "json_field", Field: "id"},
		DroppedFrames: 5, DroppedFramesByReason: map[string]uint64{"buffer_full": 5},
		Publish:            &actors.PublishSettings{BatchMaxFrames: 2, BatchMaxBytes: 3, BatchMaxDelayMS: 4, IncludeReplies: true, Overflow: actors.OverflowBackpressure},
		PublishPausedSince: &t2, PublishPausedMS: 7, SendRate: &actors.SendRateArgs{PerSecond: 1.5, Burst: 2}, ThrottledSends: 8,
		Compression: true, DecodeRefused: 9, EgressProxy: "corp", SecretHeaderNames: []string{"X-Key"},
		TLS: &credentials.TLS{CA: &credentials.Material{Secret: &credentials.SecretRef{Store: "s", Key: "k", Field: "f"}},
			ClientCert: &credentials.Material{File: "c.pem"}, ClientKey: &credentials.Material{}, ServerName: "example.com", MinVersion: "1.3"}}
}

// Ensure a connection described by another instance (ListHeld) reads back exactly as the
// instance described it: List shows the same whichever instance holds the socket.
func TestInfoOfRoundTrip(t *testing.T) {
	for _, in := range []actors.ConnectionInfo{fullInfo(), {ID: "bare", Status: actors.StatusConnecting, LastError: actors.UnheldReason}} {
		want := connectionOf(in)
		got := connectionOf(infoOf(want))
		assert.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
	}
}

// Ensure the status filter: UNKNOWN is any status, the others their name, an undefined
// number INVALID_ARGUMENT.
func TestStatusName(t *testing.T) {
	tests := []struct {
		in   pb.ConnectionStatus
		want string
		code actors.Code
	}{
		{pb.ConnectionStatus_UNKNOWN, "", ""},
		{pb.ConnectionStatus_CONNECTING, actors.StatusConnecting, ""},
		{pb.ConnectionStatus_CONNECTED, actors.StatusConnected, ""},
		{pb.ConnectionStatus_DISCONNECTED, actors.StatusDisconnected, ""},
		{pb.ConnectionStatus_ERROR, actors.StatusError, ""},
		{pb.ConnectionStatus(42), "", actors.CodeInvalidArgument},
	}
	for _, tt := range tests {
		got, err := statusName(tt.in)
		assert.Equal(t, tt.want, got)
		assert.Equal(t, tt.code, actors.CodeOf(err))
	}
}

type fakeHolder struct{ q actors.HeldQuery }

func (f *fakeHolder) Holds(string) bool { return false }
func (f *fakeHolder) ListHeld(q actors.HeldQuery) ([]actors.ConnectionInfo, bool) {
	f.q = q
	return []actors.ConnectionInfo{fullInfo()}, true
}

// Ensure ListHeld is for other instances only (the peer proof, as Held), answers what the
// holder describes with the query passed on, and that the peer client reads it back; and that
// a dial refused (nothing listens: the instance died) is told apart as ErrInstanceGone.
func TestPeerListHeld(t *testing.T) {
	_, err := NewPeer(&fakeHolder{}).ListHeld(context.Background(), &pb.ListHeldRequest{})
	assert.Equal(t, codes.PermissionDenied, codeFor(err), "without a peer proof")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	keys := NewPeerKeys([]string{"peer-key"})
	auth := &Auth{Tokens: NewTokens([]string{"api"}), Peers: keys, Self: addr}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(StatusUnary(zap.NewNop()), auth.Unary()))
	holder := &fakeHolder{}
	pb.RegisterWebSocketManagerPeerServer(gs, NewPeer(holder))
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)

	policy, err := PeerPolicy(nil, nil)
	require.NoError(t, err)
	p := &peers{keys: keys, policy: policy, log: zap.NewNop()}
	t.Cleanup(p.close)
	ctx := context.Background()
	q := actors.HeldQuery{Tags: map[string]string{"a": "b"}, Status: actors.StatusConnected, After: "b", Limit: 10}
	infos, more, err := p.ListHeld(ctx, addr, q)
	require.NoError(t, err)
	assert.True(t, more)
	assert.Equal(t, q, holder.q)
	require.Len(t, infos, 1)
	assert.True(t, proto.Equal(connectionOf(fullInfo()), connectionOf(infos[0])))

	_, _, err = p.ListHeld(ctx, addr, actors.HeldQuery{Limit: actors.MaxListPageSize + 1})
	assert.Equal(t, codes.InvalidArgument, codeFor(err))
	_, _, err = p.ListHeld(ctx, addr, actors.HeldQuery{})
	require.NoError(t, err)
	assert.Equal(t, actors.MaxListPageSize, holder.q.Limit, "0 asks for a page of the largest size")

	// Another key: refused, and not mistaken for a dead instance.
	other := &peers{keys: NewPeerKeys([]string{"other"}), policy: policy, log: zap.NewNop()}
	t.Cleanup(other.close)
	_, _, err = other.ListHeld(ctx, addr, q)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.ErrorIs(t, err, actors.ErrPeerRefused, "fails the List: a configuration to fix")
	assert.False(t, errors.Is(err, actors.ErrInstanceGone))

	// An address the peer policy refuses is no instance List waits for; without a peer key
	// List cannot ask anyone, which is said as it is.
	_, _, err = p.ListHeld(ctx, "8.8.8.8:5002", q)
	assert.ErrorIs(t, err, actors.ErrInstanceGone)
	nokey := &peers{keys: NewPeerKeys(nil), policy: policy, log: zap.NewNop()}
	_, _, err = nokey.ListHeld(ctx, addr, q)
	assert.ErrorIs(t, err, errNoPeerKey)
	assert.ErrorIs(t, err, actors.ErrPeerRefused)
	assert.False(t, errors.Is(err, actors.ErrInstanceGone))

	// Nothing listens any more.
	gs.Stop()
	_, _, err = p.ListHeld(ctx, addr, q)
	assert.ErrorIs(t, err, actors.ErrInstanceGone, "also when the first call fails on the broken connection")
}
