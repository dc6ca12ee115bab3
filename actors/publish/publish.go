// Package publish owns the hand-off of inbound WebSocket frames to a pub/sub topic: the
// message shape and the Dapr implementation.
package publish

import (
	"context"
	"fmt"

	dapr "github.com/dapr/go-sdk/client"
)

// Message is one inbound frame on its way to a topic.
type Message struct {
	// ConnectionID is the connection that received the frame.
	ConnectionID string
	// Topic is the pub/sub topic to publish to.
	Topic string
	// Data is the frame payload, unchanged.
	Data []byte
	// Binary is true for a binary frame, false for a text frame.
	Binary bool
	// Seq numbers the frames of one connection from 1, in the order they arrived.
	Seq uint64
}

// Publisher delivers messages to a topic. Publish returns when the message was accepted.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

// Publisher is the slice of the Dapr client the publisher needs.
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

// Publish publishes the frame as the data of a CloudEvent. Text frames travel as text/plain,
// binary frames as application/octet-stream.
func (d *Dapr) Publish(ctx context.Context, m Message) error {
	ct := "text/plain"
	if m.Binary {
		ct = "application/octet-stream"
	}
	err := d.client.PublishEvent(ctx, d.component, m.Topic, m.Data, dapr.PublishEventWithContentType(ct))
	if err != nil {
		return fmt.Errorf("publish to %s/%s: %w", d.component, m.Topic, err)
	}
	return nil
}
