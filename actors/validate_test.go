package actors

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateURL(t *testing.T) {
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
		// Ports: decimal 1-65535 only, or none at all.
		{"ws://h:1/", true},
		{"ws://h:65535/", true},
		{"ws://[::1]:65535/", true},
		{"ws://h:0/", false},
		{"ws://h:00/", false},
		{"ws://h:65536/", false},
		{"ws://h:99999/", false},
		{"ws://h:4294967377/", false},
		{"ws://h:99999999999999999999/", false},
		{"ws://h:/", false},
		{"ws://h:", false},
		{"ws://[::1]:/", false},
		{"ws://h:080/", false},
		{"ws://[::1]:0080/", false},
		{"ws://h:0x50/", false},
		{"ws://h:+80/", false},
		{"ws://h:-1/", false},
		{"ws://h:8%30/", false},
		{"ws://h:80:80/", false},
		{"ws://1:2:3/", false},
		// Zones: an interface name or number.
		{"ws://[fe80::1%25eth0]:80/", true},
		{"ws://[::1%251]/", true},
		{"ws://[fe80::1%25eth0%2F1]/", false},
		{"ws://[fe80::1%25%0a]/", false},
		// Hosts url.Parse refuses.
		{"ws://%31%32%37.0.0.1/", false},
		{"ws://h%0a/", false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			e := ValidateURL(tt.give)
			if tt.ok {
				assert.Nil(t, e)
				return
			}
			require.NotNil(t, e)
			assert.Equal(t, CodeInvalidArgument, e.Code)
			assert.NotEmpty(t, e.Message)
		})
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "feed-1", "binance:btcusdt.trades_v2", strings.Repeat("x", MaxIDLength)} {
		assert.Nil(t, ValidateID(ok), ok)
	}
	for _, bad := range []string{"", "-lead", "has space", "slash/x", "ümlaut", strings.Repeat("x", MaxIDLength+1), "a||b"} {
		assert.NotNil(t, ValidateID(bad), bad)
	}
}

func TestValidateConnectArgs(t *testing.T) {
	ok := func() ConnectArgs { return ConnectArgs{URL: "ws://h/"} }
	tests := []struct {
		name   string
		modify func(*ConnectArgs)
		valid  bool
	}{
		{"minimal", func(*ConnectArgs) {}, true},
		{"headers", func(a *ConnectArgs) { a.Headers = map[string]string{"Authorization": "Bearer x"} }, true},
		{"bad header name", func(a *ConnectArgs) { a.Headers = map[string]string{"Bad Name": "x"} }, false},
		{"handshake header", func(a *ConnectArgs) { a.Headers = map[string]string{"sec-websocket-key": "x"} }, false},
		{"header line break", func(a *ConnectArgs) { a.Headers = map[string]string{"X": "a\r\nb"} }, false},
		{"header tab", func(a *ConnectArgs) { a.Headers = map[string]string{"X": "a\tb"} }, true},
		{"header obs-text", func(a *ConnectArgs) { a.Headers = map[string]string{"X": "caf\xc3\xa9 \x80"} }, true},
		{"header vertical tab", func(a *ConnectArgs) { a.Headers = map[string]string{"X": "a\vb"} }, false},
		{"header escape", func(a *ConnectArgs) { a.Headers = map[string]string{"X": "\x1b[31m"} }, false},
		{"header DEL", func(a *ConnectArgs) { a.Headers = map[string]string{"X": "a\x7f"} }, false},
		{"header name with a control character", func(a *ConnectArgs) { a.Headers = map[string]string{"X\x01": "v"} }, false},
		{"header name with DEL", func(a *ConnectArgs) { a.Headers = map[string]string{"X\x7f": "v"} }, false},
		{"subprotocol with a control character", func(a *ConnectArgs) { a.Subprotocols = []string{"chat\x00"} }, false},
		{"subprotocol with a tab", func(a *ConnectArgs) { a.Subprotocols = []string{"chat\t"} }, false},
		{"subprotocol token", func(a *ConnectArgs) { a.Subprotocols = []string{"v2.chat+json"} }, true},
		{"bad subprotocol", func(a *ConnectArgs) { a.Subprotocols = []string{"a b"} }, false},
		{"subprotocol at its length limit", func(a *ConnectArgs) { a.Subprotocols = []string{strings.Repeat("p", MaxSubprotocolLength)} }, true},
		{"subprotocol above its length limit", func(a *ConnectArgs) { a.Subprotocols = []string{strings.Repeat("p", MaxSubprotocolLength+1)} }, false},
		{"on-connect messages at their byte limit", func(a *ConnectArgs) {
			a.OnConnectMessages = []string{strings.Repeat("m", MaxOnConnectBytes/2), strings.Repeat("m", MaxOnConnectBytes/2)}
		}, true},
		{"on-connect messages above their byte limit", func(a *ConnectArgs) {
			a.OnConnectMessages = []string{strings.Repeat("m", MaxOnConnectBytes/2), strings.Repeat("m", MaxOnConnectBytes/2+1)}
		}, false},
		{"url at its byte limit", func(a *ConnectArgs) { a.URL = "ws://h/" + strings.Repeat("p", MaxURLBytes-len("ws://h/")) }, true},
		{"url above its byte limit", func(a *ConnectArgs) { a.URL = "ws://h/" + strings.Repeat("p", MaxURLBytes-len("ws://h/")+1) }, false},
		{"unknown mode", func(a *ConnectArgs) { a.Correlation.Mode = "magic" }, false},
		{"bad field", func(a *ConnectArgs) { a.Correlation = CorrelationArgs{Mode: "json_field", Field: "a..b"} }, false},
		{"too many tags", func(a *ConnectArgs) {
			a.Tags = map[string]string{}
			for i := range MaxTags + 1 {
				a.Tags[strings.Repeat("k", i+1)] = "v"
			}
		}, false},
		{"empty tag key", func(a *ConnectArgs) { a.Tags = map[string]string{"": "v"} }, false},
		{"longest tag key", func(a *ConnectArgs) { a.Tags = map[string]string{strings.Repeat("k", MaxTagKeyLength): "v"} }, true},
		{"tag key too long", func(a *ConnectArgs) { a.Tags = map[string]string{strings.Repeat("k", MaxTagKeyLength+1): "v"} }, false},
		{"longest tag value", func(a *ConnectArgs) { a.Tags = map[string]string{"k": strings.Repeat("v", MaxTagValueLength)} }, true},
		{"tag value too long", func(a *ConnectArgs) { a.Tags = map[string]string{"k": strings.Repeat("v", MaxTagValueLength+1)} }, false},
		{"most headers", func(a *ConnectArgs) { a.Headers = manyHeaders(MaxHeaders, 10) }, true},
		{"too many headers", func(a *ConnectArgs) { a.Headers = manyHeaders(MaxHeaders+1, 10) }, false},
		{"headers too large", func(a *ConnectArgs) { a.Headers = manyHeaders(2, MaxHeaderBytes/2) }, false},
		{"too many subprotocols", func(a *ConnectArgs) { a.Subprotocols = make([]string, MaxSubprotocols+1) }, false},
		{"too many on-connect messages", func(a *ConnectArgs) { a.OnConnectMessages = make([]string, MaxOnConnectMessages+1) }, false},
		{"negative backoff", func(a *ConnectArgs) { a.Reconnect.InitialBackoffMS = -1 }, false},
		{"max below initial", func(a *ConnectArgs) { a.Reconnect = ReconnectArgs{InitialBackoffMS: 100, MaxBackoffMS: 50} }, false},
		{"negative idle", func(a *ConnectArgs) { a.IdleTimeoutMS = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ok()
			tt.modify(&a)
			assert.Equal(t, tt.valid, a.Validate() == nil, "%v", a.Validate())
		})
	}
}

func TestRedactURL(t *testing.T) {
	assert.Equal(t, "wss://host/p?q=1", RedactURL("wss://user:secret@host/p?q=1"))
	assert.NotContains(t, ValidateURL("ws://user:secret@bad host/").Message, "secret")
}

// FuzzValidateURL: whatever a caller sends, validation never panics, and what it accepts is a
// ws:// or wss:// URL with a host.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"ws://localhost:8080", "wss://a/b", "http://x", "ws://", "", "ws://[::1", "ws://%zz", "ws://u:p@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if ValidateURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.True(t, u.Scheme == "ws" || u.Scheme == "wss")
		require.NotEmpty(t, u.Hostname())
	})
}

// FuzzValidateConnect: request validation never panics on any id, header or tag.
func FuzzValidateConnect(f *testing.F) {
	f.Add("c1", "Authorization", "Bearer x", "k", "v", "auto", "id")
	f.Add("", "\x00", "\r\n", "", "", "json_field", "a..b")
	f.Fuzz(func(t *testing.T, id, hk, hv, tk, tv, mode, field string) {
		_ = ValidateID(id)
		_ = ValidateTopic(id)
		a := ConnectArgs{URL: "ws://h/", Headers: map[string]string{hk: hv}, Tags: map[string]string{tk: tv},
			Correlation: CorrelationArgs{Mode: mode, Field: field}}
		_ = a.Validate()
	})
}

// manyHeaders returns n distinct headers whose values have size bytes.
func manyHeaders(n, size int) map[string]string {
	h := map[string]string{}
	for i := range n {
		h["X-H"+strings.Repeat("i", i+1)] = strings.Repeat("v", size)
	}
	return h
}
