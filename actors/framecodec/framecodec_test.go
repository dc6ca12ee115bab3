package framecodec

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gzipped(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func zlibbed(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	_, err := w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func deflated(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.DefaultCompression)
	require.NoError(t, err)
	_, err = w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// syncFlushed is raw deflate ended by Z_SYNC_FLUSH instead of a final block, as some servers
// (and permessage-deflate) send it.
func syncFlushed(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.DefaultCompression)
	require.NoError(t, err)
	_, err = w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Flush())
	return b.Bytes()
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"", None, false}, {"NONE", None, false}, {"gzip", Gzip, false}, {"ZLIB", Zlib, false},
		{"Deflate", Deflate, false}, {"AUTO", Auto, false}, {"brotli", None, true}, {"5", None, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			m, err := ParseMode(tc.in)
			if tc.err {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.in)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, m)
			if tc.in != "" {
				assert.Equal(t, strings.ToUpper(tc.in), m.String())
			}
		})
	}
}

func TestDecode(t *testing.T) {
	book := []byte(`{"ch":"market.btcusdt.depth.step0","tick":{"bids":[[50000.1,1.5],[49999.9,0.25]],"asks":[[50000.2,3]]}}`)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB, compresses well
	const max = 1 << 20
	type tc struct {
		name     string
		mode     Mode
		in       []byte
		max      int64
		want     []byte // nil: the input itself
		format   Mode
		wantErr  error
		sameData bool // the input is returned as it is
	}
	cases := []tc{
		{name: "none passes the frame", mode: None, in: gzipped(t, book), sameData: true, format: None},
		{name: "gzip", mode: Gzip, in: gzipped(t, book), want: book, format: Gzip},
		{name: "zlib", mode: Zlib, in: zlibbed(t, book), want: book, format: Zlib},
		{name: "deflate", mode: Deflate, in: deflated(t, book), want: book, format: Deflate},
		{name: "deflate ended by a sync flush", mode: Deflate, in: syncFlushed(t, book), want: book, format: Deflate},
		{name: "gzip of two members", mode: Gzip, in: append(gzipped(t, book[:10]), gzipped(t, book[10:])...), want: book, format: Gzip},
		{name: "auto gzip", mode: Auto, in: gzipped(t, book), want: book, format: Gzip},
		{name: "auto zlib", mode: Auto, in: zlibbed(t, book), want: book, format: Zlib},
		{name: "auto deflate", mode: Auto, in: deflated(t, book), want: book, format: Deflate},
		{name: "auto deflate ended by a sync flush", mode: Auto, in: syncFlushed(t, book), want: book, format: Deflate},
		{name: "auto plain JSON passes as received", mode: Auto, in: book, sameData: true, format: None},
		{name: "auto plain binary passes as received", mode: Auto, in: []byte{0xff, 0xfe, 0xfd, 0x00, 0x01}, sameData: true, format: None},
		{name: "auto deflate with trailing bytes passes as received", mode: Auto, in: append(deflated(t, book), "junk"...), sameData: true, format: None},
		{name: "auto corrupt gzip passes as received, with an error", mode: Auto, in: gzipped(t, book)[:20], sameData: true, format: Gzip, wantErr: ErrCorrupt},
		{name: "auto corrupt zlib passes as received, with an error", mode: Auto, in: []byte{0x78, 0x9c, 0xff, 0xff}, sameData: true, format: Zlib, wantErr: ErrCorrupt},
		{name: "empty frame", mode: Gzip, in: []byte{}, sameData: true, format: None},
		{name: "gzip of nothing", mode: Gzip, in: gzipped(t, nil), want: []byte{}, format: Gzip},
		{name: "gzip not gzip", mode: Gzip, in: book, format: Gzip, wantErr: ErrCorrupt},
		{name: "gzip truncated", mode: Gzip, in: gzipped(t, book)[:30], format: Gzip, wantErr: ErrCorrupt},
		{name: "gzip bad checksum", mode: Gzip, in: flipCRC(gzipped(t, book)), format: Gzip, wantErr: ErrCorrupt},
		{name: "zlib not zlib", mode: Zlib, in: gzipped(t, book), format: Zlib, wantErr: ErrCorrupt},
		{name: "zlib bad checksum", mode: Zlib, in: flipLast(zlibbed(t, book)), format: Zlib, wantErr: ErrCorrupt},
		{name: "deflate not deflate", mode: Deflate, in: []byte{0xff, 0xff, 0xff}, format: Deflate, wantErr: ErrCorrupt},
		{name: "exactly the limit", mode: Gzip, in: gzipped(t, big), max: int64(len(big)), want: big, format: Gzip},
		{name: "gzip one byte over the limit", mode: Gzip, in: gzipped(t, big), max: int64(len(big) - 1), format: Gzip, wantErr: ErrTooLarge},
		{name: "zlib over the limit", mode: Zlib, in: zlibbed(t, big), max: 1000, format: Zlib, wantErr: ErrTooLarge},
		{name: "deflate over the limit", mode: Deflate, in: deflated(t, big), max: 1000, format: Deflate, wantErr: ErrTooLarge},
		{name: "auto gzip over the limit", mode: Auto, in: gzipped(t, big), max: 1000, format: Gzip, wantErr: ErrTooLarge},
		{name: "auto deflate over the limit", mode: Auto, in: deflated(t, big), max: 1000, format: Deflate, wantErr: ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.max
			if m == 0 {
				m = max
			}
			in := bytes.Clone(c.in)
			out, format, err := Decode(c.mode, in, m)
			assert.Equal(t, c.in, in, "the input is never changed")
			assert.Equal(t, c.format, format)
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				if c.sameData {
					assert.Equal(t, c.in, out)
				}
				return
			}
			require.NoError(t, err)
			if c.sameData {
				assert.Equal(t, c.in, out)
				return
			}
			assert.Equal(t, c.want, out)
		})
	}
}

func flipCRC(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-8] ^= 0xff // gzip trailer: CRC-32, then ISIZE
	return b
}

func flipLast(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 0xff
	return b
}

// A bomb: 1 GiB of zeros compress to about 1 MiB; decoding stops at the limit.
func TestDecodeBombStopsAtTheLimit(t *testing.T) {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for range 64 { // 64 MiB is enough to show it, and quick to build
		_, err = w.Write(zeros)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	for _, mode := range []Mode{Gzip, Auto} {
		t.Run(mode.String(), func(t *testing.T) {
			allocs := testing.AllocsPerRun(1, func() {
				_, _, err := Decode(mode, b.Bytes(), 1<<20)
				require.ErrorIs(t, err, ErrTooLarge)
			})
			t.Logf("%d compressed bytes, %v allocations", b.Len(), allocs)
		})
	}
}

func TestDecodeConcurrentReuse(t *testing.T) {
	frames := map[Mode][]byte{}
	want := map[Mode][]byte{}
	for i, mode := range []Mode{Gzip, Zlib, Deflate} {
		p := []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", 100*i)))
		want[mode] = p
		switch mode {
		case Gzip:
			frames[mode] = gzipped(t, p)
		case Zlib:
			frames[mode] = zlibbed(t, p)
		case Deflate:
			frames[mode] = deflated(t, p)
		}
	}
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				mode := []Mode{Gzip, Zlib, Deflate}[(g+i)%3]
				out, _, err := Decode(Auto, frames[mode], 1<<20)
				if err == nil && !bytes.Equal(out, want[mode]) {
					err = errors.New("wrong output from a pooled reader")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-done)
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want Mode
	}{
		{"gzip", []byte{0x1f, 0x8b, 0x08, 0}, Gzip},
		{"gzip magic, other method", []byte{0x1f, 0x8b, 0x07}, None},
		{"zlib default", []byte{0x78, 0x9c}, Zlib},
		{"zlib best", []byte{0x78, 0xda}, Zlib},
		{"zlib fastest", []byte{0x78, 0x01}, Zlib},
		{"zlib with a preset dictionary", []byte{0x78, 0xbb}, None},
		{"zlib bad check", []byte{0x78, 0x9d}, None},
		{"JSON", []byte(`{"a":1}`), None},
		{"one byte", []byte{0x78}, None},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, Detect(tc.in)) })
	}
}
