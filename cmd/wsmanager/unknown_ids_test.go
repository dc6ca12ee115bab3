//go:build integration

package main_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// activeConnectionActors is the sidecar's count of active connection actors.
func activeConnectionActors(t *testing.T) int {
	t.Helper()
	n, err := env.daprd.ActiveActors("WebSocketConnection")
	require.NoError(t, err)
	return n
}

// rssBytes reads a process's resident memory.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	n, err := daprstack.RSS(pid)
	require.NoError(t, err)
	return n
}

// Ensure calls for ids that were never connected answer NOT_FOUND without activating an actor:
// an activated actor would stay in the service's and the sidecar's memory for the whole idle
// timeout (720 h), so a caller guessing ids could grow both without end.
func TestUnknownIDsCostNothing(t *testing.T) {
	const calls = 10_000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	calls5 := []func(id string) error{
		func(id string) error { _, err := env.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id}); return err },
		func(id string) error {
			_, err := env.client.Send(ctx, &pb.SendRequest{Id: id, Message: "x", TimeoutMs: 1000})
			return err
		},
		func(id string) error {
			_, err := env.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "x"})
			return err
		},
		func(id string) error {
			_, err := env.client.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: "t"})
			return err
		},
		func(id string) error {
			_, err := env.client.StopPublish(ctx, &pb.StopPublishRequest{Id: id})
			return err
		},
	}
	run := func(n int64) {
		var (
			next  atomic.Int64
			wrong atomic.Int64
			first atomic.Value
			wg    sync.WaitGroup
		)
		for range 16 {
			wg.Go(func() {
				for i := next.Add(1); i <= n && ctx.Err() == nil; i = next.Add(1) {
					err := calls5[i%int64(len(calls5))](uuid.NewString())
					if status.Code(err) != codes.NotFound {
						wrong.Add(1)
						first.CompareAndSwap(nil, fmt.Sprint(err))
					}
				}
			})
		}
		wg.Wait()
		require.Zero(t, wrong.Load(), "every call for an unknown id must be NOT_FOUND; first other answer: %v", first.Load())
	}
	// A warm-up round, so that what calls allocate once (connections, buffers, the heap's
	// working size) is in the baseline: what the measured round adds is what calls retain.
	run(2_000)
	actorsBefore := activeConnectionActors(t)
	svcBefore, sidecarBefore := rssBytes(t, env.service.Pid()), rssBytes(t, env.daprd.Pid())
	run(calls)

	actorsAfter := activeConnectionActors(t)
	svcAfter, sidecarAfter := rssBytes(t, env.service.Pid()), rssBytes(t, env.daprd.Pid())
	t.Logf("%d calls: active connection actors %d → %d; service RSS %.1f → %.1f MiB; sidecar RSS %.1f → %.1f MiB",
		calls, actorsBefore, actorsAfter, mib(svcBefore), mib(svcAfter), mib(sidecarBefore), mib(sidecarAfter))
	// Other tests' connections may come and go meanwhile, but not by thousands.
	assert.LessOrEqual(t, actorsAfter, actorsBefore+16, "calls for unknown ids activated actors")
	// Memory: bounds with room for the garbage collector's lazy returns (the service runs with
	// the race detector, which multiplies memory); an actor per call would grow the sidecar
	// and the service by far more.
	assert.Less(t, svcAfter-svcBefore, int64(32<<20), "service memory grew")
	assert.Less(t, sidecarAfter-sidecarBefore, int64(32<<20), "sidecar memory grew")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// Ensure every call on a connection checks the id by Connect's rule, over gRPC and REST.
func TestInvalidIDsRefusedOnEveryRPC(t *testing.T) {
	ctx := callCtx(t)
	bad := []string{"../x", "a b", "-leading-dash", "a/b", "a\x00b", "é", "a%2Fb", strings.Repeat("a", 129), ".hidden"}
	for _, id := range bad {
		for name, call := range map[string]func() error{
			"Disconnect": func() error { _, err := env.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id}); return err },
			"Send":       func() error { _, err := env.client.Send(ctx, &pb.SendRequest{Id: id, Message: "x"}); return err },
			"SendRaw":    func() error { _, err := env.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "x"}); return err },
			"StartPublish": func() error {
				_, err := env.client.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: "t"})
				return err
			},
			"StopPublish": func() error { _, err := env.client.StopPublish(ctx, &pb.StopPublishRequest{Id: id}); return err },
		} {
			err := call()
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s(%q): %v", name, id, err)
		}
	}
	// REST: the id is a path segment; an escaped one must not slip through either.
	for _, path := range []string{"/v1/connections/a%20b/send", "/v1/connections/%2E%2E/sendraw", "/v1/connections/-x/publish"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.httpURL+path, strings.NewReader(`{"message":"x","topic":"t"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+env.apiToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, path)
	}
}

// Ensure the actor host refuses a body beyond its limit without reading it whole.
func TestActorHostRefusesHugeBodies(t *testing.T) {
	limit := max(4<<20, 6*maxMessage+64<<10)
	url := fmt.Sprintf("http://127.0.0.1:%d/actors/WebSocketConnection/%s/method/get", env.actorPort, uuid.NewString())
	req, err := http.NewRequestWithContext(callCtx(t), http.MethodPut, url, bytes.NewReader(bytes.Repeat([]byte(" "), limit+1)))
	require.NoError(t, err)
	req.Header.Set("dapr-api-token", env.appToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

// Ensure a DNS-rebinding page (same-origin to the browser, but with its own name as Host)
// cannot drive the actors, even with the app token guessed or absent; daprd calls by address.
func TestActorHostRefusesRebindingHosts(t *testing.T) {
	url := fmt.Sprintf("http://127.0.0.1:%d/actors/WebSocketConnectionDirectory/0/method/ping", env.actorPort)
	for host, want := range map[string]int{"attacker.example": http.StatusMisdirectedRequest, fmt.Sprintf("127.0.0.1:%d", env.actorPort): http.StatusOK} {
		req, err := http.NewRequestWithContext(callCtx(t), http.MethodPut, url, strings.NewReader("{}"))
		require.NoError(t, err)
		req.Host = host
		req.Header.Set("dapr-api-token", env.appToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "Host %s", host)
	}
}

// Ensure a Connect the SSRF guard refuses by its URL alone (an address in any spelling, a
// name on the deny-list) costs no actor either: it is refused before the actor is called.
func TestRefusedConnectsCostNothing(t *testing.T) {
	ctx := callCtx(t)
	before := activeConnectionActors(t)
	urls := []string{"ws://169.254.169.254/", "ws://" + deniedLoopback + ":1/", "ws://[::ffff:169.254.169.254]/", "ws://0xa9fea9fe/"}
	for i := range 200 {
		_, err := env.client.Connect(ctx, &pb.ConnectRequest{Url: urls[i%len(urls)], ConnectionId: uuid.NewString()})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%s: %v", urls[i%len(urls)], err)
	}
	after := activeConnectionActors(t)
	assert.LessOrEqual(t, after, before+16, "refused Connects activated actors (%d → %d)", before, after)
}
