package service

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure a caller who cancels a Send waiting on a socket this instance holds gets CANCELED
// from the service (not DEADLINE_EXCEEDED: nothing timed out), in its log and its metrics.
// The path is the real one minus Dapr: the API's interceptors, the facade, the router and a
// session on a real WebSocket server that never answers.
func TestCancelledLocalSendIsCanceled(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour) // /stream pushes nothing within the test
	reg := session.NewRegistry(session.DefaultConfig(), nil, nil, "instance-1", zap.NewNop())
	reg.Start()
	t.Cleanup(func() { reg.Shutdown(context.Background()) })
	_, err := reg.Open(testCtx(t), session.Spec{ID: "c1", URL: ws.URL("/stream")}, false)
	require.NoError(t, err)
	// No actor client: a connection held here is sent to without one.
	svc := New(DefaultConfig(), actors.NewRouter(nil, reg, "instance-1"), zap.NewNop())
	e := serve(t, nil, func(gs *grpc.Server) { pb.RegisterWebSocketManagerServer(gs, svc) })
	client := pb.NewWebSocketManagerClient(e.conn)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := client.Send(ctx, &pb.SendRequest{Id: "c1", Message: "never answered", TimeoutMs: 60_000})
		done <- err
	}()
	require.Eventually(t, func() bool { return len(ws.Received()) == 1 }, 10*time.Second, 5*time.Millisecond,
		"the Send reached the server")
	cancel()
	select {
	case err := <-done:
		assert.Equal(t, codes.Canceled, status.Code(err), "%v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled Send did not return")
	}

	// What the service answered (the caller's own gRPC says CANCELED whatever it is).
	var logged []string
	require.Eventually(t, func() bool {
		logged = logged[:0]
		for _, l := range e.logs.FilterMessage("rpc failed").FilterField(zap.String(logkey.GRPCMethod, pb.WebSocketManager_Send_FullMethodName)).All() {
			logged = append(logged, l.ContextMap()[logkey.GRPCCode].(string)+": "+l.ContextMap()["message"].(string))
		}
		return len(logged) > 0
	}, 10*time.Second, 5*time.Millisecond, "the Send's end is logged")
	assert.Equal(t, []string{"Canceled: the call was cancelled"}, logged)
	got := e.scrape(t)
	assert.Equal(t, "1", got[`wsmanager_sends_total{outcome="Canceled"}`])
	assert.Equal(t, "1", got[`wsmanager_api_requests_total{code="Canceled",method="Send"}`])
	assert.Empty(t, got[`wsmanager_sends_total{outcome="DeadlineExceeded"}`])
}
