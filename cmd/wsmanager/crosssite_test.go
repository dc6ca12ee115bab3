//go:build integration

package main_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// Ensure a web page cannot use the HTTP API across sites or by DNS rebinding: bodies a page
// may send without a CORS preflight, a foreign Origin and a Host that is not the service's are
// refused before anything runs (no dial), while JSON from non-browser clients, the allowed
// origin and loopback names keep working, and the probes answer any Host.
//
// The refused requests carry the API token: the shared stack has tokens on, and the default
// (no tokens) is what the attack exploits, so authentication must not be what stops them.
func TestCrossSiteRequestsRefused(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	connectBody := `{"url":"` + ws.URL("/echo") + `"}`
	port := mustPort(t, env.httpURL)

	type call struct {
		method, path, body string
		headers            map[string]string
		host               string // "" keeps 127.0.0.1:<port>
	}
	do := func(t *testing.T, c call) (int, string) {
		t.Helper()
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequestWithContext(callCtx(t), c.method, env.httpURL+c.path, body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+env.apiToken)
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		if c.host != "" {
			req.Host = c.host
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	message := func(t *testing.T, body string) string {
		t.Helper()
		var out struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &out), "a refusal carries a JSON error body: %s", body)
		return out.Message
	}

	refused := []struct {
		name     string
		c        call
		want     int
		mentions string
	}{
		{"text/plain POST", call{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "text/plain;charset=UTF-8"}}, 415, "application/json"},
		{"form POST", call{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "application/json"},
		{"multipart POST", call{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}}, 415, "application/json"},
		{"POST without Content-Type", call{method: "POST", path: "/v1/connect", body: connectBody}, 415, "no Content-Type"},
		{"two Content-Types", call{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "application/json, text/plain"}}, 415, "Content-Type"},
		{"text/plain on the Connect protocol path", call{method: "POST", path: "/websocketmanager.v1.WebSocketManager/Connect", body: connectBody,
			headers: map[string]string{"Content-Type": "text/plain", "Connect-Protocol-Version": "1"}}, 415, "application/connect+json"},
		{"foreign Origin, JSON", call{method: "POST", path: "/v1/connect", body: connectBody,
			headers: map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}}, 403, "--cors-allowed-origins"},
		{"foreign Origin, Connect protocol", call{method: "POST", path: "/websocketmanager.v1.WebSocketManager/Connect", body: connectBody,
			headers: map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1", "Origin": "https://evil.example"}}, 403, "--cors-allowed-origins"},
		{"null Origin", call{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "application/json", "Origin": "null"}}, 403, "--cors-allowed-origins"},
		{"rebound Host, JSON Connect", call{method: "POST", path: "/v1/connect", body: connectBody,
			headers: map[string]string{"Content-Type": "application/json"}, host: "attacker.example:" + port}, 421, "--allowed-hosts"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, tt.c)
			assert.Equal(t, tt.want, status, "%s", body)
			assert.Contains(t, message(t, body), tt.mentions)
		})
	}

	t.Run("rebound Host cannot read List", func(t *testing.T) {
		status, body := do(t, call{method: "GET", path: "/v1/connections", host: "attacker.example:" + port})
		assert.Equal(t, http.StatusMisdirectedRequest, status, "%s", body)
		assert.NotContains(t, body, "connections")
		assert.Contains(t, message(t, body), "--allowed-hosts")
		status, body = do(t, call{method: "GET", path: "/metrics", host: "attacker.example:" + port})
		assert.Equal(t, http.StatusMisdirectedRequest, status, "%s", body)
	})

	t.Run("foreign Origin cannot read List", func(t *testing.T) {
		status, body := do(t, call{method: "GET", path: "/v1/connections", headers: map[string]string{"Origin": "https://evil.example"}})
		assert.Equal(t, http.StatusForbidden, status, "%s", body)
		status, body = do(t, call{method: "GET", path: "/v1/connections", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}})
		assert.Equal(t, http.StatusForbidden, status, "%s", body)
	})

	t.Run("the gRPC port speaks no HTTP/1", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", env.grpcAddr, 5*time.Second)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(c, "POST /v1/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nAuthorization: Bearer "+env.apiToken+
			"\r\nContent-Length: "+strconv.Itoa(len(connectBody))+"\r\n\r\n"+connectBody)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
		}
		assert.Error(t, err, "the gRPC port must not answer HTTP/1 requests")
	})

	// Nothing above dialed: the one legitimate Connect below is the server's first socket.
	require.Zero(t, ws.Accepted(), "a refused request made the service dial")

	t.Run("legitimate calls still work", func(t *testing.T) {
		for _, c := range []call{
			{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "application/json"}},
			{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "application/json; charset=utf-8", "Origin": allowedOrigin}},
			{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "Application/JSON"}, host: "LOCALHOST.:" + port},
			{method: "POST", path: "/v1/connect", body: connectBody, headers: map[string]string{"Content-Type": "application/json"}, host: "[::1]:" + port},
		} {
			status, body := do(t, c)
			require.Equal(t, http.StatusOK, status, "%+v: %s", c, body)
			var out struct{ ConnectionID string }
			require.NoError(t, json.Unmarshal([]byte(body), &out))
			t.Cleanup(func() { _, _ = do(t, call{method: "DELETE", path: "/v1/connections/" + out.ConnectionID}) })
		}
		assert.Equal(t, 4, ws.Accepted())
		for _, c := range []call{
			{method: "GET", path: "/v1/connections", host: "localhost:" + port},
			{method: "GET", path: "/v1/connections", headers: map[string]string{"Origin": allowedOrigin}},
			{method: "GET", path: "/v1/connections", headers: map[string]string{"Sec-Fetch-Site": "none"}}, // typed into the address bar
			{method: "GET", path: "/healthz", host: "attacker.example:" + port, headers: map[string]string{"Origin": "https://evil.example"}},
			{method: "GET", path: "/readyz", host: "10.11.12.13:" + port}, // kubelet sends the pod IP
		} {
			status, body := do(t, c)
			assert.Equal(t, http.StatusOK, status, "%+v: %s", c, body)
		}
	})
}

func mustPort(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return u.Port()
}
