package framecodec

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds untrusted frames to every mode: no panic, the output bounded by the limit,
// the input unchanged, and only the documented errors.
func FuzzDecode(f *testing.F) {
	book := []byte(`{"bids":[[1,2]],"asks":[[3,4]]}`)
	for _, seed := range [][]byte{
		gzipped(f, book), zlibbed(f, book), deflated(f, book), syncFlushed(f, book), book,
		{0x1f, 0x8b, 0x08}, {0x78, 0x9c}, {0x03, 0x00}, {}, gzipped(f, bytes.Repeat([]byte{0}, 1<<16)),
	} {
		f.Add(seed, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		in := bytes.Clone(data)
		for _, mode := range []Mode{None, Gzip, Zlib, Deflate, Auto} {
			out, format, err := Decode(mode, data, int64(limit))
			if !bytes.Equal(in, data) {
				t.Fatalf("%v changed its input", mode)
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%v: undocumented error %v", mode, err)
				}
				if mode == Auto && errors.Is(err, ErrCorrupt) && !bytes.Equal(out, data) {
					t.Fatalf("auto: a corrupt frame must come back as received")
				}
				continue
			}
			if mode == None || format == None {
				if !bytes.Equal(out, data) {
					t.Fatalf("%v: a frame not decoded must come back as received", mode)
				}
				continue
			}
			if int64(len(out)) > int64(limit) {
				t.Fatalf("%v: %d bytes decoded, the limit is %d", mode, len(out), limit)
			}
		}
	})
}
