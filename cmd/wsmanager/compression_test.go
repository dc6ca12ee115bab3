//go:build integration

package main_test

// End-to-end test of compression (issue 15 item 4) over the real Dapr runtime started in
// TestMain and a WebSocket server started here that negotiates permessage-deflate and sends
// gzip, zlib and raw-deflate binary frames, and a decompression bomb.

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
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

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// exchangeServer answers "push" with a gzip, a zlib and a raw-deflate order book and a text
// frame, "bomb" with a gzip decompression bomb, and a JSON request with an id with a gzip'd
// JSON reply carrying that id. It records the close codes clients send.
type exchangeServer struct {
	srv   *httptest.Server
	books [3][]byte
	bomb  []byte
	mu    sync.Mutex
	codes []int
}

func newExchangeServer(t *testing.T) *exchangeServer {
	s := &exchangeServer{bomb: compress(t, "gzip", make([]byte, 64<<20))}
	for i := range s.books {
		s.books[i] = []byte(strings.Replace(`{"ch":"depth","n":N,"bids":[[50000.1,1.5],[49999.9,0.25]],"asks":[[50000.2,3]]}`, "N", string(rune('1'+i)), 1))
	}
	up := websocket.Upgrader{EnableCompression: true}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					s.mu.Lock()
					s.codes = append(s.codes, ce.Code)
					s.mu.Unlock()
				}
				return
			}
			switch m := string(msg); {
			case m == "push":
				for i, f := range []string{"gzip", "zlib", "deflate"} {
					_ = c.WriteMessage(websocket.BinaryMessage, compress(t, f, s.books[i]))
				}
				_ = c.WriteMessage(websocket.TextMessage, []byte("plain text"))
			case m == "bomb":
				_ = c.WriteMessage(websocket.BinaryMessage, s.bomb)
			case strings.HasPrefix(m, `{"id"`):
				reply := strings.Replace(m, `"op":"sub"`, `"status":"ok"`, 1)
				_ = c.WriteMessage(websocket.BinaryMessage, compress(t, "gzip", []byte(reply)))
			}
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *exchangeServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/" }

func (s *exchangeServer) closeCodes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.codes...)
}

func compress(t *testing.T, format string, p []byte) []byte {
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch format {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "zlib":
		w = zlib.NewWriter(&b)
	default:
		fw, err := flate.NewWriter(&b, flate.DefaultCompression)
		if err != nil {
			t.Error(err)
			return nil
		}
		w = fw
	}
	_, _ = w.Write(p)
	_ = w.Close()
	return b.Bytes()
}

// Ensure permessage_deflate is negotiated and shown in List; with decode_binary AUTO the
// gzip, zlib and raw-deflate frames a server sends are published and watched as the decoded
// bytes (text frames untouched); a Send is answered by a gzip'd reply matched by its JSON id;
// and a decompression bomb closes the socket with 1009, is counted in List and /metrics, and
// the connection comes back by itself.
func TestCompressionEndToEnd(t *testing.T) {
	ws := newExchangeServer(t)
	topic := env.topics[0]
	before := scrape(t, env.httpURL)
	id := connectWith(t, &pb.ConnectRequest{Url: ws.url(), AutoReconnect: true, PermessageDeflate: true,
		DecodeBinary: pb.FrameDecoding_FRAME_DECODING_AUTO, MaxDecodedBytes: 1 << 20,
		Reconnect: &pb.ReconnectPolicy{InitialBackoffMs: 100, MaxBackoffMs: 500}})
	plain := connectWith(t, &pb.ConnectRequest{Url: ws.url()})
	c := find(t, id)
	require.NotNil(t, c)
	assert.True(t, c.GetCompression(), "permessage-deflate negotiated")
	assert.False(t, find(t, plain).GetCompression(), "not asked for, not negotiated")

	_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic})
	require.NoError(t, err)
	// From sequence 0: everything retained, so no frame is missed however soon the watch
	// registers (the server pushes nothing before "push").
	w := openWatch(t, env.client, &pb.WatchFramesRequest{Id: id, FromSequence: new(uint64)}).read()
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "push"})
	require.NoError(t, err)

	for i := range ws.books {
		f := w.next(waitFor)
		assert.Equal(t, string(ws.books[i]), string(f.GetBinary()), "watched frame %d decoded", i)
	}
	assert.Equal(t, "plain text", w.next(waitFor).GetText())
	var published []string
	require.Eventually(t, func() bool {
		published = published[:0]
		for _, ev := range env.events.all(topic, id) {
			if ev.DataBase64 != "" {
				b, err := base64.StdEncoding.DecodeString(ev.DataBase64)
				require.NoError(t, err)
				published = append(published, string(b))
			}
		}
		return len(published) >= 3
	}, waitFor, 20*time.Millisecond, "the three binary frames must be published")
	for i := range ws.books {
		assert.Equal(t, string(ws.books[i]), published[i], "published frame %d decoded", i)
	}

	resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: `{"id":"7","op":"sub"}`, TimeoutMs: 5000})
	require.NoError(t, err)
	assert.True(t, resp.GetBinary())
	assert.JSONEq(t, `{"id":"7","status":"ok"}`, string(resp.GetBinaryResponse()))

	// The bomb: 64 KiB on the wire, 64 MiB inflated; refused after 1 MiB.
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "bomb"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(ws.closeCodes()) > 0 }, waitFor, 20*time.Millisecond)
	assert.Equal(t, websocket.CloseMessageTooBig, ws.closeCodes()[0])
	c = waitFor_(t, id, func(c *pb.WebSocketConnection) bool {
		return c.GetReconnectCount() >= 1 && c.GetStatus() == pb.ConnectionStatus_CONNECTED
	}, "the connection must come back after the bomb")
	assert.Equal(t, int64(1), c.GetDecodeRefused())
	assert.Contains(t, c.GetLastError(), "closed with 1009")
	assert.True(t, c.GetCompression(), "negotiated again on the new socket")
	after := scrape(t, env.httpURL)
	const metric = `wsmanager_decode_refused_total{reason="too_large"}`
	assert.GreaterOrEqual(t, after[metric]-before[metric], 1.0, "%s", metric)
	assert.Contains(t, after, `wsmanager_decode_refused_total{reason="corrupt"}`)
}

// Ensure a bad decode_binary or max_decoded_bytes is refused with INVALID_ARGUMENT naming it.
func TestCompressionValidation(t *testing.T) {
	ws := newExchangeServer(t)
	for _, tc := range []struct {
		req  *pb.ConnectRequest
		want string
	}{
		{&pb.ConnectRequest{Url: ws.url(), DecodeBinary: pb.FrameDecoding(42)}, `decode_binary: "42" is not one of`},
		{&pb.ConnectRequest{Url: ws.url(), MaxDecodedBytes: 1 << 30}, "max_decoded_bytes 1073741824 is outside 0..67108864"},
	} {
		_, err := env.client.Connect(callCtx(t), tc.req)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "InvalidArgument")
		assert.Contains(t, err.Error(), tc.want)
	}
}
