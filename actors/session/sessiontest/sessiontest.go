// Package sessiontest provides real WebSocket servers for tests and the demo: an echo server
// and a stream that pushes a numbered frame at a fixed interval. They are real gorilla
// servers on real sockets, never mocks.
package sessiontest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// Handler serves /echo (every frame is sent back as it came), /stream (a JSON frame
// {"seq":n,"time":...} every interval; frames sent to it are only recorded) and / (echo).
// It records what clients send and how they close.
// Close waits for every connection handler to return.
type Handler struct {
	interval   time.Duration
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      map[*websocket.Conn]bool
	closed     bool
	received   []string
	closeCodes []int
	streamed   int
}

// Received returns every data frame the server has read, in order.
func (h *Handler) Received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.received...)
}

// CloseCodes returns the close codes of the close frames clients sent.
func (h *Handler) CloseCodes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.closeCodes...)
}

// Streamed returns the number of frames pushed on /stream so far.
func (h *Handler) Streamed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streamed
}

// read reads one frame and records it, or the close code that ended the connection.
func (h *Handler) read(c *websocket.Conn) (int, []byte, error) {
	typ, data, err := c.ReadMessage()
	h.mu.Lock()
	defer h.mu.Unlock()
	var ce *websocket.CloseError
	switch {
	case err == nil:
		h.received = append(h.received, string(data))
	case errors.As(err, &ce):
		h.closeCodes = append(h.closeCodes, ce.Code)
	}
	return typ, data, err
}

// NewHandler returns a handler whose stream pushes a frame every interval.
func NewHandler(interval time.Duration) *Handler {
	return &Handler{interval: interval, conns: map[*websocket.Conn]bool{}}
}

func (h *Handler) track(c *websocket.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = true
	h.wg.Add(1)
	return true
}

func (h *Handler) untrack(c *websocket.Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	_ = c.Close()
	h.wg.Done()
}

// Open returns the number of connections the handler holds now.
func (h *Handler) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// ServeHTTP upgrades the request and serves echo or stream by path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !h.track(c) {
		_ = c.Close()
		return
	}
	defer h.untrack(c)
	if strings.HasSuffix(r.URL.Path, "/stream") {
		h.stream(c)
		return
	}
	for {
		typ, data, err := h.read(c)
		if err != nil {
			return
		}
		if err := c.WriteMessage(typ, data); err != nil {
			return
		}
	}
}

func (h *Handler) stream(c *websocket.Conn) {
	done := make(chan struct{})
	go func() { // the reader answers pings and notices the close
		defer close(done)
		for {
			if _, _, err := h.read(c); err != nil {
				return
			}
		}
	}()
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-done:
			return
		case now := <-t.C:
			b, _ := json.Marshal(map[string]any{"seq": seq, "time": now.UTC().Format(time.RFC3339Nano)})
			if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
				return
			}
			h.mu.Lock()
			h.streamed = seq
			h.mu.Unlock()
		}
	}
}

// Close closes every connection and waits for their handlers to return.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	for c := range h.conns {
		_ = c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// Server is a running test server.
type Server struct {
	*Handler
	srv *httptest.Server
}

// URL returns the ws:// URL of path on the server, e.g. URL("/echo").
func (s *Server) URL(path string) string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + path
}

// NewServer starts a server on loopback that is stopped when the test ends.
func NewServer(tb testing.TB, interval time.Duration) *Server {
	tb.Helper()
	h := NewHandler(interval)
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return &Server{Handler: h, srv: srv}
}
