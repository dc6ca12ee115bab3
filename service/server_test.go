package service

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestValidURL(t *testing.T) {
	tests := []struct {
		give string
		ok   bool
	}{
		{"ws://localhost:8080", true},
		{"wss://example.com/feed?x=1", true},
		{"ws://[::1]:9000/", true},
		{"", false},
		{"http://example.com", false},
		{"ws://", false},
		{"ws:///path", false},
		{"localhost:8080", false},
		{"ws://exa mple.com", false},
		{"://x", false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			err := validURL(tt.give)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, codes.InvalidArgument, status.Code(err))
			assert.NotEmpty(t, status.Convert(err).Message())
		})
	}
}

// FuzzValidURL: whatever a caller sends, validation never panics, and what it accepts is a
// ws:// or wss:// URL with a host.
func FuzzValidURL(f *testing.F) {
	for _, s := range []string{"ws://localhost:8080", "wss://a/b", "http://x", "ws://", "", "ws://[::1", "ws://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if validURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.True(t, u.Scheme == "ws" || u.Scheme == "wss")
		require.NotEmpty(t, u.Hostname())
		require.False(t, strings.TrimSpace(raw) == "")
	})
}

func TestSendTimeout(t *testing.T) {
	s := New(DefaultConfig(), nil, nil)
	tests := []struct {
		name string
		give int32
		want time.Duration
		code codes.Code
	}{
		{"zero means default", 0, 10 * time.Second, codes.OK},
		{"negative means default", -5, 10 * time.Second, codes.OK},
		{"given", 5000, 5 * time.Second, codes.OK},
		{"maximum", 300000, 5 * time.Minute, codes.OK},
		{"above maximum", 300001, 0, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.sendTimeout(tt.give)
			assert.Equal(t, tt.code, status.Code(err))
			assert.Equal(t, tt.want, got)
		})
	}
}
