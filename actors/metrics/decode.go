package metrics

import "github.com/prometheus/client_golang/prometheus"

// Reasons an inbound frame was refused by decoding: the label values of
// wsmanager_decode_refused_total.
const (
	// DecodeTooLarge: the frame decoded (decode_binary) or inflated (permessage-deflate) to
	// more than the connection's max_decoded_bytes; the socket was closed with 1009.
	DecodeTooLarge = "too_large"
	// DecodeCorrupt: the frame was not valid data of its format; with an explicit
	// decode_binary the socket was closed with 1007, with AUTO the frame was passed on as
	// received.
	DecodeCorrupt = "corrupt"
)

// DecodeReasons lists every decode refusal reason.
var DecodeReasons = []string{DecodeTooLarge, DecodeCorrupt}

func newDecodeRefused() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "decode_refused_total",
		Help: "Inbound frames refused by decoding (decode_binary, permessage-deflate), by reason: too_large (decompression bomb, closed with 1009) or corrupt (closed with 1007, or passed on as received with AUTO)."}, []string{"reason"})
	for _, r := range DecodeReasons {
		c.WithLabelValues(r) // exported at 0 from the start
	}
	return c
}

// DecodeRefused counts an inbound frame refused by decoding (reason: one of DecodeReasons).
func (m *Metrics) DecodeRefused(reason string) {
	if m != nil {
		m.decodeRefused.WithLabelValues(reason).Inc()
	}
}
