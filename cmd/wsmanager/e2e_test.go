//go:build integration

package main_test

// End-to-end tests: the real service binary (built with -race) beside a real daprd, placement
// and scheduler, driven over gRPC and REST against real WebSocket servers. Published frames
// travel through Redis pub/sub to a second daprd whose app is this test process.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

const waitFor = 20 * time.Second

// env is the stack shared by the tests of this package (started once in TestMain).
var env struct {
	grpcAddr string
	httpURL  string
	client   pb.WebSocketManagerClient
	conn     *grpc.ClientConn
	service  *daprstack.Proc
	topics   [2]string
	events   *eventSink
	// lifecycle is the service's lifecycle topic; extra holds more topics the consumer subscribes.
	lifecycle string
	extra     map[string]string
	consumer  *daprstack.Daprd
	// For tests that build their own multi-instance stack.
	root, svcBin, tmp string
	// The service runs with every token on: its API (apiToken), its actor host (appToken, sent
	// by daprd) and its sidecar's API (daprToken).
	apiToken, appToken, daprToken string
	actorPort, daprdHTTPPort      int
	daprd                         *daprstack.Daprd // the service's sidecar
	logs                          func() string
}

// bearerCreds sends the API token on every call of the shared client.
type bearerCreds string

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerCreds) RequireTransportSecurity() bool { return false }

func TestMain(m *testing.M) {
	code, err := runMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runMain(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := daprstack.RepoRoot()
	if err != nil {
		return 0, err
	}
	// Never skip: build the runtime if it is missing (minutes the first time).
	if err := daprstack.EnsureBinaries(ctx, root, os.Stderr); err != nil {
		return 0, err
	}
	if err := daprstack.EnsureRedis(ctx); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "wsmanager-e2e-")
	if err != nil {
		return 0, err
	}
	defer func() {
		if os.Getenv("WSM_KEEP_TEST_DIR") == "" {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "test files kept in", dir)
		}
	}()
	svcBin := filepath.Join(dir, "wsmanager")
	env.root, env.svcBin, env.tmp = root, svcBin, dir
	build := exec.CommandContext(ctx, "go", "build", "-race", "-o", svcBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("build the service: %w", err)
	}

	st, err := daprstack.NewStack(filepath.Join(dir, "stack"))
	if err != nil {
		return 0, err
	}
	defer st.Stop()
	bin := daprstack.BinDir(root)
	rt, err := st.StartRuntime(ctx, bin, 0, 0)
	if err != nil {
		return 0, err
	}

	run := uuid.NewString()[:8]
	env.topics = [2]string{"e2e-" + run + "-a", "e2e-" + run + "-b"}
	env.lifecycle = "e2e-" + run + "-lifecycle"
	env.extra = map[string]string{}
	for _, name := range []string{"types", "replace1", "replace2", "reconnect", "answered"} {
		env.extra[name] = "e2e-" + run + "-" + name
	}
	subscribed := append([]string{env.topics[0], env.topics[1], env.lifecycle}, mapValues(env.extra)...)
	res, err := writeComponents(dir)
	if err != nil {
		return 0, err
	}

	// The consumer: a daprd whose app (this process) subscribes to both topics.
	env.events = newEventSink()
	consumerL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	consumerSrv := &http.Server{Handler: env.events.handler(subscribed), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = consumerSrv.Serve(consumerL) }()
	defer consumerSrv.Close()
	env.consumer, err = st.StartDaprd(bin, rt, daprstack.DaprdOptions{Name: "daprd-consumer", AppID: "e2e-consumer-" + run,
		AppPort: consumerL.Addr().(*net.TCPAddr).Port, ResourcesPath: filepath.Join(res, "consumer")})
	if err != nil {
		return 0, err
	}

	env.apiToken, env.appToken, env.daprToken = "api-"+uuid.NewString(), "app-"+uuid.NewString(), "dapr-"+uuid.NewString()
	// A free port can be taken by another process between choosing and binding it (the machine
	// churns through ephemeral ports), so a start whose sidecar or service exits is tried again.
	for attempt := 1; ; attempt++ {
		err = startService(ctx, st, bin, rt, res, run, svcBin, attempt)
		if err == nil {
			break
		}
		if attempt == 3 {
			return 0, err
		}
		fmt.Fprintf(os.Stderr, "e2e setup: starting the service, attempt %d: %v\n", attempt, err)
	}
	if err := env.consumer.WaitSubscriptions(ctx, len(subscribed)); err != nil {
		return 0, err
	}
	env.logs = env.service.Log
	env.conn, err = grpc.NewClient(env.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearerCreds(env.apiToken)))
	if err != nil {
		return 0, err
	}
	defer env.conn.Close()
	env.client = pb.NewWebSocketManagerClient(env.conn)

	code := m.Run()

	env.service.Stop(20 * time.Second)
	if log := env.service.Log(); strings.Contains(log, "WARNING: DATA RACE") || strings.Contains(log, "panic:") {
		fmt.Fprintln(os.Stderr, "the service reported a data race or panic:\n"+log)
		code = 1
	} else if code != 0 {
		fmt.Fprintln(os.Stderr, "service log:\n"+lastLines(env.service.Log(), 80))
	}
	return code, nil
}

// startService starts the service's sidecar and the service (attempt names their logs) and
// waits until the sidecar hosts its actors.
func startService(ctx context.Context, st *daprstack.Stack, bin string, rt *daprstack.Runtime, res, run, svcBin string, attempt int) error {
	ports, err := daprstack.FreePorts(3)
	if err != nil {
		return err
	}
	env.actorPort = ports[2]
	d, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{Name: fmt.Sprintf("daprd-%d", attempt), AppID: "wsmanager-e2e-" + run,
		AppPort: ports[2], ResourcesPath: filepath.Join(res, "service"), APIToken: env.daprToken, AppToken: env.appToken})
	if err != nil {
		return err
	}
	env.daprdHTTPPort, env.daprd = d.HTTPPort, d
	o := svcargs.Options{
		GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: d.GRPCAddr(),
		LogLevel: "debug", LifecycleTopic: env.lifecycle,
		APITokens: []string{env.apiToken}, AppAPIToken: env.appToken, DaprAPIToken: env.daprToken,
		DialAllow: svcargs.Loopback,         // the tests' servers are on loopback, denied by default
		DialDeny:  []string{deniedLoopback}, // …except this one (TestSSRFGuard)
		// Short keepalive and backoff so that drops and reconnects happen within a test.
		PingInterval: 300 * time.Millisecond, PongTimeout: 500 * time.Millisecond,
		ReconnectInitial: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Extra: []string{
			"--cors-allowed-origins", allowedOrigin, // TestBrowserProtocols
			"--max-pending-sends", "32", "--max-outbound-message-bytes", strconv.Itoa(maxMessage), // TestLimitsThroughTheAPI
		},
	}
	env.service, err = st.Start(fmt.Sprintf("wsmanager-%d", attempt), o.Environ(), svcBin, o.Args()...)
	if err != nil {
		d.Kill()
		return err
	}
	env.grpcAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	env.httpURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := d.WaitActorsReady(ctx); err != nil {
		env.service.Kill()
		d.Kill()
		return err
	}
	// Ready as Kubernetes would see it: /readyz answers 200.
	if err := daprstack.WaitHTTP(ctx, env.service, env.httpURL+"/readyz"); err != nil {
		env.service.Kill()
		d.Kill()
		return err
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeComponents writes the Dapr components: the service gets an in-memory actor state store
// and Redis pub/sub; the consumer gets the same Redis pub/sub.
func writeComponents(dir string) (string, error) {
	res := filepath.Join(dir, "resources")
	pubsub := daprstack.RedisPubsub(daprstack.RedisAddr, false)
	if _, err := daprstack.WriteResources(filepath.Join(res, "service"), pubsub, daprstack.InMemoryActorStore()); err != nil {
		return "", err
	}
	if _, err := daprstack.WriteResources(filepath.Join(res, "consumer"), pubsub); err != nil {
		return "", err
	}
	return res, nil
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// cloudEvent is what the subscriber receives.
type cloudEvent struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      string          `json:"data_base64"`
	ConnectionID    string          `json:"connectionid"`
	ConnectionURL   string          `json:"connectionurl"`
	ReceivedAt      string          `json:"receivedat"`
	Sequence        string          `json:"sequence"`
}

// eventSink is the subscriber app behind the consumer daprd.
type eventSink struct {
	mu     sync.Mutex
	events map[string][]cloudEvent // topic → events in arrival order
	raw    map[string][]string     // topic → the bodies as delivered
}

func newEventSink() *eventSink {
	return &eventSink{events: map[string][]cloudEvent{}, raw: map[string][]string{}}
}

// bodies returns every event body delivered on topic, as received.
func (e *eventSink) bodies(topic string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.raw[topic]...)
}

// all returns the events of connection id received on topic ("" for every connection).
func (e *eventSink) all(topic, id string) []cloudEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []cloudEvent
	for _, ev := range e.events[topic] {
		if id == "" || ev.ConnectionID == id {
			out = append(out, ev)
		}
	}
	return out
}

// frames returns the payloads of connection id's frames received on topic.
func (e *eventSink) frames(topic, id string) []string {
	var out []string
	for _, ev := range e.all(topic, id) {
		var text string
		if json.Unmarshal(ev.Data, &text) != nil {
			text = string(ev.Data)
		}
		out = append(out, text)
	}
	return out
}

func (e *eventSink) handler(topics []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, _ *http.Request) {
		subs := []map[string]any{}
		for _, t := range topics {
			subs = append(subs, map[string]any{"pubsubname": "pubsub", "topic": t, "route": "/events/" + t})
		}
		_ = json.NewEncoder(w).Encode(subs)
	})
	mux.HandleFunc("POST /events/{topic}", func(w http.ResponseWriter, r *http.Request) {
		var ce cloudEvent
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &ce); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		e.events[r.PathValue("topic")] = append(e.events[r.PathValue("topic")], ce)
		e.raw[r.PathValue("topic")] = append(e.raw[r.PathValue("topic")], string(body))
		e.mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	})
	return mux
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string) string {
	t.Helper()
	resp, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: url})
	require.NoError(t, err)
	require.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus())
	require.NotEmpty(t, resp.GetConnectionId())
	t.Cleanup(func() {
		_, _ = env.client.Disconnect(context.Background(), &pb.DisconnectRequest{Id: resp.GetConnectionId()})
	})
	return resp.GetConnectionId()
}

func find(t *testing.T, id string) *pb.WebSocketConnection {
	t.Helper()
	list, err := env.client.List(callCtx(t), &pb.ListRequest{})
	require.NoError(t, err)
	for _, c := range list.GetConnections() {
		if c.GetId() == id {
			return c
		}
	}
	return nil
}

// Ensure the seed's example flow works over gRPC: Connect, Send with a reply, List.
func TestSeedFlowGRPC(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Second)
	before := time.Now()
	id := connect(t, ws.URL("/echo"))

	resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "Hello WebSocket!", TimeoutMs: 5000})
	require.NoError(t, err)
	assert.Equal(t, "Hello WebSocket!", resp.GetResponse())

	c := find(t, id)
	require.NotNil(t, c, "List must show the new connection")
	assert.Equal(t, ws.URL("/echo"), c.GetUrl())
	assert.Equal(t, pb.ConnectionStatus_CONNECTED, c.GetStatus())
	assert.NotEmpty(t, c.GetInstanceId())
	assert.Empty(t, c.GetTopic())
	assert.WithinDuration(t, before, c.GetCreatedAt().AsTime(), time.Minute)
}

// Ensure the same flow works over REST with the seed's paths and JSON field names.
func TestSeedFlowREST(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Second)
	var conn struct {
		ConnectionID string `json:"connectionId"`
		Status       string `json:"status"`
	}
	rest(t, http.MethodPost, "/v1/connect", map[string]any{"url": ws.URL("/echo"), "autoReconnect": true}, http.StatusOK, &conn)
	require.Equal(t, "CONNECTED", conn.Status)
	id := conn.ConnectionID

	var sent struct {
		Response string `json:"response"`
	}
	rest(t, http.MethodPost, "/v1/connections/"+id+"/send", map[string]any{"message": "Hello WebSocket!", "timeoutMs": 5000}, http.StatusOK, &sent)
	assert.Equal(t, "Hello WebSocket!", sent.Response)

	var list struct {
		Connections []struct {
			ID         string `json:"id"`
			URL        string `json:"url"`
			Status     string `json:"status"`
			InstanceID string `json:"instanceId"`
			CreatedAt  string `json:"createdAt"`
		} `json:"connections"`
	}
	rest(t, http.MethodGet, "/v1/connections", nil, http.StatusOK, &list)
	var found bool
	for _, c := range list.Connections {
		if c.ID == id {
			found = true
			assert.Equal(t, "CONNECTED", c.Status)
			assert.NotEmpty(t, c.InstanceID)
			_, err := time.Parse(time.RFC3339Nano, c.CreatedAt)
			assert.NoError(t, err, "createdAt must be an RFC 3339 timestamp")
		}
	}
	require.True(t, found, "GET /v1/connections must list the connection")

	rest(t, http.MethodPost, "/v1/connections/"+id+"/sendraw", map[string]any{"message": "raw"}, http.StatusOK, nil)
	rest(t, http.MethodPost, "/v1/connections/"+id+"/publish", map[string]any{"topic": "rest-topic"}, http.StatusOK, nil)
	rest(t, http.MethodDelete, "/v1/connections/"+id+"/publish", nil, http.StatusOK, nil)
	rest(t, http.MethodDelete, "/v1/connections/"+id, nil, http.StatusOK, nil)
	rest(t, http.MethodDelete, "/v1/connections/"+id, nil, http.StatusNotFound, nil)
	rest(t, http.MethodPost, "/v1/connect", map[string]any{"url": "http://example.com"}, http.StatusBadRequest, nil)
}

func rest(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(callCtx(t), method, env.httpURL+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+env.apiToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json") // the only body REST takes
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	require.Equal(t, wantStatus, resp.StatusCode, "%s %s answered %s", method, path, data)
	if out != nil {
		require.NoError(t, json.Unmarshal(data, out), "body: %s", data)
	}
}

// Ensure SendRaw writes the message to the server without waiting for a reply.
func TestSendRaw(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/stream")) // the stream server never answers what it reads
	_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: `{"op":"subscribe"}`})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(ws.Received()) == 1 }, waitFor, 20*time.Millisecond)
	assert.Equal(t, []string{`{"op":"subscribe"}`}, ws.Received())
}

// Ensure inbound frames are published to the topic while publishing is on, and not after.
func TestPublish(t *testing.T) {
	ws := sessiontest.NewServer(t, 50*time.Millisecond)
	id := connect(t, ws.URL("/stream"))
	topicA, topicB := env.topics[0], env.topics[1]

	_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topicA})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(env.events.frames(topicA, id)) >= 5 }, waitFor, 20*time.Millisecond,
		"frames pushed by the server must reach the subscriber of %s", topicA)
	assert.Equal(t, topicA, find(t, id).GetTopic())

	_, err = env.client.StopPublish(callCtx(t), &pb.StopPublishRequest{Id: id})
	require.NoError(t, err)
	stoppedAt := ws.Streamed()
	assert.Empty(t, find(t, id).GetTopic())

	// Let the server push more, then publish to another topic: once a later frame arrived there,
	// a frame published to topicA after StopPublish would have arrived too.
	require.Eventually(t, func() bool { return ws.Streamed() >= stoppedAt+5 }, waitFor, 20*time.Millisecond)
	_, err = env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topicB})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(env.events.frames(topicB, id)) >= 1 }, waitFor, 20*time.Millisecond)
	lastA := 0
	for _, f := range env.events.frames(topicA, id) {
		var frame struct{ Seq int }
		require.NoError(t, json.Unmarshal([]byte(f), &frame), "published payload must be the frame as sent: %s", f)
		assert.LessOrEqual(t, frame.Seq, stoppedAt+1, "frame published to %s after StopPublish", topicA)
		lastA = max(lastA, frame.Seq)
	}
	// Later than the last frame of topicA: no frame is in both. (Not "later than what the server
	// had pushed at the StopPublish": the service may be reading a few frames behind it.)
	first := env.events.frames(topicB, id)[0]
	var frame struct{ Seq int }
	require.NoError(t, json.Unmarshal([]byte(first), &frame))
	assert.Greater(t, frame.Seq, lastA)
}

// Ensure Disconnect closes with a normal close frame and forgets the connection.
func TestDisconnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Second)
	id := connect(t, ws.URL("/echo"))
	_, err := env.client.Disconnect(callCtx(t), &pb.DisconnectRequest{Id: id})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(ws.CloseCodes()) == 1 }, waitFor, 20*time.Millisecond)
	assert.Equal(t, []int{1000}, ws.CloseCodes())
	assert.Nil(t, find(t, id), "List must not show a disconnected connection")
	_, err = env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "x"})
	assert.Equal(t, codes.NotFound, status.Code(err))
}

// Ensure each RPC answers the documented code for an unknown id and for bad input.
func TestErrors(t *testing.T) {
	ctx := callCtx(t)
	unknown := "no-such-" + uuid.NewString()
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"Send unknown id", func() error {
			_, err := env.client.Send(ctx, &pb.SendRequest{Id: unknown, Message: "x"})
			return err
		}, codes.NotFound},
		{"SendRaw unknown id", func() error {
			_, err := env.client.SendRaw(ctx, &pb.SendRawRequest{Id: unknown, Message: "x"})
			return err
		}, codes.NotFound},
		{"Disconnect unknown id", func() error {
			_, err := env.client.Disconnect(ctx, &pb.DisconnectRequest{Id: unknown})
			return err
		}, codes.NotFound},
		{"StartPublish unknown id", func() error {
			_, err := env.client.StartPublish(ctx, &pb.StartPublishRequest{Id: unknown, Topic: "t"})
			return err
		}, codes.NotFound},
		{"StopPublish unknown id", func() error {
			_, err := env.client.StopPublish(ctx, &pb.StopPublishRequest{Id: unknown})
			return err
		}, codes.NotFound},
		{"Connect http URL", func() error {
			_, err := env.client.Connect(ctx, &pb.ConnectRequest{Url: "http://127.0.0.1/"})
			return err
		}, codes.InvalidArgument},
		{"Connect without URL", func() error {
			_, err := env.client.Connect(ctx, &pb.ConnectRequest{})
			return err
		}, codes.InvalidArgument},
		{"Connect refused", func() error {
			_, err := env.client.Connect(ctx, &pb.ConnectRequest{Url: "ws://127.0.0.1:1/"})
			return err
		}, codes.Unavailable},
		{"StartPublish without topic", func() error {
			_, err := env.client.StartPublish(ctx, &pb.StartPublishRequest{Id: unknown})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			assert.Equal(t, tt.want, status.Code(err), "error: %v", err)
		})
	}
	list, err := env.client.List(ctx, &pb.ListRequest{})
	require.NoError(t, err)
	for _, c := range list.GetConnections() {
		assert.NotEqual(t, "ws://127.0.0.1:1/", c.GetUrl(), "a failed Connect must keep nothing")
	}
}

// Ensure a Send waits for its own reply without blocking other Sends on the connection.
func TestSendTimeout(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/stream")) // never replies
	start := time.Now()
	_, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "x", TimeoutMs: 300})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "error: %v", err)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	_, err = env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "x", TimeoutMs: 10 * 60 * 1000})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "error: %v", err)
}

// Ensure grpcurl-style tooling works: health and reflection.
func TestHealthAndReflection(t *testing.T) {
	ctx := callCtx(t)
	h, err := healthpb.NewHealthClient(env.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "websocketmanager.v1.WebSocketManager"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())

	stream, err := reflectpb.NewServerReflectionClient(env.conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	assert.Contains(t, names, "websocketmanager.v1.WebSocketManager")

	rest(t, http.MethodGet, "/healthz", nil, http.StatusOK, nil)
}
