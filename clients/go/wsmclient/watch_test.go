package wsmclient_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// The client's resume logic is tested against a fake service whose WatchFrames plays a script
// (one step per call); the real service is tested in cmd/wsmanager (watch_clients_test.go).

// step is what the fake service does on one WatchFrames call: send frames, then end with code
// (codes.OK: end the stream without an error) and, unless empty, the resume trailer. block
// keeps the stream open after the frames until the caller ends it.
type step struct {
	frames  []*pb.Frame
	code    codes.Code
	trailer string
	block   bool
	// wait delays the first frame (the watch must outlive the client's call timeout).
	wait time.Duration
}

type call struct {
	from        string // "live" or the from_sequence
	replies     bool
	hasDeadline bool
	auth        string
}

type fakeService struct {
	pb.UnimplementedWebSocketManagerServer
	mu       sync.Mutex
	script   []step
	calls    []call
	canceled int // calls that ended because the caller went away
}

func (s *fakeService) WatchFrames(req *pb.WatchFramesRequest, stream pb.WebSocketManager_WatchFramesServer) error {
	ctx := stream.Context()
	c := call{from: "live", replies: req.GetIncludeReplies()}
	if req.FromSequence != nil {
		c.from = strconv.FormatUint(req.GetFromSequence(), 10)
	}
	_, c.hasDeadline = ctx.Deadline()
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		c.auth = md.Get("authorization")[0]
	}
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, c)
	st := step{block: true} // past the script: a live watch with no frames
	if n < len(s.script) {
		st = s.script[n]
	}
	s.mu.Unlock()
	if st.wait > 0 {
		select {
		case <-time.After(st.wait):
		case <-ctx.Done():
		}
	}
	for _, f := range st.frames {
		if err := stream.Send(f); err != nil {
			return err
		}
	}
	if st.block {
		<-ctx.Done()
		s.mu.Lock()
		s.canceled++
		s.mu.Unlock()
		return ctx.Err()
	}
	if st.trailer != "" {
		stream.SetTrailer(metadata.Pairs(wsmclient.ResumeTrailer, st.trailer))
	}
	if st.code == codes.OK {
		return nil
	}
	return status.Error(st.code, "scripted end")
}

func (s *fakeService) snapshot() ([]call, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...), s.canceled
}

// serve runs svc on a loopback port and returns its address; stop ends it.
func serve(t *testing.T, addr string, svc *fakeService) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := grpc.NewServer()
	pb.RegisterWebSocketManagerServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), srv.Stop
}

func text(seq uint64, s string) *pb.Frame {
	return &pb.Frame{ConnectionId: "feed-1", Sequence: seq, Payload: &pb.Frame_Text{Text: s}}
}

func reply(seq uint64, s string) *pb.Frame {
	f := text(seq, s)
	f.Reply = true
	return f
}

func missing(from, to uint64, reason string) *pb.Frame {
	return &pb.Frame{ConnectionId: "feed-1", Payload: &pb.Frame_Missing{Missing: &pb.FrameGap{FromSequence: from, ToSequence: to, Reason: reason}}}
}

func describe(f *pb.Frame) string {
	if g := f.GetMissing(); g != nil {
		return fmt.Sprintf("missing %d-%d %s", g.GetFromSequence(), g.GetToSequence(), g.GetReason())
	}
	s := fmt.Sprintf("%d %s", f.GetSequence(), f.GetText())
	if f.GetReply() {
		s += " (reply)"
	}
	return s
}

// collect reads the watch until it has want frames (then stops the loop) or it ends; it
// returns what it saw and the error that ended it.
func collect(t *testing.T, seq func(func(*wsmclient.WatchedFrame, error) bool), want int) ([]string, error) {
	t.Helper()
	var got []string
	var end error
	if want == 0 {
		want = -1
	}
	seq(func(f *wsmclient.WatchedFrame, err error) bool {
		if err != nil {
			require.Nil(t, f, "a frame with an error")
			end = err
			return true // the iterator must not call again after an error
		}
		require.NoError(t, end, "a frame after the error")
		got = append(got, describe(f))
		return len(got) != want
	})
	return got, end
}

func noSleep(context.Context, time.Duration) bool { return true }

func TestWatchResumes(t *testing.T) {
	tests := []struct {
		name      string
		opts      []wsmclient.WatchOption
		script    []step
		want      []string
		wantCalls []string // the from_sequence of each call ("live": none)
		wantCode  codes.Code
	}{
		{
			name: "UNAVAILABLE with a trailer: watch again from the trailer",
			script: []step{
				{frames: []*pb.Frame{text(1, "a"), text(2, "b")}, code: codes.Unavailable, trailer: "3"},
				{frames: []*pb.Frame{text(3, "c")}, block: true},
			},
			want:      []string{"1 a", "2 b", "3 c"},
			wantCalls: []string{"live", "3"},
		},
		{
			name: "the trailer wins over the client's own position",
			script: []step{
				{frames: []*pb.Frame{text(1, "a")}, code: codes.Unavailable, trailer: "9"},
				{frames: []*pb.Frame{missing(9, 20, "moved"), text(21, "x")}, block: true},
			},
			want:      []string{"1 a", "missing 9-20 moved", "21 x"},
			wantCalls: []string{"live", "9"},
		},
		{
			name: "no trailer: from the sequence after the last frame that is not a reply",
			opts: []wsmclient.WatchOption{wsmclient.WithWatchReplies()},
			script: []step{
				{frames: []*pb.Frame{text(4, "a"), reply(4, "r")}, code: codes.Unavailable},
				{frames: []*pb.Frame{text(5, "b")}, block: true},
			},
			want:      []string{"4 a", "4 r (reply)", "5 b"},
			wantCalls: []string{"live", "5"},
		},
		{
			name: "an unreadable trailer is ignored",
			script: []step{
				{frames: []*pb.Frame{text(4, "a")}, code: codes.Unavailable, trailer: "soon"},
				{frames: []*pb.Frame{text(5, "b")}, block: true},
			},
			want:      []string{"4 a", "5 b"},
			wantCalls: []string{"live", "5"},
		},
		{
			name: "a gap is yielded, and a resume starts after it",
			opts: []wsmclient.WatchOption{wsmclient.WithFrom(1)},
			script: []step{
				{frames: []*pb.Frame{missing(1, 9, "not_retained")}, code: codes.Unavailable},
				{frames: []*pb.Frame{text(10, "j")}, block: true},
			},
			want:      []string{"missing 1-9 not_retained", "10 j"},
			wantCalls: []string{"1", "10"},
		},
		{
			name: "nothing received and no trailer: WithFrom's position is kept",
			opts: []wsmclient.WatchOption{wsmclient.WithFrom(5)},
			script: []step{
				{code: codes.Unavailable},
				{code: codes.Unavailable},
				{frames: []*pb.Frame{text(5, "e")}, block: true},
			},
			want:      []string{"5 e"},
			wantCalls: []string{"5", "5", "5"},
		},
		{
			name: "nothing known: live again",
			script: []step{
				{code: codes.Unavailable},
				{frames: []*pb.Frame{text(8, "h")}, block: true},
			},
			want:      []string{"8 h"},
			wantCalls: []string{"live", "live"},
		},
		{
			name: "a slow caller (RESOURCE_EXHAUSTED after frames) resumes from the trailer",
			script: []step{
				{frames: []*pb.Frame{text(1, "a"), text(2, "b")}, code: codes.ResourceExhausted, trailer: "3"},
				{frames: []*pb.Frame{text(3, "c")}, block: true},
			},
			want:      []string{"1 a", "2 b", "3 c"},
			wantCalls: []string{"live", "3"},
		},
		{
			name: "a stream ended without a status resumes",
			script: []step{
				{frames: []*pb.Frame{text(1, "a")}, code: codes.OK},
				{frames: []*pb.Frame{text(2, "b")}, block: true},
			},
			want:      []string{"1 a", "2 b"},
			wantCalls: []string{"live", "2"},
		},
		{
			name: "replies left out are asked for again after a resume",
			opts: []wsmclient.WatchOption{wsmclient.WithFrom(3), wsmclient.WithWatchReplies()},
			script: []step{
				{frames: []*pb.Frame{text(3, "c")}, code: codes.Unavailable, trailer: "4"},
				{frames: []*pb.Frame{reply(3, "late"), text(4, "d")}, block: true},
			},
			want:      []string{"3 c", "3 late (reply)", "4 d"},
			wantCalls: []string{"3", "4"},
		},

		{name: "NOT_FOUND ends the watch", script: []step{{code: codes.NotFound}}, wantCalls: []string{"live"}, wantCode: codes.NotFound},
		{name: "INVALID_ARGUMENT ends the watch", script: []step{{code: codes.InvalidArgument}}, wantCalls: []string{"live"}, wantCode: codes.InvalidArgument},
		{name: "PERMISSION_DENIED ends the watch", script: []step{{code: codes.PermissionDenied}}, wantCalls: []string{"live"}, wantCode: codes.PermissionDenied},
		{name: "UNAUTHENTICATED ends the watch", script: []step{{code: codes.Unauthenticated}}, wantCalls: []string{"live"}, wantCode: codes.Unauthenticated},
		{name: "INTERNAL ends the watch", script: []step{{code: codes.Internal}}, wantCalls: []string{"live"}, wantCode: codes.Internal},
		{
			name:      "RESOURCE_EXHAUSTED before any frame (a watcher limit) ends the watch",
			opts:      []wsmclient.WatchOption{wsmclient.WithFrom(2)},
			script:    []step{{code: codes.ResourceExhausted, trailer: "2"}},
			wantCalls: []string{"2"},
			wantCode:  codes.ResourceExhausted,
		},
		{
			name: "NOT_FOUND after a resume (the connection was closed) ends the watch",
			script: []step{
				{frames: []*pb.Frame{text(1, "a")}, code: codes.Unavailable, trailer: "2"},
				{code: codes.NotFound},
			},
			want:      []string{"1 a"},
			wantCalls: []string{"live", "2"},
			wantCode:  codes.NotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &fakeService{script: tt.script}
			addr, _ := serve(t, "127.0.0.1:0", svc)
			c, err := wsmclient.New(addr)
			require.NoError(t, err)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			opts := append([]wsmclient.WatchOption{wsmclient.WithWatchSleep(noSleep)}, tt.opts...)
			stopAfter := len(tt.want) // a watch that ends with an error is read to its end
			if tt.wantCode != codes.OK {
				stopAfter = 0
			}
			got, err := collect(t, c.Watch(ctx, "feed-1", opts...), stopAfter)
			assert.Equal(t, tt.want, got)
			if tt.wantCode == codes.OK {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Equal(t, tt.wantCode, wsmclient.Code(err), err.Error())
			}
			calls, _ := svc.snapshot()
			var from []string
			for _, c := range calls {
				from = append(from, c.from)
				assert.Equal(t, c.replies, calls[0].replies, "include_replies kept across resumes")
			}
			assert.Equal(t, tt.wantCalls, from)
			require.NoError(t, ctx.Err(), "the watch took too long")
		})
	}
}

// The wait between attempts doubles from 100 ms to at most 5 s while attempts bring nothing,
// and starts again at 100 ms after one that brought a frame.
func TestWatchBackoff(t *testing.T) {
	script := make([]step, 8)
	for i := range script {
		script[i] = step{code: codes.Unavailable}
	}
	script = append(script,
		step{frames: []*pb.Frame{text(1, "a")}, code: codes.Unavailable},
		step{code: codes.Unavailable},
		step{frames: []*pb.Frame{text(2, "b")}, block: true})
	svc := &fakeService{script: script}
	addr, _ := serve(t, "127.0.0.1:0", svc)
	c, err := wsmclient.New(addr)
	require.NoError(t, err)
	defer c.Close()
	var waits []time.Duration
	record := func(_ context.Context, d time.Duration) bool { waits = append(waits, d); return true }
	got, err := collect(t, c.Watch(context.Background(), "feed-1", wsmclient.WithWatchSleep(record)), 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"1 a", "2 b"}, got)
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms, 100 * ms, 100 * ms}, waits)
}

// A watch has no deadline, whatever the client's call timeout, and carries the token.
func TestWatchHasNoDeadline(t *testing.T) {
	svc := &fakeService{script: []step{{wait: 200 * time.Millisecond, frames: []*pb.Frame{text(1, "late")}, block: true}}}
	addr, _ := serve(t, "127.0.0.1:0", svc)
	c, err := wsmclient.New(addr, wsmclient.WithTimeout(10*time.Millisecond), wsmclient.WithToken("s3cret"))
	require.NoError(t, err)
	defer c.Close()
	got, err := collect(t, c.Watch(context.Background(), "feed-1", wsmclient.WithWatchSleep(noSleep)), 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"1 late"}, got)
	calls, _ := svc.snapshot()
	require.Len(t, calls, 1)
	assert.False(t, calls[0].hasDeadline)
	assert.Equal(t, "Bearer s3cret", calls[0].auth)
}

// Stopping the loop, or the end of ctx, ends the call at the service, and the watch ends
// without an error.
func TestWatchEndsWithTheCaller(t *testing.T) {
	for _, how := range []string{"break", "cancel"} {
		t.Run(how, func(t *testing.T) {
			svc := &fakeService{script: []step{{frames: []*pb.Frame{text(1, "a")}, block: true}}}
			addr, _ := serve(t, "127.0.0.1:0", svc)
			c, err := wsmclient.New(addr)
			require.NoError(t, err)
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got []string
			for f, err := range c.Watch(ctx, "feed-1") {
				require.NoError(t, err)
				got = append(got, describe(f))
				if how == "break" {
					break
				}
				cancel()
			}
			assert.Equal(t, []string{"1 a"}, got)
			require.Eventually(t, func() bool { _, n := svc.snapshot(); return n == 1 }, 5*time.Second, 10*time.Millisecond,
				"the service sees the call end")
			calls, _ := svc.snapshot()
			assert.Len(t, calls, 1, "no new call after the caller stopped")
		})
	}
}

// When the service goes away (a transport error, no status from it), the watch waits and
// watches again from after the last frame, at the service that comes back.
func TestWatchResumesAfterTheServiceWentAway(t *testing.T) {
	first := &fakeService{script: []step{{frames: []*pb.Frame{text(1, "a"), text(2, "b")}, block: true}}}
	addr, stop := serve(t, "127.0.0.1:0", first)
	c, err := wsmclient.New(addr)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := &fakeService{script: []step{{frames: []*pb.Frame{text(3, "c")}, block: true}}}
	var got []string
	for f, err := range c.Watch(ctx, "feed-1") {
		require.NoError(t, err)
		got = append(got, describe(f))
		if len(got) == 2 {
			stop()
			serve(t, addr, second)
		}
		if len(got) == 3 {
			break
		}
	}
	assert.Equal(t, []string{"1 a", "2 b", "3 c"}, got)
	calls, _ := second.snapshot()
	require.NotEmpty(t, calls)
	assert.Equal(t, "3", calls[len(calls)-1].from)
}
