//go:build integration

package main_test

// Batched frame events, checked where the frames land: the Redis stream that Dapr's Redis
// pub/sub writes for a topic (one XADD per event, the event in the entry's field `data`, byte
// for byte as the service wrote it, since frame events are published with rawPayload). The
// shared stack and the clusters all use Redis pub/sub, so every count in these tests is taken
// at the broker, not at a subscriber. The helpers here (a feed server, a broker reader) are
// shared with broker_cluster_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// feedOpts is what a feed server pushes on each socket.
type feedOpts struct {
	n        int           // frames per socket; 0: without end
	interval time.Duration // between frames; 0: as fast as the socket takes them
	waitGo   bool          // push only after the client's first data frame (which is not echoed)
	// frame is the i-th frame (from 1) of the sock-th socket (from 1).
	frame func(sock, i int) (typ int, data []byte)
}

// feedServer is a WebSocket server that pushes the frames of feedOpts on every socket, echoes
// every other data frame it reads (so a Send gets its reply), answers pings (gorilla's default
// handler) while it pushes, and counts what it pushed. A write blocks while the client does not
// read: the server feels TCP backpressure as a real one would.
type feedServer struct {
	srv  *httptest.Server
	opts feedOpts

	mu      sync.Mutex
	sockets int
	sent    map[int]int // socket → frames pushed so far
	conns   map[*websocket.Conn]bool
	wg      sync.WaitGroup
}

func newFeed(t *testing.T, o feedOpts) *feedServer {
	t.Helper()
	f := &feedServer{opts: o, sent: map[int]int{}, conns: map[*websocket.Conn]bool{}}
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

func (f *feedServer) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/feed" }

// sentBy is the number of frames socket sock pushed so far.
func (f *feedServer) sentBy(sock int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[sock]
}

// socketCount is the number of handshakes so far.
func (f *feedServer) socketCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sockets
}

func (f *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.sockets++
	sock := f.sockets
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
	var wmu sync.Mutex // one writer at a time: the pusher and the echo
	start, done := make(chan struct{}), make(chan struct{})
	if !f.opts.waitGo {
		close(start)
	}
	go func() { // the reader: answers pings, starts the push, echoes
		defer close(done)
		waiting := f.opts.waitGo
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if waiting {
				waiting = false
				close(start)
				continue
			}
			wmu.Lock()
			err = c.WriteMessage(typ, data)
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-start:
	case <-done:
		return
	}
	var tick <-chan time.Time
	if f.opts.interval > 0 {
		t := time.NewTicker(f.opts.interval)
		defer t.Stop()
		tick = t.C
	}
	for i := 1; f.opts.n == 0 || i <= f.opts.n; i++ {
		if tick != nil {
			select {
			case <-tick:
			case <-done:
				return
			}
		}
		typ, data := f.opts.frame(sock, i)
		wmu.Lock()
		err := c.WriteMessage(typ, data)
		wmu.Unlock()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.sent[sock] = i
		f.mu.Unlock()
	}
	<-done
}

// brokerEvent is one entry of a topic's stream: a frame event as the service wrote it.
type brokerEvent struct {
	entryID      string
	raw          []byte // the entry's field data: the CloudEvent
	id, typ      string
	connectionID string
	url          string
	first, last  uint64 // batch: firstsequence, lastsequence
	count        int    // batch: count
	data         []byte // batch: the data array as written
	frames       []wsmclient.Frame
}

// brokerTopic reads a topic's Redis stream as it grows.
type brokerTopic struct {
	t      *testing.T
	rc     *redisstream.Client
	key    string
	after  string
	events []brokerEvent
}

// newBrokerTopic reads the stream of topic; the stream is deleted when the test ends.
func newBrokerTopic(t *testing.T, topic string) *brokerTopic {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := redisstream.Dial(ctx, redisstream.Addr)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = rc.Del(context.Background(), topic)
		_ = rc.Close()
	})
	return &brokerTopic{t: t, rc: rc, key: topic, after: "-"}
}

// poll reads the entries added since the last poll. An entry that is not a well-formed frame
// event (wsmclient.Frames refuses it) fails the test.
func (b *brokerTopic) poll() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		page, err := b.rc.XRange(ctx, b.key, b.after, "+", 1000)
		require.NoError(b.t, err)
		for _, e := range page {
			b.after = "(" + e.ID
			b.events = append(b.events, b.parse(e))
		}
		if len(page) < 1000 {
			return
		}
	}
}

func (b *brokerTopic) parse(e redisstream.Entry) brokerEvent {
	b.t.Helper()
	raw := []byte(e.Fields["data"])
	var attrs struct {
		ID            string          `json:"id"`
		Type          string          `json:"type"`
		ConnectionID  string          `json:"connectionid"`
		ConnectionURL string          `json:"connectionurl"`
		First         string          `json:"firstsequence"`
		Last          string          `json:"lastsequence"`
		Count         int             `json:"count"`
		Data          json.RawMessage `json:"data"`
	}
	require.NoError(b.t, json.Unmarshal(raw, &attrs), "entry %s is not JSON: %.300s", e.ID, raw)
	frames, err := wsmclient.Frames(raw)
	require.NoError(b.t, err, "entry %s: %.300s", e.ID, raw)
	ev := brokerEvent{entryID: e.ID, raw: raw, id: attrs.ID, typ: attrs.Type, connectionID: attrs.ConnectionID,
		url: attrs.ConnectionURL, count: attrs.Count, data: attrs.Data, frames: frames}
	if attrs.Type == wsmclient.FrameBatchEventType {
		ev.first, err = strconv.ParseUint(attrs.First, 10, 64)
		require.NoError(b.t, err, "entry %s firstsequence", e.ID)
		ev.last, err = strconv.ParseUint(attrs.Last, 10, 64)
		require.NoError(b.t, err, "entry %s lastsequence", e.ID)
	}
	return ev
}

// frames returns connection id's frames in stream order.
func (b *brokerTopic) frames(id string) []wsmclient.Frame {
	var out []wsmclient.Frame
	for _, ev := range b.events {
		if ev.connectionID == id {
			out = append(out, ev.frames...)
		}
	}
	return out
}

// of returns connection id's events in stream order.
func (b *brokerTopic) of(id string) []brokerEvent {
	var out []brokerEvent
	for _, ev := range b.events {
		if ev.connectionID == id {
			out = append(out, ev)
		}
	}
	return out
}

// waitFrames polls until the stream holds want frames of connection id. It fails when the
// count stops growing for stall, and when it passes want (more frames than were published).
func (b *brokerTopic) waitFrames(id string, want int, stall time.Duration) []wsmclient.Frame {
	b.t.Helper()
	seen, grew := -1, time.Now()
	for {
		b.poll()
		got := b.frames(id)
		if len(got) >= want {
			require.Len(b.t, got, want, "topic %s: more frames at the broker than expected", b.key)
			return got
		}
		if len(got) != seen {
			seen, grew = len(got), time.Now()
		}
		require.Less(b.t, time.Since(grew), stall, "topic %s: %d of %d frames at the broker, none more for %v", b.key, len(got), want, stall)
		time.Sleep(20 * time.Millisecond) // a poll interval, not an assertion
	}
}

// checkBatches asserts what every batch event of a connection must satisfy: its count is its
// number of elements and (no drops) lastsequence-firstsequence+1; at most maxFrames frames;
// every event id unique.
func checkBatches(t *testing.T, evs []brokerEvent, connURL string, maxFrames int) {
	t.Helper()
	ids := map[string]bool{}
	for _, ev := range evs {
		require.Equal(t, wsmclient.FrameBatchEventType, ev.typ, "entry %s: every event is a batch event", ev.entryID)
		assert.Equal(t, connURL, ev.url, "entry %s connectionurl", ev.entryID)
		assert.Len(t, ev.frames, ev.count, "entry %s: count is the number of elements", ev.entryID)
		assert.Equal(t, uint64(ev.count), ev.last-ev.first+1, "entry %s: count is lastsequence-firstsequence+1 (%d..%d)", ev.entryID, ev.first, ev.last)
		assert.LessOrEqual(t, ev.count, maxFrames, "entry %s: at most batch_max_frames", ev.entryID)
		assert.False(t, ids[ev.id], "entry %s: event id %s seen before", ev.entryID, ev.id)
		ids[ev.id] = true
	}
}

// requireContiguous asserts that frames carry the sequences from, from+1, … in order.
func requireContiguous(t *testing.T, frames []wsmclient.Frame, from uint64) {
	t.Helper()
	for i, f := range frames {
		require.Equal(t, from+uint64(i), f.Sequence, "frame %d of %d at the broker is out of sequence", i, len(frames))
	}
}

// pollUntil calls cond in the test's goroutine (so that it may use require) every interval
// until it holds, and fails the test after timeout.
func pollUntil(t *testing.T, timeout, interval time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			require.Fail(t, fmt.Sprintf("condition not met within %v", timeout), msgAndArgs...)
		}
		time.Sleep(interval) // a poll interval, not an assertion
	}
}

// explainFailure logs what List says of connection id when the test fails.
func explainFailure(t *testing.T, id string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("List of %s at the failure: %v", id, find(t, id))
		}
	})
}

// uniqueTopic is a topic no other test or run writes to.
func uniqueTopic(prefix string) string { return prefix + "-" + uuid.NewString()[:8] }

// mixedKind is how a mixed frame travels in a batch element.
type mixedKind int

const (
	asJSON   mixedKind = iota // embedded as JSON, byte for byte
	asText                    // a JSON string: the text exactly
	asBinary                  // data_base64
)

// mixedFrame is the i-th frame of the mixed feed: JSON objects with whitespace inside and keys
// unsorted, integers beyond float64 and int64, bare numbers and literals, plain text with
// characters that need escaping, text that is itself a JSON string, JSON with whitespace
// around it (text in a batch), empty text and binary, binary of every byte value, and text that
// is not UTF-8 (published as binary).
func mixedFrame(i int) (typ int, data []byte, kind mixedKind) {
	switch i % 12 {
	case 0:
		return websocket.TextMessage, fmt.Appendf(nil, "{ \"z\" : %d,\n\t\"a\": [1, 2 ,3],  \"big\": 123456789012345678901234567890 }", i), asJSON
	case 1:
		return websocket.TextMessage, fmt.Appendf(nil, `{"zeta":%d,"alpha":"x","m":{"y":1,"b":-0.000000000000000000001e-300},"n":18446744073709551617}`, i), asJSON
	case 2:
		return websocket.TextMessage, fmt.Appendf(nil, "plain text %d with \"quotes\", a \\ backslash, a\ttab, a\nnewline, <html> & \u2028 é ✓ 🚀", i), asText
	case 3:
		return websocket.TextMessage, fmt.Appendf(nil, `"a JSON string %d"`, i), asText
	case 4:
		b := make([]byte, 256+i%7)
		for j := range b {
			b[j] = byte(j + i)
		}
		return websocket.BinaryMessage, b, asBinary
	case 5:
		return websocket.TextMessage, fmt.Appendf(nil, " [%d, 2]\n", i), asText // whitespace around: text
	case 6:
		return websocket.TextMessage, fmt.Appendf(nil, "%d1234567890123456789012345678901234567890", i), asJSON
	case 7:
		return websocket.TextMessage, []byte([]string{"true", "false", "null"}[i%3]), asJSON
	case 8:
		if i%24 == 8 {
			return websocket.TextMessage, []byte{}, asText
		}
		return websocket.BinaryMessage, []byte{}, asBinary
	case 9:
		return websocket.TextMessage, []byte{'n', 'o', 't', ' ', 'u', 't', 'f', '8', 0xff, 0xfe, byte(i)}, asBinary
	case 10:
		return websocket.TextMessage, fmt.Appendf(nil, `[{"k":%d},[],{},"s",1e5,-2]`, i), asJSON
	}
	return websocket.TextMessage, fmt.Appendf(nil, "%d", i), asJSON
}

// Ensure a server pushing thousands of frames of every kind to a connection publishing in
// batches of at most 500 (with backpressure, so that nothing may be dropped) lands at the broker as websocketmanager.frame.batch events whose
// sequences run 1..N across events in stream order, whose count is right, whose JSON frames
// are byte for byte what the server sent and whose binary frames round-trip — parsed by the Go
// client's helper.
func TestBatchedPublishAtBroker(t *testing.T) {
	const n = 5000
	feed := newFeed(t, feedOpts{n: n, waitGo: true, frame: func(_, i int) (int, []byte) {
		typ, data, _ := mixedFrame(i)
		return typ, data
	}})
	topic := uniqueTopic("e2e-batch")
	broker := newBrokerTopic(t, topic)
	id := connect(t, feed.url())
	explainFailure(t, id)
	// Backpressure: the server pushes faster than a -race build on a shared machine publishes
	// (with the default DROP_NEWEST a run dropped 1,494 of 5,000 frames as buffer_full), and
	// this test is about what arrives, so nothing may be dropped.
	_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: 500,
		Overflow: pb.Overflow_OVERFLOW_BACKPRESSURE})
	require.NoError(t, err)
	start := time.Now()
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "go"})
	require.NoError(t, err)

	frames := broker.waitFrames(id, n, 30*time.Second)
	elapsed := time.Since(start)
	require.Equal(t, n, feed.sentBy(1))
	evs := broker.of(id)
	checkBatches(t, evs, feed.url(), 500)
	requireContiguous(t, frames, 1)
	for i, f := range frames {
		typ, want, kind := mixedFrame(i + 1)
		switch kind {
		case asJSON:
			require.True(t, f.JSON && !f.Binary, "frame %d (%q) must be a JSON frame", i+1, want)
			require.Equal(t, json.RawMessage(want), json.RawMessage(f.Data), "frame %d: JSON byte for byte", i+1)
		case asText:
			require.False(t, f.JSON || f.Binary, "frame %d (%q) must be a text frame", i+1, want)
			require.Equal(t, string(want), string(f.Data), "frame %d: text exactly", i+1)
		case asBinary:
			require.True(t, f.Binary, "frame %d (type %d) must travel as binary", i+1, typ)
			require.True(t, bytes.Equal(want, f.Data), "frame %d: binary round-trip: sent %x, got %x", i+1, want, f.Data)
		}
		require.Equal(t, id, f.ConnectionID)
	}
	most := 0
	for _, ev := range evs {
		most = max(most, ev.count)
	}
	t.Logf("%d frames in %d batch events (%.1f frames/event, largest %d) in %v: %.0f frames/s (-race)",
		n, len(evs), float64(n)/float64(len(evs)), most, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	assert.Greater(t, most, 1, "a server pushing as fast as it can fills batches")
	c := find(t, id)
	assert.Zero(t, c.GetDroppedFrames(), "nothing dropped: %v", c.GetDroppedFramesByReason())
	assert.Equal(t, pb.ConnectionStatus_CONNECTED, c.GetStatus())
}

// Ensure batch_max_bytes bounds every batch event's data, nothing is lost to the cut, and a
// frame larger than the bound travels alone in its own event.
func TestBatchByteLimits(t *testing.T) {
	const (
		n        = 600
		maxBytes = 4096
		bigAt    = 300 // the frame larger than maxBytes
	)
	frame := func(_, i int) (int, []byte) {
		switch {
		case i == bigAt:
			return websocket.TextMessage, bytes.Repeat([]byte{'B'}, 10<<10)
		case i%3 == 0:
			return websocket.BinaryMessage, bytes.Repeat([]byte{byte(i)}, 760) // ~1 KiB of base64
		case i%3 == 1:
			return websocket.TextMessage, fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, strings.Repeat("p", 1000))
		}
		return websocket.TextMessage, fmt.Appendf(nil, "text %d %s", i, strings.Repeat("t", 1000))
	}
	feed := newFeed(t, feedOpts{n: n, waitGo: true, frame: frame})
	topic := uniqueTopic("e2e-batchbytes")
	broker := newBrokerTopic(t, topic)
	id := connect(t, feed.url())
	// A long delay and many frames: only the byte limit cuts the batches.
	_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic,
		BatchMaxFrames: 1000, BatchMaxBytes: maxBytes, BatchMaxDelayMs: 50})
	require.NoError(t, err)
	_, err = env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: "go"})
	require.NoError(t, err)

	frames := broker.waitFrames(id, n, 30*time.Second)
	evs := broker.of(id)
	checkBatches(t, evs, feed.url(), 1000)
	requireContiguous(t, frames, 1)
	multi := 0
	for _, ev := range evs {
		if ev.first == bigAt {
			assert.Equal(t, 1, ev.count, "the frame larger than batch_max_bytes travels alone")
			assert.Greater(t, len(ev.data), maxBytes)
			continue
		}
		assert.LessOrEqual(t, len(ev.data), maxBytes, "entry %s (%d..%d): data within batch_max_bytes", ev.entryID, ev.first, ev.last)
		if ev.count > 1 {
			multi++
		}
	}
	assert.Positive(t, multi, "frames of ~1 KiB do share events of 4 KiB")
	for i, f := range frames {
		_, want := frame(1, i+1)
		require.True(t, bytes.Equal(want, f.Data), "frame %d round-trips", i+1)
	}
	t.Logf("%d frames in %d events", n, len(evs))
	assert.Zero(t, find(t, id).GetDroppedFrames())
}

// Ensure a frame that answers a Send is published only when include_replies is set, and that
// it still answers the Send either way. A reply takes no number of its own: published, it
// carries the sequence of the frame before it and is marked "reply":true (in a single event
// and in a batch element); unpublished, it leaves no gap.
func TestIncludeReplies(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	topic := uniqueTopic("e2e-replies")
	broker := newBrokerTopic(t, topic)
	id := connect(t, ws.URL("/echo"))
	for _, batch := range []uint32{0, 10} {
		t.Run(fmt.Sprintf("batch_max_frames %d", batch), func(t *testing.T) {
			send := func(msg string) {
				t.Helper()
				resp, err := env.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: msg, TimeoutMs: 5000})
				require.NoError(t, err)
				require.Equal(t, msg, resp.GetResponse(), "the echo answers the Send")
			}
			raw := func(msg string) {
				t.Helper()
				_, err := env.client.SendRaw(callCtx(t), &pb.SendRawRequest{Id: id, Message: msg})
				require.NoError(t, err)
			}
			all := broker.frames(id)
			before, prev := len(all), uint64(0)
			if before > 0 {
				prev = all[before-1].Sequence // the last frame published so far (not a reply)
			}
			// Batched: a delay long enough that a reply and the frame after it share an event
			// (a SendRaw's round trip on a loaded machine fits in it).
			var delay uint32
			if batch > 1 {
				delay = 2000
			}
			_, err := env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: batch, BatchMaxDelayMs: delay})
			require.NoError(t, err)
			send("reply-off")
			raw("pushed-1") // its echo answers no Send: published
			_, err = env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: batch, BatchMaxDelayMs: delay, IncludeReplies: true})
			require.NoError(t, err)
			assert.True(t, find(t, id).GetPublish().GetIncludeReplies())
			send("reply-on")
			raw("pushed-2")
			// Frames are published in order: once pushed-2 is there, so is everything before it.
			got := broker.waitFrames(id, before+3, 20*time.Second)[before:]
			var texts []string
			for _, f := range got {
				texts = append(texts, string(f.Data))
			}
			require.Equal(t, []string{"pushed-1", "reply-on", "pushed-2"}, texts, "a reply is published only with include_replies")
			assert.Equal(t, prev+1, got[0].Sequence, "the unpublished reply took no number")
			assert.False(t, got[0].Reply)
			assert.Equal(t, got[0].Sequence, got[1].Sequence, "a reply carries the number of the frame before it")
			assert.True(t, got[1].Reply, "a published reply is marked reply")
			assert.Equal(t, got[0].Sequence+1, got[2].Sequence, "the reply left no gap")
			assert.False(t, got[2].Reply)
			evs := broker.of(id)
			last := evs[len(evs)-1]
			marked := false
			for _, ev := range evs {
				marked = marked || bytes.Contains(ev.raw, []byte(`"reply":true,"data":"reply-on"`))
			}
			assert.True(t, marked, "the reply is marked in the event as written")
			if batch > 1 {
				assert.Equal(t, wsmclient.FrameBatchEventType, last.typ)
				assert.GreaterOrEqual(t, last.count, 2, "reply-on and pushed-2 share a batch")
				t.Logf("the last batch holds %d frames, sequences %d..%d", last.count, last.first, last.last)
			}
		})
	}
}

// Ensure StartPublish refuses settings out of range with INVALID_ARGUMENT naming the field,
// keeps the settings it had, and List shows the settings in effect.
func TestStartPublishValidation(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	id := connect(t, ws.URL("/echo"))
	topic := uniqueTopic("e2e-validate")
	good := &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: 500, BatchMaxBytes: 65536, BatchMaxDelayMs: 25,
		IncludeReplies: true, Overflow: pb.Overflow_OVERFLOW_BACKPRESSURE}
	_, err := env.client.StartPublish(callCtx(t), good)
	require.NoError(t, err)
	want := &pb.PublishSettings{BatchMaxFrames: 500, BatchMaxBytes: 65536, BatchMaxDelayMs: 25, IncludeReplies: true, Overflow: pb.Overflow_OVERFLOW_BACKPRESSURE}
	c := find(t, id)
	assert.Equal(t, topic, c.GetTopic())
	assert.True(t, proto.Equal(want, c.GetPublish()), "List shows the publish settings: %v", c.GetPublish())

	for _, tc := range []struct {
		name, field string
		req         *pb.StartPublishRequest
	}{
		{"too many frames", "batch_max_frames", &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: 100001}},
		{"too long a delay", "batch_max_delay_ms", &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxDelayMs: 10001}},
		{"too many bytes", "batch_max_bytes", &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxBytes: 64<<20 + 1}},
		{"unknown overflow", "overflow", &pb.StartPublishRequest{Id: id, Topic: topic, Overflow: pb.Overflow(9)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.client.StartPublish(callCtx(t), tc.req)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "error: %v", err)
			assert.Contains(t, status.Convert(err).Message(), tc.field)
			got := find(t, id).GetPublish()
			assert.True(t, proto.Equal(want, got), "a refused StartPublish changes nothing: %v", got)
		})
	}
	// The largest values are accepted; the default settings show as DROP_NEWEST.
	_, err = env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: 100000, BatchMaxDelayMs: 10000})
	require.NoError(t, err)
	got := find(t, id).GetPublish()
	assert.True(t, proto.Equal(&pb.PublishSettings{BatchMaxFrames: 100000, BatchMaxDelayMs: 10000}, got), "%v", got)
	_, err = env.client.StartPublish(callCtx(t), &pb.StartPublishRequest{Id: id, Topic: topic})
	require.NoError(t, err)
	assert.Equal(t, pb.Overflow_OVERFLOW_DROP_NEWEST, find(t, id).GetPublish().GetOverflow())
	_, err = env.client.StopPublish(callCtx(t), &pb.StopPublishRequest{Id: id})
	require.NoError(t, err)
	assert.Nil(t, find(t, id).GetPublish(), "no settings while not publishing")
}
