package framecodec

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// orderBook is a JSON depth snapshot of about n bytes, compressible as real ones are.
func orderBook(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString(`{"ch":"market.btcusdt.depth.step0","ts":1733450000000,"tick":{"bids":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("[" + strconv.FormatFloat(50000-float64(i)*0.1, 'f', 1, 64) + "," + strconv.FormatFloat(r.Float64()*5, 'f', 4, 64) + "]")
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// BenchmarkDecode measures the decode path of one inbound frame per format and size; b.SetBytes
// is the decoded size, so MB/s is decoded throughput.
func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{256, 4 << 10, 64 << 10, 1 << 20} {
		plain := orderBook(size)
		for _, f := range []struct {
			name   string
			mode   Mode
			encode func(testing.TB, []byte) []byte
		}{
			{"gzip", Gzip, gzipped}, {"zlib", Zlib, zlibbed}, {"deflate", Deflate, deflated},
			{"auto-gzip", Auto, gzipped}, {"auto-deflate", Auto, deflated},
		} {
			frame := f.encode(b, plain)
			b.Run(fmt.Sprintf("%s/%dB", f.name, len(plain)), func(b *testing.B) {
				b.SetBytes(int64(len(plain)))
				b.ReportAllocs()
				for b.Loop() {
					out, _, err := Decode(f.mode, frame, 4<<20)
					if err != nil || len(out) != len(plain) {
						b.Fatalf("decode: %v (%d bytes)", err, len(out))
					}
				}
			})
		}
		// Auto on a frame that is not compressed: the cost of the failed raw-deflate guess.
		b.Run(fmt.Sprintf("auto-plain/%dB", len(plain)), func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				if _, format, _ := Decode(Auto, plain, 4<<20); format != None {
					b.Fatalf("plain JSON decoded as %v", format)
				}
			}
		})
	}
}
