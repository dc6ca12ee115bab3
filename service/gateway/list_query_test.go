package gateway

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure GET /v1/connections takes List's paging and status parameters from the query, in
// both casings, status by name or number, next to tags[k]=v; and refuses values that do not fit.
func TestRESTListPaging(t *testing.T) {
	api, base := serve(t)
	tests := []struct {
		name, query string
		want        *pb.ListRequest // nil: refused with 400
	}{
		{"page size and token", "?page_size=50&page_token=djE6YQ", &pb.ListRequest{PageSize: 50, PageToken: "djE6YQ"}},
		{"camelCase", "?pageSize=7&pageToken=x", &pb.ListRequest{PageSize: 7, PageToken: "x"}},
		{"status by name, with tags", "?status=CONNECTED&tags[team]=a", &pb.ListRequest{Status: pb.ConnectionStatus_CONNECTED, Tags: map[string]string{"team": "a"}}},
		{"status by number", "?status=1", &pb.ListRequest{Status: pb.ConnectionStatus_CONNECTING}},
		{"page size not a number", "?page_size=ten", nil},
		{"status unknown", "?status=HAPPY", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, base, "GET", "/v1/connections"+tt.query, "", "")
			if tt.want == nil {
				assert.Equal(t, http.StatusBadRequest, r.status, r.body)
				return
			}
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.True(t, proto.Equal(tt.want, api.lastRequest()), "asked %v", api.lastRequest())
		})
	}
}
