package service

import (
	"context"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/session"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// ResumeTrailer is the trailer of an ended WatchFrames stream that says which sequence to
// watch again from.
const ResumeTrailer = "wsm-resume-from"

// WatchFrames implements the WebSocketManager WatchFrames RPC: the frames of the session held
// here, or those of the instance that holds it, relayed (a forwarded call serves only here).
// Every way the stream ends but the caller's own cancellation sets ResumeTrailer.
func (s *Server) WatchFrames(req *pb.WatchFramesRequest, stream pb.WebSocketManager_WatchFramesServer) error {
	ctx := stream.Context()
	if err := requireID(req.GetId()); err != nil {
		return err
	}
	var from *uint64
	if req.FromSequence != nil {
		v := req.GetFromSequence()
		from = &v
	}
	w, addr, err := s.conns.WatchFrames(ctx, req.GetId(), from, req.GetIncludeReplies(), isForwarded(ctx))
	if err != nil {
		var ae *actors.Error
		if from != nil && errors.As(err, &ae) && ae.Code == actors.CodeUnavailable {
			setResume(stream, *from) // only where watching again can help
		}
		return err
	}
	if w != nil {
		return serveFrames(ctx, req.GetId(), w, stream)
	}
	return s.relayFrames(ctx, addr, req, stream)
}

func setResume(stream grpc.ServerStream, seq uint64) {
	stream.SetTrailer(metadata.Pairs(ResumeTrailer, strconv.FormatUint(seq, 10)))
}

// serveFrames sends a local watch's frames until it ends. A slow caller blocks only this
// stream: the session hands frames to the watch without waiting, and ends it when its
// buffer overflows.
func serveFrames(ctx context.Context, id string, w *session.Watcher, stream pb.WebSocketManager_WatchFramesServer) error {
	defer w.Close()
	// Where the watch starts, in the header: a caller (or a relay) that gets no frame before
	// this instance dies still knows where to resume.
	if err := stream.SendHeader(metadata.Pairs(ResumeTrailer, strconv.FormatUint(w.Position(), 10))); err != nil {
		return err
	}
	for {
		f, gap, err := w.Next(ctx)
		if err != nil {
			if seq, ok := session.ResumeFrom(err); ok {
				if errors.Is(err, session.ErrWatchEnded) || errors.Is(err, session.ErrWatcherSlow) {
					setResume(stream, seq) // only where watching again helps
				}
				return actors.SessionError(err).Err()
			}
			return err
		}
		if err := stream.Send(framePB(id, f, gap)); err != nil {
			return err
		}
	}
}

func framePB(id string, f session.Retained, gap *session.Gap) *pb.Frame {
	if gap != nil {
		return &pb.Frame{ConnectionId: id, Payload: &pb.Frame_Missing{Missing: &pb.FrameGap{FromSequence: gap.From, ToSequence: gap.To, Reason: gap.Reason}}}
	}
	out := &pb.Frame{ConnectionId: id, Sequence: f.Seq, ReceivedAt: timestamppb.New(f.ReceivedAt), Reply: f.Reply}
	if f.Binary || !utf8.Valid(f.Data) { // a proto string must be UTF-8: such text travels as bytes, as when published
		out.Payload = &pb.Frame_Binary{Binary: f.Data}
	} else {
		out.Payload = &pb.Frame_Text{Text: string(f.Data)}
	}
	return out
}

// relayFrames forwards the watch to the instance at addr and relays its frames and header.
// The holder's own end passes as it is (its status and trailer). When the holder goes away (a
// transport failure, a stream that ends without a status) the stream ends UNAVAILABLE with the
// sequence after the last frame relayed (or where the holder said the watch starts), so that
// the caller resumes without a gap it is not told about.
func (s *Server) relayFrames(ctx context.Context, addr string, req *pb.WatchFramesRequest, stream pb.WebSocketManager_WatchFramesServer) error {
	next, known := req.GetFromSequence(), req.FromSequence != nil
	wentAway := func(err error) error {
		if !known {
			return actors.Errorf(actors.CodeUnavailable, "the instance holding connection %q went away (%v); watch again", req.GetId(), err)
		}
		setResume(stream, next)
		return actors.Errorf(actors.CodeUnavailable, "the instance holding connection %q went away (%v); watch again from sequence %d", req.GetId(), err, next)
	}
	c, err := s.peers.client(addr)
	if err != nil {
		// No peer key, or the peer policy refuses the address: watching again cannot help.
		return actors.Errorf(actors.CodeFailedPrecondition, "connection %q is held by another instance that this one may not call: %v", req.GetId(), err)
	}
	fs, err := c.WatchFrames(s.peers.forwardCtx(ctx, addr), req)
	if err != nil {
		return wentAway(err)
	}
	if h, err := fs.Header(); err == nil {
		if v := h.Get(ResumeTrailer); len(v) > 0 {
			if seq, err := strconv.ParseUint(v[0], 10, 64); err == nil {
				next, known = seq, true
				if err := stream.SendHeader(metadata.Pairs(ResumeTrailer, v[0])); err != nil {
					return err
				}
			}
		}
	}
	for {
		f, err := fs.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if v := fs.Trailer().Get(ResumeTrailer); len(v) > 0 {
				stream.SetTrailer(metadata.Pairs(ResumeTrailer, v[0]))
				return err // the holder's own status, as it sent it
			}
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Unavailable || status.Code(err) == codes.Canceled {
				return wentAway(err)
			}
			return err // the holder's answer (NOT_FOUND, RESOURCE_EXHAUSTED, …): watching again cannot help
		}
		switch {
		case f.GetMissing() != nil:
			next, known = f.GetMissing().GetToSequence()+1, true
		case !f.GetReply():
			next, known = f.GetSequence()+1, true
		}
		if err := stream.Send(f); err != nil {
			return err
		}
	}
}
