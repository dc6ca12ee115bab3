//go:build integration

package main_test

// WatchFrames on the real runtime, through the generated gRPC client as any plain gRPC program
// would call it: order and completeness under a fast server (on the holder and relayed by
// another instance), resume after the watcher's own disconnect and across a kill -9 failover,
// a slow watcher that must not slow publishing, the watcher limits, and the REST stream.
// Feed servers and broker helpers: broker_publish_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// resumeTrailer is the trailer of an ended WatchFrames stream naming the sequence to resume
// from (service.ResumeTrailer; spelled out here as a client would).
const resumeTrailer = "wsm-resume-from"

// watchStream is one WatchFrames call. Frames are read into a large channel by a goroutine
// started with read(), so that the test never makes the watcher slow by itself; a stream that
// is never read (a slow watcher) simply does not call read().
type watchStream struct {
	t      *testing.T
	fs     pb.WebSocketManager_WatchFramesClient
	cancel context.CancelFunc
	frames chan *pb.Frame
	done   chan struct{}
	// err and trailer are set before done is closed.
	err     error
	trailer metadata.MD
}

func openWatch(t *testing.T, client pb.WebSocketManagerClient, req *pb.WatchFramesRequest) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fs, err := client.WatchFrames(ctx, req)
	require.NoError(t, err)
	return &watchStream{t: t, fs: fs, cancel: cancel, frames: make(chan *pb.Frame, 1<<17), done: make(chan struct{})}
}

func (w *watchStream) read() *watchStream {
	go func() {
		for {
			f, err := w.fs.Recv()
			if err != nil {
				w.err, w.trailer = err, w.fs.Trailer()
				close(w.done)
				return
			}
			w.frames <- f
		}
	}()
	return w
}

// nextOrEnd returns the next frame, or ended when the stream ended with no frame left.
func (w *watchStream) nextOrEnd(timeout time.Duration) (f *pb.Frame, ended bool) {
	w.t.Helper()
	select {
	case f := <-w.frames:
		return f, false
	default:
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case f := <-w.frames:
		return f, false
	case <-w.done:
		select { // frames read before the end come first
		case f := <-w.frames:
			return f, false
		default:
			return nil, true
		}
	case <-timer.C:
		require.FailNow(w.t, fmt.Sprintf("no frame and no end of the watch within %v", timeout))
		return nil, false
	}
}

// next returns the next frame; the stream ending first fails the test.
func (w *watchStream) next(timeout time.Duration) *pb.Frame {
	w.t.Helper()
	f, ended := w.nextOrEnd(timeout)
	if ended { // err and trailer are read only once done is closed
		require.FailNow(w.t, fmt.Sprintf("the watch ended: %v (trailer %v)", w.err, w.trailer))
	}
	return f
}

// end waits for the stream to end and returns the frames still received before the end, the
// error it ended with and the sequence of the resume trailer (0, false: none).
func (w *watchStream) end(timeout time.Duration) (rest []*pb.Frame, resume uint64, hasResume bool, err error) {
	w.t.Helper()
	for {
		f, ended := w.nextOrEnd(timeout)
		if ended {
			break
		}
		rest = append(rest, f)
	}
	if v := w.trailer.Get(resumeTrailer); len(v) > 0 {
		resume, perr := strconv.ParseUint(v[0], 10, 64)
		require.NoError(w.t, perr, "trailer %s=%q", resumeTrailer, v[0])
		return rest, resume, true, w.err
	}
	return rest, 0, false, w.err
}

func seqPtr(v uint64) *uint64 { return &v }

// resumeFrom reads the resume trailer of an ended stream.
func resumeFrom(md metadata.MD) (uint64, bool) {
	v := md.Get(resumeTrailer)
	if len(v) == 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(v[0], 10, 64)
	return seq, err == nil
}

// requireFrame asserts that f is the data frame typ/data with sequence seq, byte for byte.
func requireFrame(t *testing.T, f *pb.Frame, id string, seq uint64, typ int, data []byte, msgAndArgs ...any) {
	t.Helper()
	what := fmt.Sprint(msgAndArgs...)
	require.Nil(t, f.GetMissing(), "%s: a gap notice %v where frame %d was expected", what, f.GetMissing(), seq)
	require.Equal(t, seq, f.GetSequence(), "%s: sequence", what)
	require.Equal(t, id, f.GetConnectionId(), "%s: connection id", what)
	require.NotNil(t, f.GetReceivedAt(), "%s: received_at", what)
	require.False(t, f.GetReply(), "%s: not a reply", what)
	switch p := f.GetPayload().(type) {
	case *pb.Frame_Binary:
		require.Equal(t, websocket.BinaryMessage, typ, "%s: the server sent a text frame, the watcher got binary %x", what, p.Binary)
		require.True(t, bytes.Equal(data, p.Binary), "%s: binary byte for byte: sent %x, got %x", what, data, p.Binary)
	case *pb.Frame_Text:
		require.Equal(t, websocket.TextMessage, typ, "%s: the server sent a binary frame, the watcher got text %q", what, p.Text)
		require.Equal(t, string(data), p.Text, "%s: text exactly", what)
	default:
		require.Failf(t, "no payload", "%s: frame %d has payload %T", what, seq, p)
	}
}

// watchedFrame is the i-th frame (from 1) of the order test: JSON and plain text (escapes,
// non-ASCII, empty), binary of every byte value (empty too), and some larger frames.
func watchedFrame(_, i int) (int, []byte) {
	switch i % 8 {
	case 0:
		return websocket.TextMessage, fmt.Appendf(nil, `{"i":%d,"px":"%d.%02d","side":"buy"}`, i, i/100, i%100)
	case 1:
		b := make([]byte, 1+i%300)
		for j := range b {
			b[j] = byte(i + j)
		}
		return websocket.BinaryMessage, b
	case 2:
		return websocket.TextMessage, fmt.Appendf(nil, "plain %d with \"quotes\", a \\ backslash,\ta tab,\na newline, é ✓ 🚀", i)
	case 3:
		if i%24 == 3 {
			return websocket.BinaryMessage, []byte{}
		}
		return websocket.BinaryMessage, fmt.Appendf(nil, "\x00\xff%d\x80", i)
	case 4:
		if i%24 == 4 {
			return websocket.TextMessage, []byte{}
		}
		return websocket.TextMessage, fmt.Appendf(nil, " [%d, 2]\n", i)
	case 5:
		return websocket.TextMessage, append(fmt.Appendf(nil, "%d:", i), bytes.Repeat([]byte{'L'}, 2048)...)
	case 6:
		return websocket.BinaryMessage, append(fmt.Appendf(nil, "%d:", i), bytes.Repeat([]byte{0xAB}, 1500)...)
	}
	return websocket.TextMessage, strconv.AppendInt(nil, int64(i), 10)
}

// pushFeed is a WebSocket server that echoes every data frame it reads, except the text frame
// "go", which makes it push frames 1..n of frame as fast as the socket takes them. The echo
// lets a test see that a live watch is in place before the push begins.
type pushFeed struct {
	srv   *httptest.Server
	n     int
	frame func(sock, i int) (int, []byte)
	mu    sync.Mutex
	conns map[*websocket.Conn]bool
	wg    sync.WaitGroup
}

func newPushFeed(t *testing.T, n int, frame func(sock, i int) (int, []byte)) *pushFeed {
	t.Helper()
	f := &pushFeed{n: n, frame: frame, conns: map[*websocket.Conn]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.mu.Lock()
		for c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.srv.Close()
		f.wg.Wait()
	})
	return f
}

func (f *pushFeed) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/push" }

func (f *pushFeed) serve(w http.ResponseWriter, r *http.Request) {
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns[c] = true
	f.wg.Add(1)
	f.mu.Unlock()
	defer func() {
		_ = c.Close()
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		f.wg.Done()
	}()
	var wmu sync.Mutex
	var pushers sync.WaitGroup
	defer pushers.Wait()
	for {
		typ, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage && string(data) == "go" {
			pushers.Go(func() {
				for i := 1; i <= f.n; i++ {
					typ, data := f.frame(1, i)
					wmu.Lock()
					err := c.WriteMessage(typ, data)
					wmu.Unlock()
					if err != nil {
						return
					}
				}
			})
			continue
		}
		wmu.Lock()
		err = c.WriteMessage(typ, data)
		wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// Ensure a watcher sees every frame of a fast server, in order and byte for byte: a live watch
// (no from_sequence) on the instance holding the connection, and one through the other
// instance of a 2-instance cluster (the relay path). The server pushes 20,000 frames of every
// kind as fast as its socket takes them; a watcher that falls behind by more than its buffer
// is ended RESOURCE_EXHAUSTED and resumes from the trailer (retention holds every frame), so
// what it sees in the end is still every frame once, in order, with no gap notice.
func TestWatchFramesOrderAndCompleteness(t *testing.T) {
	const n = 20000
	feed := newPushFeed(t, n, watchedFrame)
	c := newCluster(t)
	c.start("a")
	c.start("b")
	id := "watch-order-" + uuid.NewString()[:8]
	connectVia(t, c.instance("a"), &pb.ConnectRequest{Url: feed.url(), ConnectionId: id, RetainFrames: 2 * n, RetainBytes: 64 << 20})
	holder := c.list("a")[id].GetInstanceId()
	local, relay := "a", "b"
	if holder == c.instance("b").id {
		local, relay = "b", "a"
	}
	require.Equal(t, c.instance(local).id, holder)
	watchers := []struct {
		name string
		w    *watchStream
	}{
		{"on the holder", openWatch(t, c.instance(local).client, &pb.WatchFramesRequest{Id: id}).read()},
		{"through the other instance", openWatch(t, c.instance(relay).client, &pb.WatchFramesRequest{Id: id}).read()},
	}

	// A live watch starts with the frame after it is in place: echoes of "ping-k" until each
	// watcher got one show that both are.
	got := make([][]*pb.Frame, len(watchers))
	pings := 0
	deadline := time.Now().Add(30 * time.Second)
	for ready := 0; ready < len(watchers); {
		require.True(t, time.Now().Before(deadline), "the watchers see no echo within 30s")
		pings++
		_, err := c.instance(local).client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: fmt.Sprintf("ping-%d", pings)})
		require.NoError(t, err)
		ready = 0
		for k, wt := range watchers {
			if len(got[k]) == 0 {
				select {
				case f := <-wt.w.frames:
					got[k] = append(got[k], f)
				case <-time.After(500 * time.Millisecond):
				}
			}
			if len(got[k]) > 0 {
				ready++
			}
		}
	}
	start := time.Now()
	_, err := c.instance(local).client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "go"})
	require.NoError(t, err)

	// Each watcher is read into its own channel all along (read()); here they are collected one
	// after the other. A watcher ended RESOURCE_EXHAUSTED (it fell more than --watch-buffer
	// frames behind) watches again from its trailer, as the clients' iterators do: everything
	// is retained, so that must cost no frame.
	resumes := make([]int, len(watchers))
	for k := range watchers {
		w := watchers[k].w
		client := c.instance(local).client
		if k == 1 {
			client = c.instance(relay).client
		}
		pushed := 0
		for _, f := range got[k] {
			if !strings.HasPrefix(f.GetText(), "ping-") {
				pushed++
			}
		}
		for pushed < n {
			f, ended := w.nextOrEnd(60 * time.Second)
			if ended {
				_, resume, ok, err := w.end(time.Second)
				require.Equal(t, codes.ResourceExhausted, status.Code(err), "%s: after %d frames: %v", watchers[k].name, pushed, err)
				require.True(t, ok, "%s: the end carries %s", watchers[k].name, resumeTrailer)
				resumes[k]++
				w = openWatch(t, client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(resume)}).read()
				continue
			}
			got[k] = append(got[k], f)
			if !strings.HasPrefix(f.GetText(), "ping-") {
				pushed++
			}
		}
		t.Logf("%s: %d frames, resumed %d times after RESOURCE_EXHAUSTED (default --watch-buffer)", watchers[k].name, pushed, resumes[k])
	}
	elapsed := time.Since(start)
	for k, wt := range watchers {
		t.Run(wt.name, func(t *testing.T) {
			frames := got[k]
			// The echoes come first: ping-j … ping-<pings>, then frames 1..n, all contiguous.
			p := 0
			for p < len(frames) && strings.HasPrefix(frames[p].GetText(), "ping-") {
				p++
			}
			require.Positive(t, p, "the watch began with an echo")
			first, err := strconv.Atoi(strings.TrimPrefix(frames[0].GetText(), "ping-"))
			require.NoError(t, err)
			require.Equal(t, pings-first+1, p, "echoes ping-%d..ping-%d, no more, no less", first, pings)
			base := frames[0].GetSequence()
			for j, f := range frames[:p] {
				requireFrame(t, f, id, base+uint64(j), websocket.TextMessage, fmt.Appendf(nil, "ping-%d", first+j), "echo")
			}
			require.Len(t, frames[p:], n, "every frame the server pushed")
			for i := 1; i <= n; i++ {
				typ, data := watchedFrame(1, i)
				requireFrame(t, frames[p+i-1], id, base+uint64(p+i-1), typ, data, fmt.Sprintf("frame %d", i))
			}
		})
	}
	t.Logf("%d frames to 2 watchers (one relayed), all collected %v after the push began (-race)", n, elapsed.Round(time.Millisecond))
	conn := c.list(local)[id]
	assert.Equal(t, pb.ConnectionStatus_CONNECTED, conn.GetStatus())
	for _, name := range []string{"a", "b"} {
		assert.NotContains(t, c.instance(name).svc.Log(), "WARNING: DATA RACE")
	}
}

// Ensure a watcher that ends its own stream and watches again from the sequence after the last
// frame it saw gets every frame once: no gap, no repeat, while the server kept pushing. With
// retention too small for the pause, the first message announces exactly what is missing.
func TestWatchFramesResumeAfterOwnDisconnect(t *testing.T) {
	t.Run("retained", func(t *testing.T) {
		const k = 100
		feed := newFeed(t, feedOpts{interval: 2 * time.Millisecond, frame: seqFrame})
		id := connectWith(t, &pb.ConnectRequest{Url: feed.url(), RetainFrames: 100000})
		w := openWatch(t, env.client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(1)}).read()
		for i := 1; i <= k; i++ {
			_, data := seqFrame(1, i)
			requireFrame(t, w.next(waitFor), id, uint64(i), websocket.TextMessage, data, fmt.Sprintf("first watch, frame %d", i))
		}
		w.cancel()
		_, _, _, err := w.end(waitFor)
		require.Equal(t, codes.Canceled, status.Code(err), "%v", err)

		// The server goes on pushing while nobody watches.
		pollUntil(t, waitFor, 10*time.Millisecond, func() bool { return feed.sentBy(1) >= k+300 }, "the server pushes on")
		w = openWatch(t, env.client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(k + 1)}).read()
		for i := k + 1; i <= k+400; i++ {
			_, data := seqFrame(1, i)
			requireFrame(t, w.next(waitFor), id, uint64(i), websocket.TextMessage, data, fmt.Sprintf("resumed watch, frame %d", i))
		}
	})
	t.Run("not retained", func(t *testing.T) {
		const retain = 50
		feed := newFeed(t, feedOpts{interval: time.Millisecond, frame: seqFrame})
		id := connectWith(t, &pb.ConnectRequest{Url: feed.url(), RetainFrames: retain})
		pollUntil(t, waitFor, 10*time.Millisecond, func() bool { return feed.sentBy(1) >= 4*retain }, "the server pushes")
		w := openWatch(t, env.client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(1)}).read()
		gap := w.next(waitFor).GetMissing()
		require.NotNil(t, gap, "frames 1.. are no longer all retained: the first message says which are missing")
		assert.Equal(t, uint64(1), gap.GetFromSequence())
		assert.Equal(t, "not_retained", gap.GetReason())
		require.GreaterOrEqual(t, gap.GetToSequence(), uint64(2*retain), "at most %d frames retained", retain)
		for i := gap.GetToSequence() + 1; i <= gap.GetToSequence()+2*retain; i++ {
			_, data := seqFrame(1, int(i))
			requireFrame(t, w.next(waitFor), id, i, websocket.TextMessage, data, fmt.Sprintf("after the gap, frame %d", i))
		}
	})
}

// Ensure a watch through the instance that does not hold the connection ends when the holder
// is killed (SIGKILL, service and sidecar) with UNAVAILABLE and the trailer naming the sequence
// after the last frame it delivered; once the connection is re-established on the survivor, a
// watch from there first announces the gap exactly — [last+1, 2^32], "moved": the survivor
// numbers from 2^32+1 (epoch 2) — then delivers the survivor's frames from 2^32+1 on.
func TestWatchFramesResumeAcrossFailover(t *testing.T) {
	feed := newFeed(t, feedOpts{interval: 5 * time.Millisecond, frame: func(sock, i int) (int, []byte) {
		return websocket.TextMessage, fmt.Appendf(nil, `{"sock":%d,"i":%d}`, sock, i)
	}})
	c := newCluster(t)
	c.start("a")
	c.start("b")
	id := "watch-fo-" + uuid.NewString()[:8]
	connectVia(t, c.instance("a"), &pb.ConnectRequest{Url: feed.url(), ConnectionId: id, AutoReconnect: true, RetainFrames: 100000})
	holder := c.list("a")[id].GetInstanceId()
	victim, survivor := "a", "b"
	if holder == c.instance("b").id {
		victim, survivor = "b", "a"
	}
	require.Equal(t, c.instance(victim).id, holder)

	w := openWatch(t, c.instance(survivor).client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(1)}).read()
	var last uint64
	for i := 1; i <= 200; i++ {
		requireFrame(t, w.next(waitFor), id, uint64(i), websocket.TextMessage, fmt.Appendf(nil, `{"sock":1,"i":%d}`, i), fmt.Sprintf("frame %d", i))
		last = uint64(i)
	}
	sockBefore := feed.socketCount()
	c.kill(victim)
	killedAt := time.Now()
	rest, resume, ok, err := w.end(60 * time.Second)
	for _, f := range rest { // relayed before the end: still in order
		requireFrame(t, f, id, last+1, websocket.TextMessage, fmt.Appendf(nil, `{"sock":1,"i":%d}`, last+1), "frame before the end")
		last++
	}
	t.Logf("the relayed watch ended %v after the kill, %d frames delivered: %v", time.Since(killedAt).Round(time.Millisecond), last, err)
	require.Equal(t, codes.Unavailable, status.Code(err), "the watch ends UNAVAILABLE when the holder dies: %v", err)
	require.True(t, ok, "the end carries the trailer %s", resumeTrailer)
	require.Equal(t, last+1, resume, "%s is the sequence after the last frame delivered", resumeTrailer)

	waitListed(t, c, survivor, func(m map[string]*pb.WebSocketConnection) bool {
		return m[id].GetStatus() == pb.ConnectionStatus_CONNECTED && m[id].GetInstanceId() == c.instance(survivor).id
	})
	t.Logf("re-established on the survivor %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	w = openWatch(t, c.instance(survivor).client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(resume)}).read()
	first := w.next(waitFor)
	gap := first.GetMissing()
	require.NotNil(t, gap, "the first message after a failover is a gap notice, got frame %d %q", first.GetSequence(), first.GetText())
	epochs := regexp.MustCompile(`"epoch": ?(\d+)`).FindAllStringSubmatch(c.instance(survivor).svc.Log(), -1)
	assert.Equal(t, resume, gap.GetFromSequence(), "the gap starts where the watch asked to resume")
	assert.Equal(t, uint64(1)<<32, gap.GetToSequence(), "the gap ends before epoch 2's numbering (survivor log: epochs %v)", epochs)
	assert.Equal(t, "moved", gap.GetReason())
	assert.Equal(t, id, first.GetConnectionId())

	// Then the survivor's frames, from the first it numbered, on its own socket(s).
	prev := gap.GetToSequence()
	for k := 0; k < 100; k++ {
		f := w.next(waitFor)
		require.Nil(t, f.GetMissing(), "one gap notice, then frames")
		require.Equal(t, prev+1, f.GetSequence(), "frame %d after the gap", k)
		var p struct{ Sock, I int }
		require.NoError(t, json.Unmarshal([]byte(f.GetText()), &p), "frame %d: %q", f.GetSequence(), f.GetText())
		require.Greater(t, p.Sock, sockBefore, "frame %d came on a socket opened after the kill", f.GetSequence())
		if k == 0 {
			assert.Equal(t, 1, p.I, "the first frame after the gap is the first frame of the new socket")
		}
		prev = f.GetSequence()
	}
	assert.NotContains(t, c.instance(survivor).svc.Log(), "WARNING: DATA RACE")
}

// Ensure a watcher that never reads does not slow the connection or its publishing: with
// --watch-buffer 2048, a server pushes 20,000 frames as fast as it can to a connection
// publishing in batches with backpressure (so a slowdown would show as the server waiting,
// not as drops); every frame reaches the broker, the connection stays CONNECTED, and a second
// watcher that reads gets every frame without being ended. When the slow watcher finally reads,
// it gets the frames it was handed, in order, and its stream ends RESOURCE_EXHAUSTED with the
// trailer naming the next sequence, from which a new watch resumes without a gap. The times to
// publish without watchers and with only the slow one are logged (not asserted: the machine
// is shared).
func TestSlowWatcherDoesNotSlowPublishing(t *testing.T) {
	const n = 20000
	pad := strings.Repeat("x", 200)
	frame := func(_, i int) (int, []byte) {
		return websocket.TextMessage, fmt.Appendf(nil, `{"seq":%d,"pad":"%s"}`, i, pad)
	}
	c := newCluster(t)
	c.extraArgs = []string{"--watch-buffer", "2048"}
	in := c.start("a")

	// The slow watcher has its own connection with fixed flow-control windows (64 KiB, no BDP
	// growth): not reading, it holds at most that much in gRPC before its buffer fills.
	slowConn, err := grpc.NewClient(in.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearerCreds(clusterToken)), grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	require.NoError(t, err)
	t.Cleanup(func() { _ = slowConn.Close() })

	// publish connects to a new server, publishes with backpressure, calls watch, lets the
	// server push and returns when every frame is at the broker.
	publish := func(watch func(id string)) (string, time.Duration) {
		t.Helper()
		feed := newFeed(t, feedOpts{n: n, waitGo: true, frame: frame})
		topic := uniqueTopic("e2e-slowwatch")
		broker := newBrokerTopic(t, topic)
		id := "slow-" + uuid.NewString()[:8]
		connectVia(t, in, &pb.ConnectRequest{Url: feed.url(), ConnectionId: id, RetainFrames: 100000, RetainBytes: 64 << 20})
		_, err := in.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: 100,
			Overflow: pb.Overflow_OVERFLOW_BACKPRESSURE})
		require.NoError(t, err)
		if watch != nil {
			watch(id)
		}
		start := time.Now()
		_, err = in.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "go"})
		require.NoError(t, err)
		frames := broker.waitFrames(id, n, 60*time.Second)
		elapsed := time.Since(start)
		requireContiguous(t, frames, 1)
		conn := c.list("a")[id]
		assert.Equal(t, pb.ConnectionStatus_CONNECTED, conn.GetStatus())
		assert.Zero(t, conn.GetDroppedFrames(), "%v", conn.GetDroppedFramesByReason())
		return id, elapsed
	}
	_, base := publish(nil)
	_, slowOnly := publish(func(id string) {
		openWatch(t, pb.NewWebSocketManagerClient(slowConn), &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(1)})
	})
	var slow, reader *watchStream
	id, elapsed := publish(func(id string) {
		slow = openWatch(t, pb.NewWebSocketManagerClient(slowConn), &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(1)})
		reader = openWatch(t, in.client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(1)}).read()
	})
	t.Logf("%d frames at the broker in %v without watchers, %v with a watcher that does not read, %v with one that does not and one that reads (-race, shared machine)",
		n, base.Round(time.Millisecond), slowOnly.Round(time.Millisecond), elapsed.Round(time.Millisecond))

	// The reading watcher gets every frame. Under -race on a loaded machine it can fall behind
	// the server too: then it is ended RESOURCE_EXHAUSTED like any watcher and resumes from the
	// trailer without a gap (retention holds every frame here), as the clients' iterators do.
	resumes := 0
	for i := 1; i <= n; {
		f, ended := reader.nextOrEnd(30 * time.Second)
		if ended {
			require.Equal(t, codes.ResourceExhausted, status.Code(reader.err), "the reading watcher ends only by falling behind: %v", reader.err)
			from, ok := resumeFrom(reader.trailer)
			require.True(t, ok, "with the trailer %s", resumeTrailer)
			require.Equal(t, uint64(i), from, "the trailer names the next frame")
			reader = openWatch(t, in.client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(from)}).read()
			resumes++
			continue
		}
		_, data := frame(1, i)
		requireFrame(t, f, id, uint64(i), websocket.TextMessage, data, fmt.Sprintf("reading watcher, frame %d", i))
		i++
	}
	t.Logf("the reading watcher got every frame (resumed %d times after falling behind)", resumes)

	got, resume, ok, err := slow.read().end(30 * time.Second)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "the slow watcher's stream ends RESOURCE_EXHAUSTED: %v", err)
	require.True(t, ok, "with the trailer %s", resumeTrailer)
	require.NotEmpty(t, got, "it got the frames it was handed")
	require.Less(t, len(got), n, "not every frame")
	for i, f := range got {
		_, data := frame(1, i+1)
		requireFrame(t, f, id, uint64(i+1), websocket.TextMessage, data, fmt.Sprintf("slow watcher, frame %d", i+1))
	}
	require.Equal(t, uint64(len(got))+1, resume, "%s is the sequence after the last frame it got", resumeTrailer)
	t.Logf("the slow watcher got %d frames, then %v", len(got), err)

	w := openWatch(t, in.client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(resume)}).read()
	for i := int(resume); i <= n; i++ {
		_, data := frame(1, i)
		requireFrame(t, w.next(30*time.Second), id, uint64(i), websocket.TextMessage, data, fmt.Sprintf("resumed slow watcher, frame %d", i))
	}
	assert.NotContains(t, in.svc.Log(), "WARNING: DATA RACE")
}

// Ensure the watcher limits hold and free up: with --max-frame-watchers-per-connection 2 the
// third watch of a connection is RESOURCE_EXHAUSTED naming the flag, and closing one lets a new
// one in; with --max-frame-watchers 3 the same across connections.
func TestWatcherLimits(t *testing.T) {
	feed := newFeed(t, feedOpts{interval: 20 * time.Millisecond, frame: seqFrame})
	c := newCluster(t)
	c.extraArgs = []string{"--max-frame-watchers-per-connection", "2", "--max-frame-watchers", "3"}
	in := c.start("a")
	ids := []string{"lim-1-" + uuid.NewString()[:8], "lim-2-" + uuid.NewString()[:8]}
	for _, id := range ids {
		connectVia(t, in, &pb.ConnectRequest{Url: feed.url(), ConnectionId: id})
	}
	// served opens a live watch and waits for a frame: the watch is in place, counted.
	served := func(id string) *watchStream {
		t.Helper()
		w := openWatch(t, in.client, &pb.WatchFramesRequest{Id: id}).read()
		w.next(waitFor)
		return w
	}
	refused := func(id, flag string) {
		t.Helper()
		w := openWatch(t, in.client, &pb.WatchFramesRequest{Id: id}).read()
		_, _, _, err := w.end(waitFor)
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		assert.Contains(t, status.Convert(err).Message(), flag)
	}
	// servedOnceFreed retries a watch until the slot a closed watch held is free again (the
	// service lets it go when it sees the cancellation).
	servedOnceFreed := func(id string) *watchStream {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for {
			w := openWatch(t, in.client, &pb.WatchFramesRequest{Id: id}).read()
			if _, ended := w.nextOrEnd(waitFor); !ended {
				return w
			}
			require.Equal(t, codes.ResourceExhausted, status.Code(w.err), "%v", w.err)
			require.True(t, time.Now().Before(deadline), "the closed watch's slot is not freed within %v", waitFor)
			time.Sleep(50 * time.Millisecond) // a poll interval, not an assertion
		}
	}

	w1 := served(ids[0])
	served(ids[0])
	refused(ids[0], "--max-frame-watchers-per-connection")
	w1.cancel()
	w3 := servedOnceFreed(ids[0])

	// Two watches of the first connection and one of the second: the instance's 3.
	w4 := served(ids[1])
	refused(ids[1], "(--max-frame-watchers)")
	w4.cancel()
	servedOnceFreed(ids[1])
	refused(ids[1], "(--max-frame-watchers)")
	w3.cancel()
	servedOnceFreed(ids[1])
	refused(ids[0], "(--max-frame-watchers)") // this connection has 1 of its 2: the instance's limit
	assert.NotContains(t, in.svc.Log(), "WARNING: DATA RACE")
}

// restFrame is one line of the REST stream.
type restFrame struct {
	Result map[string]json.RawMessage `json:"result"`
	Error  json.RawMessage            `json:"error"`
}

// Ensure GET /v1/connections/{id}/frames streams newline-delimited {"result": Frame} objects
// (the resume parameter by its JSON or its proto name): the retained frames, then live ones as
// they arrive; an unknown id is 404 with a JSON error.
func TestWatchFramesREST(t *testing.T) {
	const n = 20
	frame := func(_, i int) (int, []byte) {
		if i%4 == 0 {
			return websocket.BinaryMessage, []byte{0, 1, 2, byte(i), 0xff}
		}
		return websocket.TextMessage, fmt.Appendf(nil, "text %d ✓ \"q\"", i)
	}
	feed := newFeed(t, feedOpts{n: n, waitGo: true, frame: frame})
	id := connectWith(t, &pb.ConnectRequest{Url: feed.url()})
	_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "go"})
	require.NoError(t, err)
	pollUntil(t, waitFor, 10*time.Millisecond, func() bool { return feed.sentBy(1) == n }, "the server pushed its frames")

	get := func(t *testing.T, path string) (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.httpURL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+env.apiToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp, cancel
	}
	live := 0
	for _, param := range []string{"fromSequence", "from_sequence"} {
		t.Run(param, func(t *testing.T) {
			resp, cancel := get(t, "/v1/connections/"+id+"/frames?"+param+"=1")
			defer cancel()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			lines := make(chan []byte, 100)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					lines <- bytes.Clone(sc.Bytes())
				}
			}()
			nextLine := func() restFrame {
				t.Helper()
				select {
				case l, ok := <-lines:
					require.True(t, ok, "the stream ended")
					var rf restFrame
					require.NoError(t, json.Unmarshal(l, &rf), "line %q", l)
					require.Nil(t, rf.Error, "line %q", l)
					require.NotNil(t, rf.Result, "line %q", l)
					return rf
				case <-time.After(waitFor):
					require.FailNow(t, "no line within the timeout")
					return restFrame{}
				}
			}
			check := func(rf restFrame, seq int, typ int, data []byte) {
				t.Helper()
				str := func(k string) string {
					var s string
					require.NoError(t, json.Unmarshal(rf.Result[k], &s), "%s in %v", k, rf.Result)
					return s
				}
				assert.Equal(t, strconv.Itoa(seq), str("sequence"), "sequence as a JSON string (uint64)")
				assert.Equal(t, id, str("connectionId"))
				_, err := time.Parse(time.RFC3339Nano, str("receivedAt"))
				assert.NoError(t, err, "receivedAt is RFC 3339")
				if typ == websocket.BinaryMessage {
					b, err := base64.StdEncoding.DecodeString(str("binary"))
					require.NoError(t, err)
					assert.Equal(t, data, b, "frame %d: binary in base64", seq)
					assert.NotContains(t, rf.Result, "text")
				} else {
					assert.Equal(t, string(data), str("text"), "frame %d", seq)
					assert.NotContains(t, rf.Result, "binary")
				}
			}
			for i := 1; i <= n; i++ {
				typ, data := frame(1, i)
				check(nextLine(), i, typ, data)
			}
			// A live frame: the server echoes what it reads after "go".
			live++
			msg := fmt.Sprintf("live %d", live)
			_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: msg})
			require.NoError(t, err)
			for i := n + 1; i < n+live; i++ { // the previous subtest's live frame
				nextLine()
			}
			check(nextLine(), n+live, websocket.TextMessage, []byte(msg))
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		resp, cancel := get(t, "/v1/connections/no-such-"+uuid.NewString()[:8]+"/frames")
		defer cancel()
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(resp.Body)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "body %s", body)
		assert.Contains(t, resp.Header.Get("Content-Type"), "application/json")
		var e struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(body.Bytes(), &e), "body %s", body)
		assert.Equal(t, int(codes.NotFound), e.Error.Code)
		assert.NotEmpty(t, e.Error.Message)
	})
}

// Ensure a text frame that is not valid UTF-8 (a server may send one; the service does not
// refuse it) reaches the watcher, byte for byte as binary as publishing does, and does not end
// the watch or stop the frames behind it.
func TestWatchFramesTextNotUTF8(t *testing.T) {
	bad := []byte{'n', 'o', 't', ' ', 0xff, 0xfe}
	frame := func(_, i int) (int, []byte) {
		if i == 2 {
			return websocket.TextMessage, bad
		}
		return websocket.TextMessage, fmt.Appendf(nil, "ok %d", i)
	}
	feed := newFeed(t, feedOpts{n: 3, waitGo: true, frame: frame})
	id := connectWith(t, &pb.ConnectRequest{Url: feed.url()})
	w := openWatch(t, env.client, &pb.WatchFramesRequest{Id: id, FromSequence: seqPtr(1)}).read()
	_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "go"})
	require.NoError(t, err)
	requireFrame(t, w.next(waitFor), id, 1, websocket.TextMessage, []byte("ok 1"), "frame 1")
	f, ended := w.nextOrEnd(waitFor)
	require.False(t, ended, "the watch ended at the frame that is not UTF-8: %v", w.err)
	requireFrame(t, f, id, 2, websocket.BinaryMessage, bad, "frame 2 (text, not UTF-8)")
	requireFrame(t, w.next(waitFor), id, 3, websocket.TextMessage, []byte("ok 3"), "frame 3")
}
