package session

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/framecodec"
	"github.com/websocketmanager/websocketmanager/actors/metrics"
)

// Compression reports whether permessage-deflate was negotiated on the current socket, and how
// many inbound frames this session refused to decode (too large once decoded, or not valid
// data of the format they were decoded as) on this instance.
func (s *Session) Compression() (negotiated bool, decodeRefused uint64) {
	s.mu.Lock()
	if s.sock != nil && s.status == StatusConnected { // not the socket that just ended
		negotiated = s.sock.compressed
	}
	s.mu.Unlock()
	return negotiated, s.decodeRefused.Load()
}

// maxDecoded is the largest decoded inbound message: a binary frame after decode_binary, and
// a message after permessage-deflate inflated it.
func (s *Session) maxDecoded() int64 {
	if s.spec.MaxDecodedBytes > 0 {
		return s.spec.MaxDecodedBytes
	}
	return s.cfg.ReadLimit
}

// negotiatedDeflate reports whether the server accepted permessage-deflate. gorilla fails the
// dial when the server accepts it with parameters it cannot honour, so an accepted extension
// here is one gorilla uses.
func negotiatedDeflate(resp *http.Response) bool {
	if resp == nil {
		return false
	}
	for _, v := range resp.Header.Values("Sec-Websocket-Extensions") {
		for _, ext := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			if strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
				return true
			}
		}
	}
	return false
}

// isCompressionRefusal reports gorilla's answer to a server that accepted permessage-deflate
// only with context takeover (its error is not exported).
func isCompressionRefusal(err error) bool {
	return err != nil && err.Error() == "websocket: invalid compression negotiation"
}

// errCompressionParams explains isCompressionRefusal to the caller.
var errCompressionParams = errors.New("the server accepted permessage-deflate only with context takeover, which this client does not support; connect without permessage_deflate")

// readFrame reads the next message of sock. gorilla's read limit counts the bytes on the wire,
// so a permessage-deflate message could inflate without bound in ReadMessage; on a compressed
// socket the inflated message is read through a limit instead, and a larger one is refused
// with 1009 like an oversized decode_binary frame.
func (s *Session) readFrame(sock *socket) (int, []byte, error) {
	if !sock.compressed {
		return sock.conn.ReadMessage()
	}
	typ, r, err := sock.conn.NextReader()
	if err != nil {
		return typ, nil, err
	}
	limit := s.maxDecoded()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return typ, nil, err
	}
	if int64(len(data)) > limit {
		s.refuseFrame(sock, websocket.CloseMessageTooBig, metrics.DecodeTooLarge)
		return typ, nil, fmt.Errorf("an inbound message inflates (permessage-deflate) to more than the limit of %d bytes; closed with 1009 (message too big)", limit)
	}
	return typ, data, nil
}

// decodeFrame applies decode_binary to an inbound frame, before correlation, publishing and
// watching. A frame that decodes too large closes the socket with 1009; one that does not
// decode closes it with 1007 (invalid payload data), except with AUTO, which passes it on as
// received. Both are counted; the error, if any, ends the socket.
func (s *Session) decodeFrame(sock *socket, typ int, data []byte) ([]byte, error) {
	mode := s.spec.DecodeBinary
	if typ != websocket.BinaryMessage || mode == framecodec.None {
		return data, nil
	}
	limit := s.maxDecoded()
	out, format, err := framecodec.Decode(mode, data, limit)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, framecodec.ErrTooLarge):
		s.refuseFrame(sock, websocket.CloseMessageTooBig, metrics.DecodeTooLarge)
		return nil, fmt.Errorf("an inbound binary frame of %d bytes decodes (%s) to more than the limit of %d bytes; closed with 1009 (message too big)",
			len(data), strings.ToLower(format.String()), limit)
	case mode == framecodec.Auto:
		s.countRefused(metrics.DecodeCorrupt)
		return data, nil
	default:
		s.refuseFrame(sock, websocket.CloseInvalidFramePayloadData, metrics.DecodeCorrupt)
		return nil, fmt.Errorf("an inbound binary frame of %d bytes was refused: %v; closed with 1007 (invalid payload data)", len(data), err)
	}
}

func (s *Session) countRefused(reason string) {
	s.decodeRefused.Add(1)
	s.cfg.Metrics.DecodeRefused(reason)
}

// refuseFrame counts a refused frame and sends the close frame; the caller's read error then
// ends the socket. WriteControl may run concurrently with a writer.
func (s *Session) refuseFrame(sock *socket, code int, reason string) {
	s.countRefused(reason)
	s.log.Warn("inbound frame refused", zap.String("reason", reason), zap.Int("close_code", code))
	text := "decoded message too big"
	if code != websocket.CloseMessageTooBig {
		text = "binary frame does not decode"
	}
	_ = sock.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(s.cfg.CloseTimeout))
}

// counter is an atomic count read without the session's lock.
type counter = atomic.Uint64

// decodes reports whether binary frames are decoded: their decoded bytes are then correlated
// like text frames (a JSON reply inside a gzip frame answers the Send with its id).
func (s *Session) decodes() bool { return s.spec.DecodeBinary != framecodec.None }
