package service

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/websocketmanager/websocketmanager/actors"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// The only file where protobuf messages and actor types meet.

var modeNames = map[pb.CorrelationMode]string{
	pb.CorrelationMode_CORRELATION_MODE_AUTO:       "auto",
	pb.CorrelationMode_CORRELATION_MODE_JSON_FIELD: "json_field",
	pb.CorrelationMode_CORRELATION_MODE_PREFIX:     "prefix",
	pb.CorrelationMode_CORRELATION_MODE_NEXT:       "next",
}

func connectArgs(req *pb.ConnectRequest) actors.ConnectArgs {
	a := actors.ConnectArgs{
		URL:               req.GetUrl(),
		AutoReconnect:     req.GetAutoReconnect(),
		Headers:           req.GetHeaders(),
		Subprotocols:      req.GetSubprotocols(),
		OnConnectMessages: req.GetOnConnectMessages(),
		Tags:              req.GetTags(),
		IdleTimeoutMS:     int(req.GetIdleTimeoutMs()),
		RetainFrames:      int(req.GetRetainFrames()),
		RetainBytes:       int64(req.GetRetainBytes()),
		CreatedAt:         time.Now().UTC(),
		Correlation:       actors.CorrelationArgs{Field: req.GetCorrelation().GetField()},
		Reconnect: actors.ReconnectArgs{
			InitialBackoffMS: int(req.GetReconnect().GetInitialBackoffMs()),
			MaxBackoffMS:     int(req.GetReconnect().GetMaxBackoffMs()),
			MaxAttempts:      int(req.GetReconnect().GetMaxAttempts()),
		},
	}
	a.PermessageDeflate, a.MaxDecodedBytes = req.GetPermessageDeflate(), int64(req.GetMaxDecodedBytes())
	if d := req.GetDecodeBinary(); d != pb.FrameDecoding_FRAME_DECODING_NONE {
		a.DecodeBinary = strings.TrimPrefix(d.String(), "FRAME_DECODING_") // an undefined number is refused by validation, named
	}
	a.SecretHeaders, a.TLS, a.EgressProxy = secretHeadersOf(req.GetSecretHeaders()), tlsArgs(req.GetTls()), req.GetEgressProxy()
	if r := req.GetSendRate(); r != nil {
		a.SendRate = &actors.SendRateArgs{PerSecond: r.GetPerSecond(), Burst: int(r.GetBurst())}
	}
	if m := req.GetCorrelation().GetMode(); m != pb.CorrelationMode_CORRELATION_MODE_UNSPECIFIED {
		if name, ok := modeNames[m]; ok {
			a.Correlation.Mode = name
		} else {
			a.Correlation.Mode = m.String() // rejected by validation with the value named
		}
	}
	return a
}

func connectionOf(in actors.ConnectionInfo) *pb.WebSocketConnection {
	c := &pb.WebSocketConnection{
		Id:             in.ID,
		Url:            in.URL,
		Status:         statusOf(in.Status),
		InstanceId:     in.InstanceID,
		Topic:          in.Topic,
		LastError:      in.LastError,
		ReconnectCount: int32(in.ReconnectCount),
		Tags:           in.Tags,
		AutoReconnect:  in.AutoReconnect,
		Subprotocol:    in.Subprotocol,
		Correlation:    &pb.Correlation{Mode: modeOf(in.Correlation.Mode), Field: in.Correlation.Field},
		DroppedFrames:  int64(in.DroppedFrames),
	}
	if !in.CreatedAt.IsZero() { // unknown for a connection listed from the directory
		c.CreatedAt = timestamppb.New(in.CreatedAt)
	}
	if in.ConnectedSince != nil {
		c.ConnectedSince = timestamppb.New(*in.ConnectedSince)
	}
	if p := in.Publish; p != nil {
		c.Publish = &pb.PublishSettings{BatchMaxFrames: uint32(p.BatchMaxFrames), BatchMaxBytes: uint32(p.BatchMaxBytes),
			BatchMaxDelayMs: uint32(p.BatchMaxDelayMS), IncludeReplies: p.IncludeReplies, Overflow: overflowOf(p.Overflow)}
	}
	if in.PublishPausedSince != nil {
		c.PublishPausedSince = timestamppb.New(*in.PublishPausedSince)
	}
	c.PublishPausedMs = in.PublishPausedMS
	if r := in.SendRate; r != nil {
		c.SendRate = &pb.SendRate{PerSecond: r.PerSecond, Burst: uint32(r.Burst)}
	}
	c.ThrottledSends = int64(in.ThrottledSends)
	c.Compression, c.DecodeRefused = in.Compression, int64(in.DecodeRefused)
	c.Tls, c.EgressProxy, c.SecretHeaderNames = pbTLS(in.TLS), in.EgressProxy, in.SecretHeaderNames
	for reason, n := range in.DroppedFramesByReason {
		if c.DroppedFramesByReason == nil {
			c.DroppedFramesByReason = make(map[string]int64, len(in.DroppedFramesByReason))
		}
		c.DroppedFramesByReason[reason] = int64(n)
	}
	return c
}

// publishArgs turns a StartPublish request into the actor's arguments. Values too large for
// an int, and enum numbers the proto does not define, reach validation as they are.
func publishArgs(req *pb.StartPublishRequest) actors.PublishArgs {
	overflow := strings.TrimPrefix(req.GetOverflow().String(), "OVERFLOW_")
	if req.GetOverflow() == pb.Overflow_OVERFLOW_DROP_NEWEST {
		overflow = "" // the default: nothing to persist
	}
	return actors.PublishArgs{Topic: req.GetTopic(), PublishSettings: actors.PublishSettings{
		BatchMaxFrames: int(req.GetBatchMaxFrames()), BatchMaxBytes: int(req.GetBatchMaxBytes()),
		BatchMaxDelayMS: int(req.GetBatchMaxDelayMs()), IncludeReplies: req.GetIncludeReplies(), Overflow: overflow}}
}

func overflowOf(name string) pb.Overflow {
	if v, ok := pb.Overflow_value["OVERFLOW_"+name]; ok {
		return pb.Overflow(v)
	}
	return pb.Overflow_OVERFLOW_DROP_NEWEST
}

func modeOf(name string) pb.CorrelationMode {
	for m, n := range modeNames {
		if n == name {
			return m
		}
	}
	return pb.CorrelationMode_CORRELATION_MODE_UNSPECIFIED
}

// statusName is the actor layer's name of a status filter: "" for UNKNOWN (any status).
func statusName(s pb.ConnectionStatus) (string, error) {
	if s == pb.ConnectionStatus_UNKNOWN {
		return "", nil
	}
	if _, ok := pb.ConnectionStatus_name[int32(s)]; !ok {
		return "", invalid("status %d is not a ConnectionStatus (CONNECTING, CONNECTED, DISCONNECTED, ERROR; UNKNOWN: any)", s)
	}
	return s.String(), nil
}

// infoOf is the inverse of connectionOf, for the connections other instances describe in
// ListHeld: connectionOf(infoOf(c)) equals c.
func infoOf(c *pb.WebSocketConnection) actors.ConnectionInfo {
	in := actors.ConnectionInfo{
		ID:                c.GetId(),
		URL:               c.GetUrl(),
		Status:            c.GetStatus().String(),
		InstanceID:        c.GetInstanceId(),
		Topic:             c.GetTopic(),
		LastError:         c.GetLastError(),
		ReconnectCount:    int(c.GetReconnectCount()),
		Tags:              c.GetTags(),
		AutoReconnect:     c.GetAutoReconnect(),
		Subprotocol:       c.GetSubprotocol(),
		Correlation:       actors.CorrelationArgs{Mode: modeNames[c.GetCorrelation().GetMode()], Field: c.GetCorrelation().GetField()},
		DroppedFrames:     uint64(c.GetDroppedFrames()),
		PublishPausedMS:   c.GetPublishPausedMs(),
		ThrottledSends:    uint64(c.GetThrottledSends()),
		Compression:       c.GetCompression(),
		DecodeRefused:     uint64(c.GetDecodeRefused()),
		TLS:               tlsArgs(c.GetTls()),
		EgressProxy:       c.GetEgressProxy(),
		SecretHeaderNames: c.GetSecretHeaderNames(),
	}
	if c.GetCreatedAt() != nil {
		in.CreatedAt = c.GetCreatedAt().AsTime()
	}
	if t := c.GetConnectedSince(); t != nil {
		v := t.AsTime()
		in.ConnectedSince = &v
	}
	if t := c.GetPublishPausedSince(); t != nil {
		v := t.AsTime()
		in.PublishPausedSince = &v
	}
	if p := c.GetPublish(); p != nil {
		in.Publish = &actors.PublishSettings{BatchMaxFrames: int(p.GetBatchMaxFrames()), BatchMaxBytes: int(p.GetBatchMaxBytes()),
			BatchMaxDelayMS: int(p.GetBatchMaxDelayMs()), IncludeReplies: p.GetIncludeReplies(),
			Overflow: strings.TrimPrefix(p.GetOverflow().String(), "OVERFLOW_")}
	}
	if r := c.GetSendRate(); r != nil {
		in.SendRate = &actors.SendRateArgs{PerSecond: r.GetPerSecond(), Burst: int(r.GetBurst())}
	}
	for reason, n := range c.GetDroppedFramesByReason() {
		if in.DroppedFramesByReason == nil {
			in.DroppedFramesByReason = make(map[string]uint64, len(c.GetDroppedFramesByReason()))
		}
		in.DroppedFramesByReason[reason] = uint64(n)
	}
	return in
}

func statusOf(name string) pb.ConnectionStatus {
	if v, ok := pb.ConnectionStatus_value[name]; ok {
		return pb.ConnectionStatus(v)
	}
	return pb.ConnectionStatus_UNKNOWN
}
