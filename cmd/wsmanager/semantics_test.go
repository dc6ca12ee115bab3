//go:build integration

package main_test

// End-to-end tests of the connection semantics (issue "Complete connection semantics"), over
// the real Dapr runtime started in TestMain and scripted WebSocket servers.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

const poll = 10 * time.Millisecond

func connectWith(t *testing.T, req *pb.ConnectRequest) string {
	t.Helper()
	resp, err := env.client.Connect(callCtx(t), req)
	require.NoError(t, err)
	require.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus())
	id := resp.GetConnectionId()
	t.Cleanup(func() { _, _ = env.client.Disconnect(callCtx(t), &pb.DisconnectRequest{Id: id}) })
	return id
}

func waitFor_(t *testing.T, id string, cond func(*pb.WebSocketConnection) bool, msg string) *pb.WebSocketConnection {
	t.Helper()
	var last *pb.WebSocketConnection
	require.Eventually(t, func() bool {
		last = find(t, id)
		return last != nil && cond(last)
	}, waitFor, 20*time.Millisecond, "%s; last seen: %v", msg, last)
	return last
}

func code(err error) codes.Code { return status.Code(err) }

// Ensure a failed Connect answers UNAVAILABLE with the reason and keeps nothing, whatever
// auto_reconnect says.
func TestConnectFailures(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	tests := []struct {
		name, url, want string
	}{
		{"refused", "ws://127.0.0.1:1/", "refused"},
		{"rejected upgrade", ws.URL("/reject?status=401"), "HTTP 401"},
		{"handshake timeout", ws.URL("/hang"), "handshake timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "fail-" + uuid.NewString()[:8]
			_, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: tt.url, AutoReconnect: true, ConnectionId: id})
			require.Equal(t, codes.Unavailable, code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), tt.want)
			assert.Nil(t, find(t, id), "a failed Connect keeps nothing")
		})
	}
}

// Ensure caller-chosen ids work, clash with ALREADY_EXISTS and must be safe.
func TestCallerChosenID(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := "feed:" + uuid.NewString()[:8]
	assert.Equal(t, id, connectWith(t, &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: id}))
	_, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: id})
	assert.Equal(t, codes.AlreadyExists, code(err), "%v", err)
	_, err = env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: "no spaces/or slashes"})
	assert.Equal(t, codes.InvalidArgument, code(err), "%v", err)
}

// Ensure headers and subprotocols reach the server, tags come back from List, List filters by
// tags (gRPC and REST), and headers are never returned.
func TestHeadersSubprotocolsTags(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	group := uuid.NewString()[:8]
	id := connectWith(t, &pb.ConnectRequest{
		Url:          ws.URL("/headers"),
		Headers:      map[string]string{"Authorization": "Bearer s3cret-token", "Origin": "https://app.example"},
		Subprotocols: []string{"v2.feed"},
		Tags:         map[string]string{"group": group, "venue": "x"},
		Correlation:  &pb.Correlation{Mode: pb.CorrelationMode_CORRELATION_MODE_NEXT},
	})
	other := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/echo"), Tags: map[string]string{"group": group, "venue": "y"}})

	resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "report", TimeoutMs: 5000})
	require.NoError(t, err)
	assert.JSONEq(t, `{"authorization":"Bearer s3cret-token","origin":"https://app.example","subprotocol":"v2.feed"}`, resp.GetResponse())

	c := find(t, id)
	assert.Equal(t, map[string]string{"group": group, "venue": "x"}, c.GetTags())
	assert.Equal(t, "v2.feed", c.GetSubprotocol())
	assert.Equal(t, pb.CorrelationMode_CORRELATION_MODE_NEXT, c.GetCorrelation().GetMode())

	list, err := env.client.List(callCtx(t), &pb.ListRequest{Tags: map[string]string{"group": group, "venue": "x"}})
	require.NoError(t, err)
	require.Len(t, list.GetConnections(), 1)
	assert.Equal(t, id, list.GetConnections()[0].GetId())
	list, err = env.client.List(callCtx(t), &pb.ListRequest{Tags: map[string]string{"group": group}})
	require.NoError(t, err)
	assert.Len(t, list.GetConnections(), 2)

	var rest struct {
		Connections []struct{ ID string } `json:"connections"`
	}
	restCall(t, http.MethodGet, "/v1/connections?tags[group]="+group+"&tags[venue]=y", nil, http.StatusOK, &rest)
	require.Len(t, rest.Connections, 1)
	assert.Equal(t, other, rest.Connections[0].ID)

	var raw json.RawMessage
	restCall(t, http.MethodGet, "/v1/connections", nil, http.StatusOK, &raw)
	assert.NotContains(t, string(raw), "s3cret-token", "List must never return headers")
}

// Ensure on-connect messages are sent in order before CONNECTED, and again after a reconnect,
// and that a drop makes the connection reconnect under the same id with the fields updated.
func TestReconnectResendsOnConnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connectWith(t, &pb.ConnectRequest{
		Url:               ws.URL("/drop?after=3"),
		AutoReconnect:     true,
		OnConnectMessages: []string{"login", "subscribe"},
	})
	// Written before Connect returned CONNECTED; the server records them as it reads them.
	require.Eventually(t, func() bool { return len(ws.Received()) >= 2 }, waitFor, poll)
	assert.Equal(t, []string{"login", "subscribe"}, ws.Received())
	first := find(t, id)
	require.NotNil(t, first.GetConnectedSince())

	_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "trigger drop"})
	require.NoError(t, err)
	c := waitFor_(t, id, func(c *pb.WebSocketConnection) bool {
		return c.GetReconnectCount() >= 1 && c.GetStatus() == pb.ConnectionStatus_CONNECTED
	}, "the connection must come back by itself")
	assert.NotEmpty(t, c.GetLastError())
	assert.True(t, c.GetConnectedSince().AsTime().After(first.GetConnectedSince().AsTime()))
	got := ws.Received()
	require.GreaterOrEqual(t, len(got), 5)
	assert.Equal(t, []string{"login", "subscribe", "trigger drop", "login", "subscribe"}, got[:5])
}

// Ensure connections without auto_reconnect stay in List as DISCONNECTED (clean close) or
// ERROR (anything else), with the reason, and Sends get FAILED_PRECONDITION.
func TestDropWithoutReconnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	tests := []struct {
		path string
		want pb.ConnectionStatus
		text string
	}{
		{"/close?code=1000&after=1", pb.ConnectionStatus_DISCONNECTED, "1000"},
		{"/close?code=4003&after=1", pb.ConnectionStatus_ERROR, "4003"},
		{"/drop?after=1", pb.ConnectionStatus_ERROR, ""},
		{"/stall", pb.ConnectionStatus_ERROR, "pong"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			id := connectWith(t, &pb.ConnectRequest{Url: ws.URL(tt.path)})
			_, _ = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "go"})
			c := waitFor_(t, id, func(c *pb.WebSocketConnection) bool { return c.GetStatus() == tt.want }, "status")
			assert.Contains(t, c.GetLastError(), tt.text)
			assert.NotEmpty(t, c.GetLastError())
			assert.Nil(t, c.GetConnectedSince())
			_, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "x", TimeoutMs: 1000})
			assert.Equal(t, codes.FailedPrecondition, code(err), "%v", err)
		})
	}
}

// Ensure the idle watchdog reconnects a silent connection, and a stalled server is detected by
// the keepalive and reconnected.
func TestIdleWatchdogAndKeepaliveReconnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	idle := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/echo"), AutoReconnect: true, IdleTimeoutMs: 300})
	stall := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/stall"), AutoReconnect: true})
	c := waitFor_(t, idle, func(c *pb.WebSocketConnection) bool { return c.GetReconnectCount() >= 1 }, "idle watchdog")
	assert.Contains(t, c.GetLastError(), "idle")
	c = waitFor_(t, stall, func(c *pb.WebSocketConnection) bool { return c.GetReconnectCount() >= 1 }, "keepalive")
	assert.Contains(t, c.GetLastError(), "pong")
}

// Ensure a connection gives up with ERROR after max_attempts, and answers UNAVAILABLE to Sends
// while it is reconnecting.
func TestReconnectAttemptsAndSendWhileConnecting(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	slow := sessiontest.NewServer(t, time.Hour)
	limited := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/echo"), AutoReconnect: true, Reconnect: &pb.ReconnectPolicy{MaxAttempts: 2}})
	retrying := connectWith(t, &pb.ConnectRequest{Url: slow.URL("/echo"), AutoReconnect: true,
		Reconnect: &pb.ReconnectPolicy{InitialBackoffMs: 60000, MaxBackoffMs: 60000}})
	ws.Stop()
	slow.Stop()
	c := waitFor_(t, limited, func(c *pb.WebSocketConnection) bool { return c.GetStatus() == pb.ConnectionStatus_ERROR }, "attempts exhausted")
	assert.Contains(t, c.GetLastError(), "gave up")
	waitFor_(t, retrying, func(c *pb.WebSocketConnection) bool { return c.GetStatus() == pb.ConnectionStatus_CONNECTING }, "reconnecting")
	_, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: retrying, Message: "x"})
	assert.Equal(t, codes.Unavailable, code(err), "%v", err)
	_, err = env.client.Send(callCtx(t), &pb.SendRequest{Id: limited, Message: "x"})
	assert.Equal(t, codes.FailedPrecondition, code(err), "%v", err)
}

// Ensure concurrent Sends on one connection each get their own reply when the server answers
// out of order, in every correlation mode that supports it.
func TestCorrelationModes(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	t.Run("auto out of order", func(t *testing.T) {
		id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/jsonrpc")})
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				msg := fmt.Sprintf(`{"id":"r%d","delay_ms":%d}`, i, (16-i)*10)
				resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: msg, TimeoutMs: 5000})
				if assert.NoError(t, err) {
					assert.Contains(t, resp.GetResponse(), fmt.Sprintf(`"id":"r%d"`, i))
				}
			})
		}
		wg.Wait()
	})
	t.Run("json_field nested", func(t *testing.T) {
		id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/jsonrpc"),
			Correlation: &pb.Correlation{Mode: pb.CorrelationMode_CORRELATION_MODE_JSON_FIELD, Field: "id"}})
		_, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: `no id here`})
		assert.Equal(t, codes.InvalidArgument, code(err), "%v", err)
		resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: `{"id":42}`, TimeoutMs: 5000})
		require.NoError(t, err)
		assert.Contains(t, resp.GetResponse(), `"id":42`)
	})
	t.Run("prefix", func(t *testing.T) {
		id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/prefix"),
			Correlation: &pb.Correlation{Mode: pb.CorrelationMode_CORRELATION_MODE_PREFIX}})
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: fmt.Sprint("m", i), TimeoutMs: 5000})
				if assert.NoError(t, err) {
					assert.Equal(t, fmt.Sprint("re:m", i), resp.GetResponse())
				}
			})
		}
		wg.Wait()
	})
	t.Run("next", func(t *testing.T) {
		id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/echo"),
			Correlation: &pb.Correlation{Mode: pb.CorrelationMode_CORRELATION_MODE_NEXT}})
		resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: `{"id":1}`, TimeoutMs: 5000})
		require.NoError(t, err)
		assert.Equal(t, `{"id":1}`, resp.GetResponse())
	})
	t.Run("unknown mode", func(t *testing.T) {
		_, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo"), Correlation: &pb.Correlation{Mode: 99}})
		assert.Equal(t, codes.InvalidArgument, code(err), "%v", err)
	})
}

// Ensure a drop while Sends wait fails them at once with UNAVAILABLE.
func TestDropFailsWaitingSends(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/drop?after=3&echo=0"), AutoReconnect: true})
	start := time.Now()
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "wait", TimeoutMs: 60000})
			errs <- err
		}()
	}
	for range 3 {
		err := <-errs
		assert.Equal(t, codes.Unavailable, code(err), "%v", err)
	}
	assert.Less(t, time.Since(start), 30*time.Second, "they must not wait for their timeout")
}

// Ensure binary frames go out and come back byte for byte, over gRPC and REST (base64).
func TestBinaryFrames(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/echo")})
	payload := []byte{0x00, 0xff, 0x10, '{', 0x80, 0x7f}
	resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, BinaryMessage: payload, TimeoutMs: 5000})
	require.NoError(t, err)
	assert.True(t, resp.GetBinary())
	assert.Equal(t, payload, resp.GetBinaryResponse())
	assert.Empty(t, resp.GetResponse())

	_, err = env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "x", BinaryMessage: payload})
	assert.Equal(t, codes.InvalidArgument, code(err))

	var rest struct {
		BinaryResponse string `json:"binaryResponse"`
		Binary         bool   `json:"binary"`
	}
	restCall(t, http.MethodPost, "/v1/connections/"+id+"/send", map[string]any{"binaryMessage": base64.StdEncoding.EncodeToString(payload), "timeoutMs": 5000}, http.StatusOK, &rest)
	assert.True(t, rest.Binary)
	got, err := base64.StdEncoding.DecodeString(rest.BinaryResponse)
	require.NoError(t, err)
	assert.Equal(t, payload, got)

	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, BinaryMessage: payload})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slices.Contains(ws.Received(), string(payload)) }, waitFor, poll)
}

// Ensure published frames are CloudEvents with the documented content types, extensions and
// consecutive sequence numbers, and binary frames arrive byte for byte.
func TestPublishedCloudEvents(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	topic := env.extra["types"]
	url := strings.Replace(ws.URL("/echo"), "ws://", "ws://user:pw@", 1)
	id := connectWith(t, &pb.ConnectRequest{Url: url, Correlation: &pb.Correlation{Mode: pb.CorrelationMode_CORRELATION_MODE_JSON_FIELD}})
	_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic})
	require.NoError(t, err)
	bin := []byte{0, 1, 2, 250, 251, 252}
	for _, m := range []*pb.SendRawRequest{
		{Id: id, Message: `{"price":1.5}`},
		{Id: id, Message: "plain text"},
		{Id: id, BinaryMessage: bin},
	} {
		_, err := env.client.SendRaw(callCtx(t), m)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(env.events.all(topic, id)) == 3 }, waitFor, poll)
	evs := env.events.all(topic, id)
	slices.SortFunc(evs, func(a, b cloudEvent) int { return strings.Compare(a.Sequence, b.Sequence) })

	assert.Equal(t, "application/json", evs[0].DataContentType)
	assert.JSONEq(t, `{"price":1.5}`, string(evs[0].Data))
	assert.Equal(t, "text/plain", evs[1].DataContentType)
	assert.Equal(t, `"plain text"`, string(evs[1].Data))
	assert.Equal(t, "application/octet-stream", evs[2].DataContentType)
	got, err := base64.StdEncoding.DecodeString(evs[2].DataBase64)
	require.NoError(t, err)
	assert.Equal(t, bin, got, "binary frames arrive byte for byte")
	for i, ev := range evs {
		assert.Equal(t, id, ev.ConnectionID)
		assert.Equal(t, ws.URL("/echo"), ev.ConnectionURL, "the url without user-info")
		assert.Equal(t, strconv.Itoa(i+1), ev.Sequence)
		_, err := time.Parse(time.RFC3339Nano, ev.ReceivedAt)
		assert.NoError(t, err)
		assert.Equal(t, "websocketmanager.frame", ev.Type)
	}
}

// Ensure frames that answer a Send go to the caller only; the others are published, in order.
func TestAnsweredFramesAreNotPublished(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	topic := env.extra["answered"]
	id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/jsonrpc")})
	_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic})
	require.NoError(t, err)
	_, err = env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: `{"id":"q1"}`, TimeoutMs: 5000})
	require.NoError(t, err)
	for i := range 5 {
		_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: fmt.Sprintf(`{"push":%d}`, i)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(env.events.all(topic, id)) == 5 }, waitFor, poll)
	for _, ev := range env.events.all(topic, id) {
		assert.NotContains(t, string(ev.Data), "q1")
	}
}

// Ensure StartPublish validates, replaces the topic when called again, StopPublish is
// idempotent, and publishing continues across a reconnect.
func TestPublishTopicRules(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/drop?after=2"), AutoReconnect: true})
	_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: ""})
	assert.Equal(t, codes.InvalidArgument, code(err))
	_, err = env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: "bad topic!"})
	assert.Equal(t, codes.InvalidArgument, code(err))

	t1, t2 := env.extra["replace1"], env.extra["replace2"]
	_, err = env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: t1})
	require.NoError(t, err)
	_, err = env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: t2})
	require.NoError(t, err)
	assert.Equal(t, t2, find(t, id).GetTopic())
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "one"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(env.events.frames(t2, id)) == 1 }, waitFor, poll)
	assert.Empty(t, env.events.frames(t1, id))

	// The server drops after the second frame; the connection comes back and still publishes.
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "two"})
	require.NoError(t, err)
	waitFor_(t, id, func(c *pb.WebSocketConnection) bool {
		return c.GetReconnectCount() >= 1 && c.GetStatus() == pb.ConnectionStatus_CONNECTED
	}, "reconnect")
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "after reconnect"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slices.Contains(env.events.frames(t2, id), "after reconnect") }, waitFor, poll)

	for range 2 {
		_, err = env.client.StopPublish(callCtx(t), &pb.StopPublishRequest{Id: id})
		require.NoError(t, err, "StopPublish is idempotent")
	}
}

// Ensure every status change is published to the lifecycle topic, in order, and Disconnect
// closes with 1000, stops reconnects, deletes the connection and emits the last event.
func TestLifecycleAndDisconnect(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connectWith(t, &pb.ConnectRequest{Url: ws.URL("/drop?after=1"), AutoReconnect: true})
	_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "drop please"})
	require.NoError(t, err)
	waitFor_(t, id, func(c *pb.WebSocketConnection) bool {
		return c.GetReconnectCount() >= 1 && c.GetStatus() == pb.ConnectionStatus_CONNECTED
	}, "reconnect")
	_, err = env.client.Disconnect(callCtx(t), &pb.DisconnectRequest{Id: id})
	require.NoError(t, err)
	accepted := ws.Accepted()
	require.Eventually(t, func() bool { return slices.Contains(ws.CloseCodes(), 1000) }, waitFor, poll)

	type data struct {
		ConnectionID   string `json:"connection_id"`
		URL            string `json:"url"`
		InstanceID     string `json:"instance_id"`
		Status         string `json:"status"`
		PreviousStatus string `json:"previous_status"`
		Attempt        int    `json:"attempt"`
		Error          string `json:"error"`
	}
	var mine []data
	require.Eventually(t, func() bool {
		mine = nil
		for _, ev := range env.events.all(env.lifecycle, id) {
			var d data
			if json.Unmarshal(ev.Data, &d) == nil && d.ConnectionID == id {
				assert.Equal(t, "websocketmanager.connection."+strings.ToLower(d.Status), ev.Type)
				mine = append(mine, d)
			}
		}
		return len(mine) > 0 && mine[len(mine)-1].Status == "DISCONNECTED"
	}, waitFor, poll)
	var statuses []string
	for _, d := range mine {
		statuses = append(statuses, d.Status)
		assert.NotEmpty(t, d.InstanceID)
		assert.Equal(t, ws.URL("/drop?after=1"), d.URL)
	}
	assert.Equal(t, []string{"CONNECTED", "CONNECTING", "CONNECTED", "DISCONNECTED"}, statuses)
	assert.NotEmpty(t, mine[1].Error, "the CONNECTING event says why")
	assert.Equal(t, 1, mine[1].Attempt)
	for i := 1; i < len(mine); i++ {
		assert.Equal(t, mine[i-1].Status, mine[i].PreviousStatus, "events are ordered")
	}

	_, err = env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "x"})
	assert.Equal(t, codes.NotFound, code(err))
	_, err = env.client.StopPublish(callCtx(t), &pb.StopPublishRequest{Id: id})
	assert.Equal(t, codes.NotFound, code(err))
	assert.Equal(t, accepted, ws.Accepted(), "no reconnect after Disconnect")
}

// Ensure REST errors use the standard gRPC→HTTP mapping with a JSON body.
func TestRESTErrors(t *testing.T) {
	tests := []struct {
		method, path string
		body         any
		status       int
		code         codes.Code
	}{
		{http.MethodPost, "/v1/connections/nope-" + uuid.NewString()[:8] + "/send", map[string]any{"message": "x"}, http.StatusNotFound, codes.NotFound},
		{http.MethodPost, "/v1/connect", map[string]any{"url": "ftp://x"}, http.StatusBadRequest, codes.InvalidArgument},
		{http.MethodPost, "/v1/connect", map[string]any{"url": "ws://127.0.0.1:1/"}, http.StatusServiceUnavailable, codes.Unavailable},
		{http.MethodPost, "/v1/connect", map[string]any{"url": "ws://127.0.0.1:1/", "unknownField": 1}, http.StatusBadRequest, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			restCall(t, tt.method, tt.path, tt.body, tt.status, &body)
			assert.Equal(t, int(tt.code), body.Code)
			assert.NotEmpty(t, body.Message)
		})
	}
}

// Ensure another Dapr app can use the documented actor contract through its own sidecar.
func TestActorContractFromAnotherApp(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := "actor-" + uuid.NewString()[:8]
	call := func(method string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/actors/WebSocketConnection/%s/method/%s", env.consumer.HTTPPort, id, method)
		req, err := http.NewRequestWithContext(callCtx(t), http.MethodPut, url, bytes.NewReader(b))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", method, data)
		out := map[string]any{}
		require.NoError(t, json.Unmarshal(data, &out), "%s: %s", method, data)
		return out
	}
	r := call("connect", map[string]any{"url": ws.URL("/echo"), "tags": map[string]string{"via": "actor"}})
	require.Nil(t, r["error"], "%v", r)
	assert.Equal(t, "CONNECTED", r["connection"].(map[string]any)["status"])
	r = call("connect", map[string]any{"url": ws.URL("/echo")})
	assert.Equal(t, "ALREADY_EXISTS", r["error"].(map[string]any)["code"])

	r = call("send", map[string]any{"message": "via actor", "timeoutMs": 5000})
	assert.Equal(t, "via actor", r["response"])
	r = call("sendraw", map[string]any{"message": "raw via actor"})
	assert.Nil(t, r["error"])
	r = call("startpublish", map[string]any{"topic": env.topics[1]})
	assert.Nil(t, r["error"])
	r = call("get", map[string]any{})
	assert.Equal(t, env.topics[1], r["connection"].(map[string]any)["topic"])
	r = call("stoppublish", map[string]any{})
	assert.Nil(t, r["error"])
	assert.NotNil(t, find(t, id), "a connection made through the actor is in List")
	r = call("disconnect", map[string]any{})
	assert.Nil(t, r["error"])
	r = call("get", map[string]any{})
	assert.Equal(t, "NOT_FOUND", r["error"].(map[string]any)["code"])
}

func restCall(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	rest(t, method, path, body, wantStatus, out)
}
