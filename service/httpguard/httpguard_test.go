package httpguard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/service/httpguard"
)

const browserPrefix = "/websocketmanager.v1.WebSocketManager/"

// apiConfig mirrors the service's HTTP port: REST takes JSON, the browser protocols theirs.
func apiConfig() httpguard.Config {
	return httpguard.Config{
		AllowedOrigins: []string{"https://app.example"},
		AllowedHosts:   []string{"wsmanager", "*.svc.cluster.local"},
		ListenHosts:    []string{"127.0.0.1", "node-1.internal"},
		OpenPaths:      []string{"/healthz", "/readyz"},
		Bodies: []httpguard.Body{
			{Prefix: "/v1/", Types: []string{"application/json"}},
			{Prefix: browserPrefix, Types: []string{"application/json", "application/proto", "application/connect+json",
				"application/connect+proto", "application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json",
				"application/grpc-web-text", "application/grpc-web-text+proto"}},
		},
	}
}

type request struct {
	method, path, host string
	headers            map[string][]string
	body               string
}

// serve sends r through a guard of cfg and returns the status, the refusal message, and
// whether the request reached the handler behind the guard.
func serve(t *testing.T, cfg httpguard.Config, r request) (int, string, bool) {
	t.Helper()
	g, err := httpguard.New(cfg)
	require.NoError(t, err)
	reached := false
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached = true }))
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req := httptest.NewRequest(r.method, "http://x"+r.path, body)
	req.Host = r.host
	if r.host == "" {
		req.Host = "127.0.0.1:5001"
	}
	for k, vs := range r.headers {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK {
		return rec.Code, "", reached
	}
	var out struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), "refusals carry a JSON body: %s", rec.Body)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.False(t, reached, "a refused request must not reach the API")
	return rec.Code, out.Message, reached
}

func ct(v ...string) map[string][]string { return map[string][]string{"Content-Type": v} }

// Ensure every path takes only its media types, in any spelling of them, and that the media
// types a page may send without a CORS preflight are refused everywhere.
func TestMediaTypes(t *testing.T) {
	const body = `{"url":"ws://internal.example/"}`
	simple := []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "TEXT/PLAIN"}
	type tc struct {
		name    string
		r       request
		want    int
		message string
	}
	var tests []tc
	for _, path := range []string{"/v1/connect", "/v1/connections/a/send", browserPrefix + "Connect", "/metrics", "/healthz", "/other"} {
		for _, typ := range simple {
			tests = append(tests, tc{path + " " + typ, request{method: "POST", path: path, headers: ct(typ), body: body}, 415, ""})
		}
		tests = append(tests,
			tc{path + " POST without Content-Type", request{method: "POST", path: path, body: body}, 415, ""},
			tc{path + " empty POST without Content-Type", request{method: "POST", path: path}, 415, ""},
			tc{path + " PUT text/plain", request{method: "PUT", path: path, headers: ct("text/plain"), body: body}, 415, ""},
			tc{path + " GET without body", request{method: "GET", path: path}, 200, ""},
			tc{path + " GET without body, any Content-Type", request{method: "GET", path: path, headers: ct("text/plain")}, 200, ""},
			tc{path + " OPTIONS", request{method: "OPTIONS", path: path}, 200, ""},
		)
	}
	rest := []tc{
		{"REST JSON", request{method: "POST", path: "/v1/connect", headers: ct("application/json"), body: body}, 200, ""},
		{"REST JSON utf-8", request{method: "POST", path: "/v1/connect", headers: ct("application/json; charset=utf-8"), body: body}, 200, ""},
		{"REST JSON upper case", request{method: "POST", path: "/v1/connect", headers: ct("Application/JSON; Charset=UTF-8"), body: body}, 200, ""},
		{"REST JSON utf8", request{method: "POST", path: "/v1/connect", headers: ct(`application/json;charset="utf8"`), body: body}, 200, ""},
		{"REST JSON latin1", request{method: "POST", path: "/v1/connect", headers: ct("application/json; charset=iso-8859-1"), body: body}, 415, "unsupported Content-Type"},
		{"REST JSON empty body", request{method: "POST", path: "/v1/connect", headers: ct("application/json")}, 200, ""},
		{"REST two Content-Types", request{method: "POST", path: "/v1/connect", headers: ct("application/json", "text/plain"), body: body}, 415, "more than one Content-Type"},
		{"REST two Content-Types in one", request{method: "POST", path: "/v1/connect", headers: ct("application/json, text/plain"), body: body}, 415, "unsupported Content-Type"},
		{"REST malformed", request{method: "POST", path: "/v1/connect", headers: ct("application/"), body: body}, 415, "unsupported Content-Type"},
		{"REST connect+json", request{method: "POST", path: "/v1/connect", headers: ct("application/connect+json"), body: body}, 415, "send Content-Type: application/json"},
		{"REST application/json-seq", request{method: "POST", path: "/v1/connect", headers: ct("application/json-seq"), body: body}, 415, ""},
		{"REST missing", request{method: "POST", path: "/v1/connect", body: body}, 415, "no Content-Type; send Content-Type: application/json"},
		{"REST DELETE without body", request{method: "DELETE", path: "/v1/connections/a"}, 200, ""},
		{"REST DELETE with text body", request{method: "DELETE", path: "/v1/connections/a", headers: ct("text/plain"), body: body}, 415, ""},
		{"REST DELETE with JSON body", request{method: "DELETE", path: "/v1/connections/a", headers: ct("application/json"), body: body}, 200, ""},
		{"REST GET with untyped body", request{method: "GET", path: "/v1/connections", body: body}, 415, ""},
		{"metrics takes no body", request{method: "POST", path: "/metrics", headers: ct("application/json"), body: body}, 415, "takes no request body"},
	}
	tests = append(tests, rest...)
	for _, typ := range []string{"application/json", "application/proto", "application/connect+json", "application/connect+proto",
		"application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json", "application/grpc-web-text",
		"application/grpc-web-text+proto", "application/grpc-web+proto; charset=utf-8", "Application/GRPC-Web+Proto"} {
		tests = append(tests, tc{"browser " + typ, request{method: "POST", path: browserPrefix + "Send", headers: ct(typ), body: "x"}, 200, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg, reached := serve(t, apiConfig(), tt.r)
			assert.Equal(t, tt.want, status, msg)
			assert.Equal(t, tt.want == 200, reached)
			assert.Contains(t, msg, tt.message)
		})
	}
}

// Ensure pages of origins not on the allow-list cannot call, whatever the method and path,
// except the probes; requests without Origin (not from a page) pass.
func TestOrigins(t *testing.T) {
	json := ct("application/json")
	with := func(h map[string][]string, k string, v ...string) map[string][]string {
		out := map[string][]string{k: v}
		for hk, hv := range h {
			out[hk] = hv
		}
		return out
	}
	tests := []struct {
		name    string
		origins []string
		r       request
		want    int
	}{
		{"no Origin", nil, request{method: "POST", path: "/v1/connect", headers: json, body: "{}"}, 200},
		{"allowed origin", nil, request{method: "POST", path: "/v1/connect", headers: with(json, "Origin", "https://app.example"), body: "{}"}, 200},
		{"allowed origin, other case", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "HTTPS://APP.EXAMPLE")}, 200},
		{"allowed origin preflight", nil, request{method: "OPTIONS", path: browserPrefix + "List", headers: with(nil, "Origin", "https://app.example")}, 200},
		{"foreign origin POST", nil, request{method: "POST", path: "/v1/connect", headers: with(json, "Origin", "https://evil.example"), body: "{}"}, 403},
		{"foreign origin GET", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "https://evil.example")}, 403},
		{"foreign origin DELETE", nil, request{method: "DELETE", path: "/v1/connections/a", headers: with(nil, "Origin", "https://evil.example")}, 403},
		{"foreign origin preflight", nil, request{method: "OPTIONS", path: "/v1/connect", headers: with(nil, "Origin", "https://evil.example")}, 403},
		{"foreign origin browser path", nil, request{method: "POST", path: browserPrefix + "Connect", headers: with(json, "Origin", "https://evil.example"), body: "{}"}, 403},
		{"foreign origin metrics", nil, request{method: "GET", path: "/metrics", headers: with(nil, "Origin", "https://evil.example")}, 403},
		{"foreign origin probe", nil, request{method: "GET", path: "/healthz", headers: with(nil, "Origin", "https://evil.example")}, 200},
		{"foreign origin readyz", nil, request{method: "GET", path: "/readyz", headers: with(nil, "Origin", "https://evil.example")}, 200},
		{"same host, other port", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "http://127.0.0.1:8080")}, 403},
		{"allowed origin with other port", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "https://app.example:8443")}, 403},
		{"allowed origin over http", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "http://app.example")}, 403},
		{"null origin", nil, request{method: "POST", path: "/v1/connect", headers: with(json, "Origin", "null"), body: "{}"}, 403},
		{"null origin with *", []string{"*"}, request{method: "POST", path: "/v1/connect", headers: with(json, "Origin", "null"), body: "{}"}, 403},
		{"any origin with *", []string{"*"}, request{method: "POST", path: "/v1/connect", headers: with(json, "Origin", "https://evil.example"), body: "{}"}, 200},
		{"no origins configured", []string{}, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "https://app.example")}, 403},
		{"two Origin headers", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "https://app.example", "https://evil.example")}, 403},
		{"empty Origin", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Origin", "")}, 403},
		{"cross-site without Origin", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Sec-Fetch-Site", "cross-site")}, 403},
		{"same-site without Origin", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Sec-Fetch-Site", "same-site")}, 403},
		{"typed URL (none)", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Sec-Fetch-Site", "none")}, 200},
		{"same-origin", nil, request{method: "GET", path: "/v1/connections", headers: with(nil, "Sec-Fetch-Site", "same-origin")}, 200},
		{"cross-site with allowed Origin", nil, request{method: "GET", path: "/v1/connections", headers: with(with(nil, "Sec-Fetch-Site", "cross-site"), "Origin", "https://app.example")}, 200},
		{"cross-site probe", nil, request{method: "GET", path: "/healthz", headers: with(nil, "Sec-Fetch-Site", "cross-site")}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := apiConfig()
			if tt.origins != nil {
				cfg.AllowedOrigins = tt.origins
			}
			status, msg, _ := serve(t, cfg, tt.r)
			assert.Equal(t, tt.want, status, msg)
			if status == 403 {
				assert.Contains(t, msg, "--cors-allowed-origins")
			}
		})
	}
}

// Ensure only this service's names pass as Host (DNS rebinding), in every spelling, and that
// the probes answer whatever Host they come with.
func TestHosts(t *testing.T) {
	tests := []struct {
		host    string
		allowed []string // nil: apiConfig's
		path    string
		want    int
	}{
		{host: "127.0.0.1:5001", want: 200},
		{host: "127.0.0.1", want: 200},
		{host: "localhost:5001", want: 200},
		{host: "LOCALHOST:5001", want: 200},
		{host: "localhost.:5001", want: 200},
		{host: "localhost.", want: 200},
		{host: "app.localhost:5001", want: 200},
		{host: "[::1]:5001", want: 200},
		{host: "[::1]", want: 200},
		{host: "[0:0:0:0:0:0:0:1]:5001", want: 200},
		{host: "10.1.2.3:5001", want: 200},         // a pod IP: no attacker's DNS involved
		{host: "[fe80::1%25eth0]:5001", want: 200}, // zone
		{host: "node-1.internal:5001", want: 200},  // --host or advertise name
		{host: "Node-1.Internal.", want: 200},
		{host: "wsmanager:5001", want: 200}, // --allowed-hosts
		{host: "wsmanager.default.svc.cluster.local:5001", want: 200},
		{host: "WSMANAGER.DEFAULT.SVC.CLUSTER.LOCAL.", want: 200},
		{host: "svc.cluster.local", want: 421}, // *. means subdomains only
		{host: "evilsvc.cluster.local", want: 421},
		{host: "attacker.example:5001", want: 421},
		{host: "attacker.example", want: 421},
		{host: "localhost.attacker.example", want: 421},
		{host: "127.0.0.1.attacker.example:5001", want: 421},
		{host: "wsmanager.attacker.example", want: 421},
		{host: "::1", want: 421},              // IPv6 needs brackets
		{host: "[::1]x", want: 421},           // junk after the bracket
		{host: "[wsmanager]:5001", want: 421}, // brackets around a name
		{host: "localhost:port", want: 421},
		{host: "localhost:123456", want: 421},
		{host: "attacker.example:5001", path: "/healthz", want: 200},
		{host: "attacker.example:5001", path: "/readyz", want: 200},
		{host: "attacker.example:5001", path: "/metrics", want: 421},
		{host: "attacker.example:5001", path: "/healthz/", want: 421},
		{host: "attacker.example:5001", allowed: []string{"*"}, want: 200},
		{host: "sub.attacker.example", allowed: []string{"*.attacker.example"}, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			cfg := apiConfig()
			if tt.allowed != nil {
				cfg.AllowedHosts = tt.allowed
			}
			path := tt.path
			if path == "" {
				path = "/v1/connections"
			}
			status, msg, _ := serve(t, cfg, request{method: "GET", path: path, host: tt.host})
			assert.Equal(t, tt.want, status, msg)
			if status == 421 {
				assert.Contains(t, msg, "--allowed-hosts")
			}
		})
	}
}

// Ensure a pprof-style guard (no body rules) checks Host and Origin but not media types.
func TestWithoutBodyRules(t *testing.T) {
	cfg := apiConfig()
	cfg.Bodies = nil
	status, _, _ := serve(t, cfg, request{method: "POST", path: "/debug/pprof/symbol", headers: ct("text/plain"), body: "0x1"})
	assert.Equal(t, 200, status)
	status, _, _ = serve(t, cfg, request{method: "GET", path: "/debug/pprof/cmdline", host: "attacker.example:6060"})
	assert.Equal(t, 421, status)
	status, _, _ = serve(t, cfg, request{method: "POST", path: "/debug/pprof/symbol", headers: map[string][]string{"Origin": {"https://evil.example"}}, body: "0x1"})
	assert.Equal(t, 403, status)
}

// Ensure configuration mistakes are caught at start, naming the flag.
func TestConfigErrors(t *testing.T) {
	for _, bad := range []string{"example.com:8080", "http://example.com", "*.", "*", "exa mple.com", "**.x.com", "*.x:1", ""} {
		if bad == "*" {
			continue // "*" is valid: any host
		}
		err := httpguard.ValidateHosts([]string{bad})
		assert.ErrorContains(t, err, "--allowed-hosts", "%q", bad)
	}
	for _, good := range []string{"*", "example.com", "Example.COM.", "*.example.com", "10.0.0.1", "::1", "[::1]", "wsmanager"} {
		assert.NoError(t, httpguard.ValidateHosts([]string{good}), good)
	}
	for _, bad := range []string{"app.example", "https://app.example/path", "https://", "null", "https://u@app.example", "https://app.example?x"} {
		_, err := httpguard.NewOrigins([]string{bad})
		assert.ErrorContains(t, err, "--cors-allowed-origins", "%q", bad)
	}
	for _, good := range []string{"*", "https://app.example", "https://app.example/", "http://localhost:3000", "HTTPS://APP.EXAMPLE"} {
		_, err := httpguard.NewOrigins([]string{good})
		assert.NoError(t, err, good)
	}
	_, err := httpguard.New(httpguard.Config{AllowedHosts: []string{"a:1"}})
	assert.Error(t, err)
}

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"Example.COM:80":    "example.com",
		"example.com.":      "example.com",
		"[::1]:1":           "::1",
		"[::FFFF:7f00:1]":   "::ffff:127.0.0.1",
		"127.0.0.1.":        "127.0.0.1",
		"under_score.local": "under_score.local",
	} {
		got, ok := httpguard.ParseHost(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"::1", "a..b", "[::1", "[127.0.0.1]", "a:", "a:b", "a b", ".", "a/b", "a@b", strings.Repeat("a", 64) + ".x"} {
		_, ok := httpguard.ParseHost(bad)
		assert.False(t, ok, bad)
	}
}

// FuzzParseHost: Host headers are untrusted. Whatever ParseHost accepts is canonical (parsing
// it again gives it back) and carries no port, brackets, upper case or trailing dot.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"", "localhost:5001", "[::1]:5001", "A.B.", "10.0.0.1", "[fe80::1%25eth0]:1", "x:99999", "::1", "[::1]x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := httpguard.ParseHost(s)
		if !ok {
			return
		}
		if strings.ContainsAny(h, "[]") || strings.HasSuffix(h, ".") || h != strings.ToLower(h) {
			t.Fatalf("ParseHost(%q) = %q: not canonical", s, h)
		}
		if h == "" {
			return
		}
		// An IPv6 literal needs its brackets back to be a Host again.
		again := h
		if strings.Contains(h, ":") {
			again = "[" + h + "]"
		}
		if h2, ok := httpguard.ParseHost(again); !ok || h2 != h {
			t.Fatalf("ParseHost(%q) = %q, but ParseHost(%q) = %q, %v", s, h, again, h2, ok)
		}
	})
}

// FuzzParseMediaType: Content-Type values are untrusted; an accepted one is lower case and
// has no parameters.
func FuzzParseMediaType(f *testing.F) {
	for _, s := range []string{"application/json", "application/json; charset=utf-8", "TEXT/PLAIN", "multipart/form-data; boundary=x", "application/json, text/plain", `a/b; charset="utf-8"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mt, ok := httpguard.ParseMediaType(s)
		if !ok {
			return
		}
		if mt != strings.ToLower(mt) || strings.ContainsAny(mt, "; ,") || !strings.Contains(mt, "/") {
			t.Fatalf("ParseMediaType(%q) = %q", s, mt)
		}
	})
}
