package main

import (
	"strings"
	"testing"

	"github.com/websocketmanager/websocketmanager/actors"
)

// Ensure the made-up ids all land in the asked shard, are distinct, and keep coming after take.
func TestShardIDsLandInTheShard(t *testing.T) {
	g := &shardIDs{prefix: "t", shard: "7"}
	seen := map[string]bool{}
	for _, id := range append(g.take(200), g.next(), g.next()) {
		if got := actors.DirectoryShard(id); got != "7" {
			t.Fatalf("%s is in shard %s, want 7", id, got)
		}
		if seen[id] {
			t.Fatalf("%s made twice", id)
		}
		seen[id] = true
	}
}

// Ensure INFO commandstats is read per command (other sections and unknown fields ignored) and
// the difference lists the commands called in between, most called first, with their µs.
func TestCommandStatsDelta(t *testing.T) {
	before := parseCommandStats("# Commandstats\r\n" +
		"cmdstat_evalsha:calls=10,usec=100,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_ping:calls=5,usec=5,usec_per_call=1.00\r\n" +
		"cmdstat_info:calls=1,usec=50,usec_per_call=50.00\r\n")
	after := parseCommandStats("# Commandstats\r\n" +
		"cmdstat_evalsha:calls=610,usec=12100,usec_per_call=19.84,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_ping:calls=5,usec=5,usec_per_call=1.00\r\n" +
		"cmdstat_info:calls=2,usec=100,usec_per_call=50.00\r\n" +
		"cmdstat_multi:calls=600,usec=600,usec_per_call=1.00\r\n" +
		"cmdstat_exec:calls=600,usec=1200,usec_per_call=2.00\r\n")
	if got := after["evalsha"]; got.calls != 610 || got.usec != 12100 {
		t.Fatalf("evalsha parsed as %+v", got)
	}
	d := diffStats(before, after)
	var names []string
	for _, c := range d {
		names = append(names, c.name)
	}
	if strings.Join(names, ",") != "evalsha,exec,multi,info" {
		t.Fatalf("order %v", names)
	}
	got := formatStatsDelta(d, 300)
	want := "evalsha 2.00/pair at 20.0 µs, exec 2.00/pair at 2.0 µs, multi 2.00/pair at 1.0 µs"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if formatStatsDelta(nil, 300) != "none" {
		t.Fatal("no commands should read none")
	}
}

func TestFlatVerdict(t *testing.T) {
	for ratio, want := range map[float64]string{1: "flat", 1.5: "flat", 1.51: "NOT flat", 0.8: "flat"} {
		if got := flatVerdict(ratio); got != want {
			t.Errorf("flatVerdict(%v) = %q, want %q", ratio, got, want)
		}
	}
}
