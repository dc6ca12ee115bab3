//go:build integration

package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure a caller who cancels a Send that waits for a reply is answered CANCELED by the
// service — in its log and its metrics — and not DEADLINE_EXCEEDED: nothing timed out.
func TestCancelledSendIsCanceled(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/stream")) // never replies
	before := scrape(t, env.httpURL)

	trace := fmt.Sprintf("%032x", time.Now().UnixNano()) // finds this call's log line
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(),
		"traceparent", "00-"+trace+"-00f067aa0ba902b7-01"))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := env.client.Send(ctx, &pb.SendRequest{Id: id, Message: "cancel me", TimeoutMs: 60_000})
		done <- err
	}()
	require.Eventually(t, func() bool {
		for _, m := range ws.Received() {
			if m == "cancel me" {
				return true
			}
		}
		return false
	}, waitFor, 10*time.Millisecond, "the Send reached the server")
	cancel()
	select {
	case err := <-done:
		assert.Equal(t, codes.Canceled, status.Code(err), "%v", err)
	case <-time.After(waitFor):
		t.Fatal("the cancelled Send did not return")
	}

	var line string
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(env.logs(), "\n") {
			if strings.Contains(l, `"trace_id":"`+trace+`"`) && strings.Contains(l, `"msg":"rpc failed"`) {
				line = l
				return true
			}
		}
		return false
	}, waitFor, 50*time.Millisecond, "the service logs the Send's end")
	assert.Contains(t, line, `"grpc_code":"Canceled"`)
	assert.Contains(t, line, `"message":"the call was cancelled"`)
	after := scrape(t, env.httpURL)
	moved := func(name string) float64 { return after[name] - before[name] }
	assert.Equal(t, 1.0, moved(`wsmanager_sends_total{outcome="Canceled"}`))
	assert.Equal(t, 1.0, moved(`wsmanager_api_requests_total{code="Canceled",method="Send"}`))
	assert.Zero(t, moved(`wsmanager_sends_total{outcome="DeadlineExceeded"}`))
}
