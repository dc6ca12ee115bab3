// Package publish owns what leaves the service through Dapr pub/sub: inbound frames as
// CloudEvents on the connection's topic, and lifecycle events on the lifecycle topic.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/websocketmanager/websocketmanager/actors/tracing"
)

// Source is the CloudEvent source of everything the service publishes.
const Source = "websocketmanager"

// FrameEventType is the CloudEvent type of a published inbound frame.
const FrameEventType = "websocketmanager.frame"

// Message is one inbound frame on its way to a topic.
type Message struct {
	// ConnectionID is the connection that received the frame.
	ConnectionID string
	// URL is the connection's URL without user-info.
	URL string
	// Topic is the pub/sub topic to publish to.
	Topic string
	// Data is the frame payload, unchanged.
	Data []byte
	// Binary is true for a binary frame, false for a text frame.
	Binary bool
	// Seq numbers the published frames of one connection; it grows by one per frame.
	Seq uint64
	// ReceivedAt is when the frame was read from the socket.
	ReceivedAt time.Time
	// Reply is set when the frame answered a Send (published with include_replies); it keeps
	// the sequence number of the frame before it.
	Reply bool
}

// FramesDroppedEventType is the CloudEvent type of the lifecycle event that reports inbound
// frames a connection could not publish (its status did not change).
const FramesDroppedEventType = "websocketmanager.connection.frames_dropped"

// DefaultMaxRequestBytes is the largest publish request the Dapr publisher sends unless told
// otherwise: daprd's default --max-body-size (4 MiB), which bounds its gRPC messages too.
const DefaultMaxRequestBytes = 4 << 20

// EnvelopeReserve is what a frame's event may need beyond the frame's own (encoded) bytes for
// the publish request to fit in the default maximum: the CloudEvent's attributes (id, times,
// sequence, connection id and URL) and the request's component, topic and content type. The
// default inbound frame limit leaves it free: (DefaultMaxRequestBytes - EnvelopeReserve) * 3/4
// bytes of binary are exactly DefaultMaxRequestBytes - EnvelopeReserve bytes of base64.
const EnvelopeReserve = 64 << 10

// ErrTooLarge means an event is larger than the pub/sub accepts. Publishing it again cannot
// succeed: it is a permanent failure.
var ErrTooLarge = errors.New("the event is larger than the pub/sub accepts")

// Permanent reports whether a publish failed for good (retrying cannot help).
func Permanent(err error) bool { return errors.Is(err, ErrTooLarge) }

// Event is a status change of a connection, or (DroppedFrames set) a report of inbound
// frames it could not publish.
type Event struct {
	ConnectionID   string    `json:"connection_id"`
	URL            string    `json:"url"`
	InstanceID     string    `json:"instance_id"`
	Status         string    `json:"status"`
	PreviousStatus string    `json:"previous_status"`
	Attempt        int       `json:"attempt,omitempty"`
	Error          string    `json:"error,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Time           time.Time `json:"time"`
	// DroppedFrames counts, by reason, the frames the connection dropped since it was
	// established on this instance; set only on a frames-dropped event.
	DroppedFrames map[string]uint64 `json:"dropped_frames,omitempty"`
}

// CloudEventType is the event's CloudEvent type.
func (e Event) CloudEventType() string {
	if len(e.DroppedFrames) > 0 {
		return FramesDroppedEventType
	}
	return EventType(e.Status)
}

// EventType is the CloudEvent type of a lifecycle event for status s ("CONNECTED" →
// "websocketmanager.connection.connected").
func EventType(status string) string {
	b := []byte(status)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return "websocketmanager.connection." + string(b)
}

// Publisher delivers frames and lifecycle events. Both return when the component accepted
// the message.
type Publisher interface {
	Publish(ctx context.Context, f *Frames) error
	PublishEvent(ctx context.Context, topic string, e Event) error
}

// daprPublisher is the slice of the Dapr client the publisher needs.
type daprPublisher interface {
	PublishEvent(ctx context.Context, pubsubName, topicName string, data any, opts ...dapr.PublishEventOption) error
}

// Dapr publishes through a Dapr sidecar's pub/sub component.
type Dapr struct {
	client    daprPublisher
	component string
	maxBytes  int
}

var _ Publisher = (*Dapr)(nil)

// NewDapr returns a publisher that uses the pub/sub component named component and sends no
// request larger than DefaultMaxRequestBytes.
func NewDapr(client daprPublisher, component string) *Dapr {
	return &Dapr{client: client, component: component, maxBytes: DefaultMaxRequestBytes}
}

// WithMaxRequestBytes sets the largest publish request (the gRPC message daprd receives: the
// event and its component, topic and content type); a larger one fails with ErrTooLarge
// without reaching daprd. Match it to daprd's --max-body-size.
func (d *Dapr) WithMaxRequestBytes(n int) *Dapr {
	d.maxBytes = n
	return d
}

// cloudEvent is the envelope the service writes itself, so that it controls the extension
// attributes; Dapr passes an application/cloudevents+json payload through as the event.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      string          `json:"data_base64,omitempty"`
	ConnectionID    string          `json:"connectionid"`
	ConnectionURL   string          `json:"connectionurl,omitempty"`
	ReceivedAt      string          `json:"receivedat,omitempty"`
	Sequence        string          `json:"sequence,omitempty"`
}

// Publish publishes the frames' event to their topic. Frame events are published with
// Dapr's rawPayload metadata: the broker holds the event exactly as written (daprd neither
// parses nor re-serialises it, which compacted JSON frames and cost daprd CPU per frame).
func (d *Dapr) Publish(ctx context.Context, f *Frames) error {
	return d.publish(ctx, f.Topic, f.Body(), true)
}

// PublishEvent publishes a lifecycle event to topic.
func (d *Dapr) PublishEvent(ctx context.Context, topic string, e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode lifecycle event: %w", err)
	}
	body, err := json.Marshal(cloudEvent{
		SpecVersion:     "1.0",
		ID:              uuid.NewString(),
		Source:          Source,
		Type:            e.CloudEventType(),
		Time:            e.Time.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data:            data,
		ConnectionID:    e.ConnectionID,
		ConnectionURL:   e.URL,
	})
	if err != nil {
		return err
	}
	return d.publish(ctx, topic, body, false)
}

const cloudEventContentType = "application/cloudevents+json"

// rawPayloadMetadata is the request metadata of dapr.PublishEventWithRawPayload, for sizing.
var rawPayloadMetadata = map[string]string{"rawPayload": "true"}

func (d *Dapr) publish(ctx context.Context, topic string, body []byte, raw bool) (err error) {
	// The span is recorded here but its context is not sent to the sidecar: a frame publish
	// belongs to no caller's trace, and a sampled traceparent on every publish made daprd
	// record a trace per frame, which cut the publish rate several times over (a shutdown
	// flush of 1,500 frames ran out of time; TestGracefulShutdown).
	_, span := tracing.StartClient(ctx, "publish "+topic, attribute.String("messaging.system", "dapr"),
		attribute.String("messaging.destination.name", topic), attribute.Int("messaging.message.body.size", len(body)))
	defer func() { tracing.End(span, err) }()
	// The request as the SDK sends it (dapr.Client.PublishEvent with a []byte and a content
	// type): daprd measures this message against its limit, so measuring it here refuses
	// exactly what daprd would refuse, before it crosses the wire.
	req := &runtimev1.PublishEventRequest{PubsubName: d.component, Topic: topic, Data: body, DataContentType: cloudEventContentType}
	opts := []dapr.PublishEventOption{dapr.PublishEventWithContentType(cloudEventContentType)}
	if raw {
		req.Metadata = rawPayloadMetadata
		opts = append(opts, dapr.PublishEventWithRawPayload())
	}
	size := proto.Size(req)
	if d.maxBytes > 0 && size > d.maxBytes {
		return fmt.Errorf("publish to %s/%s: %w: %d bytes, the limit is %d", d.component, topic, ErrTooLarge, size, d.maxBytes)
	}
	err = d.client.PublishEvent(ctx, d.component, topic, body, opts...)
	if err != nil {
		if tooLarge(err) {
			return fmt.Errorf("publish to %s/%s: %w: %d bytes: %w", d.component, topic, ErrTooLarge, size, err)
		}
		return fmt.Errorf("publish to %s/%s: %w", d.component, topic, err)
	}
	return nil
}

// tooLarge recognises gRPC's refusal of a message above the receiver's (daprd: --max-body-size)
// or the sender's maximum: RESOURCE_EXHAUSTED "grpc: received message larger than max (N vs.
// M)", or "trying to send message larger than max". Other RESOURCE_EXHAUSTED answers (quotas,
// rate limits) pass and stay retryable.
func tooLarge(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "message larger than max")
}
