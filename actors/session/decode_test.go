package session_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/framecodec"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// frameServer is a WebSocket server that runs serve on each connection and records the close
// codes the client sends.
type frameServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	codes []int
	wg    sync.WaitGroup
}

func newFrameServer(t *testing.T, compress bool, serve func(c *websocket.Conn)) *frameServer {
	t.Helper()
	fs := &frameServer{}
	up := websocket.Upgrader{EnableCompression: compress}
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		fs.wg.Add(1)
		defer fs.wg.Done()
		defer c.Close()
		serve(c)
		for { // until the client closes: record its close code
			if _, _, err := c.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					fs.mu.Lock()
					fs.codes = append(fs.codes, ce.Code)
					fs.mu.Unlock()
				}
				return
			}
		}
	}))
	t.Cleanup(func() { fs.srv.Close(); fs.wg.Wait() })
	return fs
}

func (fs *frameServer) url() string { return "ws" + strings.TrimPrefix(fs.srv.URL, "http") }

func (fs *frameServer) closeCodes() []int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]int(nil), fs.codes...)
}

func encode(t *testing.T, mode framecodec.Mode, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch mode {
	case framecodec.Gzip:
		w = gzip.NewWriter(&b)
	case framecodec.Zlib:
		w = zlib.NewWriter(&b)
	case framecodec.Deflate:
		fw, err := flate.NewWriter(&b, flate.BestCompression)
		require.NoError(t, err)
		w = fw
	default:
		return p
	}
	_, err := w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// decodeConfig is testConfig with a keepalive that a loaded machine (and a server compressing a
// bomb under -race) cannot trip: keepalive is not what these tests are about.
func decodeConfig() session.Config {
	c := testConfig()
	c.PingInterval, c.PongTimeout = time.Second, 10*time.Second
	return c
}

// watchAll reads n frames retained by s from the start.
func watchAll(t *testing.T, s *session.Session, n int) []session.Retained {
	t.Helper()
	from := uint64(0)
	w, err := s.Watch(&from, true)
	require.NoError(t, err)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var out []session.Retained
	for len(out) < n {
		f, gap, err := w.Next(ctx)
		require.NoError(t, err)
		if gap == nil {
			out = append(out, f)
		}
	}
	return out
}

// Ensure each decode_binary mode turns the compressed binary frames a server sends into the
// decoded bytes for publishing and watching, leaves text frames alone, and that AUTO tells the
// formats apart and passes a frame that is not compressed as received.
func TestDecodeBinaryModes(t *testing.T) {
	book := []byte(`{"bids":[[50000.1,1.5]],"asks":[[50000.2,3]]}`)
	tests := []struct {
		mode   framecodec.Mode
		frames []framecodec.Mode // how the server encodes each binary frame
	}{
		{framecodec.Gzip, []framecodec.Mode{framecodec.Gzip}},
		{framecodec.Zlib, []framecodec.Mode{framecodec.Zlib}},
		{framecodec.Deflate, []framecodec.Mode{framecodec.Deflate}},
		{framecodec.Auto, []framecodec.Mode{framecodec.Gzip, framecodec.Zlib, framecodec.Deflate, framecodec.None}},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			ws := newFrameServer(t, false, func(c *websocket.Conn) {
				_ = c.WriteMessage(websocket.TextMessage, []byte("text stays"))
				for _, m := range tc.frames {
					_ = c.WriteMessage(websocket.BinaryMessage, encode(t, m, book))
				}
			})
			r, rec := newRegistry(t, decodeConfig())
			s := open(t, r, session.Spec{URL: ws.url(), DecodeBinary: tc.mode, Publish: session.PublishOptions{Topic: "t"}})
			got := watchAll(t, s, 1+len(tc.frames))
			assert.Equal(t, "text stays", string(got[0].Data))
			for _, f := range got[1:] {
				assert.True(t, f.Binary, "a decoded frame stays binary")
				assert.Equal(t, string(book), string(f.Data))
			}
			require.Eventually(t, func() bool { return len(rec.frames()) == 1+len(tc.frames) }, waitFor, 5*time.Millisecond)
			for _, m := range rec.frames()[1:] {
				assert.Equal(t, string(book), string(m.Data), "published decoded")
			}
			negotiated, refused := s.Compression()
			assert.False(t, negotiated)
			assert.Zero(t, refused)
			assert.Equal(t, session.StatusConnected, s.Snapshot().Status)
		})
	}
}

// Ensure a decompression bomb (gzip, about 64 KiB inflating to 64 MiB) closes the socket with
// 1009 after at most the limit, is counted, and says why in last_error; and that a frame that
// does not decode closes with 1007 in an explicit mode and passes as received (counted) with AUTO.
func TestDecodeRefusals(t *testing.T) {
	bomb := encode(t, framecodec.Gzip, make([]byte, 64<<20))
	notGzip := []byte("plainly not gzip")
	tests := []struct {
		name      string
		mode      framecodec.Mode
		frame     []byte
		code      int // close code the server gets; 0: the socket stays up
		lastError string
	}{
		{"bomb gzip", framecodec.Gzip, bomb, websocket.CloseMessageTooBig, "to more than the limit of 1048576 bytes; closed with 1009"},
		{"bomb auto", framecodec.Auto, bomb, websocket.CloseMessageTooBig, "closed with 1009"},
		{"corrupt gzip", framecodec.Gzip, notGzip, websocket.CloseInvalidFramePayloadData, "closed with 1007"},
		{"corrupt zlib under auto passes", framecodec.Auto, []byte{0x78, 0x9c, 1, 2, 3}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := newFrameServer(t, false, func(c *websocket.Conn) {
				_ = c.WriteMessage(websocket.BinaryMessage, tc.frame)
			})
			r, _ := newRegistry(t, decodeConfig())
			s := open(t, r, session.Spec{URL: ws.url(), DecodeBinary: tc.mode, MaxDecodedBytes: 1 << 20})
			require.Eventually(t, func() bool { _, n := s.Compression(); return n == 1 }, waitFor, 5*time.Millisecond)
			if tc.code == 0 {
				got := watchAll(t, s, 1)
				assert.Equal(t, tc.frame, got[0].Data, "passed on as received")
				assert.Equal(t, session.StatusConnected, s.Snapshot().Status)
				return
			}
			require.Eventually(t, func() bool { return len(ws.closeCodes()) > 0 }, waitFor, 5*time.Millisecond)
			assert.Equal(t, tc.code, ws.closeCodes()[0])
			waitStatus(t, s, session.StatusError) // no auto-reconnect
			assert.Contains(t, s.Snapshot().LastError, tc.lastError)
		})
	}
}

// Ensure permessage-deflate is negotiated when asked for (and reported), compressed messages
// arrive whole, a server without it is reported as not compressing, and a permessage-deflate
// bomb (gorilla's read limit counts wire bytes) is closed with 1009 and counted.
func TestPermessageDeflate(t *testing.T) {
	big := bytes.Repeat([]byte(`{"px":50000.1,"qty":1.5},`), 20000) // 500 KB, inflated
	t.Run("negotiated", func(t *testing.T) {
		ws := newFrameServer(t, true, func(c *websocket.Conn) { _ = c.WriteMessage(websocket.TextMessage, big) })
		r, _ := newRegistry(t, decodeConfig())
		s := open(t, r, session.Spec{URL: ws.url(), PermessageDeflate: true})
		got := watchAll(t, s, 1)
		assert.Equal(t, big, got[0].Data)
		negotiated, _ := s.Compression()
		assert.True(t, negotiated)
	})
	t.Run("server declines", func(t *testing.T) {
		ws := newFrameServer(t, false, func(c *websocket.Conn) { _ = c.WriteMessage(websocket.TextMessage, []byte("x")) })
		r, _ := newRegistry(t, decodeConfig())
		s := open(t, r, session.Spec{URL: ws.url(), PermessageDeflate: true})
		watchAll(t, s, 1)
		negotiated, _ := s.Compression()
		assert.False(t, negotiated)
	})
	t.Run("not asked", func(t *testing.T) {
		ws := newFrameServer(t, true, func(c *websocket.Conn) { _ = c.WriteMessage(websocket.TextMessage, []byte("x")) })
		r, _ := newRegistry(t, decodeConfig())
		s := open(t, r, session.Spec{URL: ws.url()})
		watchAll(t, s, 1)
		negotiated, _ := s.Compression()
		assert.False(t, negotiated)
	})
	t.Run("bomb", func(t *testing.T) {
		ws := newFrameServer(t, true, func(c *websocket.Conn) {
			_ = c.WriteMessage(websocket.BinaryMessage, make([]byte, 8<<20)) // ~8 KiB on the wire
		})
		r, _ := newRegistry(t, decodeConfig())
		s := open(t, r, session.Spec{URL: ws.url(), PermessageDeflate: true, MaxDecodedBytes: 1 << 20})
		waitStatus(t, s, session.StatusError)
		// The close frame is sent, but the client closes with the rest of the bomb unread, so
		// the server may see a reset before it: its close code is checked only when it got it.
		if codes := ws.closeCodes(); len(codes) > 0 {
			assert.Equal(t, websocket.CloseMessageTooBig, codes[0])
		}
		assert.Contains(t, s.Snapshot().LastError, "inflates (permessage-deflate) to more than the limit of 1048576 bytes")
		_, refused := s.Compression()
		assert.EqualValues(t, 1, refused)
	})
}

// Ensure a Send whose reply comes back gzip-compressed in a binary frame is answered by the
// decoded reply, matched by its JSON id (decoded binary frames are correlated like text).
func TestDecodedReplyCorrelates(t *testing.T) {
	ws := newFrameServer(t, false, func(c *websocket.Conn) {
		_, req, err := c.ReadMessage()
		if err != nil {
			return
		}
		_ = c.WriteMessage(websocket.BinaryMessage, encode(t, framecodec.Gzip, []byte(`{"ping":1}`))) // a push first
		reply := bytes.Replace(req, []byte(`"op":"sub"`), []byte(`"status":"ok"`), 1)
		_ = c.WriteMessage(websocket.BinaryMessage, encode(t, framecodec.Gzip, reply))
	})
	r, _ := newRegistry(t, decodeConfig())
	s := open(t, r, session.Spec{URL: ws.url(), DecodeBinary: framecodec.Gzip})
	got, err := s.Send(context.Background(), text(`{"id":"42","op":"sub"}`), 5*time.Second)
	require.NoError(t, err)
	assert.True(t, got.Binary)
	assert.JSONEq(t, `{"id":"42","status":"ok"}`, string(got.Data))
}
