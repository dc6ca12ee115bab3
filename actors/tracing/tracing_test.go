package tracing

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/metadata"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
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
		p, ok := Parse(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		if ok {
			assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", p.TraceID)
		}
	}
}

// Ensure the trace of an incoming call is continued on outgoing calls, and one is started
// when the caller sent none.
func TestPropagation(t *testing.T) {
	in := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate", "v=1"))
	ctx := NewContext(in, FromIncoming(in))
	md, _ := metadata.FromOutgoingContext(ctx)
	assert.Equal(t, []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, md.Get("traceparent"))
	assert.Equal(t, []string{"v=1"}, md.Get("tracestate"))

	fresh := FromIncoming(context.Background())
	_, ok := Parse(fresh.String())
	assert.True(t, ok, "a started trace is valid: %s", fresh)
	assert.NotEqual(t, fresh.TraceID, New().TraceID)
}

// FuzzParse: any header value either parses into a context that formats back to a valid
// header, or is refused; never a panic.
func FuzzParse(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		p, ok := Parse(v)
		if !ok {
			return
		}
		if _, ok := Parse(p.String()); !ok {
			t.Fatalf("%q parsed, but %q does not", v, p.String())
		}
	})
}
