// Package redisstream is a minimal RESP2 client for reading Redis streams: what the benchmark
// needs to count frames where Dapr's Redis pub/sub puts them (one XADD per event to a stream
// named after the topic), without a Redis client library in the module.
package redisstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Addr is the machine's Redis, the one the Dapr components of the stacks point at.
const Addr = "127.0.0.1:6379"

// Limits that keep a malformed or hostile reply from making the reader allocate without end:
// a claimed length is never trusted for an allocation, and nesting is bounded.
const (
	MaxBulkBytes = 512 << 20 // Redis's own proto-max-bulk-len default
	MaxElements  = 1 << 24
	maxDepth     = 16
	maxLineBytes = 64 << 10
)

// Reply is one RESP2 reply.
type Reply struct {
	// Kind is the type byte: '+' simple string, '-' error, ':' integer, '$' bulk string,
	// '*' array.
	Kind byte
	// Str is the text of a simple string, an error or a bulk string.
	Str string
	// Int is the value of an integer.
	Int int64
	// Elems are the elements of an array.
	Elems []Reply
	// Null is set for the null bulk string ($-1) and the null array (*-1).
	Null bool
}

// Error is an error reply from Redis.
type Error string

func (e Error) Error() string { return "redis: " + string(e) }

// ErrProtocol is wrapped by every error about a reply that is not valid RESP2.
var ErrProtocol = errors.New("redis protocol error")

func protoErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

// ReadReply reads one reply from r.
func ReadReply(r *bufio.Reader) (Reply, error) { return readReply(r, 0) }

func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if len(line) > maxLineBytes {
			return "", protoErr("line longer than %d bytes", maxLineBytes)
		}
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", protoErr("line not ended by CRLF")
	}
	return string(line[:len(line)-2]), nil
}

func parseLen(s string, limit int64) (int64, bool, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, protoErr("bad length %q", s)
	}
	switch {
	case n == -1:
		return 0, true, nil
	case n < 0 || n > limit:
		return 0, false, protoErr("length %d out of range", n)
	}
	return n, false, nil
}

func readReply(r *bufio.Reader, depth int) (Reply, error) {
	if depth > maxDepth {
		return Reply{}, protoErr("arrays nested deeper than %d", maxDepth)
	}
	line, err := readLine(r)
	if err != nil {
		return Reply{}, err
	}
	if line == "" {
		return Reply{}, protoErr("empty line")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+', '-':
		return Reply{Kind: kind, Str: rest}, nil
	case ':':
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return Reply{}, protoErr("bad integer %q", rest)
		}
		return Reply{Kind: kind, Int: n}, nil
	case '$':
		n, null, err := parseLen(rest, MaxBulkBytes)
		if err != nil || null {
			return Reply{Kind: kind, Null: null}, err
		}
		// Copy as the bytes arrive: a claimed length alone allocates nothing.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, r, n+2); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, err
		}
		b := buf.Bytes()
		if b[n] != '\r' || b[n+1] != '\n' {
			return Reply{}, protoErr("bulk string not ended by CRLF")
		}
		return Reply{Kind: kind, Str: string(b[:n])}, nil
	case '*':
		n, null, err := parseLen(rest, MaxElements)
		if err != nil || null {
			return Reply{Kind: kind, Null: null}, err
		}
		out := Reply{Kind: kind, Elems: []Reply{}}
		for range n {
			e, err := readReply(r, depth+1)
			if err != nil {
				return Reply{}, err
			}
			out.Elems = append(out.Elems, e)
		}
		return out, nil
	}
	return Reply{}, protoErr("unknown reply type %q", kind)
}

// Entry is one stream entry.
type Entry struct {
	ID     string
	Fields map[string]string
}

// Time is when Redis added the entry: the milliseconds part of an automatic ID.
func (e Entry) Time() (time.Time, error) {
	ms, _, ok := strings.Cut(e.ID, "-")
	if !ok {
		return time.Time{}, fmt.Errorf("stream ID %q: no '-'", e.ID)
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("stream ID %q: %w", e.ID, err)
	}
	return time.UnixMilli(n), nil
}

// Entries converts the reply of XRANGE or XREVRANGE into entries.
func Entries(r Reply) ([]Entry, error) {
	if r.Kind != '*' {
		return nil, protoErr("XRANGE reply is %q, not an array", r.Kind)
	}
	out := make([]Entry, 0, len(r.Elems))
	for _, e := range r.Elems {
		if e.Kind != '*' || len(e.Elems) != 2 || e.Elems[0].Kind != '$' || e.Elems[0].Null || e.Elems[1].Kind != '*' {
			return nil, protoErr("stream entry is not [id, [field, value, …]]")
		}
		kv := e.Elems[1].Elems
		if len(kv)%2 != 0 {
			return nil, protoErr("stream entry %s has an odd number of field items", e.Elems[0].Str)
		}
		ent := Entry{ID: e.Elems[0].Str, Fields: make(map[string]string, len(kv)/2)}
		for i := 0; i < len(kv); i += 2 {
			if kv[i].Kind != '$' || kv[i+1].Kind != '$' {
				return nil, protoErr("stream entry %s has a field that is no bulk string", ent.ID)
			}
			ent.Fields[kv[i].Str] = kv[i+1].Str
		}
		out = append(out, ent)
	}
	return out, nil
}

// Client is one connection to Redis. Its methods may be called from several goroutines; they
// take turns on the connection.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

// Dial connects to Redis at addr.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriter(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends one command and reads its reply. An error reply is returned as an [Error].
func (c *Client) Do(ctx context.Context, args ...string) (Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return Reply{}, err
	}
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.w.Flush(); err != nil {
		return Reply{}, err
	}
	r, err := ReadReply(c.r)
	if err != nil {
		return Reply{}, err
	}
	if r.Kind == '-' {
		return r, Error(r.Str)
	}
	return r, nil
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	r, err := c.Do(ctx, "PING")
	if err != nil {
		return err
	}
	if r.Kind != '+' || r.Str != "PONG" {
		return protoErr("PING answered %+v", r)
	}
	return nil
}

func (c *Client) integer(ctx context.Context, args ...string) (int64, error) {
	r, err := c.Do(ctx, args...)
	if err != nil {
		return 0, err
	}
	if r.Kind != ':' {
		return 0, protoErr("%s answered %q, not an integer", args[0], r.Kind)
	}
	return r.Int, nil
}

// XLen is the number of entries in the stream key (0 if there is no such key).
func (c *Client) XLen(ctx context.Context, key string) (int64, error) {
	return c.integer(ctx, "XLEN", key)
}

// Del deletes keys and returns how many existed.
func (c *Client) Del(ctx context.Context, keys ...string) (int64, error) {
	return c.integer(ctx, append([]string{"DEL"}, keys...)...)
}

// XRange returns at most count entries of key with IDs from start to end ("-" and "+" are the
// ends of the stream; "(" before an ID excludes it).
func (c *Client) XRange(ctx context.Context, key, start, end string, count int) ([]Entry, error) {
	r, err := c.Do(ctx, "XRANGE", key, start, end, "COUNT", strconv.Itoa(count))
	if err != nil {
		return nil, err
	}
	return Entries(r)
}

// XRevRange is XRange newest first (end before start, as Redis takes them).
func (c *Client) XRevRange(ctx context.Context, key, end, start string, count int) ([]Entry, error) {
	r, err := c.Do(ctx, "XREVRANGE", key, end, start, "COUNT", strconv.Itoa(count))
	if err != nil {
		return nil, err
	}
	return Entries(r)
}
