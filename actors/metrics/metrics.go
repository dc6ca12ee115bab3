// Package metrics owns the service's Prometheus metrics: their names, labels and buckets, and
// the registry /metrics serves. Every method is safe on a nil *Metrics (no metrics), so that
// packages and tests that do not care need not set one up.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "wsmanager"

// Metrics are the collectors of one process.
type Metrics struct {
	reg *prometheus.Registry

	framesIn, framesOut *prometheus.CounterVec // type: text|binary
	bytesIn, bytesOut   prometheus.Counter
	reconnects          prometheus.Counter
	dropped             *prometheus.CounterVec // reason: one of DropReasons
	publishDuration     prometheus.Histogram
	publishFailures     prometheus.Counter
	publishedFrames     prometheus.Counter
	pausedSeconds       prometheus.Counter
	pausedNow           prometheus.Gauge
	sendDuration        prometheus.Histogram
	sends               *prometheus.CounterVec // outcome: gRPC code name, lower case
	apiDuration         *prometheus.HistogramVec
	apiRequests         *prometheus.CounterVec // method, code
	actorCalls          *prometheus.CounterVec // actor_type, method, outcome
	actorDuration       *prometheus.HistogramVec
	peerRefused         prometheus.Counter
	decodeRefused       *prometheus.CounterVec // reason: one of DecodeReasons
	sendThrottled       *prometheus.CounterVec // outcome: waited|refused
}

// latencyBuckets span 100 µs to 10 s: a Send answered from a local socket up to a slow server.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New registers the service's collectors, the Go runtime's and the process's. connections
// reports, at scrape time, the sockets this instance holds by status (lower-case names).
func New(connections func() map[string]int) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.framesIn = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "frames_received_total",
		Help: "WebSocket data frames received from servers."}, []string{"type"})
	m.framesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "frames_sent_total",
		Help: "WebSocket data frames sent to servers (Send, SendRaw, on-connect messages)."}, []string{"type"})
	m.bytesIn = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "received_bytes_total",
		Help: "Payload bytes of the data frames received from servers."})
	m.bytesOut = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "sent_bytes_total",
		Help: "Payload bytes of the data frames sent to servers."})
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "reconnects_total",
		Help: "Sockets re-established after a drop."})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "publish_dropped_frames_total",
		Help: "Inbound frames that were to be published and were not, by reason (" + strings.Join(DropReasons, ", ") + ")."}, []string{"reason"})
	for _, r := range DropReasons {
		m.dropped.WithLabelValues(r) // exported at 0 from the start: alerts and dashboards see every reason
	}
	m.publishDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "publish_duration_seconds",
		Help: "Time of one Dapr publish call, successful or not.", Buckets: latencyBuckets})
	m.publishFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "publish_failures_total",
		Help: "Dapr publish calls that failed (each is retried, unless the event is too large for the pub/sub)."})
	m.publishedFrames = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "published_frames_total",
		Help: "Inbound frames published (a batch event counts each of its frames)."})
	m.pausedSeconds = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "publish_paused_seconds_total",
		Help: "Time connections spent not reading their socket because their publish buffer was full (OVERFLOW_BACKPRESSURE), all connections together; a pause counts when it ends."})
	m.pausedNow = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "publish_paused_connections",
		Help: "Connections paused now because their publish buffer is full (OVERFLOW_BACKPRESSURE)."})
	m.sendDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "send_duration_seconds",
		Help: "Send round trips as the API caller sees them, until the reply (or the failure).", Buckets: latencyBuckets})
	m.sends = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "sends_total",
		Help: "Sends by outcome (ok or the gRPC code of the failure)."}, []string{"outcome"})
	m.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "api_request_duration_seconds",
		Help: "API calls (gRPC and REST) by method.", Buckets: latencyBuckets}, []string{"method"})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "api_requests_total",
		Help: "API calls (gRPC and REST) by method and gRPC code."}, []string{"method", "code"})
	m.actorCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "actor_calls_total",
		Help: "Dapr actor calls this instance made, by actor type, method and outcome (ok, or the failure code)."},
		[]string{"actor_type", "method", "outcome"})
	m.actorDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "actor_call_duration_seconds",
		Help: "Dapr actor calls this instance made, by actor type and method.", Buckets: latencyBuckets}, []string{"actor_type", "method"})
	m.peerRefused = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "peer_addresses_refused_total",
		Help: "Instance addresses read from the directory that the peer policy refused to dial (forwarding, Held, event following)."})
	m.sendThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "send_throttled_total",
		Help: "Sends and SendRaws over their connection's send_rate, by outcome: waited for it, or refused (fail_fast, or a wait past the call's deadline)."}, []string{"outcome"})
	m.sendThrottled.WithLabelValues("waited")
	m.sendThrottled.WithLabelValues("refused")
	for _, c := range []prometheus.Collector{m.sendThrottled, m.framesIn, m.framesOut, m.bytesIn, m.bytesOut, m.reconnects, m.dropped,
		m.publishDuration, m.publishFailures, m.publishedFrames, m.pausedSeconds, m.pausedNow, m.sendDuration, m.sends, m.apiDuration, m.apiRequests, m.actorCalls, m.actorDuration,
		m.peerRefused} {
		f(c)
	}
	m.decodeRefused = newDecodeRefused()
	f(m.decodeRefused)
	f(&connCollector{
		desc: prometheus.NewDesc(Namespace+"_connections", "Connections whose socket this instance holds, by status.", []string{"status"}, nil),
		held: prometheus.NewDesc(Namespace+"_connections_held", "Connections whose socket this instance holds.", nil, nil),
		fn:   connections,
	})
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func frameType(binary bool) string {
	if binary {
		return "binary"
	}
	return "text"
}

// FrameIn counts an inbound data frame.
func (m *Metrics) FrameIn(binary bool, n int) {
	if m == nil {
		return
	}
	m.framesIn.WithLabelValues(frameType(binary)).Inc()
	m.bytesIn.Add(float64(n))
}

// FrameOut counts an outbound data frame.
func (m *Metrics) FrameOut(binary bool, n int) {
	if m == nil {
		return
	}
	m.framesOut.WithLabelValues(frameType(binary)).Inc()
	m.bytesOut.Add(float64(n))
}

// PeerRefused counts an instance address the peer policy refused to dial.
func (m *Metrics) PeerRefused() {
	if m != nil {
		m.peerRefused.Inc()
	}
}

// SendThrottled counts a Send or SendRaw over its connection's send rate; outcome is
// "waited" or "refused".
func (m *Metrics) SendThrottled(outcome string) {
	if m != nil {
		m.sendThrottled.WithLabelValues(outcome).Inc()
	}
}

// Reconnect counts a socket re-established after a drop.
func (m *Metrics) Reconnect() {
	if m != nil {
		m.reconnects.Inc()
	}
}

// Reasons an inbound frame that was to be published was dropped: the label values of
// wsmanager_publish_dropped_frames_total and the keys of a connection's dropped-frame counts.
const (
	// DropBufferFull: the connection's publish buffer was full (frames or bytes); the oldest
	// waiting frame went.
	DropBufferFull = "buffer_full"
	// DropInstanceBudget: the publish buffers of all connections of the instance together held
	// as many bytes as they may.
	DropInstanceBudget = "instance_budget"
	// DropTooLarge: the frame's event is larger than the pub/sub accepts (never retried).
	DropTooLarge = "too_large"
	// DropClosed: the frame was still waiting when its connection closed and the time to
	// publish what was left ran out.
	DropClosed = "closed"
	// DropPublishFailed: every publish of the frame failed for the publish retry timeout (e.g.
	// a broker that refuses it for good with an error not recognised as "too large").
	DropPublishFailed = "publish_failed"
)

// DropReasons lists every drop reason.
var DropReasons = []string{DropBufferFull, DropInstanceBudget, DropTooLarge, DropClosed, DropPublishFailed}

// Dropped counts n inbound frames dropped for reason (one of DropReasons).
func (m *Metrics) Dropped(reason string, n int) {
	if m != nil && n > 0 {
		m.dropped.WithLabelValues(reason).Add(float64(n))
	}
}

// ObserveBufferedBytes exports fn, the bytes all publish buffers of the instance hold, as the
// gauge wsmanager_publish_buffered_bytes. Call it once.
func (m *Metrics) ObserveBufferedBytes(fn func() int64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "publish_buffered_bytes",
		Help: "Bytes of inbound frames waiting to be published (or being published), all connections of the instance together."},
		func() float64 { return float64(fn()) }))
}

// Published records one publish call.
func (m *Metrics) Published(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.publishDuration.Observe(d.Seconds())
	if err != nil {
		m.publishFailures.Inc()
	}
}

// PublishedFrames counts n frames published (in one event).
func (m *Metrics) PublishedFrames(n int) {
	if m != nil {
		m.publishedFrames.Add(float64(n))
	}
}

// Paused records that a connection stopped reading because its publish buffer is full.
func (m *Metrics) Paused() {
	if m != nil {
		m.pausedNow.Inc()
	}
}

// Resumed records the end of a pause that lasted d.
func (m *Metrics) Resumed(d time.Duration) {
	if m != nil {
		m.pausedNow.Dec()
		m.pausedSeconds.Add(d.Seconds())
	}
}

// Sent records one Send as the API caller saw it; outcome is "ok" or a gRPC code name.
func (m *Metrics) Sent(d time.Duration, outcome string) {
	if m == nil {
		return
	}
	m.sendDuration.Observe(d.Seconds())
	m.sends.WithLabelValues(outcome).Inc()
}

// API records one API call (method is the RPC's short name, code the gRPC code name).
func (m *Metrics) API(method, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.apiDuration.WithLabelValues(method).Observe(d.Seconds())
	m.apiRequests.WithLabelValues(method, code).Inc()
}

// ActorCall records one actor call this instance made; outcome is "ok" or a failure code.
func (m *Metrics) ActorCall(actorType, method, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.actorCalls.WithLabelValues(actorType, method, outcome).Inc()
	m.actorDuration.WithLabelValues(actorType, method).Observe(d.Seconds())
}

// connCollector reports the held connections by status when scraped.
type connCollector struct {
	desc, held *prometheus.Desc
	fn         func() map[string]int
}

func (c *connCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.held }

func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{"connecting": 0, "connected": 0, "disconnected": 0, "error": 0}
	if c.fn != nil {
		for k, v := range c.fn() {
			counts[k] = v
		}
	}
	total := 0
	for status, n := range counts {
		total += n
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), status)
	}
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(total))
}
