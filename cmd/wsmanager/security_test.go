package main_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
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
	require.NoError(t, rs.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}))
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
