package service

import (
	"context"
	"math"
	"time"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/route"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Forwarder returns what the router uses to forward a Send or SendRaw to the instance that
// holds the socket ([actors.Router.WithForwarder]); it shares the server's connections to
// other instances, their peer policy and peer proof.
func (s *Server) Forwarder() actors.Forwarder { return forwarder{s} }

// forwarder carries out the router's forward step over the peer API. It decides only how the
// call ended: the holder's answer as it is (a status, passed through to the caller), or
// [route.Missed] when the call did not reach the socket there (see retryViaActor).
type forwarder struct{ s *Server }

func (f forwarder) ForwardSend(ctx context.Context, addr, id string, in actors.SendArgs, timeout time.Duration) (actors.SendReply, route.Forwarded, error) {
	// The timeout this instance resolved (the caller's, or its default) travels with the call.
	ms := min(timeout.Milliseconds(), math.MaxInt32)
	resp, err := f.s.forwardSend(ctx, addr, &pb.SendRequest{Id: id, Message: in.Message, BinaryMessage: in.BinaryMessage, TimeoutMs: int32(ms), FailFast: in.FailFast})
	if err != nil {
		return actors.SendReply{}, f.outcome(addr, err), err
	}
	return actors.SendReply{Response: resp.GetResponse(), BinaryResponse: resp.GetBinaryResponse(), Binary: resp.GetBinary()}, route.Answered, nil
}

func (f forwarder) ForwardSendRaw(ctx context.Context, addr, id string, in actors.SendArgs) (route.Forwarded, error) {
	_, err := f.s.forwardSendRaw(ctx, addr, &pb.SendRawRequest{Id: id, Message: in.Message, BinaryMessage: in.BinaryMessage, FailFast: in.FailFast})
	if err != nil {
		return f.outcome(addr, err), err
	}
	return route.Answered, nil
}

func (f forwarder) outcome(addr string, err error) route.Forwarded {
	if !retryViaActor(err) {
		return route.Answered
	}
	f.s.forwardFailed(addr, err)
	return route.Missed
}
