//go:build integration

package main_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// allowedOrigin is the one origin the e2e service lets call it from a page.
const allowedOrigin = "https://app.example"

// Ensure the HTTP port speaks the Connect protocol and gRPC-Web for the same service (what
// @connectrpc/connect-web uses from a page), with the API's authentication, and answers CORS
// only for the configured origin.
func TestBrowserProtocols(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/echo"))
	post := func(path, contentType string, body []byte, headers map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(callCtx(t), http.MethodPost, env.httpURL+"/websocketmanager.v1.WebSocketManager/"+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	auth := map[string]string{"Authorization": "Bearer " + env.apiToken}
	connectAuth := map[string]string{"Authorization": "Bearer " + env.apiToken, "Connect-Protocol-Version": "1"}

	t.Run("Connect protocol, JSON", func(t *testing.T) {
		resp, body := post("Send", "application/json", []byte(`{"id":"`+id+`","message":"Hello WebSocket!","timeoutMs":5000}`), connectAuth)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var out struct{ Response string }
		require.NoError(t, json.Unmarshal(body, &out))
		assert.Equal(t, "Hello WebSocket!", out.Response)

		resp, body = post("List", "application/json", []byte(`{}`), map[string]string{"Connect-Protocol-Version": "1"})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", body)
		assert.Contains(t, string(body), `"code":"unauthenticated"`)
	})

	t.Run("gRPC-Web", func(t *testing.T) {
		msg, err := proto.Marshal(&pb.SendRequest{Id: id, Message: "via grpc-web", TimeoutMs: 5000})
		require.NoError(t, err)
		frame := append([]byte{0, 0, 0, 0, 0}, msg...)
		binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
		resp, body := post("Send", "application/grpc-web+proto", frame, auth)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Greater(t, len(body), 5)
		n := binary.BigEndian.Uint32(body[1:5])
		var out pb.SendResponse
		require.NoError(t, proto.Unmarshal(body[5:5+n], &out))
		assert.Equal(t, "via grpc-web", out.GetResponse())
		assert.Regexp(t, `(?i)grpc-status: ?0\r\n`, string(body[5+n:]), "the trailer frame reports success")
	})

	t.Run("CORS", func(t *testing.T) {
		preflight := func(origin string) *http.Response {
			req, err := http.NewRequestWithContext(callCtx(t), http.MethodOptions, env.httpURL+"/websocketmanager.v1.WebSocketManager/List", nil)
			require.NoError(t, err)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,authorization,connect-protocol-version")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			return resp
		}
		ok := preflight(allowedOrigin)
		assert.Equal(t, http.StatusNoContent, ok.StatusCode)
		assert.Equal(t, allowedOrigin, ok.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, strings.ToLower(ok.Header.Get("Access-Control-Allow-Headers")), "authorization")
		other := preflight("https://evil.example")
		assert.Empty(t, other.Header.Get("Access-Control-Allow-Origin"), "no cross-origin access for other origins")
	})
}
