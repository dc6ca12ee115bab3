// Package tracing owns the W3C trace context (traceparent) of a call: parsing it from an
// incoming gRPC call or HTTP request, starting one when the caller sent none, carrying it to
// the Dapr calls the service makes, and naming it in logs.
package tracing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

// Header names (gRPC metadata keys are the same, lower case).
const (
	ParentHeader = "traceparent"
	StateHeader  = "tracestate"
)

// Parent is a parsed traceparent: version 00, 16-byte trace id, 8-byte parent (span) id, flags.
type Parent struct {
	TraceID, SpanID string // lower-case hex
	Flags           string
	State           string // tracestate, passed on as received
}

// String formats p as a traceparent header value.
func (p Parent) String() string { return "00-" + p.TraceID + "-" + p.SpanID + "-" + p.Flags }

// Parse parses a traceparent header value; ok is false for anything invalid (W3C rules:
// lower-case hex, no all-zero ids, version ff invalid; unknown versions read as 00).
func Parse(v string) (p Parent, ok bool) {
	v = strings.TrimSpace(v)
	if len(v) < 55 {
		return Parent{}, false
	}
	ver, trace, span, flags := v[0:2], v[3:35], v[36:52], v[53:55]
	if v[2] != '-' || v[35] != '-' || v[52] != '-' || ver == "ff" || !hexLower(ver) || !hexLower(trace) || !hexLower(span) || !hexLower(flags) {
		return Parent{}, false
	}
	if ver == "00" && len(v) != 55 || len(v) > 55 && v[55] != '-' {
		return Parent{}, false
	}
	if trace == strings.Repeat("0", 32) || span == strings.Repeat("0", 16) {
		return Parent{}, false
	}
	return Parent{TraceID: trace, SpanID: span, Flags: flags}, true
}

func hexLower(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// New starts a trace: random ids, not sampled.
func New() Parent {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return Parent{TraceID: hex.EncodeToString(b[:16]), SpanID: hex.EncodeToString(b[16:]), Flags: "00"}
}

type ctxKey struct{}

// NewContext returns ctx carrying p, with p also in the outgoing gRPC metadata, so that every
// call made with the context (Dapr actor calls, calls to other instances) continues the trace.
func NewContext(ctx context.Context, p Parent) context.Context {
	ctx = context.WithValue(ctx, ctxKey{}, p)
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Set(ParentHeader, p.String())
	if p.State != "" {
		md.Set(StateHeader, p.State)
	} else {
		md.Delete(StateHeader)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// FromContext returns the trace context of ctx, if any.
func FromContext(ctx context.Context) (Parent, bool) {
	p, ok := ctx.Value(ctxKey{}).(Parent)
	return p, ok
}

// FromIncoming reads the trace context of an incoming gRPC call, or starts one.
func FromIncoming(ctx context.Context) Parent {
	md, _ := metadata.FromIncomingContext(ctx)
	return fromValues(first(md.Get(ParentHeader)), strings.Join(md.Get(StateHeader), ","))
}

// FromHeaders reads the trace context of an HTTP request, or starts one.
func FromHeaders(parent, state string) Parent { return fromValues(parent, state) }

func fromValues(parent, state string) Parent {
	if p, ok := Parse(parent); ok {
		p.State = state
		return p
	}
	return New()
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Field is the log field naming ctx's trace (an empty field when there is none).
func Field(ctx context.Context) zap.Field {
	if p, ok := FromContext(ctx); ok {
		return zap.String("trace_id", p.TraceID)
	}
	return zap.Skip()
}
