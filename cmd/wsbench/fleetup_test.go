package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The upstream server's counts are the fleet benchmark's ground truth: sockets live now, ids
// that ever had two sockets at once (duplicates), and each id's first handshake after a time
// (failover), read incrementally with from/next. Real gorilla clients, no Dapr.
func TestUpstreamServerCounts(t *testing.T) {
	srv := httptest.NewServer(newUpstreamServer())
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo?cid="
	stats := func(query string) upstreamStats {
		t.Helper()
		resp, err := http.Get(srv.URL + "/stats" + query)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var s upstreamStats
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
		return s
	}
	dial := func(id string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.DefaultDialer.Dial(wsURL+id, nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	// The server counts a socket once its handler runs, just after the client's handshake ends.
	waitLive := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool { return stats("").Live == n }, 5*time.Second, 5*time.Millisecond)
	}

	a1 := dial("a")
	b := dial("b")
	waitLive(2)
	// It echoes.
	require.NoError(t, b.WriteMessage(websocket.TextMessage, []byte("hi")))
	_, msg, err := b.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "hi", string(msg))
	s := stats("")
	assert.Equal(t, 2, s.Handshakes)
	assert.Zero(t, s.Duplicates)
	assert.Empty(t, s.DuplicateIDs)

	// One socket of "a" closes before the next opens: a reconnect, not a duplicate.
	require.NoError(t, a1.Close())
	waitLive(1)
	mid := time.Now().UnixNano()
	time.Sleep(time.Millisecond) // handshakes strictly after mid
	a2 := dial("a")
	waitLive(2)
	s = stats("")
	assert.Equal(t, 3, s.Handshakes)
	assert.Zero(t, s.Duplicates, "a reconnect after the close is not a duplicate")

	// A second socket of "a" while a2 is open: "a" is a duplicate, counted once however often.
	dial("a")
	waitLive(3)
	require.NoError(t, a2.Close())
	waitLive(2)
	dial("a")
	waitLive(3)
	s = stats("")
	assert.Equal(t, 1, s.Duplicates)
	assert.Equal(t, []string{"a"}, s.DuplicateIDs)
	assert.Equal(t, 5, s.Handshakes)

	// since: the first handshake after mid of each id that had one ("b" had none).
	s = stats("?since=" + strconv.FormatInt(mid, 10))
	require.Len(t, s.Since, 1)
	first := s.Since["a"]
	assert.Greater(t, first, mid)
	assert.Equal(t, 5, s.Next)
	// from: only handshakes from that index on; the same first time when the range covers it.
	s = stats("?since=" + strconv.FormatInt(mid, 10) + "&from=2")
	assert.Equal(t, first, s.Since["a"])
	s = stats("?since=" + strconv.FormatInt(mid, 10) + "&from=3")
	assert.Greater(t, s.Since["a"], first, "from=3 skips a2's handshake")
	dial("c")
	waitLive(4)
	s = stats("?since=" + strconv.FormatInt(mid, 10) + "&from=5")
	assert.Len(t, s.Since, 1)
	assert.Contains(t, s.Since, "c")
	assert.Equal(t, 6, s.Next)
	// Past the end, or before the start: no panic, empty or whole.
	assert.Empty(t, stats("?since=1&from=99").Since)
	assert.Len(t, stats("?since=1&from=-1").Since, 3)

	resp, err := http.Get(srv.URL + "/stats?since=x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
