// Package publish owns what leaves the service through Dapr pub/sub: inbound frames as
// CloudEvents on the connection's topic, and lifecycle events on the lifecycle topic.
package publish

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/google/uuid"
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
}

// Event is a status change of a connection.
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
	Publish(ctx context.Context, m Message) error
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
}

var _ Publisher = (*Dapr)(nil)

// NewDapr returns a publisher that uses the pub/sub component named component.
func NewDapr(client daprPublisher, component string) *Dapr {
	return &Dapr{client: client, component: component}
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

// FrameEnvelope builds the CloudEvent of a frame: a text frame that is valid JSON travels as
// JSON (application/json), other text as a JSON string (text/plain), binary as data_base64
// (application/octet-stream). A text frame that is not valid UTF-8 (a broken or hostile
// server) travels as binary: a JSON string would silently replace its bytes.
func FrameEnvelope(m Message) ([]byte, error) {
	ce := cloudEvent{
		SpecVersion:   "1.0",
		ID:            uuid.NewString(),
		Source:        Source,
		Type:          FrameEventType,
		Time:          m.ReceivedAt.UTC().Format(time.RFC3339Nano),
		ConnectionID:  m.ConnectionID,
		ConnectionURL: m.URL,
		ReceivedAt:    m.ReceivedAt.UTC().Format(time.RFC3339Nano),
		Sequence:      strconv.FormatUint(m.Seq, 10),
	}
	switch {
	case m.Binary || !utf8.Valid(m.Data):
		ce.DataContentType = "application/octet-stream"
		ce.DataBase64 = base64.StdEncoding.EncodeToString(m.Data)
	case json.Valid(m.Data):
		ce.DataContentType = "application/json"
		ce.Data = m.Data
	default:
		ce.DataContentType = "text/plain"
		s, err := json.Marshal(string(m.Data))
		if err != nil {
			return nil, err
		}
		ce.Data = s
	}
	// No HTML escaping: a JSON frame travels as the server sent it (compacted), not with
	// "&", "<" and ">" rewritten as \u0026, \u003c and \u003e.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ce); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Publish publishes the frame's CloudEvent to its topic.
func (d *Dapr) Publish(ctx context.Context, m Message) error {
	body, err := FrameEnvelope(m)
	if err != nil {
		return fmt.Errorf("encode frame event: %w", err)
	}
	return d.publish(ctx, m.Topic, body)
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
		Type:            EventType(e.Status),
		Time:            e.Time.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data:            data,
		ConnectionID:    e.ConnectionID,
		ConnectionURL:   e.URL,
	})
	if err != nil {
		return err
	}
	return d.publish(ctx, topic, body)
}

func (d *Dapr) publish(ctx context.Context, topic string, body []byte) error {
	err := d.client.PublishEvent(ctx, d.component, topic, body, dapr.PublishEventWithContentType("application/cloudevents+json"))
	if err != nil {
		return fmt.Errorf("publish to %s/%s: %w", d.component, topic, err)
	}
	return nil
}
