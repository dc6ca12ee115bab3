package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// pushingServer pushes frames as fast as it can and never reads: it never answers the
// client's close frame, so the client's close waits CloseTimeout while its reader still runs.
func pushingServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c.WriteMessage(websocket.TextMessage, []byte("tick")) != nil {
				return
			}
			time.Sleep(time.Millisecond) // pace only, not an assertion
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

// Ensure frames the reader still routes while a close waits for the server's close frame
// retain nothing: every retained byte is given back when the session ends.
func TestRetentionBudgetLeaksAfterClose(t *testing.T) {
	cfg := testConfig()
	cfg.CloseTimeout = 300 * time.Millisecond
	r, _ := newRegistry(t, cfg)
	s := open(t, r, session.Spec{URL: pushingServer(t)})
	require.Eventually(t, func() bool { return r.RetainedBytes() > 0 }, waitFor, time.Millisecond)
	require.True(t, r.Close(context.Background(), "c1", 1000, "disconnected by request"))
	_ = s
	assert.Zero(t, r.Len())
	assert.Zero(t, r.RetainedBytes(), "every retained byte is released when the session ends")
}

// Ensure a watch of a connection that ended for good (auto_reconnect off: DISCONNECTED or
// ERROR, the session stays in the registry) ends with ErrConnectionEnded, and a watch started
// afterwards gets what is retained and then the same end.
func TestWatchOfEndedConnectionEnds(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	r, _ := newRegistry(t, testConfig())
	s := open(t, r, session.Spec{URL: ws.URL("/close?after=1")})
	w, err := s.Watch(nil, false)
	require.NoError(t, err)
	_ = s.SendRaw(context.Background(), session.Frame{Data: []byte("x")})
	waitStatus(t, s, session.StatusDisconnected)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _, err = w.Next(ctx)
	assert.ErrorIs(t, err, session.ErrConnectionEnded, "the watch of an ended connection ends, not waits forever")
	w2, err := s.Watch(new(uint64(1)), false)
	require.NoError(t, err)
	_, _, err = w2.Next(ctx)
	assert.ErrorIs(t, err, session.ErrConnectionEnded, "after what is retained (nothing here)")
	w2.Close()
	w.Close()
}
