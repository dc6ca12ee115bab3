package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

const token = "Bearer t0ken"

// fakeAPI answers from its arguments and records what it was asked.
type fakeAPI struct {
	pb.UnimplementedWebSocketManagerServer
	mu   sync.Mutex
	last proto.Message
	md   metadata.MD
}

func (f *fakeAPI) record(ctx context.Context, req proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = proto.Clone(req)
	f.md, _ = metadata.FromIncomingContext(ctx)
}

func (f *fakeAPI) lastRequest() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeAPI) Connect(ctx context.Context, req *pb.ConnectRequest) (*pb.ConnectResponse, error) {
	f.record(ctx, req)
	if !strings.HasPrefix(req.GetUrl(), "ws://") {
		return nil, status.Error(codes.InvalidArgument, "url: scheme must be ws or wss")
	}
	return &pb.ConnectResponse{ConnectionId: "c1", Status: pb.ConnectionStatus_CONNECTED}, nil
}

func (f *fakeAPI) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	f.record(ctx, req)
	return &pb.ListResponse{Connections: []*pb.WebSocketConnection{{Id: "c1", Tags: req.GetTags(), Status: pb.ConnectionStatus_CONNECTED}}}, nil
}

func (f *fakeAPI) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	f.record(ctx, req)
	if req.GetId() == "missing" {
		return nil, status.Error(codes.NotFound, "connection missing not found")
	}
	return &pb.SendResponse{Response: req.GetMessage()}, nil
}

func (f *fakeAPI) Disconnect(ctx context.Context, req *pb.DisconnectRequest) (*pb.DisconnectResponse, error) {
	f.record(ctx, req)
	return &pb.DisconnectResponse{}, nil
}

// WatchEvents sends two events of the asked connection; "fail" ends with UNAVAILABLE after
// one, "refused" is refused before any.
func (f *fakeAPI) WatchEvents(req *pb.WatchEventsRequest, st pb.WebSocketManager_WatchEventsServer) error {
	f.record(st.Context(), req)
	id := req.GetConnectionId()
	if id == "refused" {
		return status.Error(codes.PermissionDenied, "not for you")
	}
	for i := range 2 {
		if err := st.Send(&pb.LifecycleEvent{ConnectionId: id, Status: pb.ConnectionStatus_CONNECTED, Attempt: int32(i)}); err != nil {
			return err
		}
		if id == "fail" {
			return status.Error(codes.Unavailable, "shutting down; watch again")
		}
	}
	return nil
}

// auth stands for the API's interceptors: every HTTP call must pass them.
func auth(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) != 1 || v[0] != token {
		return status.Error(codes.Unauthenticated, "missing or wrong token")
	}
	return nil
}

// newHandler builds the handler under test; the parity check swaps it for the old gateway.
var newHandler = func(gs *grpc.Server, maxBody int64) (http.Handler, error) { return New(gs, maxBody) }

func serve(t *testing.T) (*fakeAPI, string) {
	t.Helper()
	api := &fakeAPI{}
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := auth(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := auth(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	pb.RegisterWebSocketManagerServer(gs, api)
	pb.RegisterWebSocketManagerPeerServer(gs, pb.UnimplementedWebSocketManagerPeerServer{})
	h, err := newHandler(gs, 1<<16)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return api, srv.URL
}

type reply struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, base, method, path, contentType, body string, header ...string) reply {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// errorBody is the JSON a REST error carries.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details"`
}

// Ensure the REST surface: paths, JSON field names in both casings in and lowerCamelCase out,
// every field out even when empty, JSON in any spelling of its media type.
func TestRESTCalls(t *testing.T) {
	api, base := serve(t)
	tests := []struct {
		name, method, path, contentType, body string
		want                                  string // the JSON reply
		asked                                 proto.Message
	}{
		{"connect, camelCase", "POST", "/v1/connect", "application/json", `{"url":"ws://a","autoReconnect":true,"idleTimeoutMs":5}`,
			`{"connectionId":"c1","status":"CONNECTED"}`, &pb.ConnectRequest{Url: "ws://a", AutoReconnect: true, IdleTimeoutMs: 5}},
		{"connect, snake_case", "POST", "/v1/connect", "application/json", `{"url":"ws://a","auto_reconnect":true,"idle_timeout_ms":5}`,
			`{"connectionId":"c1","status":"CONNECTED"}`, &pb.ConnectRequest{Url: "ws://a", AutoReconnect: true, IdleTimeoutMs: 5}},
		{"JSON spelled otherwise", "POST", "/v1/connect", "Application/JSON;charset=UTF-8", `{"url":"ws://a"}`,
			`{"connectionId":"c1","status":"CONNECTED"}`, &pb.ConnectRequest{Url: "ws://a"}},
		{"send, id from the path", "POST", "/v1/connections/c-9/send", "application/json", `{"message":"hi","timeoutMs":10}`,
			`{"response":"hi", "binaryResponse":"", "binary":false}`, &pb.SendRequest{Id: "c-9", Message: "hi", TimeoutMs: 10}},
		{"empty reply fields", "POST", "/v1/connections/x/send", "application/json", `{}`,
			`{"response":"", "binaryResponse":"", "binary":false}`, &pb.SendRequest{Id: "x"}},
		{"delete", "DELETE", "/v1/connections/x", "", "", `{}`, &pb.DisconnectRequest{Id: "x"}},
		{"list", "GET", "/v1/connections", "", "",
			`{"connections":[{"id":"c1","url":"","status":"CONNECTED","instanceId":"","topic":"","createdAt":null,"lastError":"","reconnectCount":0,
				"connectedSince":null,"tags":{},"autoReconnect":false,"subprotocol":"","correlation":null,"droppedFrames":"0","droppedFramesByReason":{},"publish":null,"publishPausedSince":null,"publishPausedMs":"0",
				"sendRate":null,"throttledSends":"0","compression":false,"decodeRefused":"0","tls":null,"egressProxy":"","secretHeaderNames":[]}],"nextPageToken":""}`,
			&pb.ListRequest{}},
		{"list by tags, unknown parameters ignored", "GET", "/v1/connections?tags[group]=a&tags%5Bvenue%5D=b+c&page=2", "", "",
			"", &pb.ListRequest{Tags: map[string]string{"group": "a", "venue": "b c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, base, tt.method, tt.path, tt.contentType, tt.body)
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			if tt.want != "" {
				assert.JSONEq(t, tt.want, r.body)
			}
			assert.True(t, proto.Equal(tt.asked, api.lastRequest()), "asked %v", api.lastRequest())
		})
	}
}

// Ensure REST errors carry the standard HTTP status of their gRPC code and the status as JSON,
// and that bad input is refused with 400 and a message that says what is wrong.
func TestRESTErrors(t *testing.T) {
	_, base := serve(t)
	tests := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		code                     codes.Code
		mentions                 string
	}{
		{"not found", "POST", "/v1/connections/missing/send", `{"message":"x"}`, nil, 404, codes.NotFound, "missing"},
		{"invalid argument", "POST", "/v1/connect", `{"url":"ftp://x"}`, nil, 400, codes.InvalidArgument, "scheme"},
		{"unknown field", "POST", "/v1/connect", `{"url":"ws://a","bogus":1}`, nil, 400, codes.InvalidArgument, "bogus"},
		{"wrong type", "POST", "/v1/connect", `{"url":5}`, nil, 400, codes.InvalidArgument, "url"},
		{"malformed JSON", "POST", "/v1/connect", `{"url":`, nil, 400, codes.InvalidArgument, "unexpected EOF"},
		{"not JSON", "POST", "/v1/connections/x/send", `hello`, nil, 400, codes.InvalidArgument, "invalid"},
		{"too large", "POST", "/v1/connect", `{"url":"` + strings.Repeat("a", 1<<16) + `"}`, nil, 400, codes.InvalidArgument, "too large"},
		{"no token", "GET", "/v1/connections", "", []string{"Authorization", ""}, 401, codes.Unauthenticated, "token"},
		{"map parameter without key", "GET", "/v1/connections?tags=x", "", nil, 400, codes.InvalidArgument, "tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := ""
			if tt.body != "" {
				ct = "application/json"
			}
			r := call(t, base, tt.method, tt.path, ct, tt.body, tt.header...)
			require.Equal(t, tt.status, r.status, r.body)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			var e errorBody
			require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
			assert.Equal(t, int(tt.code), e.Code)
			assert.Contains(t, e.Message, tt.mentions)
			assert.NotNil(t, e.Details, "details: [] as before")
			if tt.status == http.StatusUnauthorized {
				assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

// Ensure GET /v1/events streams newline-delimited {"result": event} objects, ends a failed
// stream with an {"error": status} line, and answers a refusal before any event with its HTTP
// status and the error object; the request comes from the query in either casing.
func TestRESTEventStream(t *testing.T) {
	api, base := serve(t)
	lines := func(body string) []map[string]json.RawMessage {
		var out []map[string]json.RawMessage
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
			out = append(out, m)
		}
		return out
	}

	for _, q := range []string{"connectionId=c7&thisInstanceOnly=true", "connection_id=c7&this_instance_only=true"} {
		r := call(t, base, "GET", "/v1/events?"+q, "", "")
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		got := lines(r.body)
		require.Len(t, got, 2, r.body)
		for i, l := range got {
			var ev struct {
				ConnectionID string `json:"connectionId"`
				Status       string `json:"status"`
				Attempt      int    `json:"attempt"`
			}
			require.NoError(t, json.Unmarshal(l["result"], &ev), r.body)
			assert.Equal(t, "c7", ev.ConnectionID)
			assert.Equal(t, "CONNECTED", ev.Status)
			assert.Equal(t, i, ev.Attempt)
		}
		assert.True(t, proto.Equal(&pb.WatchEventsRequest{ConnectionId: "c7", ThisInstanceOnly: true}, api.lastRequest()))
	}

	r := call(t, base, "GET", "/v1/events?connectionId=fail", "", "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	got := lines(r.body)
	require.Len(t, got, 2, r.body)
	assert.Contains(t, got[0], "result")
	var e errorBody
	require.NoError(t, json.Unmarshal(got[1]["error"], &e), r.body)
	assert.Equal(t, int(codes.Unavailable), e.Code)
	assert.Equal(t, "shutting down; watch again", e.Message)

	for _, tt := range []struct {
		name   string
		query  string
		header []string
		status int
		code   codes.Code
	}{
		{"refused", "connectionId=refused", nil, http.StatusForbidden, codes.PermissionDenied},
		{"no token", "", []string{"Authorization", ""}, http.StatusUnauthorized, codes.Unauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, base, "GET", "/v1/events?"+tt.query, "", "", tt.header...)
			require.Equal(t, tt.status, r.status, r.body)
			got := lines(r.body)
			require.Len(t, got, 1, r.body)
			var e errorBody
			require.NoError(t, json.Unmarshal(got[0]["error"], &e), r.body)
			assert.Equal(t, int(tt.code), e.Code)
		})
	}

	r = call(t, base, "GET", "/v1/events?thisInstanceOnly=maybe", "", "")
	require.Equal(t, http.StatusBadRequest, r.status, r.body)
	require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
	assert.Contains(t, e.Message, "maybe")
}

// Ensure the Connect protocol and gRPC-Web reach the same service (unknown JSON fields ignored
// there, as connect-go does), call metadata reaches the server, and nothing else of the gRPC
// server is reachable over HTTP.
func TestBrowserProtocolsAndMetadata(t *testing.T) {
	api, base := serve(t)
	r := call(t, base, "POST", "/websocketmanager.v1.WebSocketManager/Send", "application/json", `{"id":"x","message":"hi","future":1}`,
		"Connect-Protocol-Version", "1", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"response":"hi", "binaryResponse":"", "binary":false}`, r.body)
	api.mu.Lock()
	assert.Equal(t, []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, api.md.Get("traceparent"))
	api.mu.Unlock()

	msg, err := proto.Marshal(&pb.SendRequest{Id: "x", Message: "web"})
	require.NoError(t, err)
	frame := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/websocketmanager.v1.WebSocketManager/Send", bytes.NewReader(frame))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Greater(t, len(body), 5)
	var out pb.SendResponse
	require.NoError(t, proto.Unmarshal(body[5:5+binary.BigEndian.Uint32(body[1:5])], &out))
	assert.Equal(t, "web", out.GetResponse())

	r = call(t, base, "POST", "/websocketmanager.v1.WebSocketManagerPeer/Held", "application/json", `{}`, "Connect-Protocol-Version", "1")
	assert.Equal(t, http.StatusNotFound, r.status, r.body)
	r = call(t, base, "GET", "/healthz", "", "", "Authorization", "")
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "ok\n", r.body)
}

// Ensure the GET routes come from the http rules: List, WatchEvents and the streaming
// WatchFrames (with its path variable), nothing else.
func TestGetRoutes(t *testing.T) {
	var got []string
	for _, g := range getRoutes(Service) {
		got = append(got, g.path+" "+string(g.method.Name()))
	}
	assert.ElementsMatch(t, []string{"/v1/connections List", "/v1/events WatchEvents", "/v1/connections/{id}/frames WatchFrames"}, got)
	assert.Equal(t, []string{"id"}, pathVars("/v1/connections/{id}/frames"))
}
