package gateway

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure query parameters set the request as grpc-gateway did: both casings, maps as
// name[key]=value, repeated fields once per value, nested messages by dots, enums by name or
// number, unknown names ignored; and that values that do not fit are refused.
func TestQueryInto(t *testing.T) {
	events, list, conn := &pb.WatchEventsRequest{}, &pb.ListRequest{}, &pb.ConnectRequest{}
	tests := []struct {
		query   string
		in      proto.Message // the request type
		want    proto.Message // nil: refused with wantErr
		wantErr string
	}{
		{"connectionId=a&thisInstanceOnly=true", events, &pb.WatchEventsRequest{ConnectionId: "a", ThisInstanceOnly: true}, ""},
		{"connection_id=a&this_instance_only=1", events, &pb.WatchEventsRequest{ConnectionId: "a", ThisInstanceOnly: true}, ""},
		{"other=1&connectionId=", events, &pb.WatchEventsRequest{}, ""},
		{"thisInstanceOnly=yes", events, nil, `"yes" is not a valid bool`},
		{"connectionId=a&connectionId=b", events, nil, "one value expected"},
		{"connectionId=%FF", events, nil, "not UTF-8"},
		{"connectionId[x]=a", events, nil, "not a map"},
		{"tags[a]=1&tags[b]=&tags[a]=2", list, &pb.ListRequest{Tags: map[string]string{"a": "2", "b": ""}}, ""},
		{"tags=1", list, nil, "use tags[key]=value"},
		{"tags[a=1", list, nil, "want name[key]=value"},
		{"[a]=1", list, nil, "want name[key]=value"},
		{"subprotocols=a&subprotocols=b&idleTimeoutMs=-3&correlation.mode=CORRELATION_MODE_NEXT&reconnect.maxAttempts=2", conn,
			&pb.ConnectRequest{Subprotocols: []string{"a", "b"}, IdleTimeoutMs: -3,
				Correlation: &pb.Correlation{Mode: pb.CorrelationMode_CORRELATION_MODE_NEXT}, Reconnect: &pb.ReconnectPolicy{MaxAttempts: 2}}, ""},
		{"correlation.mode=2", conn, &pb.ConnectRequest{Correlation: &pb.Correlation{Mode: 2}}, ""},
		{"correlation.mode=SOMETIMES", conn, nil, "no such value"},
		{"idleTimeoutMs=1e3", conn, nil, "not a valid int32"},
		{"url.x=1", conn, nil, "url is not a message"},
		{"correlation=1", conn, nil, "cannot be set from the query"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			require.NoError(t, err)
			msg := tt.in.ProtoReflect().Type().New()
			err = queryInto(msg, q)
			if tt.want == nil {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.True(t, proto.Equal(tt.want, msg.Interface()), "got %v", msg)
		})
	}
}

// Fuzz the query parser (untrusted input): it never panics, and what it accepts is a valid
// message.
func FuzzQueryInto(f *testing.F) {
	for _, s := range []string{"connectionId=a&thisInstanceOnly=true", "tags[a]=b", "tags[=", "correlation.mode=2",
		"reconnect.maxAttempts=9&subprotocols=x", "a.b.c[d]=e", "tags[a][b]=c", "binary=AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, m := range []proto.Message{&pb.WatchEventsRequest{}, &pb.ListRequest{}, &pb.ConnectRequest{}, &pb.SendRequest{}} {
			if queryInto(m.ProtoReflect(), q) == nil {
				_, err := proto.Marshal(m)
				require.NoError(t, err, "accepted %q into an invalid %T", raw, m)
			}
		}
	})
}
