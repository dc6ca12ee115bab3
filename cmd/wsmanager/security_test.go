//go:build integration

package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// deniedLoopback is a loopback address the e2e service denies although it allows loopback.
const deniedLoopback = "127.0.0.2"

// Ensure the SSRF guard refuses special-range targets by default and deny-list entries, with
// PERMISSION_DENIED naming the rule, keeps nothing, and never follows a redirect.
func TestSSRFGuard(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	tests := []struct {
		name, url string
		code      codes.Code
		want      string
	}{
		{"cloud metadata address", "ws://169.254.169.254/latest/meta-data", codes.PermissionDenied, "link-local"},
		{"private network", "ws://10.0.0.1:8080/", codes.PermissionDenied, "private (RFC 1918)"},
		{"IPv6 unique local", "ws://[fd00::1]:8080/", codes.PermissionDenied, "unique local"},
		{"unspecified address", "ws://0.0.0.0:8080/", codes.PermissionDenied, "unspecified"},
		{"deny-list entry beats the loopback allow-list", "ws://" + deniedLoopback + ":9/", codes.PermissionDenied, `deny-list entry "` + deniedLoopback + `/32"`},
		// A redirect is never followed, whatever its target: the handshake fails.
		{"redirect to metadata", ws.URL("/redirect?to=http://169.254.169.254/"), codes.Unavailable, "HTTP 302"},
		{"redirect to an allowed server", ws.URL("/redirect?to=" + ws.URL("/echo")), codes.Unavailable, "HTTP 302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "ssrf-" + uuid.NewString()[:8]
			_, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: tt.url, AutoReconnect: true, ConnectionId: id})
			require.Equal(t, tt.code, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), tt.want)
			assert.Nil(t, find(t, id), "a refused Connect keeps nothing")
		})
	}
}

// Ensure the API requires the bearer token on gRPC (reflection included) and REST, compared
// exactly, while health checks stay open.
func TestAuthentication(t *testing.T) {
	plain, err := grpc.NewClient(env.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer plain.Close()
	anon := pb.NewWebSocketManagerClient(plain)
	ctx := callCtx(t)

	_, err = anon.List(ctx, &pb.ListRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "authorization: Bearer")
	for _, bad := range []string{"Bearer wrong", "Bearer " + env.apiToken + "x", "Bearer " + env.apiToken[:len(env.apiToken)-1], "Basic " + env.apiToken, env.apiToken} {
		_, err = anon.List(metadata.AppendToOutgoingContext(ctx, "authorization", bad), &pb.ListRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%q: %v", bad, err)
	}
	_, err = anon.List(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+env.apiToken), &pb.ListRequest{})
	require.NoError(t, err)

	// Health stays open; reflection does not.
	h, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	rs, err := reflectpb.NewServerReflectionClient(plain).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	// The server may end the stream before the request is sent: Send then reports io.EOF and
	// Recv the status.
	if err := rs.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); !errors.Is(err, io.EOF) {
		require.NoError(t, err)
	}
	_, err = rs.Recv()
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	// REST: the same token in the Authorization header.
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"no token", "/v1/connections", "", http.StatusUnauthorized},
		{"wrong token", "/v1/connections", "Bearer nope", http.StatusUnauthorized},
		{"right token", "/v1/connections", "Bearer " + env.apiToken, http.StatusOK},
		{"health needs none", "/healthz", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run("REST "+tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.httpURL+tt.path, nil)
			require.NoError(t, err)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tt.want, resp.StatusCode, "%s", body)
			if tt.want == http.StatusUnauthorized {
				assert.Contains(t, string(body), "token")
			}
		})
	}
}

// Ensure the actor host answers only daprd (the app API token), and that the service reaches
// its sidecar only with Dapr's API token (every other test works, and the sidecar refuses
// calls without it).
func TestActorHostAndSidecarTokens(t *testing.T) {
	ctx := callCtx(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", env.actorPort)
	do := func(method, path, token string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader("{}"))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("dapr-api-token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, do(http.MethodGet, "/dapr/config", ""))
	assert.Equal(t, http.StatusUnauthorized, do(http.MethodPut, "/actors/WebSocketConnection/x/method/get", ""))
	assert.Equal(t, http.StatusUnauthorized, do(http.MethodPut, "/actors/WebSocketConnection/x/method/get", env.appToken+"x"))
	assert.Equal(t, http.StatusUnauthorized, do(http.MethodDelete, "/actors/WebSocketConnection/x", "wrong"))
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/dapr/config", env.appToken))
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/healthz", ""))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata", env.daprdHTTPPort), nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the sidecar must require DAPR_API_TOKEN, or this test proves nothing")
}

// maxMessage is the e2e service's --max-outbound-message-bytes.
const maxMessage = 256 << 10

// Ensure the outbound message size and the Sends waiting on one connection are limited, with
// INVALID_ARGUMENT and RESOURCE_EXHAUSTED, through gRPC and REST.
func TestLimitsThroughTheAPI(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/jsonrpc?cid=limits"))
	ctx := callCtx(t)

	big := strings.Repeat("x", maxMessage+1)
	_, err := env.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: big})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "--max-outbound-message-bytes")
	_, err = env.client.Send(ctx, &pb.SendRequest{Id: id, BinaryMessage: []byte(big), TimeoutMs: 1000})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	var out map[string]any
	rest(t, http.MethodPost, "/v1/connections/"+id+"/sendraw", map[string]any{"message": big}, http.StatusBadRequest, &out)
	_, err = env.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: big[:maxMessage]})
	require.NoError(t, err, "a message of exactly the limit goes through")

	// 40 Sends the server answers after 1 s, on a connection that lets 32 wait.
	var wg sync.WaitGroup
	var exhausted, answered atomic.Int32
	for i := range 40 {
		wg.Go(func() {
			_, err := env.client.Send(ctx, &pb.SendRequest{Id: id, Message: fmt.Sprintf(`{"id":"p%d","delay_ms":1000}`, i), TimeoutMs: 10000})
			switch status.Code(err) {
			case codes.OK:
				answered.Add(1)
			case codes.ResourceExhausted:
				exhausted.Add(1)
				assert.Contains(t, status.Convert(err).Message(), "--max-pending-sends")
			default:
				t.Errorf("unexpected: %v", err)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 32, answered.Load())
	assert.EqualValues(t, 8, exhausted.Load())
}

// Ensure REST answers bad requests with 400 and a message that says what is wrong.
func TestRESTRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, path, body, want string
	}{
		{"malformed JSON", "/v1/connect", `{"url":`, "unexpected EOF"},
		{"wrong type", "/v1/connect", `{"url": 5}`, "url"},
		{"unknown field", "/v1/connect", `{"url":"ws://127.0.0.1:1/","bogus":1}`, "bogus"},
		{"not JSON at all", "/v1/connections/x/send", `hello`, "invalid"},
		{"huge body", "/v1/connect", `{"url":"` + strings.Repeat("a", 4*maxMessage+(4<<20)) + `"}`, "too large"},
		{"invalid URL", "/v1/connect", `{"url":"http://example.com/"}`, "scheme must be ws or wss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(callCtx(t), http.MethodPost, env.httpURL+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+env.apiToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", body)
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			assert.Contains(t, e.Message, tt.want)
		})
	}
}

// Ensure handshake headers and URL credentials reach the server but never leak: not in List
// (gRPC or REST), not in the service's log (at debug level), not in lifecycle events, not in
// published envelopes.
func TestSecretsDoNotLeak(t *testing.T) {
	const hdrSecret, pwSecret = "hdr-secret-4f1c9", "pw-secret-9b7e2"
	ws := sessiontest.NewServer(t, time.Hour)
	withHeader := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/drop?after=1&cid=sec-h"), AutoReconnect: true,
		Headers: map[string]string{"Authorization": "Bearer " + hdrSecret, "X-Api-Key": hdrSecret}})
	withCreds := connectWith(t, &pb.ConnectRequest{Url: strings.Replace(ws.URL("/echo?cid=sec-u"), "ws://", "ws://feeduser:"+pwSecret+"@", 1)})
	assert.Equal(t, "Bearer "+hdrSecret, ws.Stats("sec-h").Authorization, "the header reached the server")
	assert.Contains(t, ws.Stats("sec-u").Authorization, "Basic ", "the URL credentials reached the server")

	ctx := callCtx(t)
	topic := env.topics[1]
	for _, id := range []string{withHeader, withCreds} {
		_, err := env.client.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: topic})
		require.NoError(t, err)
		_, err = env.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "frame of " + id})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return len(env.events.frames(topic, withHeader)) > 0 && len(env.events.frames(topic, withCreds)) > 0
	}, waitFor, 20*time.Millisecond)
	// The server drops withHeader after its first frame: the service reconnects with the stored
	// headers (more lifecycle events, more logs).
	require.Eventually(t, func() bool { return find(t, withHeader).GetReconnectCount() >= 1 }, waitFor, 20*time.Millisecond)

	list, err := env.client.List(ctx, &pb.ListRequest{})
	require.NoError(t, err)
	var restList map[string]any
	rest(t, http.MethodGet, "/v1/connections", nil, http.StatusOK, &restList)
	restJSON, _ := json.Marshal(restList)
	places := map[string]string{
		"gRPC List":          list.String(),
		"REST List":          string(restJSON),
		"service log":        env.logs(),
		"lifecycle events":   strings.Join(env.events.bodies(env.lifecycle), "\n"),
		"published envelope": strings.Join(env.events.bodies(topic), "\n"),
	}
	for where, text := range places {
		for _, secret := range []string{hdrSecret, pwSecret} {
			assert.NotContains(t, text, secret, "%s leaks a secret", where)
		}
	}
	assert.Contains(t, places["published envelope"], "connectionurl", "the envelope carries the (redacted) URL")
	assert.Equal(t, "Bearer "+hdrSecret, ws.Stats("sec-h").Authorization, "the reconnect sent the header again")
}

// Ensure a planned stop (SIGTERM to the service and its sidecar, as Kubernetes does) lets a
// Send in flight finish, closes the sockets with a close frame, and publishes every frame the
// service had received: none is dropped.
func TestGracefulShutdown(t *testing.T) {
	const pushed = 1500
	ws := sessiontest.NewServer(t, time.Hour)
	topic := "shutdown-" + uuid.NewString()[:8]
	c := newCluster(t, topic)
	// --max-connections 2 and --metrics-auth: the instance also shows its connection limit
	// and protected metrics (below).
	c.extraArgs = []string{"--publish-buffer", "5000", "--max-connections", "2", "--metrics-auth"}
	a := c.start("a")
	metrics := func(token string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+a.httpAddr+"/metrics", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, metrics(""), "--metrics-auth: /metrics needs the token")
	assert.Equal(t, http.StatusUnauthorized, metrics("wrong"))
	assert.Equal(t, http.StatusOK, metrics(clusterToken))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	connectVia(t, a, &pb.ConnectRequest{Url: ws.URL("/jsonrpc?cid=gs-send"), ConnectionId: "gs-send"})
	connectVia(t, a, &pb.ConnectRequest{Url: ws.URL(fmt.Sprintf("/pushn?n=%d&cid=gs-pub", pushed)), ConnectionId: "gs-pub"})
	_, err := a.client.StartPublish(ctx, &pb.StartPublishRequest{Id: "gs-pub", Topic: topic})
	require.NoError(t, err)
	_, err = a.client.Connect(ctx, &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: "gs-third"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "a third socket is beyond --max-connections: %v", err)
	assert.Contains(t, status.Convert(err).Message(), "--max-connections")

	reply := make(chan error, 1)
	go func() {
		resp, err := a.client.Send(ctx, &pb.SendRequest{Id: "gs-send", Message: `{"id":"slow","delay_ms":1500}`, TimeoutMs: 10000})
		if err == nil && !strings.Contains(resp.GetResponse(), `"slow"`) {
			err = fmt.Errorf("unexpected reply %q", resp.GetResponse())
		}
		reply <- err
	}()
	// The same over REST: HTTP calls reach the gRPC server through its ServeHTTP, which a
	// graceful stop of the gRPC server alone would cut off.
	restReply := make(chan error, 1)
	go func() {
		body := strings.NewReader(`{"message":"{\"id\":\"slow-rest\",\"delay_ms\":1500}","timeoutMs":10000}`)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.httpAddr+"/v1/connections/gs-send/send", body)
		if err != nil {
			restReply <- err
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+clusterToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			restReply <- err
			return
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), "slow-rest") {
			err = fmt.Errorf("REST Send answered %d %s", resp.StatusCode, out)
		}
		restReply <- err
	}()
	require.Eventually(t, func() bool { return len(ws.Stats("gs-send").Received) == 2 }, waitFor, 5*time.Millisecond)
	_, err = a.client.SendRaw(ctx, &pb.SendRawRequest{Id: "gs-pub", Message: "go"}) // the server pushes its frames now
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(c.events.frames(topic, "gs-pub")) > 0 }, waitFor, 5*time.Millisecond)
	// The server echoes only after it pushed every frame: once this Send has its reply, the
	// service has read them all (most are still to be published at the SIGTERM below).
	r, err := a.client.Send(ctx, &pb.SendRequest{Id: "gs-pub", Message: `{"id":"all-read"}`, TimeoutMs: 10000})
	require.NoError(t, err)
	require.Contains(t, r.GetResponse(), "all-read")
	t.Logf("at SIGTERM %d of %d frames are at the subscriber", len(c.events.frames(topic, "gs-pub")), pushed)

	c.stop("a") // returns once both processes have exited
	require.NoError(t, <-reply, "the Send in flight at SIGTERM gets its reply")
	require.NoError(t, <-restReply, "the REST Send in flight at SIGTERM gets its reply")
	for _, cid := range []string{"gs-send", "gs-pub"} {
		assert.Contains(t, ws.Stats(cid).CloseCodes, 1001, "%s: closed with a close frame", cid)
	}
	// Every frame the service received before it stopped was published (delivery may trail).
	require.Eventually(t, func() bool { return len(c.events.frames(topic, "gs-pub")) >= pushed }, waitFor, 20*time.Millisecond,
		"published %d of %d frames", len(c.events.frames(topic, "gs-pub")), pushed)
}
