package actors

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Ensure the directory records only addresses of the form an instance advertises.
func TestValidInstanceAddr(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:5002", true},
		{"[::1]:5002", true},
		{"wsmanager-0.wsmanager.ns.svc:5002", true},
		{"", false},
		{"127.0.0.1", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:65536", false},
		{"127.0.0.1:05002", false},
		{"127.0.0.1:+5002", false},
		{":5002", false},
		{"host name:5002", false},
		{"host\x00:5002", false},
		{"h\u00e9:5002", false},
		{strings.Repeat("a", maxAddrLength) + ":1", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, validInstanceAddr(tt.addr), "%q", tt.addr)
	}
}

// Ensure announcements cannot grow the instance map without bound, and that expired ones go.
func TestRememberIsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	inst := map[string]int64{"old:1": now.Add(-instanceTTL).Unix()}
	remember(inst, "a:1", now)
	assert.NotContains(t, inst, "old:1", "expired announcements are forgotten")
	for i := range 3 * maxInstances {
		remember(inst, "flood-"+strconv.Itoa(i)+":1", now.Add(time.Duration(i)*time.Millisecond))
	}
	assert.Len(t, inst, maxInstances)
	remember(inst, "live:1", now.Add(time.Hour/60))
	assert.Contains(t, inst, "live:1", "a live instance announcing again is recorded")
	assert.Len(t, inst, maxInstances)
}
