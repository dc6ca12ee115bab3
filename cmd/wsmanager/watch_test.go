//go:build integration

package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure a WatchEvents stream served by one instance carries the events of connections held
// by another, including an instance that held nothing when the watch began (instances announce
// themselves in the directory).
func TestWatchEventsAcrossInstances(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Both instances are in the directory before either holds a connection.
	require.Eventually(t, func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut,
			fmt.Sprintf("http://127.0.0.1:%d/v1.0/actors/WebSocketConnectionDirectory/0/method/members", a.daprd.HTTPPort), strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var r struct{ Holders []string }
		_ = json.Unmarshal(body, &r)
		return len(r.Holders) == 2 && r.Holders[0] != r.Holders[1]
	}, 30*time.Second, 200*time.Millisecond, "both instances announce themselves")

	client, err := wsmclient.New(a.grpcAddr, wsmclient.WithToken(clusterToken))
	require.NoError(t, err)
	defer client.Close()
	var mu sync.Mutex
	connected := map[string]string{} // id → instance that reported it
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		_ = client.WatchEvents(watchCtx, "", func(ev *wsmclient.LifecycleEvent) error {
			if ev.GetStatus() == pb.ConnectionStatus_CONNECTED {
				mu.Lock()
				connected[ev.GetConnectionId()] = ev.GetInstanceId()
				mu.Unlock()
			}
			return nil
		})
	}()
	// The watch is live once it has reported a probe connection's event from each instance
	// (following the other instance starts after the watch does); then every connection's.
	probes := 0
	require.Eventually(t, func() bool {
		probes++
		probe := fmt.Sprint("w-probe-", probes)
		connectVia(t, a, &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: probe})
		_, _ = a.client.Disconnect(ctx, &pb.DisconnectRequest{Id: probe})
		mu.Lock()
		defer mu.Unlock()
		from := map[string]bool{}
		for id, in := range connected {
			if strings.HasPrefix(id, "w-probe-") {
				from[in] = true
			}
		}
		return from[a.id] && from[b.id]
	}, 45*time.Second, 100*time.Millisecond, "a watch on a reports probes held by either instance")

	ids := make([]string, 16) // placement puts all 16 on one instance once in 32,768 runs
	for i := range ids {
		ids[i] = fmt.Sprint("w-", i)
		connectVia(t, a, &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: ids[i]})
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if connected[id] == "" {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "a watch on a sees every connection's events")
	mu.Lock()
	defer mu.Unlock()
	instances := map[string]bool{}
	for _, id := range ids {
		instances[connected[id]] = true
	}
	assert.True(t, instances[a.id] && instances[b.id], "events from both instances: %v", connected)
}
