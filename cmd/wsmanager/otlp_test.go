//go:build integration

package main_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/actors/tracing/tracingtest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure that with --otlp-endpoint the service exports its spans to that OTLP receiver: a
// Connect with the caller's traceparent is a server span of the caller's trace, the actor call
// it makes a client span under it, and daprd's callback to the actor host a server span of the
// same trace. The batch delay is an hour, so the spans can only arrive through the flush at
// shutdown: SIGTERM sends what is left.
func TestOTLPExport(t *testing.T) {
	recv := tracingtest.NewReceiver(t)
	ws := sessiontest.NewServer(t, time.Hour)
	c := newCluster(t)
	c.extraArgs = []string{"--otlp-endpoint", recv.Addr, "--otlp-insecure"}
	c.extraEnv = []string{"OTEL_BSP_SCHEDULE_DELAY=3600000"}
	in := c.start("otlp")

	const trace, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var hdr metadata.MD
	resp, err := in.client.Connect(metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+trace+"-"+callerSpan+"-01"),
		&pb.ConnectRequest{Url: ws.URL("/echo")}, grpc.Header(&hdr))
	require.NoError(t, err)
	require.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus())
	require.NotEmpty(t, hdr.Get("traceparent"))
	assert.Contains(t, hdr.Get("traceparent")[0], trace, "the caller gets its trace back")
	assert.Empty(t, recv.Spans(), "nothing is sent before the batch delay or the shutdown")

	in.svc.Stop(20 * time.Second)
	wctx, wcancel := context.WithTimeout(context.Background(), waitFor)
	defer wcancel()
	inTrace := func(name string, kind tracepb.Span_SpanKind) func(tracingtest.Span) bool {
		return func(s tracingtest.Span) bool {
			return s.TraceID() == trace && s.GetName() == name && s.GetKind() == kind
		}
	}
	api, ok := recv.Wait(wctx, inTrace("websocketmanager.v1.WebSocketManager/Connect", tracepb.Span_SPAN_KIND_SERVER))
	require.True(t, ok, "the Connect's server span is exported at shutdown; received: %v", spanNames(recv.Spans()))
	assert.Equal(t, callerSpan, api.ParentID(), "a child of the caller's span")
	assert.Equal(t, "websocketmanager", api.Resource["service.name"])
	assert.Equal(t, in.id, api.Resource["service.instance.id"])
	call, ok := recv.Wait(wctx, inTrace("actor WebSocketConnection/Connect", tracepb.Span_SPAN_KIND_CLIENT))
	require.True(t, ok, "the actor call's client span; received: %v", spanNames(recv.Spans()))
	assert.Equal(t, api.SpanID(), call.ParentID())
	_, ok = recv.Wait(wctx, inTrace("actor WebSocketConnection/Connect", tracepb.Span_SPAN_KIND_SERVER))
	assert.True(t, ok, "daprd's callback to the actor host continues the trace; received: %v", spanNames(recv.Spans()))
	assert.NotContains(t, in.svc.Log(), "span export failed")
}

func spanNames(spans []tracingtest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.TraceID()+" "+s.GetKind().String()+" "+s.GetName())
	}
	return out
}
