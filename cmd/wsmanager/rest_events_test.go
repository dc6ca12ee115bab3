//go:build integration

package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure GET /v1/events streams a connection's lifecycle events over REST as newline-delimited
// {"result": event} objects as they happen (the framing docs/clients.md promises), with the
// API token, and that it needs one.
func TestWatchEventsREST(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	noToken, err := http.NewRequestWithContext(ctx, http.MethodGet, env.httpURL+"/v1/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(noToken)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	const id = "rest-events"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.httpURL+"/v1/events?connectionId="+id+"&this_instance_only=true", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+env.apiToken)
	type line struct {
		Result *struct {
			ConnectionID string `json:"connectionId"`
			Status       string `json:"status"`
			InstanceID   string `json:"instanceId"`
		} `json:"result"`
		Error json.RawMessage `json:"error"`
	}
	lines := make(chan line, 16)
	headers := make(chan *http.Response, 1)
	go func() {
		defer close(lines)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		headers <- resp
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				l.Error = json.RawMessage(sc.Bytes()) // not JSON: reported below
			}
			select {
			case lines <- l:
			case <-ctx.Done():
				return
			}
		}
	}()

	// The stream is registered once the request reached the service; until the first event
	// nothing is sent back (as before), so connect until an event arrives.
	var got line
	require.Eventually(t, func() bool {
		_, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: id})
		if err == nil {
			_, _ = env.client.Disconnect(callCtx(t), &pb.DisconnectRequest{Id: id})
		}
		select {
		case got = <-lines:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}, waitFor, 10*time.Millisecond, "an event of the connection arrives on the REST stream")
	require.Nil(t, got.Error, "%s", got.Error)
	require.NotNil(t, got.Result)
	assert.Equal(t, id, got.Result.ConnectionID)
	assert.NotEmpty(t, got.Result.Status)
	assert.NotEmpty(t, got.Result.InstanceID)
	resp = <-headers
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
}
