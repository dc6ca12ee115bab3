package service

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/websocketmanager/websocketmanager/actors"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure permessage_deflate, decode_binary and max_decoded_bytes travel from the ConnectRequest
// to the actor's arguments (and are validated there), and compression and decode_refused back
// to List.
func TestCompressionConverts(t *testing.T) {
	cases := []struct {
		give    pb.FrameDecoding
		want    string
		invalid bool
	}{
		{pb.FrameDecoding_FRAME_DECODING_NONE, "", false},
		{pb.FrameDecoding_FRAME_DECODING_GZIP, "GZIP", false},
		{pb.FrameDecoding_FRAME_DECODING_ZLIB, "ZLIB", false},
		{pb.FrameDecoding_FRAME_DECODING_DEFLATE, "DEFLATE", false},
		{pb.FrameDecoding_FRAME_DECODING_AUTO, "AUTO", false},
		{pb.FrameDecoding(9), "9", true},
	}
	for _, tc := range cases {
		a := connectArgs(&pb.ConnectRequest{Url: "ws://h/", DecodeBinary: tc.give, PermessageDeflate: true, MaxDecodedBytes: 1 << 20})
		assert.Equal(t, tc.want, a.DecodeBinary)
		assert.True(t, a.PermessageDeflate)
		assert.Equal(t, int64(1<<20), a.MaxDecodedBytes)
		e := a.Validate()
		if tc.invalid {
			if assert.NotNil(t, e) {
				assert.Equal(t, actors.CodeInvalidArgument, e.Code)
				assert.Contains(t, e.Message, `decode_binary: "9" is not one of`)
			}
		} else {
			assert.Nil(t, e)
		}
	}
	c := connectionOf(actors.ConnectionInfo{Compression: true, DecodeRefused: 3})
	assert.True(t, c.GetCompression())
	assert.Equal(t, int64(3), c.GetDecodeRefused())
}
