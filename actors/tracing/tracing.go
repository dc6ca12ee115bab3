// Package tracing owns the W3C trace context of a call and its spans: it continues the trace
// of an incoming gRPC call or HTTP request (or starts one when the caller sent none), carries
// it to the Dapr calls and peer calls the service makes, names it in logs, and, when spans are
// exported (export.go), records a server span per API call and actor host call and a client
// span per actor call and publish.
//
// Parsing and formatting traceparent/tracestate is OpenTelemetry's W3C propagator; the trace
// lives in the context the OpenTelemetry way (trace.SpanContextFromContext). Spans come from
// the process's OpenTelemetry tracer provider: a no-op that only carries the caller's context
// unless [Setup] installed an exporting one, so tracing costs nothing when it is off.
package tracing

import (
	"context"
	"crypto/rand"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// Header names (gRPC metadata keys are the same, lower case).
const (
	ParentHeader = "traceparent"
	StateHeader  = "tracestate"
)

// scope names the tracer (the instrumentation scope of every span the service records).
const scope = "github.com/websocketmanager/websocketmanager"

// propagator reads and writes traceparent and tracestate.
var propagator = propagation.TraceContext{}

// Parse reads a traceparent header value (W3C rules as OpenTelemetry's propagator applies
// them: lower-case hex, no all-zero ids, version ff invalid, a future version may carry more
// fields, version 00 no reserved flags). ok is false for anything invalid.
func Parse(v string) (sc trace.SpanContext, ok bool) {
	sc = trace.SpanContextFromContext(propagator.Extract(context.Background(),
		propagation.MapCarrier{ParentHeader: strings.TrimSpace(v)}))
	return sc, sc.IsValid()
}

// Format writes sc as a traceparent header value ("" for an invalid one).
func Format(sc trace.SpanContext) string {
	c := propagation.MapCarrier{}
	propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c.Get(ParentHeader)
}

// newRoot starts a trace without a span recorder: random ids, not sampled.
func newRoot() trace.SpanContext {
	var cfg trace.SpanContextConfig
	for !cfg.TraceID.IsValid() || !cfg.SpanID.IsValid() {
		_, _ = rand.Read(cfg.TraceID[:])
		_, _ = rand.Read(cfg.SpanID[:])
	}
	return trace.NewSpanContext(cfg)
}

// StartServer starts the server span of an incoming call named name: it continues the trace
// in the parent and state header values (or starts a trace when they hold none), with tp's
// tracer (nil: the process's). The returned context carries the span, and its traceparent in
// the outgoing gRPC metadata, so that every call made with it continues the trace. The caller
// ends the span (End, or [EndRPC]).
func StartServer(ctx context.Context, tp trace.TracerProvider, name, parent, state string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	ctx = propagator.Extract(ctx, propagation.MapCarrier{ParentHeader: strings.TrimSpace(parent), StateHeader: state})
	remote := trace.SpanContextFromContext(ctx).IsValid()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...)}
	if !remote {
		opts = append(opts, trace.WithNewRoot())
	}
	sctx, span := tp.Tracer(scope).Start(ctx, name, opts...)
	if !span.SpanContext().IsValid() {
		// Nothing records spans and the caller sent no trace: start one anyway, so that the
		// logs and the Dapr calls of this call still share an id.
		sctx = trace.ContextWithRemoteSpanContext(ctx, newRoot())
		span = trace.SpanFromContext(sctx)
	}
	return outgoing(sctx), span
}

// StartRPC is [StartServer] for an incoming gRPC call: the trace context is read from the
// call's metadata and the span is named after the method (OpenTelemetry's RPC conventions).
func StartRPC(ctx context.Context, tp trace.TracerProvider, fullMethod string) (context.Context, trace.Span) {
	md, _ := metadata.FromIncomingContext(ctx)
	var parent string
	if v := md.Get(ParentHeader); len(v) > 0 {
		parent = v[0]
	}
	name := strings.TrimPrefix(fullMethod, "/")
	svc, method, _ := strings.Cut(name, "/")
	return StartServer(ctx, tp, name, parent, strings.Join(md.Get(StateHeader), ","),
		attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", svc), attribute.String("rpc.method", method))
}

// EndRPC ends the server span of a gRPC call with the call's status code; the span is marked
// failed for the codes that mean a server error (OpenTelemetry's RPC conventions: a caller's
// mistake such as NOT_FOUND is not the server's failure). The status message is left out: it
// may quote what the caller sent.
func EndRPC(span trace.Span, code grpccodes.Code) {
	span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(code)))
	switch code {
	case grpccodes.Unknown, grpccodes.DeadlineExceeded, grpccodes.Unimplemented, grpccodes.Internal,
		grpccodes.Unavailable, grpccodes.DataLoss:
		span.SetStatus(codes.Error, code.String())
	}
	span.End()
}

// StartClient starts a client span named name for an outgoing call (an actor call, a
// publish), a child of ctx's span, with the provider that recorded ctx's span (else the
// process's). The returned context carries the span's traceparent in the outgoing gRPC
// metadata, so that the callee continues from this span. The caller ends the span ([End]).
func StartClient(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	tp := otel.GetTracerProvider()
	if s := trace.SpanFromContext(ctx); s.IsRecording() {
		tp = s.TracerProvider()
	}
	ctx, span := tp.Tracer(scope).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return outgoing(ctx), span
}

// End ends span, marking it failed when err is not nil (without the error's text: it may
// quote what a caller sent).
func End(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

// outgoing puts ctx's trace context in its outgoing gRPC metadata (replacing any there).
func outgoing(ctx context.Context) context.Context {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ctx
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Delete(StateHeader)
	propagator.Inject(ctx, metadataCarrier(md))
	return metadata.NewOutgoingContext(ctx, md)
}

// metadataCarrier lets the propagator write gRPC metadata.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(k string) string {
	if v := metadata.MD(c).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c metadataCarrier) Set(k, v string) { metadata.MD(c).Set(k, v) }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Traceparent is the traceparent header value of ctx's trace ("" when it has none): what a
// caller gets back to find its call in the logs and traces.
func Traceparent(ctx context.Context) string { return Format(trace.SpanContextFromContext(ctx)) }

// TraceID is the trace id of ctx in lower-case hex ("" when it has none).
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// Field is the log field naming ctx's trace (an empty field when there is none).
func Field(ctx context.Context) zap.Field {
	if id := TraceID(ctx); id != "" {
		return zap.String("trace_id", id)
	}
	return zap.Skip()
}
