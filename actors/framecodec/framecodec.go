// Package framecodec decodes compressed inbound WebSocket frames (gzip, zlib, raw deflate, or
// whichever of them a frame looks like). Frames come from servers the service does not
// control, so every decode is bounded: at most max+1 bytes are ever inflated, and a frame that
// decodes larger is refused with ErrTooLarge (a decompression bomb costs max+1 bytes, not
// what it expands to). Readers and scratch buffers are pooled; a decode allocates little more
// than the decoded frame it returns.
package framecodec

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Mode is how a frame is decoded.
type Mode uint8

// Modes. The names (String) are what the actor contract persists ("" is None).
const (
	None Mode = iota
	Gzip
	Zlib
	Deflate
	Auto
)

var modeNames = [...]string{None: "NONE", Gzip: "GZIP", Zlib: "ZLIB", Deflate: "DEFLATE", Auto: "AUTO"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode reads a mode name: NONE (also ""), GZIP, ZLIB, DEFLATE or AUTO, in any case.
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return None, nil
	}
	for m, n := range modeNames {
		if strings.EqualFold(s, n) {
			return Mode(m), nil
		}
	}
	return None, fmt.Errorf("%q is not one of NONE, GZIP, ZLIB, DEFLATE, AUTO", s)
}

// Errors of Decode; match them with errors.Is.
var (
	// ErrTooLarge: the frame decodes to more than the limit (a decompression bomb, or a limit
	// set too low).
	ErrTooLarge = errors.New("the frame decodes to more than the limit")
	// ErrCorrupt: the frame is not valid data of the format it was decoded as.
	ErrCorrupt = errors.New("the frame does not decode")
)

// syncFlushMarker ends a deflate stream flushed with Z_SYNC_FLUSH but not finished (what
// permessage-deflate sends, and what some servers send as "raw deflate"); syncFlushTail
// finishes such a stream with an empty final block, as gorilla does for permessage-deflate.
const (
	syncFlushMarker = "\x00\x00\xff\xff"
	syncFlushTail   = "\x01\x00\x00\xff\xff"
)

// maxPooledScratch bounds the scratch buffer a decode gives back to the pool: one large frame
// must not keep its size alive for every later small one.
const maxPooledScratch = 1 << 20

// state is what one decode uses; it is pooled whole.
type state struct {
	in      input
	gz      *gzip.Reader
	zl      io.ReadCloser
	fl      io.ReadCloser
	scratch []byte
}

var pool = sync.Pool{New: func() any { return new(state) }}

// Decode decodes data as mode and returns the decoded frame (a new slice, unless data itself
// is returned as received; data is never changed or kept) and the format it was decoded as.
// The decoded frame is at most max bytes (max <= 0: only frames that decode to nothing); a
// larger one is refused with ErrTooLarge after at most max+1 decoded bytes. An empty frame is
// returned as it is.
//
// None returns data itself. Auto decodes gzip when the frame starts with the gzip magic (1f 8b
// 08), zlib when it starts with a zlib header (compression method 8, no preset dictionary, the
// header checksum right), else raw deflate when the whole frame inflates as one; a frame that
// is none of them is returned as it is with format None and no error. A frame whose header
// says gzip or zlib but that does not decode is returned as it is with that format and an
// error wrapping ErrCorrupt: the caller decides whether to pass it on (Auto) or refuse it.
func Decode(mode Mode, data []byte, max int64) ([]byte, Mode, error) {
	if mode == None || len(data) == 0 {
		return data, None, nil
	}
	if mode == Auto {
		mode = Detect(data)
		if mode == None {
			out, err := decode(Deflate, data, max, true)
			if err == nil || errors.Is(err, ErrTooLarge) {
				return out, Deflate, err
			}
			return data, None, nil
		}
		out, err := decode(mode, data, max, false)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, mode, err
			}
			return data, mode, err
		}
		return out, mode, nil
	}
	if mode > Auto {
		return nil, None, fmt.Errorf("framecodec: unknown mode %d", mode)
	}
	out, err := decode(mode, data, max, false)
	return out, mode, err
}

// Detect says which format data's header names: Gzip, Zlib, or None (no header: perhaps raw
// deflate, perhaps not compressed at all).
func Detect(data []byte) Mode {
	if len(data) >= 3 && data[0] == 0x1f && data[1] == 0x8b && data[2] == 8 {
		return Gzip
	}
	// RFC 1950: CMF (CM = 8 deflate, CINFO <= 7 a window of at most 32 KiB), FLG with FDICT
	// unset (a preset dictionary cannot be known here), and CMF*256+FLG a multiple of 31.
	if len(data) >= 2 {
		cmf, flg := data[0], data[1]
		if cmf&0x0f == 8 && cmf>>4 <= 7 && flg&0x20 == 0 && (uint16(cmf)<<8|uint16(flg))%31 == 0 {
			return Zlib
		}
	}
	return None
}

// decode inflates data as gzip, zlib or deflate. strict (Auto's guess at raw deflate) also
// requires the stream to take up the whole frame.
func decode(mode Mode, data []byte, max int64, strict bool) (out []byte, err error) {
	st := pool.Get().(*state)
	defer func() {
		if cap(st.scratch) > maxPooledScratch {
			st.scratch = nil
		}
		st.in.reset(nil, "")
		pool.Put(st)
	}()
	var r io.Reader
	switch mode {
	case Gzip:
		st.in.reset(data, "")
		if st.gz == nil {
			st.gz, err = gzip.NewReader(&st.in)
		} else {
			err = st.gz.Reset(&st.in)
		}
		if err != nil {
			st.gz = nil // a failed NewReader returns no reader; a failed Reset leaves it unusable
			return nil, fmt.Errorf("%w as gzip: %v", ErrCorrupt, err)
		}
		r = st.gz
	case Zlib:
		st.in.reset(data, "")
		if st.zl == nil {
			st.zl, err = zlib.NewReader(&st.in)
		} else {
			err = st.zl.(zlib.Resetter).Reset(&st.in, nil)
		}
		if err != nil {
			st.zl = nil
			return nil, fmt.Errorf("%w as zlib: %v", ErrCorrupt, err)
		}
		r = st.zl
	case Deflate:
		tail := ""
		if bytes.HasSuffix(data, []byte(syncFlushMarker)) {
			tail = syncFlushTail
		}
		st.in.reset(data, tail)
		if st.fl == nil {
			st.fl = flate.NewReader(&st.in)
		} else if err := st.fl.(flate.Resetter).Reset(&st.in, nil); err != nil {
			return nil, fmt.Errorf("%w as deflate: %v", ErrCorrupt, err)
		}
		r = st.fl
	default:
		return nil, fmt.Errorf("framecodec: cannot inflate mode %v", mode)
	}
	n, err := readBounded(r, max, &st.scratch)
	if err != nil && strict {
		return nil, ErrCorrupt // a guess that failed: not worth an error text (Auto passes the frame on)
	}
	if err != nil {
		return nil, fmt.Errorf("%w as %s: %v", ErrCorrupt, strings.ToLower(mode.String()), err)
	}
	if n > max {
		return nil, fmt.Errorf("%w of %d bytes (%s)", ErrTooLarge, max, strings.ToLower(mode.String()))
	}
	if strict && st.in.remaining() > 0 {
		return nil, fmt.Errorf("%w as deflate: %d bytes after the end of the stream", ErrCorrupt, st.in.remaining())
	}
	return bytes.Clone(st.scratch[:n]), nil
}

// readBounded reads r into *buf until EOF or until it holds max+1 bytes, and returns how many
// it read: more than max means the stream is larger than max (and was not read further).
func readBounded(r io.Reader, max int64, buf *[]byte) (int64, error) {
	if max < 0 {
		max = 0
	}
	limit := max + 1
	b := (*buf)[:0]
	if cap(b) == 0 {
		b = make([]byte, 0, min(limit, 4096))
	}
	for {
		if int64(len(b)) == limit {
			*buf = b
			return limit, nil
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow by append's rule, then bound by the limit below
		}
		room := b[len(b):min(int64(cap(b)), limit)]
		n, err := r.Read(room)
		b = b[:len(b)+n]
		if err == io.EOF {
			*buf = b
			return int64(len(b)), nil
		}
		if err != nil {
			*buf = b
			return int64(len(b)), err
		}
	}
}

// input reads a frame and then an optional tail without copying either. It is an
// io.ByteReader, so that the decompressors read exactly what they need (no bufio read-ahead)
// and remaining tells what they left.
type input struct {
	data []byte
	tail string
}

func (in *input) reset(data []byte, tail string) { in.data, in.tail = data, tail }

func (in *input) remaining() int { return len(in.data) }

func (in *input) Read(p []byte) (int, error) {
	if len(in.data) > 0 {
		n := copy(p, in.data)
		in.data = in.data[n:]
		return n, nil
	}
	if len(in.tail) > 0 {
		n := copy(p, in.tail)
		in.tail = in.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

func (in *input) ReadByte() (byte, error) {
	if len(in.data) > 0 {
		c := in.data[0]
		in.data = in.data[1:]
		return c, nil
	}
	if len(in.tail) > 0 {
		c := in.tail[0]
		in.tail = in.tail[1:]
		return c, nil
	}
	return 0, io.EOF
}
