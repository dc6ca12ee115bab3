package actors

import (
	"github.com/websocketmanager/websocketmanager/actors/framecodec"
)

// MaxDecodedBytesLimit bounds ConnectArgs.MaxDecodedBytes: every decode may hold this much
// memory per connection at once.
const MaxDecodedBytesLimit = 64 << 20

// validateCompression checks decodeBinary and maxDecodedBytes.
func (a *ConnectArgs) validateCompression() *ErrorInfo {
	if _, err := framecodec.ParseMode(a.DecodeBinary); err != nil {
		return errorf(CodeInvalidArgument, "decode_binary: %v", err)
	}
	if a.MaxDecodedBytes < 0 || a.MaxDecodedBytes > MaxDecodedBytesLimit {
		return errorf(CodeInvalidArgument, "max_decoded_bytes %d is outside 0..%d", a.MaxDecodedBytes, MaxDecodedBytesLimit)
	}
	return nil
}

// decodeMode is the persisted decodeBinary as the session's mode (validated at Connect).
func (a *ConnectArgs) decodeMode() framecodec.Mode {
	m, _ := framecodec.ParseMode(a.DecodeBinary)
	return m
}
