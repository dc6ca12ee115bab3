//go:build integration

package main_test

// Memory is bounded by bytes, not by counts: hostile WebSocket servers against the real
// service, its real sidecar and a real (or a refusing) pub/sub.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// hostileServer is a WebSocket server that, once the client sends anything, pushes the binary
// frames its URL asks for as fast as the socket takes them, then echoes:
// /flood?bytes=N&n=M (M frames of N bytes) or /sizes?b=N1,N2,… (one frame of each size; a
// frame's first byte is its position, so the consumer can tell them apart).
func hostileServer(t *testing.T) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
		var sizes []int
		switch r.URL.Path {
		case "/flood":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			b, _ := strconv.Atoi(r.URL.Query().Get("bytes"))
			for range n {
				sizes = append(sizes, b)
			}
		case "/sizes":
			for _, s := range strings.Split(r.URL.Query().Get("b"), ",") {
				b, _ := strconv.Atoi(s)
				sizes = append(sizes, b)
			}
		}
		for i, b := range sizes {
			data := make([]byte, b)
			data[0] = byte(i + 1)
			if c.WriteMessage(websocket.BinaryMessage, data) != nil {
				return
			}
		}
		for {
			typ, data, err := c.ReadMessage()
			if err != nil || c.WriteMessage(typ, data) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(srv *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + path
}

// watchDrops follows WatchEvents of in and records the frames-dropped events (reason
// "frames dropped: <reason>") by connection id.
type dropWatch struct {
	mu      sync.Mutex
	reasons map[string][]string
	first   map[string]time.Time // when each connection's first one arrived
}

func watchDrops(t *testing.T, in *instance) *dropWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := in.client.WatchEvents(ctx, &pb.WatchEventsRequest{ThisInstanceOnly: true})
	require.NoError(t, err)
	_, err = stream.Header() // the instance's events reach the stream from here
	require.NoError(t, err)
	w := &dropWatch{reasons: map[string][]string{}, first: map[string]time.Time{}}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			if r, ok := strings.CutPrefix(ev.GetReason(), "frames dropped: "); ok {
				w.mu.Lock()
				if _, ok := w.first[ev.GetConnectionId()]; !ok {
					w.first[ev.GetConnectionId()] = time.Now()
				}
				w.reasons[ev.GetConnectionId()] = append(w.reasons[ev.GetConnectionId()], r)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *dropWatch) of(id string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.reasons[id]...)
}

// since is how long ago id's first frames-dropped event arrived.
func (w *dropWatch) since(id string) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.first[id])
}

// Ensure servers that push big frames fast while every publish fails cannot make the service
// hold more than its byte budgets: frames beyond the connection's budget are dropped as
// buffer_full and those beyond the instance's as instance_budget — visible in List, in the
// metrics and as a lifecycle event — the buffered bytes never exceed the instance budget, the
// service's memory stays far below what was pushed at it, the connections stay up, and a
// shutdown with publishes failing ends within --shutdown-timeout.
func TestPublishBufferBoundedByBytes(t *testing.T) {
	const (
		frameBytes    = 256 << 10
		framesPerConn = 600 // 150 MiB per connection, 600 MiB in all
		conns         = 4
		connBudget    = 1 << 20
		instBudget    = 2 << 20 // below conns × connBudget: the instance budget is reached too
	)
	ws := hostileServer(t)
	c := newCluster(t)
	// A Redis that is not there: the pub/sub component does not load, every publish fails.
	res, err := daprstack.WriteResources(t.TempDir(), daprstack.InMemoryActorStore(), daprstack.RedisPubsub("127.0.0.1:1", true))
	require.NoError(t, err)
	c.resources = res
	c.extraArgs = []string{"--publish-buffer-bytes", strconv.Itoa(connBudget), "--publish-buffer-instance-bytes", strconv.Itoa(instBudget),
		"--shutdown-timeout", "4s", "--shutdown-grace", "1s"}
	in := c.start("a")
	drops := watchDrops(t, in)
	before := rssBytes(t, in.svc.Pid())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := make([]string, conns)
	for i := range ids {
		ids[i] = fmt.Sprintf("mem-%d", i)
		connectVia(t, in, &pb.ConnectRequest{Url: wsURL(ws, fmt.Sprintf("/flood?bytes=%d&n=%d", frameBytes, framesPerConn)), ConnectionId: ids[i]})
		_, err := in.client.StartPublish(ctx, &pb.StartPublishRequest{Id: ids[i], Topic: "nowhere"})
		require.NoError(t, err)
	}
	var peak int64
	var overBudget float64
	sample := func() {
		peak = max(peak, rssBytes(t, in.svc.Pid()))
		overBudget = max(overBudget, scrape(t, "http://"+in.httpAddr)[`wsmanager_publish_buffered_bytes`])
	}
	flood := func(id string) {
		_, err := in.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "go"})
		require.NoError(t, err)
	}
	// One connection fills its own budget first (and holds it: every publish fails and is
	// retried for a minute); then the other three share the 1 MiB of the instance left. All four
	// at once may share the instance budget evenly on a loaded machine and never fill their own.
	flood(ids[0])
	waitListed(t, c, "a", func(m map[string]*pb.WebSocketConnection) bool {
		sample()
		return m[ids[0]].GetDroppedFramesByReason()["buffer_full"] > 0
	})
	for _, id := range ids[1:] {
		flood(id)
	}
	list := waitListed(t, c, "a", func(m map[string]*pb.WebSocketConnection) bool {
		sample()
		var total int64
		for _, id := range ids {
			total += m[id].GetDroppedFrames()
		}
		// Each connection holds at most connBudget/frameBytes frames (the one in flight
		// included): everything else the servers pushed is dropped.
		return total >= conns*(framesPerConn-connBudget/frameBytes)
	})
	sample()
	byReason := map[string]int64{}
	for _, id := range ids {
		conn := list[id]
		assert.Equal(t, pb.ConnectionStatus_CONNECTED, conn.GetStatus(), "%s: publish trouble does not end the connection", id)
		var sum int64
		for r, n := range conn.GetDroppedFramesByReason() {
			byReason[r] += n
			sum += n
		}
		assert.Equal(t, conn.GetDroppedFrames(), sum, "%s: dropped_frames is the total of the reasons", id)
		assert.Positive(t, sum, id)
		assert.NotEmpty(t, conn.GetLastError(), id)
	}
	assert.Positive(t, byReason["buffer_full"], "a connection's own budget is reached: %v", byReason)
	assert.Positive(t, byReason["instance_budget"], "four connections of 1 MiB do not fit in 2 MiB: %v", byReason)

	m := scrape(t, "http://"+in.httpAddr)
	// At least what List showed a moment before (the last frames may still be dropping).
	assert.GreaterOrEqual(t, m[`wsmanager_publish_dropped_frames_total{reason="buffer_full"}`], float64(byReason["buffer_full"]))
	assert.GreaterOrEqual(t, m[`wsmanager_publish_dropped_frames_total{reason="instance_budget"}`], float64(byReason["instance_budget"]))
	assert.Contains(t, m, `wsmanager_publish_dropped_frames_total{reason="too_large"}`, "every reason is exported")
	assert.LessOrEqual(t, overBudget, float64(instBudget), "the buffered bytes never exceed the instance budget")

	for _, id := range ids {
		require.Eventually(t, func() bool { return len(drops.of(id)) > 0 }, waitFor, 50*time.Millisecond, "%s: a frames-dropped event", id)
	}

	// 600 MiB were pushed at the service; it holds at most 2 MiB of them. The slack is the
	// garbage of frames read and dropped (and the race detector's shadow memory).
	t.Logf("RSS before %d MiB, peak %d MiB", before>>20, peak>>20)
	assert.Less(t, peak-before, int64(conns*framesPerConn*frameBytes)/2, "the service's memory stays bounded")

	start := time.Now()
	c.stop("a")
	assert.Less(t, time.Since(start), 12*time.Second, "a shutdown while every publish fails ends within --shutdown-timeout (4s) and the sidecar's")
	// Every event there will be has been sent now: the first drop at once, then at most one
	// per connection every 10 s, counted from when its first arrived (not from when the test
	// looked: that can be many seconds later on a loaded machine), +1 for one in progress.
	for _, id := range ids {
		most := 2 + int(drops.since(id)/(10*time.Second))
		assert.LessOrEqual(t, len(drops.of(id)), most, "%s: drop events are rate-limited, not one per frame", id)
	}
}

// Ensure a frame whose event is larger than the pub/sub accepts is dropped once as too_large
// — whether the service's own check (--max-publish-bytes) or daprd's --max-body-size refuses
// it — and is never retried: the frames after it are published, with a gap in sequence.
func TestOversizedFrameIsNotRetried(t *testing.T) {
	ws := hostileServer(t)
	topic := "oversize-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := newCluster(t, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		// The service's check: the 5 MiB frame's event never leaves the service.
		{"refused by the service", []string{"--max-inbound-frame-bytes", "8388608"}},
		// No check of our own: daprd (default --max-body-size 4Mi) refuses the request.
		{"refused by daprd", []string{"--max-inbound-frame-bytes", "8388608", "--max-publish-bytes", "67108864"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.extraArgs = tc.args
			name := strings.ReplaceAll(tc.name, " ", "-")
			in := c.start(name)
			drops := watchDrops(t, in)
			id := "big-" + name
			connectVia(t, in, &pb.ConnectRequest{Url: wsURL(ws, "/sizes?b=100,5242880,100"), ConnectionId: id})
			_, err := in.client.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: topic})
			require.NoError(t, err)
			_, err = in.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "go"})
			require.NoError(t, err)

			require.Eventually(t, func() bool { return len(c.events.all(topic, id)) >= 2 }, waitFor, 50*time.Millisecond,
				"the frames after the oversized one are published")
			evs := c.events.all(topic, id)
			require.Len(t, evs, 2)
			assert.Equal(t, "1", evs[0].Sequence)
			assert.Equal(t, "3", evs[1].Sequence, "the oversized frame is a gap in sequence")
			conn := c.list(name)[id]
			assert.Equal(t, int64(1), conn.GetDroppedFrames())
			assert.Equal(t, map[string]int64{"too_large": 1}, conn.GetDroppedFramesByReason())
			assert.Contains(t, conn.GetLastError(), "too large")
			require.Eventually(t, func() bool { return len(drops.of(id)) > 0 }, waitFor, 50*time.Millisecond)
			assert.Equal(t, []string{"too_large"}, drops.of(id))

			m := scrape(t, "http://"+in.httpAddr)
			assert.Equal(t, 1.0, m[`wsmanager_publish_dropped_frames_total{reason="too_large"}`])
			// One attempt: frame 3 was published after it, so nothing retries it any more (a
			// retried frame blocks the ones behind it: publishing keeps order).
			assert.Equal(t, 1.0, m[`wsmanager_publish_failures_total`], "one attempt, no retries")
			assert.Equal(t, 1, strings.Count(in.svc.Log(), "refuses the event for good"))
			if tc.name == "refused by daprd" {
				assert.Contains(t, in.svc.Log(), "larger than max", "daprd's own refusal was what was classified")
			}
			_, err = in.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id}) // not taken over by the next instance
			require.NoError(t, err)
			c.stop(name)
		})
	}
}
