package egress_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/egress"
)

func TestParseProxies(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string // name → scheme://host
		wantErr string
	}{
		{"default and named", []string{"http://proxy:3128", "corp=https://corp-proxy.example:8443/", " eu = http://10.0.0.1 "},
			map[string]string{"": "http://proxy:3128", "corp": "https://corp-proxy.example:8443", "eu": "http://10.0.0.1"}, ""},
		{"empty entries skipped", []string{"", " "}, map[string]string{}, ""},
		{"two defaults", []string{"http://a:1", "http://b:2"}, nil, "only one proxy may be unnamed"},
		{"duplicate name", []string{"a=http://a:1", "a=http://b:2"}, nil, `"a" is given twice`},
		{"userinfo refused", []string{"http://bob:hunter2@proxy:3128"}, nil, "credentials in the URL are refused"},
		{"userinfo without scheme", []string{"bob:hunter2@proxy:3128"}, nil, "scheme must be http"},
		{"socks", []string{"socks5://proxy:1080"}, nil, "scheme must be http:// or https://"},
		{"no host", []string{"http://:3128"}, nil, "has no host"},
		{"path", []string{"http://proxy:3128/x"}, nil, "only scheme, host and port"},
		{"bad port", []string{"http://proxy:99999"}, nil, "not a port number"},
		{"bad name", []string{"a b=http://proxy"}, nil, "a proxy name is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := egress.ParseProxies(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), "hunter2", "never show credentials")
				return
			}
			require.NoError(t, err)
			got := map[string]string{}
			for _, p := range ps {
				got[p.Name] = p.URL.String()
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseAuth(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]egress.Auth
		wantErr string
	}{
		{"file and secrets", []string{"file:/run/proxy", "corp=secret:vault/proxy", "eu=secret:vault/proxy/eu"}, map[string]egress.Auth{
			"":     {File: "/run/proxy"},
			"corp": {Secret: &credentials.SecretRef{Store: "vault", Key: "proxy"}},
			"eu":   {Secret: &credentials.SecretRef{Store: "vault", Key: "proxy", Field: "eu"}},
		}, ""},
		{"relative file", []string{"file:run/proxy"}, nil, "absolute, clean path"},
		{"unclean file", []string{"file:/run/../etc/proxy"}, nil, "absolute, clean path"},
		{"secret without key", []string{"secret:vault"}, nil, "secret:store/key"},
		{"secret with empty field", []string{"secret:vault/key/"}, nil, "secret:store/key"},
		{"inline refused", []string{"alice:pw"}, nil, "write [name=]file:"},
		{"duplicate", []string{"file:/a", "file:/b"}, nil, "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := egress.ParseAuth(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestWithAuth(t *testing.T) {
	ps, err := egress.ParseProxies([]string{"corp=http://corp:1"})
	require.NoError(t, err)
	_, err = egress.WithAuth(ps, map[string]egress.Auth{"": {File: "/a"}})
	assert.ErrorContains(t, err, "no unnamed (default) proxy")
	_, err = egress.WithAuth(ps, map[string]egress.Auth{"typo": {File: "/a"}})
	assert.ErrorContains(t, err, `names proxy "typo"`)
	got, err := egress.WithAuth(ps, map[string]egress.Auth{"corp": {File: "/a"}})
	require.NoError(t, err)
	assert.Equal(t, "/a", got[0].Auth.File)
	assert.Nil(t, ps[0].Auth, "the input is not changed")
}

func TestNoProxyMatch(t *testing.T) {
	n, err := egress.ParseNoProxy([]string{"Internal.Example", ".corp.example", "*.svc.local", "10.0.0.0/8", "192.168.1.5", "::1", "fd00::/8", "::ffff:172.16.0.0/108"})
	require.NoError(t, err)
	tests := []struct {
		host string
		want bool
	}{
		{"internal.example", true},
		{"INTERNAL.example.", true},
		{"sub.internal.example", false}, // exact names are exact
		{"a.corp.example", true},
		{"corp.example", false}, // suffixes are subdomains only
		{"x.y.svc.local", true},
		{"svc.local", false},
		{"10.1.2.3", true},
		{"0x0a000001", true}, // another spelling of 10.0.0.1
		{"[::ffff:10.0.0.1]", true},
		{"11.0.0.1", false},
		{"192.168.1.5", true},
		{"192.168.1.6", false},
		{"::1", true},
		{"[::1]", true},
		{"fd12::1", true},
		{"172.16.3.4", true},
		{"example.com", false},
		{"10.example", false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, n.Match(tc.host), tc.host)
	}
	all, err := egress.ParseNoProxy([]string{"*"})
	require.NoError(t, err)
	assert.True(t, all.Match("anything.example"))
	var none egress.NoProxy
	assert.False(t, none.Match("localhost"))
}

func TestParseNoProxyErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"host:80", "without a port"},
		{"10.0.0.0/33", "not a CIDR prefix"},
		{"127.1", "dotted decimal"},
		{"bad host!", "neither a host name"},
		{".", "not a host suffix"},
		{"*.", "not a host suffix"},
	} {
		_, err := egress.ParseNoProxy([]string{tc.in})
		assert.ErrorContains(t, err, tc.want, tc.in)
	}
}

func TestReadConnectResponse(t *testing.T) {
	tests := []struct {
		name, in   string
		code       int
		wantErr    string
		restBuffer string
	}{
		{"ok", "HTTP/1.1 200 Connection established\r\n\r\n", 200, "", ""},
		{"headers and tunnel bytes", "HTTP/1.0 200 OK\r\nVia: x\r\nProxy-Agent: y\r\n\r\nhello", 200, "", "hello"},
		{"bare LF", "HTTP/1.1 407 Proxy Authentication Required\nProxy-Authenticate: Basic\n\n", 407, "", ""},
		{"no reason", "HTTP/1.1 502\r\n\r\n", 502, "", ""},
		{"control characters in reason", "HTTP/1.1 403 bad\x1b[31m\r\n\r\n", 403, "", ""},
		{"interim answers skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\nhi", 200, "", "hi"},
		{"interim then refusal", "HTTP/1.1 102 Processing\n\nHTTP/1.1 403 Forbidden\n\n", 403, "", ""},
		{"101 is final", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nrest", 101, "", "rest"},
		{"interim only", "HTTP/1.1 100 Continue\r\n\r\n", 0, "closed or failed", ""},
		{"interim with malformed header", "HTTP/1.1 100 Continue\r\nbad\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 0, "malformed header", ""},
		{"interim answers beyond the line limit", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 60) + "HTTP/1.1 200 OK\r\n\r\n", 0, "larger than", ""},
		{"interim answers beyond the size limit", strings.Repeat("HTTP/1.1 100 Continue\r\nX: "+strings.Repeat("a", 1000)+"\r\n\r\n", 20) + "HTTP/1.1 200 OK\r\n\r\n", 0, "larger than", ""},
		{"code 600", "HTTP/1.1 600 Nope\r\n\r\n", 0, "malformed answer", ""},
		{"code 099", "HTTP/1.1 099 Nope\r\n\r\n", 0, "malformed answer", ""},
		{"code 000", "HTTP/1.1 000\r\n\r\n", 0, "malformed answer", ""},
		{"signed code", "HTTP/1.1 +20 OK\r\n\r\n", 0, "malformed answer", ""},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 0, "not HTTP/1.x", ""},
		{"bad code", "HTTP/1.1 2000 OK\r\n\r\n", 0, "malformed answer", ""},
		{"malformed header", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0, "malformed header", ""},
		{"continuation", "HTTP/1.1 200 OK\r\n folded\r\n\r\n", 0, "malformed header", ""},
		{"truncated", "HTTP/1.1 200 OK\r\nVia: x\r\n", 0, "closed or failed", ""},
		{"too long", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n", 0, "larger than", ""},
		{"too many lines", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: a\r\n", 200) + "\r\n", 0, "larger than", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.in))
			code, err := egress.ReadConnectResponse(r)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.code, code)
			rest, _ := r.Peek(r.Buffered())
			assert.Equal(t, tc.restBuffer, string(rest))
		})
	}
}

func FuzzReadConnectResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 Connection established\r\n\r\nrest"))
	f.Add([]byte("HTTP/1.0 407 x\nA: b\n\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n folded\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 600 x\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 099 x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReaderSize(strings.NewReader(string(in)), 4096)
		code, err := egress.ReadConnectResponse(r)
		if err != nil {
			return
		}
		if code < 100 || code > 599 || code < 200 && code != 101 {
			t.Fatalf("code %d returned", code)
		}
		// What the header consumed plus what is left is the input.
		rest, _ := readRest(r)
		if !strings.HasSuffix(string(in), rest) || len(in)-len(rest) > 16<<10 {
			t.Fatalf("consumed %d bytes", len(in)-len(rest))
		}
	})
}

func readRest(r *bufio.Reader) (string, error) {
	var b strings.Builder
	_, err := r.WriteTo(&b)
	return b.String(), err
}

func FuzzParseProxies(f *testing.F) {
	f.Add("http://proxy:3128,corp=https://c.example:8443")
	f.Add("a=http://u:p@h")
	f.Add("x=socks5://h")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := egress.ParseProxies(strings.Split(in, ","))
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, p := range ps {
			if names[p.Name] {
				t.Fatalf("name %q twice", p.Name)
			}
			names[p.Name] = true
			if p.URL.User != nil || (p.URL.Scheme != "http" && p.URL.Scheme != "https") || p.URL.Hostname() == "" {
				t.Fatalf("accepted %v", p.URL)
			}
		}
	})
}

func FuzzParseNoProxy(f *testing.F) {
	f.Add("a.example,.b.example,*.c.example,10.0.0.0/8,::1,*", "x.b.example")
	f.Fuzz(func(t *testing.T, in, host string) {
		n, err := egress.ParseNoProxy(strings.Split(in, ","))
		if err != nil {
			return
		}
		_ = n.Match(host)
	})
}

func FuzzParseAuth(f *testing.F) {
	f.Add("file:/a,corp=secret:s/k/f")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := egress.ParseAuth(strings.Split(in, ","))
		if err != nil {
			return
		}
		for name, a := range m {
			if (a.File == "") == (a.Secret == nil) {
				t.Fatalf("%q: exactly one of file and secret must be set: %+v", name, a)
			}
			if a.Secret != nil && (a.Secret.Store == "" || a.Secret.Key == "") {
				t.Fatalf("%q: incomplete secret reference %+v", name, a.Secret)
			}
		}
	})
}
