package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/google/uuid"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

const pubSec = "3 publish, counted at the broker"

// batchedFrames is the size of the first batching-on burst (all connections together): a few
// seconds at the target rates. A burst that takes less than minBurst is run again, larger.
func batchedFrames(publishN int) int { return 5 * publishN }

// publishBuffer is the main stack's --publish-buffer: the largest burst one connection may get
// (a rerun of a short burst), so that the measurement is how fast frames get out, not how
// many a full buffer drops.
func publishBuffer(publishN int) int { return max(20*publishN, 1024) }

// minBurst is how long a throughput measurement should last to be more than start-up noise.
const minBurst = 2 * time.Second

// batchOn is the batching the benchmark asks for: up to 1000 frames an event, no waiting (a
// batch is whatever waits when the previous publish returns).
func batchOn(id, topic string) *pb.StartPublishRequest {
	return &pb.StartPublishRequest{Id: id, Topic: topic, BatchMaxFrames: 1000, BatchMaxDelayMs: 0}
}

func batchOff(id, topic string) *pb.StartPublishRequest {
	return &pb.StartPublishRequest{Id: id, Topic: topic}
}

// pubRun is one run of the publish part: the streams it creates are deleted at the end.
type pubRun struct {
	b     *bench
	rc    *redisstream.Client
	run   string
	keys  []string
	redis int // the machine's redis-server, 0 if not found
}

func (p *pubRun) topic(name string) string {
	t := "bench-" + p.run + "-" + name
	p.keys = append(p.keys, t)
	return t
}

// snap is the CPU used so far by the stack's processes, this process and redis-server.
func (p *pubRun) snap(st *daprstack.Stack) cpuSnapshot {
	s := snapshotCPU(st)
	if p.redis > 0 {
		if _, c, err := procStat(p.redis); err == nil {
			s["redis-server"] = c
		}
	}
	return s
}

// publish measures, all counted in Redis (the streams Dapr's Redis pub/sub writes), the
// floors (a serial loop of Dapr publish calls, Dapr bulk publish) beside the service with one
// and 200 connections, batching off and on, and OVERFLOW_BACKPRESSURE; and, as a separate
// row, the end-to-end rate to a Dapr subscriber.
func (b *bench) publish(ctx context.Context) error {
	s, err := b.startSingle(ctx)
	if err != nil {
		return err
	}
	rc, err := redisstream.Dial(ctx, redisstream.Addr)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := rc.Ping(ctx); err != nil {
		return err
	}
	p := &pubRun{b: b, rc: rc, run: uuid.NewString()[:8], redis: redisPID()}
	defer func() { delStreams(p.keys) }()
	n := b.o.publishN
	nb := batchedFrames(n)
	many := max(b.o.pubConns, 1)
	row := func(what, value, target, verdict string) { b.add(pubSec, what, value, target, verdict) }
	failed := func(what string, err error) {
		b.failures = append(b.failures, pubSec+": "+what+": "+err.Error())
		row(what, "failed: "+err.Error(), "", "FAILED")
	}
	cpuRow := func(label, shares string) { row(label+" CPU by process", shares, "", "") }

	loop, loopCPU, err := p.daprLoop(ctx, s, n)
	if err != nil {
		failed("a. serial loop of Dapr publish calls", err)
	} else {
		row("a. serial loop of Dapr publish calls (PublishEvent, one event per call, rawPayload CloudEvent like the service's)", fmt.Sprintf("%.0f frames/s", loop), "", "")
		cpuRow("a.", loopCPU)
	}
	if bulk, bulkCPU, err := p.daprBulk(ctx, s, n); err != nil {
		failed("b. Dapr bulk publish", err)
	} else {
		row("b. Dapr bulk publish (PublishEvents, 100 per call)", fmt.Sprintf("%.0f frames/s", bulk), "", "")
		cpuRow("b.", bulkCPU)
	}

	main := target{st: s.st, client: s.client, upstream: s.upstream}
	type svcRow struct {
		label       string
		conns, each int
		req         func(id, topic string) *pb.StartPublishRequest
		target      float64 // frames/s, 0: none
	}
	results := map[string]svcResult{}
	for _, r := range []svcRow{
		{"c. the service, 1 connection, batching off (default StartPublish)", 1, n, batchOff, 0},
		{"d. the service, 1 connection, batching on (batch_max_frames 1000, delay 0)", 1, nb, batchOn, 10000},
		{fmt.Sprintf("e. the service, %d connections, batching off: instance total", many), many, max(n/many, 1), batchOff, 0},
		{fmt.Sprintf("f. the service, %d connections, batching on: instance total", many), many, max(nb/many, 1), batchOn, 15000},
		{"f2. the service, 10 connections, batching on: instance total", 10, max(nb/10, 1), batchOn, 0},
		{"f3. the service, 50 connections, batching on: instance total", 50, max(nb/50, 1), batchOn, 0},
	} {
		name := r.label[:strings.IndexByte(r.label, '.')]
		res, err := p.service(ctx, main, name, r.conns, r.each, r.req, nil)
		// Too short to mean much: once more with a burst sized for about 1.5 minBurst.
		if limit := publishBuffer(n) / 2; err == nil && res.took < minBurst && r.each < limit {
			grow := int(1.5*float64(minBurst)/float64(max(res.took, time.Millisecond))) + 1
			res, err = p.service(ctx, main, name+"-again", r.conns, min(r.each*grow, limit), r.req, nil)
		}
		if err != nil {
			failed(r.label, err)
			continue
		}
		results[name] = res
		value := fmt.Sprintf("%.0f frames/s (%d frames in %v, %d connection(s) × %d)", res.rate, res.frames, res.took.Round(time.Millisecond), r.conns, res.frames/r.conns)
		switch {
		case r.target > 0:
			row(r.label, value, fmt.Sprintf("≥ %.0f frames/s, in order", r.target), verdict(res.rate >= r.target && res.ordered))
		default:
			row(r.label, value, "", "")
		}
		row(name+". order at the broker", res.order, "in order, nothing missing", verdict(res.ordered))
		cpuRow(name+".", res.cpu)
		if name == "c" && loop > 0 {
			pct := 100 * res.rate / loop
			row("c ÷ a (batching off ÷ serial Dapr publish loop)", fmt.Sprintf("%.0f%%", pct), "≥ 90%", verdict(pct >= 90))
		}
	}
	var growth []string
	for _, k := range []struct {
		name  string
		conns int
	}{{"d", 1}, {"f2", 10}, {"f3", 50}, {"f", many}} {
		if r, ok := results[k.name]; ok {
			growth = append(growth, fmt.Sprintf("%d: %.0f", k.conns, r.rate))
		}
	}
	row("batching on: instance total by publishing connections (frames/s)", strings.Join(growth, ", "), "", "")

	if err := p.endToEnd(ctx, s, n); err != nil {
		failed("h. end-to-end to a Dapr subscriber", err)
	}
	if err := p.backpressure(ctx, n); err != nil {
		failed("g. OVERFLOW_BACKPRESSURE", err)
	}
	return nil
}

// daprLoop publishes n events one call at a time through the service's sidecar, each a
// CloudEvent of the size and kind the service writes (rawPayload), and returns frames/s at
// the broker.
func (p *pubRun) daprLoop(ctx context.Context, s *singleStack, n int) (float64, string, error) {
	topic := p.topic("dapr-loop")
	opts := []dapr.PublishEventOption{dapr.PublishEventWithContentType("application/cloudevents+json"), dapr.PublishEventWithRawPayload()}
	before, start := p.snap(s.st), time.Now()
	for i := 1; i <= n; i++ {
		if err := s.dapr.PublishEvent(ctx, "pubsub", topic, loopEvent(i), opts...); err != nil {
			return 0, "", err
		}
	}
	bs := newBrokerStream(p.rc, topic)
	if err := bs.waitFrames(ctx, n, 10*time.Second); err != nil {
		return 0, "", err
	}
	return bs.rate(start), cpuShares(before, p.snap(s.st), time.Since(start)), nil
}

// daprBulk publishes n events in calls of 100 (the same events as daprLoop).
func (p *pubRun) daprBulk(ctx context.Context, s *singleStack, n int) (float64, string, error) {
	topic := p.topic("dapr-bulk")
	before, start := p.snap(s.st), time.Now()
	for i := 1; i <= n; i += 100 {
		batch := make([]any, 0, 100)
		for j := i; j < i+100 && j <= n; j++ {
			batch = append(batch, loopEvent(j))
		}
		res := s.dapr.PublishEvents(ctx, "pubsub", topic, batch,
			dapr.PublishEventsWithContentType("application/cloudevents+json"), dapr.PublishEventsWithRawPayload())
		if res.Error != nil {
			return 0, "", res.Error
		}
	}
	bs := newBrokerStream(p.rc, topic)
	if err := bs.waitFrames(ctx, n, 10*time.Second); err != nil {
		return 0, "", err
	}
	return bs.rate(start), cpuShares(before, p.snap(s.st), time.Since(start)), nil
}

// loopEvent is a single-frame event shaped like the service's (docs/architecture.md,
// "Publishing"), with a type of its own so that the reader counts it without order checks.
func loopEvent(i int) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":"%s","source":"websocketmanager","type":"bench.loop","time":"%s","datacontenttype":"application/json","connectionid":"bench-loop","connectionurl":"ws://127.0.0.1/pushn","sequence":"%d","receivedat":"%s","data":{"seq":%d}}`,
		uuid.NewString(), time.Now().UTC().Format(time.RFC3339Nano), i, time.Now().UTC().Format(time.RFC3339Nano), i)
}

// target is an instance under measurement.
type target struct {
	st       *daprstack.Stack
	client   pb.WebSocketManagerClient
	upstream string
}

type svcResult struct {
	rate     float64
	frames   int
	took     time.Duration
	order    string
	ordered  bool
	cpu      string
	complete bool
}

// service connects conns connections to /pushn?n=each, starts publishing each to one topic with
// req, triggers all servers at once and counts at the broker until every frame is there (or
// none has arrived for 5 s: then the result says what is missing).
func (p *pubRun) service(ctx context.Context, t target, name string, conns, each int, req func(id, topic string) *pb.StartPublishRequest, inspect func(ids []string) error) (svcResult, error) {
	topic := p.topic(name)
	ids := make([]string, conns)
	for i := range ids {
		ids[i] = fmt.Sprintf("pub-%s-%s-%d", p.run, name, i)
	}
	defer func() {
		_ = parallel(ids, 32, func(id string) error {
			_, _ = t.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id})
			return nil
		})
	}()
	if err := parallel(ids, 32, func(id string) error {
		_, err := t.client.Connect(ctx, &pb.ConnectRequest{Url: fmt.Sprintf("%s/pushn?n=%d&cid=%s", t.upstream, each, id), ConnectionId: id})
		return err
	}); err != nil {
		return svcResult{}, err
	}
	if err := parallel(ids, 32, func(id string) error {
		_, err := t.client.StartPublish(ctx, req(id, topic))
		return err
	}); err != nil {
		return svcResult{}, err
	}
	bs := newBrokerStream(p.rc, topic)
	before, start := p.snap(t.st), time.Now()
	if err := parallel(ids, 32, func(id string) error {
		_, err := t.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "go"})
		return err
	}); err != nil {
		return svcResult{}, err
	}
	werr := bs.waitFrames(ctx, conns*each, 5*time.Second)
	took := time.Since(start)
	after := p.snap(t.st)
	if werr != nil {
		if ctx.Err() != nil || bs.entries == 0 {
			return svcResult{}, werr
		}
		took = bs.lastAt.Sub(start) // the stall is not part of the measurement
	}
	if inspect != nil {
		if err := inspect(ids); err != nil {
			return svcResult{}, err
		}
	}
	order, ok := bs.order(conns, each)
	// The service's own count of drops (a drop at the end of a burst leaves no gap to see).
	if l, err := t.client.List(ctx, &pb.ListRequest{}); err == nil {
		mine := map[string]bool{}
		for _, id := range ids {
			mine[id] = true
		}
		var dropped int64
		reasons := map[string]int64{}
		for _, c := range l.GetConnections() {
			if mine[c.GetId()] {
				dropped += c.GetDroppedFrames()
				for r, k := range c.GetDroppedFramesByReason() {
					reasons[r] += k
				}
			}
		}
		order += fmt.Sprintf("; List: %d dropped %v", dropped, reasons)
	}
	return svcResult{rate: bs.rate(start), frames: bs.frames, took: bs.lastAt.Sub(start), order: order, ordered: ok && werr == nil,
		cpu: cpuShares(before, after, max(took, time.Millisecond)), complete: werr == nil}, nil
}

// endToEnd is the subscriber-side figure: one connection, batching off, frames/s until the
// subscriber app has them all, and whether they arrived in order.
func (p *pubRun) endToEnd(ctx context.Context, s *singleStack, n int) error {
	topic := s.topics["publish"]
	id := "pub-" + p.run + "-h"
	if _, err := s.client.Connect(ctx, &pb.ConnectRequest{Url: fmt.Sprintf("%s/pushn?n=%d", s.upstream, n), ConnectionId: id}); err != nil {
		return err
	}
	defer func() { _, _ = s.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id}) }()
	if _, err := s.client.StartPublish(ctx, batchOff(id, topic)); err != nil {
		return err
	}
	before, start := p.snap(s.st), time.Now()
	if _, err := s.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "go"}); err != nil {
		return err
	}
	for s.sink.received(topic) < n {
		if time.Since(start) > 3*time.Minute {
			return fmt.Errorf("topic %s: %d of %d received", topic, s.sink.received(topic), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	cpu := cpuShares(before, p.snap(s.st), took)
	ordered := s.sink.inOrder(topic)
	p.b.add(pubSec, "h. end-to-end to a Dapr subscriber (the service, 1 connection, batching off; counted at the subscriber app)", fmt.Sprintf("%.0f frames/s", float64(n)/took.Seconds()), "", "")
	p.b.add(pubSec, "h. order kept at the subscriber", fmt.Sprint(ordered), "true", verdict(ordered))
	p.b.add(pubSec, "h. CPU by process", cpu, "", "")
	return nil
}

// backpressure runs a separate instance whose publish buffer holds 64 frames; a server pushes
// n frames on one connection with batching off and OVERFLOW_BACKPRESSURE, far faster than the
// broker takes them. Every frame must reach the broker, in order, none dropped.
func (p *pubRun) backpressure(ctx context.Context, n int) error {
	const buffer = 64
	ps, err := p.b.newPubStack(ctx, "backpressure", buffer)
	if err != nil {
		return err
	}
	defer ps.stop()
	t := target{st: ps.st, client: ps.client, upstream: ps.upstream}
	var conn *pb.WebSocketConnection
	res, err := p.service(ctx, t, "g", 1, n, func(id, topic string) *pb.StartPublishRequest {
		return &pb.StartPublishRequest{Id: id, Topic: topic, Overflow: pb.Overflow_OVERFLOW_BACKPRESSURE}
	}, func(ids []string) error { // before the connection is closed: what List says of it
		l, err := ps.client.List(ctx, &pb.ListRequest{})
		if err != nil {
			return err
		}
		for _, c := range l.GetConnections() {
			if c.GetId() == ids[0] {
				conn = c
			}
		}
		if conn == nil {
			return fmt.Errorf("the List reply has no connection %s", ids[0])
		}
		return nil
	})
	if err != nil {
		return err
	}
	row := func(what, value, target, verdict string) { p.b.add(pubSec, what, value, target, verdict) }
	row(fmt.Sprintf("g. OVERFLOW_BACKPRESSURE, 1 connection, batching off, --publish-buffer %d (separate instance), server pushing as fast as the socket takes", buffer),
		fmt.Sprintf("%.0f frames/s (%d frames in %v)", res.rate, res.frames, res.took.Round(time.Millisecond)), "", "")
	// /pushn?n=N sends exactly N frames {"seq":1..N}; all N payloads at the broker, in order, is
	// "frames sent by the server = frames in the broker".
	row("g. frames sent by the server / frames in the broker", fmt.Sprintf("%d / %d", n, res.frames), "equal", verdict(res.frames == n && res.ordered))
	row("g. order at the broker", res.order, "in order, nothing missing", verdict(res.ordered))
	row("g. List: dropped_frames / publish_paused_ms", fmt.Sprintf("%d / %d ms", conn.GetDroppedFrames(), conn.GetPublishPausedMs()), "0 dropped", verdict(conn.GetDroppedFrames() == 0))
	row("g. CPU by process", res.cpu, "", "")
	return nil
}
