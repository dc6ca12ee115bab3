package wsmclient

import (
	"context"
	"errors"
	"io"
	"iter"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// WatchedFrame is a frame of [Client.Watch]: an inbound frame (Sequence, ReceivedAt, Text or
// Binary, Reply), or a notice of frames that were asked for and will not come (GetMissing()
// not nil: the range of sequences and why).
type WatchedFrame = pb.Frame

// ResumeTrailer is the trailer in which the service says, when a watch ends UNAVAILABLE or
// RESOURCE_EXHAUSTED, which sequence to watch again from.
const ResumeTrailer = "wsm-resume-from"

// Bounds of the wait between two watch attempts: it doubles while attempts bring nothing, and
// starts again from the lower bound after one that brought a frame.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

type watchOptions struct {
	from    *uint64
	replies bool
	// sleep waits d, or reports false when ctx ends first (replaced in tests).
	sleep func(ctx context.Context, d time.Duration) bool
}

// WatchOption sets a [Client.Watch] setting.
type WatchOption func(*watchOptions)

// WithFrom starts the watch at sequence seq: the retained frames from seq on first, then the
// live ones. Frames asked for that are no longer retained are announced by a gap notice.
// Without it the watch starts with the next live frame.
func WithFrom(seq uint64) WatchOption { return func(o *watchOptions) { o.from = &seq } }

// WithWatchReplies includes the frames that answered a Send (left out by default). A reply
// carries the sequence of the frame before it and has Reply set.
func WithWatchReplies() WatchOption { return func(o *watchOptions) { o.replies = true } }

// Watch follows the inbound frames of connection id, from whichever instance holds it:
//
//	for f, err := range c.Watch(ctx, id, wsmclient.WithFrom(last+1)) {
//		if err != nil { … } // the watch is over
//		if g := f.GetMissing(); g != nil { … } // frames g.FromSequence..g.ToSequence will not come
//		…
//	}
//
// It resumes by itself when the stream ends because the instance holding the connection
// changed or went away (UNAVAILABLE, a transport error), or because the caller did not keep up
// (RESOURCE_EXHAUSTED after frames were received): it watches again from the sequence in the
// service's trailer [ResumeTrailer], else from the one after the last frame it yielded (else
// live), waiting 100 ms before the first retry and up to 5 s while retries fail. Frames the
// service no longer retains come as gap notices, never silently. Any other error (NOT_FOUND,
// PERMISSION_DENIED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED before any frame, which is a
// watcher limit, …) is yielded once and ends the watch. The watch has no deadline of its own
// (not [WithTimeout]'s): it ends, without an error, when ctx ends or the loop stops.
func (c *Client) Watch(ctx context.Context, id string, opts ...WatchOption) iter.Seq2[*WatchedFrame, error] {
	o := watchOptions{sleep: sleepCtx}
	for _, f := range opts {
		f(&o)
	}
	return func(yield func(*WatchedFrame, error) bool) {
		next := o.from // where to (re)start; nil: live
		delay := watchBackoffMin
		for {
			received, stop, err := c.watchOnce(ctx, id, &next, o.replies, yield)
			if stop || ctx.Err() != nil {
				return
			}
			if !resumable(err, received) {
				yield(nil, err)
				return
			}
			if received {
				delay = watchBackoffMin
			}
			if !o.sleep(ctx, delay) {
				return
			}
			if !received {
				delay = min(2*delay, watchBackoffMax)
			}
		}
	}
}

// watchOnce runs one WatchFrames call, yielding its frames and moving *next past each. It
// reports whether any frame came, whether the caller stopped, and how the stream ended.
func (c *Client) watchOnce(ctx context.Context, id string, next **uint64, replies bool,
	yield func(*WatchedFrame, error) bool) (received, stop bool, err error) {
	// Ends the call when the caller stops iterating.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.api.WatchFrames(ctx, &pb.WatchFramesRequest{Id: id, FromSequence: *next, IncludeReplies: replies})
	if err != nil {
		return false, false, err
	}
	// The service says in the header where a live watch starts, so that a resume after the
	// holder died before any frame came misses nothing without being told.
	if h, err := st.Header(); err == nil && *next == nil {
		if seq, ok := resumeFrom(h); ok {
			*next = &seq
		}
	}
	for {
		f, err := st.Recv()
		if err != nil {
			if seq, ok := resumeFrom(st.Trailer()); ok {
				*next = &seq
			}
			return received, false, err
		}
		received = true
		switch {
		case f.GetMissing() != nil:
			*next = ptr(f.GetMissing().GetToSequence() + 1)
		case !f.GetReply():
			// A reply carries the number of the frame before it: it does not move the position.
			*next = ptr(f.GetSequence() + 1)
		}
		if !yield(f, nil) {
			return received, true, nil
		}
	}
}

// resumable reports whether a watch that ended with err is to be resumed.
func resumable(err error, received bool) bool {
	if errors.Is(err, io.EOF) { // the service ended the stream without a status: it went away
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.ResourceExhausted:
		// After frames, the caller fell behind (resume); before any, a watcher limit (retrying
		// would only hide it).
		return received
	}
	return false
}

// resumeFrom reads the trailer ResumeTrailer.
func resumeFrom(md metadata.MD) (uint64, bool) {
	v := md.Get(ResumeTrailer)
	if len(v) == 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(v[len(v)-1], 10, 64)
	return seq, err == nil
}

func ptr(v uint64) *uint64 { return &v }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
