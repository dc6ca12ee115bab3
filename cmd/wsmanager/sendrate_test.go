//go:build integration

package main_test

// End-to-end tests of send rate limits (issue 15 item 5) over the real Dapr runtime started in
// TestMain and a WebSocket server that timestamps every frame it receives.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// stampServer records when each text frame arrived.
type stampServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	at  map[string][]time.Time // by frame text prefix before ':'
}

func newStampServer(t *testing.T) *stampServer {
	s := &stampServer{at: map[string][]time.Time{}}
	up := websocket.Upgrader{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now()
			key, _, _ := strings.Cut(string(data), ":")
			s.mu.Lock()
			s.at[key] = append(s.at[key], now)
			s.mu.Unlock()
			if strings.HasPrefix(string(data), "echo") {
				_ = c.WriteMessage(websocket.TextMessage, data)
			}
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stampServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/" }

func (s *stampServer) stamps(key string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at[key]...)
}

// Ensure send_rate 20/s burst 5 spaces 25 SendRaws over at least ~1 s at the server, fail_fast
// is refused at once with RESOURCE_EXHAUSTED, a wait past the deadline is refused at once
// too, and List and /metrics count the throttled calls.
func TestSendRateEndToEnd(t *testing.T) {
	ws := newStampServer(t)
	before := scrape(t, env.httpURL)
	id := connectWith(t, &pb.ConnectRequest{Url: ws.url(), SendRate: &pb.SendRate{PerSecond: 20, Burst: 5}})

	// All at once, so that the bucket, not how fast one call follows another on a loaded
	// machine, spaces them.
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 25 {
		wg.Go(func() {
			_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "raw:" + string(rune('a'+i))})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	callerTook := time.Since(start)
	require.Eventually(t, func() bool { return len(ws.stamps("raw")) == 25 }, waitFor, poll)
	st := ws.stamps("raw")
	span := st[24].Sub(st[0])
	t.Logf("25 SendRaws at 20/s burst 5: first to last frame at the server %v (caller %v)", span, callerTook)
	// 20 frames past the burst at 20/s take 1 s; the server stamps a frame when it reads it,
	// so a stall of its reader on a loaded machine can shorten what it sees by a little.
	assert.GreaterOrEqual(t, span, 750*time.Millisecond, "20 frames past the burst at 20/s")
	assert.Less(t, span, 3*time.Second)
	// The token bucket's promise, for every window: at most burst + rate × its length frames
	// (+1, and 250 ms of the server's reading late, for the jitter between the service and
	// the server; no limit at all would put 25 frames in a few milliseconds).
	for i := range st {
		for j := i + 1; j < len(st); j++ {
			allowed := 5 + 20*(st[j].Sub(st[i]).Seconds()+0.25) + 1
			assert.LessOrEqual(t, float64(j-i+1), allowed, "frames %d..%d within %v", i, j, st[j].Sub(st[i]))
		}
	}

	// An empty bucket: fail_fast is refused at once, Send and SendRaw alike. (One token that
	// comes back in 10 s: the bucket stays empty while the test looks, however slowly.)
	slow := connectWith(t, &pb.ConnectRequest{Url: ws.url(), SendRate: &pb.SendRate{PerSecond: 0.1}})
	_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: slow, Message: "slow:1"})
	require.NoError(t, err)
	t0 := time.Now()
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: slow, Message: "refused:1", FailFast: true})
	assert.Equal(t, codes.ResourceExhausted, code(err), "%v", err)
	assert.Contains(t, err.Error(), "send rate")
	_, err = env.client.Send(callCtx(t), &pb.SendRequest{Id: slow, Message: "echo:refused", FailFast: true})
	assert.Equal(t, codes.ResourceExhausted, code(err), "%v", err)
	assert.Less(t, time.Since(t0), 3*time.Second, "refused without waiting (the token comes back in 10 s)")

	// A Send without fail_fast waits and gets its reply.
	r, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "echo:waited", TimeoutMs: 5000})
	require.NoError(t, err)
	assert.Equal(t, "echo:waited", r.GetResponse())
	assert.Empty(t, ws.stamps("refused"), "a refused call sends nothing")

	c := find(t, id)
	require.NotNil(t, c)
	assert.Equal(t, 20.0, c.GetSendRate().GetPerSecond())
	assert.Equal(t, uint32(5), c.GetSendRate().GetBurst())
	assert.GreaterOrEqual(t, c.GetThrottledSends(), int64(20), "20 waited SendRaws (+ the waiting Send)")
	assert.GreaterOrEqual(t, find(t, slow).GetThrottledSends(), int64(2), "2 refused")
	t.Logf("List: send_rate %v, throttled_sends %d", c.GetSendRate(), c.GetThrottledSends())

	after := scrape(t, env.httpURL)
	waited := after[`wsmanager_send_throttled_total{outcome="waited"}`] - before[`wsmanager_send_throttled_total{outcome="waited"}`]
	refused := after[`wsmanager_send_throttled_total{outcome="refused"}`] - before[`wsmanager_send_throttled_total{outcome="refused"}`]
	assert.GreaterOrEqual(t, waited, 20.0)
	assert.GreaterOrEqual(t, refused, 2.0)

	// A wait longer than the call's deadline is refused at once, not slept into DEADLINE_EXCEEDED.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 = time.Now()
	_, err = env.client.SendRaw(ctx, &pb.SendRawRequest{Id: slow, Message: "slow:2"})
	assert.Equal(t, codes.ResourceExhausted, code(err), "%v", err)
	assert.Contains(t, err.Error(), "deadline")
	assert.Less(t, time.Since(t0), 2*time.Second)
}

// Ensure on-connect messages take the rate's tokens: three at 5/s burst 1 are spaced ~200 ms.
func TestSendRateOnConnect(t *testing.T) {
	ws := newStampServer(t)
	connectWith(t, &pb.ConnectRequest{Url: ws.url(), SendRate: &pb.SendRate{PerSecond: 5, Burst: 1},
		OnConnectMessages: []string{"hello:1", "hello:2", "hello:3"}})
	require.Eventually(t, func() bool { return len(ws.stamps("hello")) == 3 }, waitFor, poll)
	st := ws.stamps("hello")
	t.Logf("on-connect messages at 5/s: %v, %v apart", st[1].Sub(st[0]), st[2].Sub(st[1]))
	assert.GreaterOrEqual(t, st[2].Sub(st[0]), 300*time.Millisecond, "400 ms, less the server's reading late")
}

// Ensure a bad send_rate is INVALID_ARGUMENT naming the field.
func TestSendRateValidation(t *testing.T) {
	cases := []struct {
		rate *pb.SendRate
		want string
	}{
		{rate: &pb.SendRate{}, want: "send_rate.per_second"},
		{rate: &pb.SendRate{PerSecond: -2}, want: "send_rate.per_second"},
		{rate: &pb.SendRate{PerSecond: 2e6}, want: "send_rate.per_second"},
		{rate: &pb.SendRate{PerSecond: 1, Burst: 2000000}, want: "send_rate.burst"},
	}
	for _, tc := range cases {
		_, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: "ws://127.0.0.1:1/", SendRate: tc.rate})
		assert.Equal(t, codes.InvalidArgument, code(err), "%v", tc.rate)
		if err != nil {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}
