package main

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/service"
)

// Ensure the default --max-connections stays sane whatever the open-file limit says: a huge or
// unlimited limit is bounded by memory and by a fixed ceiling.
func TestDefaultMaxConnections(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name              string
		openFiles, memory uint64
		want              int
	}{
		{"ordinary limit", 65536, 64 * gib, 65536 - 1024},
		{"tiny limit", 1024, 64 * gib, 64},
		{"huge limit, bounded by memory", 1 << 40, 8 * gib, 8 * gib / bytesPerConnection},
		{"unlimited, bounded by memory", math.MaxUint64, 24 * gib, 24 * gib / bytesPerConnection},
		{"huge limit, memory unknown", 1 << 40, 0, connectionsCeiling},
		{"limit unknown, memory unknown", 0, 0, connectionsCeiling},
		{"huge memory", math.MaxUint64, 1 << 50, connectionsCeiling},
		{"tiny memory", 65536, 1 << 20, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, defaultMaxConnections(tt.openFiles, tt.memory))
		})
	}
	n := connectionsForOpenFiles()
	assert.True(t, n >= 64 && n <= connectionsCeiling, "this machine's default: %d", n)
}

// Ensure profiles are served only on loopback and, with API tokens, only with one.
func TestPprofIsLoopbackAndTokenOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:6060": true, "[::1]:6060": true, "localhost:6060": true, "127.9.9.9:0": true,
		":6060": false, "0.0.0.0:6060": false, "[::]:6060": false, "10.0.0.1:6060": false,
		"pprof.example:6060": false, "[::1%lo]:6060": false, "[::ffff:127.0.0.1]:6060": true, "127.0.0.1": false,
	} {
		_, err := parseConfig([]string{"--pprof-address", addr}, func(string) string { return "" }, io.Discard)
		assert.Equal(t, ok, err == nil, "%s: %v", addr, err)
	}

	get := func(h http.Handler, auth string) int {
		req := httptest.NewRequest(http.MethodGet, "/debug/pprof/cmdline", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	open := pprofServer(service.NewTokens(nil)).Handler
	assert.Equal(t, http.StatusOK, get(open, ""), "no tokens configured: the loopback listener is the guard")
	guarded := pprofServer(service.NewTokens([]string{"s3cret"})).Handler
	assert.Equal(t, http.StatusUnauthorized, get(guarded, ""))
	assert.Equal(t, http.StatusUnauthorized, get(guarded, "Bearer wrong"))
	require.Equal(t, http.StatusOK, get(guarded, "Bearer s3cret"))
}
