package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Ensure decodeBinary and maxDecodedBytes are checked at Connect with INVALID_ARGUMENT naming
// the field, and a valid setting reaches the session.
func TestValidateCompression(t *testing.T) {
	tests := []struct {
		name   string
		decode string
		max    int64
		want   string // "" valid
	}{
		{"none", "", 0, ""},
		{"gzip", "GZIP", 0, ""},
		{"auto lower case", "auto", 1 << 20, ""},
		{"the largest limit", "ZLIB", MaxDecodedBytesLimit, ""},
		{"unknown format", "BROTLI", 0, `decode_binary: "BROTLI" is not one of NONE, GZIP, ZLIB, DEFLATE, AUTO`},
		{"negative limit", "GZIP", -1, "max_decoded_bytes -1 is outside 0..67108864"},
		{"limit too large", "GZIP", MaxDecodedBytesLimit + 1, "max_decoded_bytes 67108865 is outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := ConnectArgs{URL: "ws://h/", DecodeBinary: tc.decode, MaxDecodedBytes: tc.max}
			e := a.Validate()
			if tc.want == "" {
				assert.Nil(t, e)
				return
			}
			if assert.NotNil(t, e) {
				assert.Equal(t, CodeInvalidArgument, e.Code)
				assert.Contains(t, e.Message, tc.want)
			}
		})
	}
	c := &Connection{deps: &Deps{}}
	ss := c.sessionSpec(&spec{ConnectArgs: ConnectArgs{URL: "ws://h/", DecodeBinary: "deflate", PermessageDeflate: true, MaxDecodedBytes: 4096}, Epoch: 1})
	assert.Equal(t, "DEFLATE", ss.DecodeBinary.String())
	assert.True(t, ss.PermessageDeflate)
	assert.Equal(t, int64(4096), ss.MaxDecodedBytes)
}
