package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
)

// brokerStream reads a topic's Redis stream as it grows (Dapr's Redis pub/sub writes each event
// with XADD to a stream named after the topic) and counts frames where they land: one per
// event, or `count` for a batch event. For the service's events it also checks, per connection,
// that sequences ascend across entries and that the pushed payloads {"seq":i} arrive 1, 2, 3, …
// with none missing.
type brokerStream struct {
	rc      *redisstream.Client
	key     string
	after   string // ID of the last entry read
	entries int
	frames  int
	lastAt  time.Time // when Redis added the newest entry read
	conns   map[string]*connOrder
	bad     []string // events that are not what the format says, first few
}

// connOrder is what one connection's events in the stream looked like.
type connOrder struct {
	frames     int
	lastSeq    uint64 // the highest sequence so far
	seqGaps    uint64 // sequences skipped (counted drops)
	backwards  int    // events whose first sequence was not above the previous last
	payloadNxt int    // the next {"seq":i} expected from /pushn
	payloadBad int    // frames whose payload was not the expected next one
}

func newBrokerStream(rc *redisstream.Client, key string) *brokerStream {
	return &brokerStream{rc: rc, key: key, after: "-", conns: map[string]*connOrder{}}
}

// frameEvent is the part of the service's CloudEvents the benchmark checks
// (docs/architecture.md, "Publishing").
type frameEvent struct {
	Type         string          `json:"type"`
	ConnectionID string          `json:"connectionid"`
	Sequence     string          `json:"sequence"`
	First        string          `json:"firstsequence"`
	Last         string          `json:"lastsequence"`
	Count        int             `json:"count"`
	Data         json.RawMessage `json:"data"`
}

type batchElem struct {
	Sequence string          `json:"sequence"`
	Data     json.RawMessage `json:"data"`
}

func (s *brokerStream) badEvent(format string, a ...any) {
	if len(s.bad) < 5 {
		s.bad = append(s.bad, fmt.Sprintf(format, a...))
	}
}

// poll reads the entries added since the last poll.
func (s *brokerStream) poll(ctx context.Context) error {
	for {
		page, err := s.rc.XRange(ctx, s.key, s.after, "+", 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			s.add(e)
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

func (s *brokerStream) add(e redisstream.Entry) {
	s.after = "(" + e.ID
	s.entries++
	if at, err := e.Time(); err == nil {
		s.lastAt = at
	}
	var ev frameEvent
	if err := json.Unmarshal([]byte(e.Fields["data"]), &ev); err != nil {
		s.frames++
		s.badEvent("entry %s: %v", e.ID, err)
		return
	}
	switch ev.Type {
	case "websocketmanager.frame.batch":
		var elems []batchElem
		if err := json.Unmarshal(ev.Data, &elems); err != nil {
			s.badEvent("batch %s: %v", e.ID, err)
		}
		s.frames += ev.Count
		if len(elems) != ev.Count {
			s.badEvent("batch %s: count %d, %d elements", e.ID, ev.Count, len(elems))
		}
		first, _ := strconv.ParseUint(ev.First, 10, 64)
		last, _ := strconv.ParseUint(ev.Last, 10, 64)
		c := s.conn(ev.ConnectionID)
		c.event(first, last, ev.Count)
		for i, el := range elems {
			seq, _ := strconv.ParseUint(el.Sequence, 10, 64)
			if seq < first || seq > last || (i == 0 && seq != first) || (i == len(elems)-1 && seq != last) {
				s.badEvent("batch %s: element sequence %s outside %s..%s", e.ID, el.Sequence, ev.First, ev.Last)
			}
			c.payload(el.Data)
		}
	case "websocketmanager.frame":
		s.frames++
		seq, _ := strconv.ParseUint(ev.Sequence, 10, 64)
		c := s.conn(ev.ConnectionID)
		c.event(seq, seq, 1)
		c.payload(ev.Data)
	default: // an event of the Dapr publish loops: one frame, no order to check
		s.frames++
	}
}

func (s *brokerStream) conn(id string) *connOrder {
	c := s.conns[id]
	if c == nil {
		c = &connOrder{payloadNxt: 1}
		s.conns[id] = c
	}
	return c
}

func (c *connOrder) event(first, last uint64, count int) {
	if first == 0 || first <= c.lastSeq {
		c.backwards++
	} else {
		c.seqGaps += first - c.lastSeq - 1
	}
	if last >= first && last-first+1 > uint64(count) {
		c.seqGaps += last - first + 1 - uint64(count)
	}
	c.lastSeq = max(c.lastSeq, last)
	c.frames += count
}

func (c *connOrder) payload(data json.RawMessage) {
	var p struct {
		Seq int `json:"seq"`
	}
	if json.Unmarshal(data, &p) != nil || p.Seq != c.payloadNxt {
		c.payloadBad++
	}
	c.payloadNxt = p.Seq + 1
}

// waitFrames polls until the stream holds want frames, or until it has not grown for stall.
func (s *brokerStream) waitFrames(ctx context.Context, want int, stall time.Duration) error {
	lastGrowth, seen := time.Now(), -1
	for {
		if err := s.poll(ctx); err != nil {
			return err
		}
		if s.frames >= want {
			return nil
		}
		if s.frames != seen {
			seen, lastGrowth = s.frames, time.Now()
		} else if time.Since(lastGrowth) > stall {
			return fmt.Errorf("topic %s: %d of %d frames at the broker, none for %v", s.key, s.frames, want, stall)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rate is frames per second from start until Redis added the last entry.
func (s *brokerStream) rate(start time.Time) float64 {
	d := s.lastAt.Sub(start)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return float64(s.frames) / d.Seconds()
}

// order summarises the per-connection checks; ok when every one of the wantConns connections
// has perPayload frames with sequences ascending, no gaps and payloads 1..perPayload in order.
func (s *brokerStream) order(wantConns, perConn int) (string, bool) {
	var backwards, payloadBad, short int
	var gaps uint64
	for _, c := range s.conns {
		backwards += c.backwards
		gaps += c.seqGaps
		payloadBad += c.payloadBad
		if c.frames != perConn || c.payloadNxt != perConn+1 {
			short++
		}
	}
	ok := len(s.conns) == wantConns && backwards == 0 && gaps == 0 && payloadBad == 0 && short == 0 && len(s.bad) == 0
	var w strings.Builder
	if ok {
		fmt.Fprintf(&w, "in order, contiguous: %d connection(s), sequences and payloads 1..%d each", len(s.conns), perConn)
	} else {
		fmt.Fprintf(&w, "%d of %d connection(s) seen; %d sequence(s) went backwards; %d missing (gaps); %d payload(s) out of order; %d connection(s) not complete",
			len(s.conns), wantConns, backwards, gaps, payloadBad, short)
		if len(s.bad) > 0 {
			fmt.Fprintf(&w, "; malformed: %s", strings.Join(s.bad, "; "))
		}
	}
	fmt.Fprintf(&w, " (%d events, %.1f frames/event)", s.entries, float64(s.frames)/float64(max(s.entries, 1)))
	return w.String(), ok
}

// redisPID finds the machine's redis-server, whose CPU the publish rows include (it is not
// part of any stack; read only).
func redisPID() int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "redis-server" {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return 0
	}
	sort.Ints(pids)
	return pids[0]
}
