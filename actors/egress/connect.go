package egress

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Bounds on a proxy's answer to CONNECT: a hostile or broken proxy cannot make us buffer more.
const (
	maxResponseBytes = 16 << 10 // status line and headers together
	maxHeaderLines   = 100
)

var errTooLarge = fmt.Errorf("the answer's header is larger than %d bytes or %d lines", maxResponseBytes, maxHeaderLines)

// ReadConnectResponse reads a proxy's answer to CONNECT up to the blank line that ends its
// header, and returns the status code (100-599). Interim 1xx answers before it are skipped
// (101 is final: it is no tunnel, so the caller refuses it); the bounds hold for all of them
// together. Nothing past that line is consumed beyond what r has buffered (the tunnel's first
// bytes stay in r). Neither the reason phrase nor the header fields are kept: a CONNECT
// answer carries nothing we use, and a proxy could echo our credentials in them.
func ReadConnectResponse(r *bufio.Reader) (code int, err error) {
	total := 0
	status := true // the next line is a status line
	for line := 0; ; line++ {
		if line > maxHeaderLines {
			return 0, errTooLarge
		}
		l, err := readLine(r, maxResponseBytes-total)
		if err != nil {
			return 0, err
		}
		total += len(l)
		l = bytes.TrimRight(l, "\r\n")
		if status {
			if code, err = parseStatusLine(l); err != nil {
				return 0, err
			}
			status = false
			continue
		}
		if len(l) == 0 {
			if code >= 100 && code <= 199 && code != 101 {
				status = true // an interim answer: the real one follows
				continue
			}
			return code, nil
		}
		if l[0] == ' ' || l[0] == '\t' || bytes.IndexByte(l, ':') <= 0 {
			return 0, fmt.Errorf("malformed header line in the answer to CONNECT")
		}
	}
}

// readLine reads one line ending in '\n' of at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(out)+len(chunk) > limit {
			return nil, errTooLarge
		}
		out = append(out, chunk...)
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, fmt.Errorf("the proxy closed or failed before it answered CONNECT: %w", err)
		}
	}
}

// parseStatusLine parses "HTTP/1.x 200 Reason" and returns the code; the reason is dropped.
func parseStatusLine(l []byte) (int, error) {
	proto, rest, ok := bytes.Cut(l, []byte(" "))
	if !ok || !(bytes.Equal(proto, []byte("HTTP/1.1")) || bytes.Equal(proto, []byte("HTTP/1.0"))) {
		return 0, fmt.Errorf("the answer to CONNECT is not HTTP/1.x")
	}
	codeText, _, _ := bytes.Cut(rest, []byte(" "))
	if len(codeText) != 3 || codeText[0] < '1' || codeText[0] > '5' ||
		codeText[1] < '0' || codeText[1] > '9' || codeText[2] < '0' || codeText[2] > '9' {
		return 0, fmt.Errorf("malformed answer to CONNECT: no status code between 100 and 599")
	}
	code, _ := strconv.Atoi(string(codeText))
	return code, nil
}

// bufferedConn is a tunnel whose first bytes were read into a bufio.Reader along with the
// proxy's answer: they are served before the connection's own.
type bufferedConn struct {
	net.Conn
	pending []byte
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// tunnelConn returns conn, with what r holds beyond the answer served first.
func tunnelConn(conn net.Conn, r *bufio.Reader) net.Conn {
	n := r.Buffered()
	if n == 0 {
		return conn
	}
	b, _ := r.Peek(n)
	return &bufferedConn{Conn: conn, pending: append([]byte(nil), b...)}
}
