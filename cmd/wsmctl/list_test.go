package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// pagedAPI serves List from ids in pages of the requested size, the token being the index of
// the next page; a bad token can be forced to test the loop's guard.
type pagedAPI struct {
	ids      []string
	requests []*pb.ListRequest
	repeat   bool // always answer the same token
	err      error
}

func (f *pagedAPI) List(_ context.Context, in *pb.ListRequest, _ ...grpc.CallOption) (*pb.ListResponse, error) {
	f.requests = append(f.requests, in)
	if f.err != nil {
		return nil, f.err
	}
	start := 0
	if in.GetPageToken() != "" {
		_, _ = fmt.Sscan(in.GetPageToken(), &start)
	}
	end := len(f.ids)
	if n := int(in.GetPageSize()); n > 0 && start+n < end {
		end = start + n
	}
	r := &pb.ListResponse{}
	for _, id := range f.ids[start:end] {
		r.Connections = append(r.Connections, &pb.WebSocketConnection{Id: id})
	}
	if end < len(f.ids) {
		r.NextPageToken = fmt.Sprint(end)
	}
	if f.repeat {
		r.NextPageToken = "1"
	}
	return r, nil
}

func idsOf(conns []*pb.WebSocketConnection) []string {
	var out []string
	for _, c := range conns {
		out = append(out, c.GetId())
	}
	return out
}

// Ensure `wsmctl list` pages through everything, passes the filters on every call, and stops
// on an error or a token that comes back.
func TestListAll(t *testing.T) {
	var ids []string
	for i := range 1203 {
		ids = append(ids, fmt.Sprintf("c%04d", i))
	}
	tests := []struct {
		name      string
		pageSize  int32
		total     int
		wantCalls int
	}{
		{"pages of 500", 500, 1203, 3},
		{"exact pages", 401, 1203, 3},
		{"one page", 5000, 1203, 1},
		{"unpaged", 0, 1203, 1},
		{"nothing", 500, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &pagedAPI{ids: ids[:tt.total]}
			req := &pb.ListRequest{PageSize: tt.pageSize, Status: pb.ConnectionStatus_CONNECTED, Tags: map[string]string{"a": "b"}}
			got, err := listAll(context.Background(), api, req, time.Second)
			require.NoError(t, err)
			assert.Equal(t, len(ids[:tt.total]), len(got))
			if tt.total > 0 {
				assert.Equal(t, ids[:tt.total], idsOf(got))
			}
			assert.Len(t, api.requests, tt.wantCalls)
			for _, r := range api.requests {
				assert.Equal(t, pb.ConnectionStatus_CONNECTED, r.GetStatus())
				assert.Equal(t, map[string]string{"a": "b"}, r.GetTags())
				assert.Equal(t, tt.pageSize, r.GetPageSize())
			}
			assert.Empty(t, req.GetPageToken(), "the caller's request is left as it was")
		})
	}
	_, err := listAll(context.Background(), &pagedAPI{ids: ids, repeat: true}, &pb.ListRequest{PageSize: 10}, 0)
	assert.ErrorContains(t, err, "again")
	boom := errors.New("boom")
	_, err = listAll(context.Background(), &pagedAPI{ids: ids, err: boom}, &pb.ListRequest{PageSize: 10}, 0)
	assert.ErrorIs(t, err, boom)
}

// Ensure --status takes the names in any case and refuses others as a usage error.
func TestStatusFlag(t *testing.T) {
	for in, want := range map[string]pb.ConnectionStatus{"": pb.ConnectionStatus_UNKNOWN, "any": pb.ConnectionStatus_UNKNOWN,
		"connected": pb.ConnectionStatus_CONNECTED, "CONNECTING": pb.ConnectionStatus_CONNECTING, " error ": pb.ConnectionStatus_ERROR} {
		got, err := statusFlag(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"unknown", "up", "2"} {
		_, err := statusFlag(bad)
		var ue usageError
		assert.ErrorAs(t, err, &ue, bad)
	}
}

// Ensure --watch draws at once, again every interval, and returns cleanly when stopped (Ctrl-C).
func TestWatchList(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	draws := 0
	err := watchList(ctx, time.Millisecond, io.Discard, true, func() error {
		draws++
		if draws == 3 {
			cancel()
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, draws)
}
