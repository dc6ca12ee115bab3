// Package tracingtest is an OTLP/gRPC trace receiver for tests: it implements the
// collector's TraceService on a loopback port and keeps every span it is sent, so that a test
// can check what the service exported without running a collector.
package tracingtest

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// Span is one received span with the resource that sent it.
type Span struct {
	*tracepb.Span
	// Resource holds the resource's string attributes (service.name, service.instance.id, …).
	Resource map[string]string
}

// TraceID is the span's trace id in lower-case hex.
func (s Span) TraceID() string { return hex.EncodeToString(s.GetTraceId()) }

// SpanID is the span's id in lower-case hex.
func (s Span) SpanID() string { return hex.EncodeToString(s.GetSpanId()) }

// ParentID is the span's parent id in lower-case hex ("" for a root span).
func (s Span) ParentID() string { return hex.EncodeToString(s.GetParentSpanId()) }

// Attr is the string value of the span's attribute key, "" when absent or not a string.
func (s Span) Attr(key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// Receiver is a running OTLP/gRPC trace receiver.
type Receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	// Addr is the host:port to export to (plaintext).
	Addr string

	mu      sync.Mutex
	spans   []Span
	changed chan struct{} // closed and replaced when spans arrive
}

// NewReceiver starts a receiver on a free loopback port; it stops when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Addr: l.Addr().String(), changed: make(chan struct{})}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, r)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return r
}

// Export implements the collector's TraceService.
func (r *Receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans = append(r.spans, Span{Span: sp, Resource: res})
			}
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// Spans returns every span received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Wait returns the first received span that match accepts, waiting for one until ctx ends
// (then ok is false).
func (r *Receiver) Wait(ctx context.Context, match func(Span) bool) (Span, bool) {
	for {
		r.mu.Lock()
		ch := r.changed
		for _, s := range r.spans {
			if match(s) {
				r.mu.Unlock()
				return s, true
			}
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return Span{}, false
		case <-ch:
		}
	}
}
