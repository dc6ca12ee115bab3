package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The idle-CPU row sums processes by kind under the names the fleet gives them (retried
// instances get a suffix, a second runtime attempt too) and counts every process in the total.
func TestCPUGroups(t *testing.T) {
	before := cpuSnapshot{"wsmanager-0": 0, "wsmanager-1-r2": 0, "daprd-0": time.Second, "upstream-3": 0,
		"placement": 0, "scheduler-2": 0, "wsbench (the clients)": 0, "other": 0}
	after := cpuSnapshot{"wsmanager-0": 2 * time.Second, "wsmanager-1-r2": time.Second, "daprd-0": 2 * time.Second,
		"upstream-3": 500 * time.Millisecond, "placement": 100 * time.Millisecond, "scheduler-2": 200 * time.Millisecond,
		"wsbench (the clients)": 0, "other": time.Second}
	got := cpuGroups(before, after, 10*time.Second)
	assert.Equal(t, "services 30.0%, daprds 10.0%, placement 1.0%, scheduler 2.0%, upstreams 5.0%, wsbench 0.0%, total 58.0% of one core", got)
}

// Duplicates add up over the upstream servers; the names are capped like one server's.
func TestLiveTotal(t *testing.T) {
	s := []upstreamStats{
		{Live: 3, Duplicates: 6, DuplicateIDs: []string{"a", "b", "c", "d", "e", "f"}},
		{Live: 4, Duplicates: 7, DuplicateIDs: []string{"g", "h", "i", "j", "k", "l", "m"}},
	}
	live, dups, ids := liveTotal(s)
	assert.Equal(t, 7, live)
	assert.Equal(t, 13, dups)
	assert.Equal(t, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, ids)
	live, dups, ids = liveTotal(nil)
	assert.Zero(t, live+dups)
	assert.Empty(t, ids)
}
