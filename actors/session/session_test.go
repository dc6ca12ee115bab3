package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/websocketmanager/websocketmanager/actors/publish"
	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	msgs []publish.Message
}

func (r *recorder) Publish(_ context.Context, m publish.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) get() []publish.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]publish.Message(nil), r.msgs...)
}

func newRegistry(t *testing.T) (*session.Registry, *recorder) {
	t.Helper()
	rec := &recorder{}
	r := session.NewRegistry(session.DefaultConfig(), rec, zaptest.NewLogger(t))
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r, rec
}

func open(t *testing.T, r *session.Registry, url string) *session.Session {
	t.Helper()
	s, err := r.Open(context.Background(), session.Spec{ID: "c1", URL: url})
	require.NoError(t, err)
	return s
}

// Ensure a Send gets the server's reply.
func TestSendEcho(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t)
	s := open(t, r, ws.URL("/echo"))
	got, err := s.Send(context.Background(), "hello", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "hello", got)
	assert.Equal(t, session.StatusConnected, s.Snapshot().Status)
}

// Ensure many Sends can be in flight on one connection and each gets a reply.
func TestSendConcurrent(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t)
	s := open(t, r, ws.URL("/echo"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			got, err := s.Send(context.Background(), fmt.Sprint("m", i), 5*time.Second)
			if err == nil && got == "" {
				err = errors.New("empty reply")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// Ensure a Send without a reply times out and a later Send still works.
func TestSendTimeout(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t)
	s := open(t, r, ws.URL("/stream"))
	_, err := s.Send(context.Background(), "x", 50*time.Millisecond)
	assert.ErrorIs(t, err, session.ErrTimeout)
	require.NoError(t, s.SendRaw(context.Background(), "y"))
	require.Eventually(t, func() bool { return len(ws.Received()) == 2 }, waitFor, 10*time.Millisecond)
}

// Ensure inbound frames are published in order with sequence numbers, only while a topic is set.
func TestPublishOrder(t *testing.T) {
	ws := sessiontest.NewServer(t, 5*time.Millisecond)
	r, rec := newRegistry(t)
	s := open(t, r, ws.URL("/stream"))
	s.SetTopic("t")
	require.Eventually(t, func() bool { return len(rec.get()) >= 20 }, waitFor, 10*time.Millisecond)
	s.SetTopic("")
	msgs := rec.get()
	for i, m := range msgs {
		assert.Equal(t, uint64(i+1), m.Seq)
		assert.Equal(t, "t", m.Topic)
		assert.Equal(t, "c1", m.ConnectionID)
		assert.False(t, m.Binary)
	}
}

// Ensure a server-side close is reported and pending Sends fail instead of hanging.
func TestServerClose(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t)
	s := open(t, r, ws.URL("/stream"))
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), "x", time.Minute)
		done <- err
	}()
	require.Eventually(t, func() bool { return len(ws.Received()) == 1 }, waitFor, 10*time.Millisecond)
	ws.Close()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, session.ErrNotConnected)
	case <-time.After(waitFor):
		t.Fatal("pending Send did not fail after the server went away")
	}
	snap := s.Snapshot()
	assert.Contains(t, []session.Status{session.StatusDisconnected, session.StatusError}, snap.Status)
	assert.NotEmpty(t, snap.LastError)
	assert.ErrorIs(t, s.SendRaw(context.Background(), "y"), session.ErrNotConnected)
}

// Ensure Close sends a normal close frame and the registry forgets the session.
func TestCloseNormal(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t)
	open(t, r, ws.URL("/echo"))
	require.True(t, r.Close(context.Background(), "c1"))
	assert.Equal(t, []int{1000}, ws.CloseCodes())
	assert.Nil(t, r.Get("c1"))
	assert.False(t, r.Close(context.Background(), "c1"))
}

// Ensure a failed handshake says why.
func TestDialFailure(t *testing.T) {
	r, _ := newRegistry(t)
	_, err := r.Open(context.Background(), session.Spec{ID: "c1", URL: "ws://127.0.0.1:1/"})
	assert.ErrorIs(t, err, session.ErrDial)
	assert.Zero(t, r.Len())
}

// Ensure Open of a live id returns the same session: never two sockets for one connection.
func TestOpenIdempotent(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t)
	a := open(t, r, ws.URL("/echo"))
	b := open(t, r, ws.URL("/echo"))
	assert.Same(t, a, b)
	assert.Equal(t, 1, ws.Open())
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*session.Config)
	}{
		{"handshake", func(c *session.Config) { c.HandshakeTimeout = 0 }},
		{"write", func(c *session.Config) { c.WriteTimeout = 0 }},
		{"ping", func(c *session.Config) { c.PingInterval = 0 }},
		{"pong", func(c *session.Config) { c.PongTimeout = 0 }},
		{"read limit", func(c *session.Config) { c.ReadLimit = 0 }},
		{"queue", func(c *session.Config) { c.PublishQueue = 0 }},
		{"close", func(c *session.Config) { c.CloseTimeout = 0 }},
	}
	require.NoError(t, session.DefaultConfig().Validate())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := session.DefaultConfig()
			tt.modify(&c)
			assert.Error(t, c.Validate())
		})
	}
}
