//go:build integration

package main_test

// Publishing on dedicated instances (flags the shared stack does not have), counted at the
// broker: the too-large rule inside batches, OVERFLOW_BACKPRESSURE against a server pushing as
// fast as it can, and batching across a failover. Helpers: broker_publish_test.go.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure that, inside a batching connection, a frame whose event cannot fit in what the pub/sub
// accepts (--max-publish-bytes) is dropped as too_large, alone, and the frames around it are
// published in order: the gap in sequence is exactly that frame.
func TestTooLargeFrameInBatch(t *testing.T) {
	const (
		n          = 60
		maxPublish = 128 << 10
	)
	tooLarge := map[int]bool{20: true, 40: true}
	frame := func(_, i int) (int, []byte) {
		switch i {
		case 20: // its event is over 200 KiB
			return websocket.TextMessage, bytes.Repeat([]byte{'L'}, 200<<10)
		case 40: // 150 KiB of binary is 200 KiB of base64
			return websocket.BinaryMessage, bytes.Repeat([]byte{0xAB}, 150<<10)
		case 30: // large, but its event fits: published (alone: above the batch's byte limit)
			return websocket.TextMessage, bytes.Repeat([]byte{'M'}, 100<<10)
		}
		return websocket.TextMessage, fmt.Appendf(nil, `{"i":%d}`, i)
	}
	feed := newFeed(t, feedOpts{n: n, waitGo: true, frame: frame})
	topic := uniqueTopic("e2e-toolarge")
	broker := newBrokerTopic(t, topic)
	c := newCluster(t)
	c.extraArgs = []string{"--max-publish-bytes", strconv.Itoa(maxPublish)}
	in := c.start("a")
	id := "toolarge-" + uuid.NewString()[:8]
	connectVia(t, in, &pb.ConnectRequest{Url: feed.url(), ConnectionId: id})
	ctx := callCtx(t)
	_, err := in.client.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: 10})
	require.NoError(t, err)
	_, err = in.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "go"})
	require.NoError(t, err)

	frames := broker.waitFrames(id, n-len(tooLarge), 30*time.Second)
	var want []uint64
	for i := 1; i <= n; i++ {
		if !tooLarge[i] {
			want = append(want, uint64(i))
		}
	}
	var got []uint64
	for _, f := range frames {
		got = append(got, f.Sequence)
		_, data := frame(1, int(f.Sequence))
		require.True(t, bytes.Equal(data, f.Data), "frame %d is the server's frame %d", f.Sequence, f.Sequence)
	}
	assert.Equal(t, want, got, "every frame but the two too large, in order")
	for _, ev := range broker.of(id) {
		assert.LessOrEqual(t, len(ev.raw), maxPublish, "entry %s: no event above --max-publish-bytes", ev.entryID)
		if ev.first == 30 {
			assert.Equal(t, 1, ev.count, "a frame above the batch's byte limit travels alone")
		}
		// A batch that spans a dropped frame says so: last-first+1-count frames are missing.
		for s := range tooLarge {
			if ev.first < uint64(s) && uint64(s) < ev.last {
				assert.Equal(t, uint64(ev.count)+1, ev.last-ev.first+1, "entry %s spans the dropped frame %d", ev.entryID, s)
			}
		}
	}
	conn := c.list("a")[id]
	assert.Equal(t, int64(2), conn.GetDroppedFrames())
	assert.Equal(t, map[string]int64{"too_large": 2}, conn.GetDroppedFramesByReason())
	assert.Equal(t, pb.ConnectionStatus_CONNECTED, conn.GetStatus(), "a too-large frame does not end the connection")
	assert.NotContains(t, in.svc.Log(), "WARNING: DATA RACE")
}

// freezeProxy is a TCP proxy to target that can be frozen: while frozen it forwards nothing in
// either direction (what it read waits in its buffers), as a broker that stops answering would.
type freezeProxy struct {
	l      net.Listener
	target string
	gate   sync.RWMutex // held for writing while frozen
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &freezeProxy{l: l, target: target}
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			p.wg.Go(func() { p.pipe(d, c) })
			p.wg.Go(func() { p.pipe(c, d) })
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezeProxy) addr() string { return p.l.Addr().String() }

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) freeze() { p.gate.Lock() }
func (p *freezeProxy) thaw()   { p.gate.Unlock() }

// seqFrame is {"seq":i}.
func seqFrame(_, i int) (int, []byte) {
	return websocket.TextMessage, []byte(`{"seq":` + strconv.Itoa(i) + `}`)
}

// requireSeqPayloads asserts that frame k carries {"seq":k+1}.
func requireSeqPayloads(t *testing.T, frames []wsmclient.Frame) {
	t.Helper()
	for k, f := range frames {
		require.Equal(t, `{"seq":`+strconv.Itoa(k+1)+`}`, string(f.Data), "frame %d at the broker", k)
	}
}

// Ensure OVERFLOW_BACKPRESSURE loses nothing: with a publish buffer of 16 frames and a server
// pushing thousands of frames as fast as its socket takes them, the broker ends with exactly the
// frames the server sent, contiguous and in order; List shows 0 dropped and the time paused; the
// connection stays CONNECTED and a Send still works. While the broker stops answering for 3×
// the keepalive (--ping-interval 200ms + --pong-timeout 300ms) the connection stays paused and
// is not declared dead.
func TestBackpressureLosesNothing(t *testing.T) {
	proxy := newFreezeProxy(t, redisstream.Addr)
	res, err := daprstack.WriteResources(t.TempDir(), daprstack.InMemoryActorStore(), daprstack.RedisPubsub(proxy.addr(), false))
	require.NoError(t, err)
	c := newClusterWith(t, res)
	const keepalive = 500 * time.Millisecond
	c.extraArgs = []string{"--publish-buffer", "16", "--ping-interval", "200ms", "--pong-timeout", "300ms"}
	in := c.start("a")

	for _, tc := range []struct {
		name  string
		batch uint32
		n     int
	}{
		{"one event per frame", 0, 5000},
		{"batched", 16, 20000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed := newFeed(t, feedOpts{n: tc.n, waitGo: true, frame: seqFrame})
			topic := uniqueTopic("e2e-backpressure")
			broker := newBrokerTopic(t, topic)
			id := "bp-" + uuid.NewString()[:8]
			connectVia(t, in, &pb.ConnectRequest{Url: feed.url(), ConnectionId: id})
			ctx := callCtx(t)
			_, err := in.client.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: tc.batch,
				Overflow: pb.Overflow_OVERFLOW_BACKPRESSURE})
			require.NoError(t, err)
			start := time.Now()
			_, err = in.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "go"})
			require.NoError(t, err)

			// The broker stops answering: the buffer fills and the connection pauses.
			proxy.freeze()
			frozen := true
			defer func() {
				if frozen {
					proxy.thaw()
				}
			}()
			// A pause may begin and end once more while the publishes the freeze caught in
			// flight finish; the pause that counts is the one still on after that.
			var since time.Time
			pollUntil(t, waitFor, 20*time.Millisecond, func() bool {
				conn := c.list("a")[id]
				if conn.GetPublishPausedSince() == nil {
					return false
				}
				since = conn.GetPublishPausedSince().AsTime()
				return time.Since(since) > keepalive
			}, "List shows the connection paused")
			for time.Since(since) < 3*keepalive {
				conn := c.list("a")[id]
				require.Equal(t, pb.ConnectionStatus_CONNECTED, conn.GetStatus(), "paused for %v: not declared dead (%s)", time.Since(since), conn.GetLastError())
				require.NotNil(t, conn.GetPublishPausedSince(), "still paused while the broker does not answer")
				require.True(t, since.Equal(conn.GetPublishPausedSince().AsTime()), "one pause: since %v, now since %v", since, conn.GetPublishPausedSince().AsTime())
				time.Sleep(50 * time.Millisecond) // a poll interval, not an assertion
			}
			proxy.thaw()
			frozen = false

			frames := broker.waitFrames(id, tc.n, 60*time.Second)
			elapsed := time.Since(start)
			require.Equal(t, tc.n, feed.sentBy(1), "the server sent every frame")
			requireContiguous(t, frames, 1)
			requireSeqPayloads(t, frames)
			if tc.batch > 1 {
				checkBatches(t, broker.of(id), feed.url(), int(tc.batch))
			}
			var conn *pb.WebSocketConnection
			pollUntil(t, waitFor, 20*time.Millisecond, func() bool {
				conn = c.list("a")[id]
				return conn.GetPublishPausedSince() == nil
			}, "not paused once everything is published")
			assert.Zero(t, conn.GetDroppedFrames(), "nothing dropped: %v", conn.GetDroppedFramesByReason())
			assert.Greater(t, conn.GetPublishPausedMs(), int64(3*keepalive/time.Millisecond), "the pause is counted")
			assert.Equal(t, pb.ConnectionStatus_CONNECTED, conn.GetStatus())
			assert.Zero(t, conn.GetReconnectCount(), "the socket never dropped")
			assert.Empty(t, conn.GetLastError())
			t.Logf("%d frames through a buffer of 16 in %v (%.0f frames/s with a %v freeze), %d events, paused %d ms in all",
				tc.n, elapsed.Round(time.Millisecond), float64(tc.n)/elapsed.Seconds(), 3*keepalive, len(broker.of(id)), conn.GetPublishPausedMs())

			resp, err := in.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "still there?", TimeoutMs: 5000})
			require.NoError(t, err)
			assert.Equal(t, "still there?", resp.GetResponse())
			_, err = in.client.Disconnect(callCtx(t), &pb.DisconnectRequest{Id: id})
			require.NoError(t, err)
		})
	}
	assert.NotContains(t, in.svc.Log(), "keepalive: no pong", "no connection was declared dead")
	assert.NotContains(t, in.svc.Log(), "WARNING: DATA RACE")
}

// Ensure batching survives a failover: a server streams steadily to a batching connection,
// the instance holding it is killed (SIGKILL, service and sidecar); once the connection is
// back on the other instance, the sequences at the broker never go backwards (the new
// instance's start above the old one's) and a sequence gap appears only where frames were lost:
// inside one socket the sequence advances exactly as the server's own frame counter does.
func TestBatchingAcrossFailover(t *testing.T) {
	feed := newFeed(t, feedOpts{interval: 5 * time.Millisecond, frame: func(sock, i int) (int, []byte) {
		return websocket.TextMessage, fmt.Appendf(nil, `{"sock":%d,"i":%d}`, sock, i)
	}})
	topic := uniqueTopic("e2e-failover")
	broker := newBrokerTopic(t, topic)
	c := newCluster(t)
	c.start("a")
	c.start("b")
	id := "fo-batch-" + uuid.NewString()[:8]
	connectVia(t, c.instance("a"), &pb.ConnectRequest{Url: feed.url(), ConnectionId: id, AutoReconnect: true})
	_, err := c.instance("a").client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic,
		BatchMaxFrames: 50, BatchMaxDelayMs: 20})
	require.NoError(t, err)

	type payload struct{ Sock, I int }
	decode := func(f wsmclient.Frame) payload {
		var p payload
		require.NoError(t, json.Unmarshal(f.Data, &p), "frame %d: %s", f.Sequence, f.Data)
		return p
	}
	waitSock := func(minSock, want int) {
		t.Helper()
		pollUntil(t, 45*time.Second, 50*time.Millisecond, func() bool {
			broker.poll()
			k := 0
			for _, f := range broker.frames(id) {
				if decode(f).Sock >= minSock {
					k++
				}
			}
			return k >= want
		}, "%d frames of socket %d or later at the broker", want, minSock)
	}
	waitSock(1, 200)

	holder := c.list("a")[id].GetInstanceId()
	victim, survivor := "a", "b"
	if holder == c.instance("b").id {
		victim, survivor = "b", "a"
	}
	require.Equal(t, c.instance(victim).id, holder)
	c.kill(victim)
	sockBefore := feed.socketCount()
	waitListed(t, c, survivor, func(m map[string]*pb.WebSocketConnection) bool {
		return m[id].GetStatus() == pb.ConnectionStatus_CONNECTED && m[id].GetInstanceId() == c.instance(survivor).id
	})
	waitSock(sockBefore+1, 200)
	conn := c.list(survivor)[id]
	_, err = c.instance(survivor).client.Disconnect(callCtx(t), &pb.DisconnectRequest{Id: id})
	require.NoError(t, err)
	broker.poll()

	frames := broker.frames(id)
	var gaps []string
	sockets := 1
	for k := 1; k < len(frames); k++ {
		prev, cur := frames[k-1], frames[k]
		pp, cp := decode(prev), decode(cur)
		require.Greater(t, cur.Sequence, prev.Sequence, "frame %d at the broker: sequence %d after %d goes backwards (%+v after %+v)", k, cur.Sequence, prev.Sequence, cp, pp)
		if cp.Sock == pp.Sock {
			require.Equal(t, uint64(cp.I-pp.I), cur.Sequence-prev.Sequence,
				"frame %d: within one socket a sequence gap is exactly the frames lost (%+v after %+v)", k, cp, pp)
		} else {
			require.Greater(t, cp.Sock, pp.Sock, "sockets in order")
			sockets++
		}
		if cur.Sequence-prev.Sequence > 1 {
			gaps = append(gaps, fmt.Sprintf("%d→%d (socket %d frame %d → socket %d frame %d)", prev.Sequence, cur.Sequence, pp.Sock, pp.I, cp.Sock, cp.I))
		}
	}
	t.Logf("%d frames in %d events over %d sockets; sequence gaps: %s", len(frames), len(broker.of(id)), sockets, strings.Join(gaps, ", "))
	assert.GreaterOrEqual(t, sockets, 2, "frames of the socket before and after the failover")
	for _, ev := range broker.of(id) {
		assert.Equal(t, wsmclient.FrameBatchEventType, ev.typ)
		assert.Equal(t, uint64(ev.count), ev.last-ev.first+1, "entry %s: no drops inside a batch", ev.entryID)
	}
	assert.Zero(t, conn.GetDroppedFrames(), "the new instance dropped nothing: %v", conn.GetDroppedFramesByReason())
	assert.NotContains(t, c.instance(survivor).svc.Log(), "WARNING: DATA RACE")
}
