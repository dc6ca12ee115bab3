package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
)

func single(conn string, seq, payload int) string {
	return fmt.Sprintf(`{"type":"websocketmanager.frame","connectionid":%q,"sequence":"%d","data":{"seq":%d}}`, conn, seq, payload)
}

func batch(conn string, seqs []int, payloads []int) string {
	var el []string
	for i, s := range seqs {
		el = append(el, fmt.Sprintf(`{"sequence":"%d","receivedat":"2026-01-01T00:00:00Z","data":{"seq":%d}}`, s, payloads[i]))
	}
	return fmt.Sprintf(`{"type":"websocketmanager.frame.batch","connectionid":%q,"firstsequence":"%d","lastsequence":"%d","count":%d,"data":[%s]}`,
		conn, seqs[0], seqs[len(seqs)-1], len(seqs), strings.Join(el, ","))
}

// The broker-side count and order check: frames are counted per event (count for a batch),
// and anything but every connection's sequences and payloads 1..n in order is reported.
func TestBrokerStreamOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		events  []string
		conns   int
		perConn int
		frames  int
		ok      bool
		says    string
	}{
		{"singles in order", []string{single("a", 1, 1), single("a", 2, 2), single("b", 1, 1), single("b", 2, 2)}, 2, 2, 4, true, "in order"},
		{"batches in order", []string{batch("a", []int{1, 2, 3}, []int{1, 2, 3}), batch("a", []int{4}, []int{4})}, 1, 4, 4, true, "in order"},
		{"gap between events", []string{single("a", 1, 1), single("a", 3, 3)}, 1, 3, 2, false, "1 missing"},
		{"counted drop inside a batch", []string{batch("a", []int{1, 3}, []int{1, 3})}, 1, 3, 2, false, "1 missing"},
		{"backwards", []string{single("a", 2, 2), single("a", 1, 1)}, 1, 2, 2, false, "1 sequence(s) went backwards"},
		{"payload out of order", []string{single("a", 1, 2), single("a", 2, 1)}, 1, 2, 2, false, "2 payload(s) out of order"},
		{"a connection missing", []string{single("a", 1, 1)}, 2, 1, 1, false, "1 of 2 connection(s)"},
		{"malformed event", []string{single("a", 1, 1), `{"type":`}, 1, 1, 2, false, "malformed"},
		{"Dapr loop events are counted, not checked", []string{`{"type":"bench.loop"}`, `{"type":"bench.loop"}`}, 0, 0, 2, true, "2 events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newBrokerStream(nil, "k")
			for i, ev := range tc.events {
				s.add(redisstream.Entry{ID: fmt.Sprintf("1700000000%03d-0", i), Fields: map[string]string{"data": ev}})
			}
			if s.frames != tc.frames {
				t.Errorf("frames %d, want %d", s.frames, tc.frames)
			}
			got, ok := s.order(tc.conns, tc.perConn)
			if ok != tc.ok || !strings.Contains(got, tc.says) {
				t.Errorf("order() = %q, %v; want %v and %q in it", got, ok, tc.ok, tc.says)
			}
		})
	}
}

// FuzzBrokerStreamAdd: no stream entry makes the reader panic, and a frame is counted for each
// entry that is not a batch.
func FuzzBrokerStreamAdd(f *testing.F) {
	f.Add(single("a", 1, 1))
	f.Add(batch("a", []int{1, 2}, []int{1, 2}))
	f.Add(`{"type":"websocketmanager.frame.batch","count":-3,"data":[{"sequence":"x"}]}`)
	f.Add(`{"type":"websocketmanager.frame","sequence":"18446744073709551615"}`)
	f.Fuzz(func(t *testing.T, data string) {
		s := newBrokerStream(nil, "k")
		s.add(redisstream.Entry{ID: "1-0", Fields: map[string]string{"data": data}})
		s.add(redisstream.Entry{ID: "bad", Fields: map[string]string{"data": data}})
		_, _ = s.order(1, 1)
	})
}
