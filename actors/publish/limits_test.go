package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fakeClient answers every publish with err, counting the calls and building the request as
// the SDK does, to measure it.
type fakeClient struct {
	calls int
	err   error
	size  int
}

func (f *fakeClient) PublishEvent(_ context.Context, component, topic string, data any, opts ...dapr.PublishEventOption) error {
	f.calls++
	req := &runtimev1.PublishEventRequest{PubsubName: component, Topic: topic, Data: data.([]byte)}
	for _, o := range opts {
		o(req)
	}
	f.size = proto.Size(req)
	if f.err != nil {
		// The SDK wraps the gRPC error like this.
		return fmt.Errorf("error publishing event unto %s topic: %w", topic, f.err)
	}
	return nil
}

// Ensure an event larger than the maximum is refused before it reaches the sidecar, as a
// permanent failure, and one exactly at the maximum is sent: the measure is the request the
// SDK sends, byte for byte.
func TestDaprRefusesTooLargeBeforeSending(t *testing.T) {
	m := Message{ConnectionID: "c", URL: "ws://h/", Topic: "t", Data: make([]byte, 3000), Binary: true}
	probe := &fakeClient{}
	require.NoError(t, NewDapr(probe, "pubsub").Publish(context.Background(), Single(m)))
	exact := probe.size

	for _, tt := range []struct {
		name      string
		max       int
		wantCalls int
	}{
		{"at the limit", exact, 1},
		{"one byte over", exact - 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClient{}
			err := NewDapr(c, "pubsub").WithMaxRequestBytes(tt.max).Publish(context.Background(), Single(m))
			assert.Equal(t, tt.wantCalls, c.calls)
			if tt.wantCalls == 1 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrTooLarge)
			assert.Contains(t, err.Error(), fmt.Sprintf("%d bytes, the limit is %d", exact, tt.max))
		})
	}
}

// Ensure the sidecar's refusals are classified: a message over gRPC's maximum (daprd's
// --max-body-size) is permanent; everything else, other RESOURCE_EXHAUSTED answers included,
// stays retryable.
func TestDaprClassifiesRefusals(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"daprd max body size", status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5242951 vs. 4194304)"), true},
		{"client max send size", status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (5242951 vs. 4194304)"), true},
		{"rate limited", status.Error(codes.ResourceExhausted, "too many requests"), false},
		{"sidecar down", status.Error(codes.Unavailable, "connection refused"), false},
		{"component missing", status.Error(codes.InvalidArgument, "pubsub pubsub not found"), false},
		{"not a gRPC error", errors.New("boom"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDapr(&fakeClient{err: tt.err}, "pubsub").WithMaxRequestBytes(1 << 30)
			err := d.Publish(context.Background(), Single(Message{ConnectionID: "c", Topic: "t", Data: []byte("x")}))
			require.Error(t, err)
			assert.Equal(t, tt.permanent, Permanent(err))
			assert.Equal(t, tt.permanent, errors.Is(err, ErrTooLarge))
		})
	}
}

// Ensure lifecycle events that exceed the maximum are refused too (an event carries the URL).
func TestDaprRefusesTooLargeLifecycleEvent(t *testing.T) {
	c := &fakeClient{}
	err := NewDapr(c, "pubsub").WithMaxRequestBytes(1024).PublishEvent(context.Background(), "lc",
		Event{ConnectionID: "c", URL: "ws://" + strings.Repeat("h", 2000), Status: "CONNECTED"})
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Zero(t, c.calls)
}

// Ensure a frames-dropped event has its own CloudEvent type and carries the counts; status
// events keep theirs.
func TestFramesDroppedEventType(t *testing.T) {
	c := &capture{}
	d := NewDapr(c, "pubsub")
	require.NoError(t, d.PublishEvent(context.Background(), "lc", Event{ConnectionID: "c", Status: "CONNECTED", PreviousStatus: "CONNECTED",
		DroppedFrames: map[string]uint64{"too_large": 2}}))
	assert.Contains(t, c.body, `"type":"websocketmanager.connection.frames_dropped"`)
	assert.Contains(t, c.body, `"dropped_frames":{"too_large":2}`)
	require.NoError(t, d.PublishEvent(context.Background(), "lc", Event{ConnectionID: "c", Status: "ERROR"}))
	assert.Contains(t, c.body, `"type":"websocketmanager.connection.error"`)
	assert.NotContains(t, c.body, `dropped_frames`)
}

type capture struct{ body string }

func (c *capture) PublishEvent(_ context.Context, _, _ string, data any, _ ...dapr.PublishEventOption) error {
	c.body = string(data.([]byte))
	return nil
}
