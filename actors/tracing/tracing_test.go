package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/websocketmanager/websocketmanager/actors/tracing/tracingtest"
)

const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{callerParent, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{" " + callerParent + " ", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		sc, ok := Parse(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		if ok {
			assert.Equal(t, callerTrace, sc.TraceID().String())
		}
	}
}

// Ensure the trace of an incoming call is continued on outgoing calls (traceparent and
// tracestate as the caller sent them when no span is recorded), and one is started when the
// caller sent none.
func TestPropagation(t *testing.T) {
	tp := noop.NewTracerProvider()
	in := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", callerParent, "tracestate", "v=1"))
	ctx, span := StartRPC(in, tp, "/websocketmanager.v1.WebSocketManager/Send")
	defer span.End()
	md, _ := metadata.FromOutgoingContext(ctx)
	assert.Equal(t, []string{callerParent}, md.Get("traceparent"))
	assert.Equal(t, []string{"v=1"}, md.Get("tracestate"))
	assert.Equal(t, callerParent, Traceparent(ctx), "the caller gets its trace back")
	assert.Equal(t, callerTrace, TraceID(ctx))

	cctx, cspan := StartClient(ctx, "actor X/y")
	cspan.End()
	md, _ = metadata.FromOutgoingContext(cctx)
	assert.Equal(t, []string{callerParent}, md.Get("traceparent"), "without a recorder, a client call carries the same context")

	fresh, span2 := StartServer(context.Background(), tp, "call", "", "")
	defer span2.End()
	_, ok := Parse(Traceparent(fresh))
	assert.True(t, ok, "a started trace is valid: %s", Traceparent(fresh))
	other, span3 := StartServer(context.Background(), tp, "call", "garbage", "")
	defer span3.End()
	assert.NotEqual(t, TraceID(fresh), TraceID(other), "each started trace is new")
	assert.Equal(t, "trace_id", Field(fresh).Key)
	assert.Equal(t, "", Field(context.Background()).Key, "no trace, no field")
}

// Ensure that with an exporter, an API call and the actor call it makes are spans of the
// caller's trace, sent to the OTLP receiver: the server span a child of the caller's span, the
// client span a child of the server span, and the client span's context is what the callee
// receives.
func TestExportOTLP(t *testing.T) {
	recv := tracingtest.NewReceiver(t)
	exp, err := NewExporter(context.Background(), ExportConfig{Endpoint: recv.Addr, Insecure: true, ServiceName: "websocketmanager", InstanceID: "i-1"})
	require.NoError(t, err)
	tp := exp.TracerProvider()

	in := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", callerParent))
	ctx, server := StartRPC(in, tp, "/websocketmanager.v1.WebSocketManager/Connect")
	assert.True(t, server.IsRecording())
	assert.Equal(t, callerTrace, TraceID(ctx))
	cctx, client := StartClient(ctx, "actor WebSocketConnection/connect")
	md, _ := metadata.FromOutgoingContext(cctx)
	assert.Equal(t, []string{Format(client.SpanContext())}, md.Get("traceparent"), "the callee continues from the client span")
	End(client, nil)
	EndRPC(server, grpccodes.Unavailable)

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, exp.Shutdown(sctx), "shutdown flushes the batch")
	spans := map[string]tracingtest.Span{}
	for _, s := range recv.Spans() {
		spans[s.GetName()] = s
	}
	srv, ok := spans["websocketmanager.v1.WebSocketManager/Connect"]
	require.True(t, ok, "server span exported: %v", spans)
	cli, ok := spans["actor WebSocketConnection/connect"]
	require.True(t, ok, "client span exported: %v", spans)
	assert.Equal(t, callerTrace, srv.TraceID())
	assert.Equal(t, callerSpan, srv.ParentID())
	assert.Equal(t, tracepb.Span_SPAN_KIND_SERVER, srv.GetKind())
	assert.Equal(t, "Connect", srv.Attr("rpc.method"))
	assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, srv.GetStatus().GetCode(), "UNAVAILABLE is a server error")
	assert.Equal(t, callerTrace, cli.TraceID())
	assert.Equal(t, srv.SpanID(), cli.ParentID())
	assert.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, cli.GetKind())
	assert.Equal(t, "websocketmanager", srv.Resource["service.name"])
	assert.Equal(t, "i-1", srv.Resource["service.instance.id"])

	// A trace the service starts itself is recorded too (sampled), as a root span.
	exp2, err := NewExporter(context.Background(), ExportConfig{Endpoint: recv.Addr, Insecure: true})
	require.NoError(t, err)
	rctx, root := StartServer(context.Background(), exp2.TracerProvider(), "root", "", "")
	root.End()
	require.NoError(t, exp2.Shutdown(sctx))
	got, ok := recv.Wait(sctx, func(s tracingtest.Span) bool { return s.GetName() == "root" })
	require.True(t, ok)
	assert.Equal(t, TraceID(rctx), got.TraceID())
	assert.Empty(t, got.ParentID())
}

func TestExportConfig(t *testing.T) {
	exp, err := NewExporter(context.Background(), ExportConfig{})
	require.NoError(t, err)
	assert.Nil(t, exp, "no endpoint, no exporter")
	assert.NoError(t, exp.Shutdown(context.Background()), "nil-safe")
	_, err = NewExporter(context.Background(), ExportConfig{Endpoint: "ftp://collector:4317"})
	assert.Error(t, err)
	exp, err = NewExporter(context.Background(), ExportConfig{Endpoint: "http://127.0.0.1:1"})
	require.NoError(t, err, "a URL is accepted; no connection is made yet")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.NoError(t, exp.Shutdown(ctx), "nothing recorded, nothing to send")
}

// An unreachable receiver costs spans, never calls, and a bounded shutdown.
func TestExportShutdownIsBounded(t *testing.T) {
	exp, err := NewExporter(context.Background(), ExportConfig{Endpoint: "127.0.0.1:1", Insecure: true})
	require.NoError(t, err)
	_, span := StartServer(context.Background(), exp.TracerProvider(), "lost", "", "")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = exp.Shutdown(ctx)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// FuzzParse: any header value either parses into a context that formats back to a header
// with the same ids, or is refused; and a call with any header value gets a valid trace.
// Never a panic.
func FuzzParse(f *testing.F) {
	f.Add(callerParent)
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Add("")
	tp := noop.NewTracerProvider()
	f.Fuzz(func(t *testing.T, v string) {
		ctx, span := StartServer(context.Background(), tp, "call", v, v)
		defer span.End()
		if _, ok := Parse(Traceparent(ctx)); !ok {
			t.Fatalf("header %q: the call's trace %q is not valid", v, Traceparent(ctx))
		}
		sc, ok := Parse(v)
		if !ok {
			return
		}
		back, ok := Parse(Format(sc))
		if !ok || back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() {
			t.Fatalf("%q parsed, but %q does not give it back", v, Format(sc))
		}
		if trace.SpanContextFromContext(ctx).TraceID() != sc.TraceID() {
			t.Fatalf("%q: the call does not continue the caller's trace", v)
		}
	})
}
