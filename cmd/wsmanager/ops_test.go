//go:build integration

package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// scrape reads /metrics and returns every sample by its full name with labels, e.g.
// `wsmanager_sends_total{outcome="OK"}`.
func scrape(t *testing.T, baseURL string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// Ensure /metrics shows what the service does, moving as it works, and /readyz and the
// gRPC health service say the instance is ready.
func TestMetricsAndReadiness(t *testing.T) {
	resp, err := http.Get(env.httpURL + "/readyz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.JSONEq(t, `{"ready":true,"reason":"ready"}`, string(body))
	h, err := healthpb.NewHealthClient(env.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "websocketmanager.v1.WebSocketManager"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())

	before := scrape(t, env.httpURL) // no token needed: the e2e service does not set --metrics-auth
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/echo"))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for range 3 {
		_, err := env.client.Send(ctx, &pb.SendRequest{Id: id, Message: "count me", TimeoutMs: 5000})
		require.NoError(t, err)
	}
	_, err = env.client.Send(ctx, &pb.SendRequest{Id: "no-such-connection", Message: "x", TimeoutMs: 1000})
	require.Error(t, err)
	after := scrape(t, env.httpURL)
	moved := func(name string) float64 { return after[name] - before[name] }

	assert.GreaterOrEqual(t, after[`wsmanager_connections{status="connected"}`], 1.0)
	assert.GreaterOrEqual(t, after[`wsmanager_connections_held`], 1.0)
	assert.GreaterOrEqual(t, moved(`wsmanager_sends_total{outcome="OK"}`), 3.0)
	assert.GreaterOrEqual(t, moved(`wsmanager_sends_total{outcome="NotFound"}`), 1.0)
	assert.GreaterOrEqual(t, moved(`wsmanager_send_duration_seconds_count`), 4.0)
	assert.GreaterOrEqual(t, moved(`wsmanager_frames_sent_total{type="text"}`), 3.0)
	assert.GreaterOrEqual(t, moved(`wsmanager_frames_received_total{type="text"}`), 3.0)
	assert.GreaterOrEqual(t, moved(`wsmanager_sent_bytes_total`), float64(3*len("count me")))
	assert.GreaterOrEqual(t, moved(`wsmanager_api_requests_total{code="OK",method="Connect"}`), 1.0)
	assert.GreaterOrEqual(t, moved(`wsmanager_actor_calls_total{actor_type="WebSocketConnection",method="Connect",outcome="ok"}`), 1.0)
	// A Connect records itself in the directory with AddMany (the Adds of a moment together).
	assert.GreaterOrEqual(t, moved(`wsmanager_actor_calls_total{actor_type="WebSocketConnectionDirectory",method="AddMany",outcome="ok"}`), 1.0)
	for _, name := range []string{`wsmanager_reconnects_total`, `wsmanager_publish_dropped_frames_total{reason="buffer_full"}`,
		`wsmanager_publish_dropped_frames_total{reason="too_large"}`, `wsmanager_publish_buffered_bytes`,
		`wsmanager_publish_failures_total`, `wsmanager_publish_duration_seconds_count`, `go_goroutines`, `process_resident_memory_bytes`} {
		_, ok := after[name]
		assert.True(t, ok, "%s is exported", name)
	}

	// Every metric the Grafana dashboard queries is one the service exports.
	dash, err := os.ReadFile(filepath.Join(env.root, "deploy", "grafana", "wsmanager-dashboard.json"))
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(dash, &d))
	exported := map[string]bool{}
	for name := range after {
		exported[strings.SplitN(name, "{", 2)[0]] = true
	}
	metricName := regexp.MustCompile(`\b(wsmanager|process|go)_[a-z_]+`)
	queried := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				queried++
				assert.True(t, exported[m], "panel %q queries %s, which the service does not export", p.Title, m)
			}
		}
	}
	assert.Greater(t, queried, 10)
}

// Ensure the caller's W3C trace context is continued: in the service's logs of the call, on
// the Dapr actor call it makes (the actor host receives the same trace id from daprd), and
// back to the caller — for gRPC and REST.
func TestTraceContext(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/echo"))
	traceOf := func(i int) string { return fmt.Sprintf("%032x", 0xabc0000+i) }
	loggedBoth := func(trace string) bool {
		var rpc, actor bool
		for _, line := range strings.Split(env.logs(), "\n") {
			if strings.Contains(line, `"trace_id":"`+trace+`"`) {
				rpc = rpc || strings.Contains(line, `"logger":"rpc"`)
				actor = actor || strings.Contains(line, `"msg":"actor call"`)
			}
		}
		return rpc && actor
	}

	trace := traceOf(1)
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	_, err := env.client.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: env.topics[0]}, grpc.Header(&hdr))
	require.NoError(t, err)
	require.NotEmpty(t, hdr.Get("traceparent"))
	assert.Contains(t, hdr.Get("traceparent")[0], trace, "the caller gets the trace back")
	require.Eventually(t, func() bool { return loggedBoth(trace) }, waitFor, 50*time.Millisecond,
		"the gRPC call and the actor call it made are logged with the caller's trace id")

	trace = traceOf(2)
	req, err := http.NewRequestWithContext(callCtx(t), http.MethodDelete, env.httpURL+"/v1/connections/"+id+"/publish", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+env.apiToken)
	req.Header.Set("traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return loggedBoth(trace) }, waitFor, 50*time.Millisecond, "the same through REST")
}
