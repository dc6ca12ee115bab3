package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/correlation"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, *publish.Frames) error            { return nil }
func (nopPublisher) PublishEvent(context.Context, string, publish.Event) error { return nil }

func benchSession(b *testing.B, mode correlation.Mode, topic string) *Session {
	b.Helper()
	cfg := DefaultConfig()
	cfg.PublishBuffer = 1 << 16
	s := newSession(Spec{ID: "bench", URL: "ws://h/", Correlation: correlation.Config{Mode: mode}, Publish: PublishOptions{Topic: topic}}, cfg, &budget{limit: 1 << 40}, nopPublisher{}, nil, "i", zap.NewNop())
	s.wg.Add(1) // stands for the reader, whose count lets push start the publisher
	b.Cleanup(func() { s.cancel(); s.wg.Done(); s.wg.Wait() })
	return s
}

// BenchmarkRoutePublish: an inbound JSON frame nobody waits for → correlation → publish hand-off.
func BenchmarkRoutePublish(b *testing.B) {
	s := benchSession(b, correlation.ModeAuto, "t")
	frame := Frame{Data: []byte(`{"e":"trade","s":"BTCUSDT","p":"64000.10","q":"0.01","T":1732900000000}`)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.route(frame, now)
	}
}

// BenchmarkRouteReply: an inbound JSON reply matched by id to a waiting Send.
func BenchmarkRouteReply(b *testing.B) {
	s := benchSession(b, correlation.ModeAuto, "")
	frames := make([]Frame, 1024)
	for i := range frames {
		frames[i] = Frame{Data: fmt.Appendf(nil, `{"id":%d,"result":{"ok":true}}`, i)}
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := frames[i%len(frames)]
		key, _ := s.spec.Correlation.Inbound(f.Data, false)
		w := &waiter{reply: make(chan Frame, 1)}
		s.mu.Lock()
		s.keyed[key] = w
		s.mu.Unlock()
		s.route(f, now)
		<-w.reply
		i++
	}
}

// BenchmarkRoutePrefix: an inbound prefix-mode reply.
func BenchmarkRoutePrefix(b *testing.B) {
	s := benchSession(b, correlation.ModePrefix, "")
	p := randomPrefix()
	f := Frame{Data: append(p[:], "reply payload"...)}
	key, _ := s.spec.Correlation.Inbound(f.Data, false)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		w := &waiter{reply: make(chan Frame, 1)}
		s.mu.Lock()
		s.keyed[key] = w
		s.mu.Unlock()
		s.route(f, now)
		<-w.reply
	}
}
