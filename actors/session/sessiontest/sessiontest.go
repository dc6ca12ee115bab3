// Package sessiontest provides real WebSocket servers with scripted behaviours for tests and
// the demo. They are real gorilla servers on real sockets, never mocks.
//
// Behaviours, chosen by path (query parameters in brackets):
//
//	/echo                      every frame is sent back as it came (text or binary)
//	/stream [interval=50ms]    a JSON frame {"seq":n,"time":...} every interval (default: the handler's)
//	/jsonrpc                   a JSON request {"id":X,"delay_ms":D,...} is answered after D ms with
//	                           {"id":X,"result":<request>}, so replies come out of order; other frames echo
//	/prefix                    a frame P+payload (P = 16 bytes) is answered with P+"re:"+payload
//	/close [code=1000 after=0] close with code after `after` frames were received
//	/drop [after=0 echo=1]     echo (unless echo=0), and drop the TCP connection (no close frame)
//	                           after `after` frames
//	/stall                     never read or write again (pings go unanswered)
//	/burst [n=100]             send n frames {"seq":n} at once, then echo
//	/pushn [n=1000]            wait for one frame, then send n frames {"seq":n} as fast as the
//	                           socket takes them, then echo
//	/headers                   answer every frame with a JSON report of the handshake's
//	                           Authorization, Origin and chosen subprotocol (offered: v1.feed, v2.feed)
//	/reject [status=403]       refuse the upgrade with that HTTP status
//	/big [bytes=65536]         send one frame of that size, then echo
//	/garbage                   send bytes that are no valid frame, then echo
//	/badutf8                   send a text frame with invalid UTF-8, then echo
//	/fragments                 send "hello world" in fragments (a ping between them), then echo
//	/closestorm                close right after every handshake
//	/noread                    never read anything
//	/redirect?to=<url>         answer the upgrade with a 302 redirect to url
//	/hang                      accept the TCP connection, never answer the handshake
package sessiontest

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	CheckOrigin:  func(*http.Request) bool { return true },
	Subprotocols: []string{"v1.feed", "v2.feed"},
}

// Handler serves the behaviours. It records what clients send and how they close, and Close
// waits for every connection handler to return.
type Handler struct {
	interval time.Duration
	wg       sync.WaitGroup

	mu         sync.Mutex
	conns      map[*websocket.Conn]bool
	hijacked   map[net.Conn]bool
	closed     bool
	received   []string
	closeCodes []int
	streamed   int
	accepted   int
	stop       chan struct{}
	byCID      map[string]*ConnStats
}

// ConnStats is what the server saw of the sockets whose URL carried ?cid=<id>. A socket is
// live from its handshake until the server's handler for it returns (it read the close frame
// or EOF, or failed to write).
type ConnStats struct {
	Live, MaxLive, Handshakes int
	Handshake                 []time.Time // when each handshake completed
	Authorization             string      // of the last handshake
	Subprotocol               string      // of the last handshake
	Received                  []string    // data frames read, in order
	CloseCodes                []int
	// MaxPending is the most /jsonrpc requests that waited for their reply at once.
	MaxPending int
}

// Stats returns a copy of what the server saw for cid.
func (h *Handler) Stats(cid string) ConnStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.byCID[cid]
	if st == nil {
		return ConnStats{}
	}
	c := *st
	c.Handshake = append([]time.Time(nil), st.Handshake...)
	c.Received = append([]string(nil), st.Received...)
	c.CloseCodes = append([]int(nil), st.CloseCodes...)
	return c
}

// MaxLive returns the highest number of live sockets any cid ever had at once.
func (h *Handler) MaxLive() (cid string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, st := range h.byCID {
		if st.MaxLive > n {
			cid, n = id, st.MaxLive
		}
	}
	return cid, n
}

// NewHandler returns a handler whose stream pushes a frame every interval by default.
func NewHandler(interval time.Duration) *Handler {
	return &Handler{interval: interval, conns: map[*websocket.Conn]bool{}, hijacked: map[net.Conn]bool{}, stop: make(chan struct{}), byCID: map[string]*ConnStats{}}
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

// Streamed returns the number of frames pushed on /stream so far (the highest seq).
func (h *Handler) Streamed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streamed
}

// Accepted returns the number of handshakes that succeeded.
func (h *Handler) Accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted
}

// Hanging returns the number of connections held on /hang (handshake never answered).
func (h *Handler) Hanging() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hijacked)
}

// Open returns the number of connections the handler holds now.
func (h *Handler) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// cids remembers which cid each socket belongs to.
var cids sync.Map // *websocket.Conn → string

func (h *Handler) track(c *websocket.Conn, r *http.Request) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = true
	h.accepted++
	h.wg.Add(1)
	if cid := r.URL.Query().Get("cid"); cid != "" {
		cids.Store(c, cid)
		st := h.byCID[cid]
		if st == nil {
			st = &ConnStats{}
			h.byCID[cid] = st
		}
		st.Live++
		st.MaxLive = max(st.MaxLive, st.Live)
		st.Handshakes++
		st.Handshake = append(st.Handshake, time.Now())
		st.Authorization = r.Header.Get("Authorization")
		st.Subprotocol = c.Subprotocol()
	}
	return true
}

func (h *Handler) untrack(c *websocket.Conn) {
	_ = c.Close()
	h.mu.Lock()
	delete(h.conns, c)
	if cid, ok := cids.LoadAndDelete(c); ok {
		h.byCID[cid.(string)].Live--
	}
	h.mu.Unlock()
	h.wg.Done()
}

// read reads one frame and records it, or the close code that ended the connection.
func (h *Handler) read(c *websocket.Conn) (int, []byte, error) {
	typ, data, err := c.ReadMessage()
	h.mu.Lock()
	defer h.mu.Unlock()
	var st *ConnStats
	if cid, ok := cids.Load(c); ok {
		st = h.byCID[cid.(string)]
	}
	var ce *websocket.CloseError
	switch {
	case err == nil:
		h.received = append(h.received, string(data))
		if st != nil {
			st.Received = append(st.Received, string(data))
		}
	case errors.As(err, &ce):
		h.closeCodes = append(h.closeCodes, ce.Code)
		if st != nil {
			st.CloseCodes = append(st.CloseCodes, ce.Code)
		}
	}
	return typ, data, err
}

func intParam(r *http.Request, name string, def int) int {
	if v, err := strconv.Atoi(r.URL.Query().Get(name)); err == nil {
		return v
	}
	return def
}

// ServeHTTP upgrades the request and runs the behaviour its path names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path[strings.LastIndex(r.URL.Path, "/"):]
	switch path {
	case "/reject":
		http.Error(w, "rejected by test server", intParam(r, "status", http.StatusForbidden))
		return
	case "/redirect": // ?to=<url>: answers the upgrade with a redirect
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		return
	case "/hang":
		hj, ok := w.(http.Hijacker)
		if !ok {
			return
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.hijacked[conn] = true
		h.mu.Unlock()
		return // Close closes it
	}
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !h.track(c, r) {
		_ = c.Close()
		return
	}
	defer h.untrack(c)
	switch path {
	case "/stream":
		h.streamFrames(c, time.Duration(intParam(r, "interval", int(h.interval/time.Millisecond)))*time.Millisecond)
	case "/jsonrpc":
		h.jsonrpc(c)
	case "/prefix":
		h.prefix(c)
	case "/close":
		h.closeAfter(c, intParam(r, "after", 0), intParam(r, "code", websocket.CloseNormalClosure))
	case "/drop":
		h.dropAfter(c, intParam(r, "after", 0), intParam(r, "echo", 1) == 1)
	case "/stall":
		select {
		case <-h.stop:
		case <-r.Context().Done():
		}
	case "/burst":
		for i := 1; i <= intParam(r, "n", 100); i++ {
			if c.WriteMessage(websocket.TextMessage, []byte(`{"seq":`+strconv.Itoa(i)+`}`)) != nil {
				return
			}
		}
		h.echo(c)
	case "/big": // [bytes=65536]: send one frame of that many bytes, then echo
		if c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", intParam(r, "bytes", 65536)))) != nil {
			return
		}
		h.echo(c)
	case "/garbage": // bytes that are no valid WebSocket frame (reserved bits and opcode)
		_, _ = c.UnderlyingConn().Write([]byte{0xF3, 0x05, 'j', 'u', 'n', 'k', '!'})
		h.echo(c)
	case "/badutf8": // a text frame that is not UTF-8, then echo
		writeRaw(c, true, websocket.TextMessage, []byte{'o', 'k', 0xff, 0xfe, 0xc3})
		h.echo(c)
	case "/fragments": // "hello world" in three fragments with a ping between them, then echo
		writeRaw(c, false, websocket.TextMessage, []byte("hel"))
		writeRaw(c, false, 0, []byte("lo "))
		writeRaw(c, true, websocket.PingMessage, []byte("p"))
		writeRaw(c, true, 0, []byte("world"))
		h.echo(c)
	case "/closestorm": // a close frame right after every handshake
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "storm"), time.Now().Add(time.Second))
	case "/noread": // never reads: the client's writes fill the TCP buffers and block
		<-h.stop
	case "/pushn":
		if _, _, err := h.read(c); err != nil {
			return
		}
		for i := 1; i <= intParam(r, "n", 1000); i++ {
			if c.WriteMessage(websocket.TextMessage, []byte(`{"seq":`+strconv.Itoa(i)+`}`)) != nil {
				return
			}
		}
		h.echo(c)
	case "/headers":
		b, _ := json.Marshal(map[string]string{
			"authorization": r.Header.Get("Authorization"),
			"origin":        r.Header.Get("Origin"),
			"subprotocol":   c.Subprotocol(),
		})
		for {
			if _, _, err := h.read(c); err != nil {
				return
			}
			if c.WriteMessage(websocket.TextMessage, b) != nil {
				return
			}
		}
	default:
		h.echo(c)
	}
}

func (h *Handler) echo(c *websocket.Conn) {
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

func (h *Handler) streamFrames(c *websocket.Conn, interval time.Duration) {
	done := make(chan struct{})
	go func() { // the reader answers pings and notices the close
		defer close(done)
		for {
			if _, _, err := h.read(c); err != nil {
				return
			}
		}
	}()
	t := time.NewTicker(interval)
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

func (h *Handler) jsonrpc(c *websocket.Conn) {
	var wmu sync.Mutex
	var pending sync.WaitGroup
	defer pending.Wait()
	waiting := 0 // requests not answered yet (under h.mu)
	cid, _ := cids.Load(c)
	track := func(d int) {
		h.mu.Lock()
		defer h.mu.Unlock()
		waiting += d
		if id, ok := cid.(string); ok && h.byCID[id] != nil {
			h.byCID[id].MaxPending = max(h.byCID[id].MaxPending, waiting)
		}
	}
	for {
		typ, data, err := h.read(c)
		if err != nil {
			return
		}
		var req struct {
			ID      json.RawMessage `json:"id"`
			DelayMS int             `json:"delay_ms"`
		}
		if typ != websocket.TextMessage || json.Unmarshal(data, &req) != nil || req.ID == nil {
			wmu.Lock()
			err = c.WriteMessage(typ, data)
			wmu.Unlock()
			if err != nil {
				return
			}
			continue
		}
		track(1)
		pending.Go(func() {
			defer track(-1)
			t := time.NewTimer(time.Duration(req.DelayMS) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
			case <-h.stop:
				return
			}
			b, _ := json.Marshal(map[string]json.RawMessage{"id": req.ID, "result": data})
			wmu.Lock()
			_ = c.WriteMessage(websocket.TextMessage, b)
			wmu.Unlock()
		})
	}
}

func (h *Handler) prefix(c *websocket.Conn) {
	for {
		typ, data, err := h.read(c)
		if err != nil {
			return
		}
		if len(data) < 16 {
			continue
		}
		reply := append(append(append([]byte{}, data[:16]...), "re:"...), data[16:]...)
		if err := c.WriteMessage(typ, reply); err != nil {
			return
		}
	}
}

func (h *Handler) closeAfter(c *websocket.Conn, after, code int) {
	for range after {
		if _, _, err := h.read(c); err != nil {
			return
		}
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "test close"), time.Now().Add(time.Second))
	// Wait for the client's answering close frame (or its disconnect).
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

func (h *Handler) dropAfter(c *websocket.Conn, after int, echo bool) {
	for range after {
		typ, data, err := h.read(c)
		if err != nil {
			return
		}
		if echo && c.WriteMessage(typ, data) != nil {
			return
		}
	}
	_ = c.UnderlyingConn().Close()
}

// DropAll cuts every open connection (TCP close, no close frame), as a server restart would;
// new connections are accepted as before.
func (h *Handler) DropAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		_ = c.UnderlyingConn().Close()
		// The socket is dead now, not when its handler notices: the client may re-dial before
		// that handler runs, and that must not count as two live sockets.
		if cid, ok := cids.LoadAndDelete(c); ok {
			h.byCID[cid.(string)].Live--
		}
	}
}

// Close closes every connection and waits for their handlers to return.
func (h *Handler) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.stop)
	}
	for c := range h.conns {
		_ = c.Close()
	}
	for c := range h.hijacked {
		_ = c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// Server is a running test server.
type Server struct {
	*Handler
	srv  *httptest.Server
	once sync.Once
}

// Stop closes every connection and stops listening: later dials are refused.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.Handler.Close()
		s.srv.Close()
	})
}

// URL returns the ws:// URL of path on the server, e.g. URL("/echo").
func (s *Server) URL(path string) string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + path
}

// NewServer starts a server on loopback that is stopped when the test ends.
func NewServer(tb testing.TB, interval time.Duration) *Server {
	tb.Helper()
	s := &Server{Handler: NewHandler(interval)}
	s.srv = httptest.NewServer(s.Handler)
	tb.Cleanup(s.Stop)
	return s
}

// writeRaw writes one unmasked frame as a server would, bypassing gorilla's framing, so that a
// test can send what gorilla would not (fragments of its choosing, invalid UTF-8).
func writeRaw(c *websocket.Conn, fin bool, opcode int, payload []byte) {
	b0 := byte(opcode)
	if fin {
		b0 |= 0x80
	}
	hdr := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, byte(n))
	case n < 1<<16:
		hdr = append(hdr, 126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	_, _ = c.UnderlyingConn().Write(append(hdr, payload...))
}

// CountingListener listens on addr (e.g. "127.0.0.1:0"), accepts and closes every TCP
// connection and counts them: a target that must never be reached (the SSRF guard, the peer
// policy). It returns the address it listens on; it stops, and its goroutine ends, when the
// test ends.
func CountingListener(t testing.TB, addr string) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	})
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	return l.Addr().String(), &n
}
