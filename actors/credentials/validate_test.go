package credentials_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

func ref(store, key, field string) credentials.SecretRef {
	return credentials.SecretRef{Store: store, Key: key, Field: field}
}

func secretMat(store, key, field string) *credentials.Material {
	r := ref(store, key, field)
	return &credentials.Material{Secret: &r}
}

const somePEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// Ensure Validate accepts what the operator allows and refuses each bad reference with a
// message naming the field and saying what to do.
func TestValidate(t *testing.T) {
	dir := "/etc/wsm/tls"
	// The secrets these cases name are allowed; TestSecretAllowEnforced covers others.
	secrets := allowed(t, "s", "secretstore/api")
	files := &credentials.Source{FileDirs: []string{dir, "/srv/certs"}, Allow: secrets}
	inline := &credentials.Source{AllowInline: true, Allow: secrets}
	none := &credentials.Source{Allow: secrets}
	many := map[string]credentials.SecretRef{}
	for i := range credentials.MaxSecretHeaders + 1 {
		many[fmt.Sprintf("X-H%d", i)] = ref("s", "k", "")
	}
	long := strings.Repeat("a", credentials.MaxRefLength+1)
	tests := []struct {
		name    string
		src     *credentials.Source
		headers map[string]credentials.SecretRef
		plain   map[string]string
		tls     *credentials.TLS
		plainWS bool // ws:// instead of wss://
		want    string
	}{
		{name: "nothing", src: none},
		{name: "secret header", src: none, headers: map[string]credentials.SecretRef{"Authorization": ref("secretstore", "api", "token")},
			plain: map[string]string{"X-Other": "v"}},
		{name: "secret header on ws://", src: none, headers: map[string]credentials.SecretRef{"X-Key": ref("s", "k", "")}, plainWS: true},
		{name: "too many headers", src: none, headers: many, want: "at most 64 secret_headers are allowed, got 65"},
		{name: "store missing", src: none, headers: map[string]credentials.SecretRef{"X-Key": ref("", "k", "")}, want: `secret_headers["X-Key"]: store is required`},
		{name: "key missing", src: none, headers: map[string]credentials.SecretRef{"X-Key": ref("s", "", "")}, want: `secret_headers["X-Key"]: key is required`},
		{name: "store too long", src: none, headers: map[string]credentials.SecretRef{"X-Key": ref(long, "k", "")}, want: `secret_headers["X-Key"]: store is longer than 256 characters`},
		{name: "field control char", src: none, headers: map[string]credentials.SecretRef{"X-Key": ref("s", "k", "a\nb")}, want: `secret_headers["X-Key"]: field contains the control character 0x0A`},
		{name: "key tab", src: none, headers: map[string]credentials.SecretRef{"X-Key": ref("s", "k\t", "")}, want: `secret_headers["X-Key"]: key contains the control character 0x09`},
		{name: "bad header name", src: none, headers: map[string]credentials.SecretRef{"X Key": ref("s", "k", "")}, want: `secret_headers["X Key"]: not a valid HTTP header name`},
		{name: "empty header name", src: none, headers: map[string]credentials.SecretRef{"": ref("s", "k", "")}, want: `secret_headers[""]: not a valid HTTP header name`},
		{name: "handshake header", src: none, headers: map[string]credentials.SecretRef{"sec-websocket-key": ref("s", "k", "")}, want: `secret_headers["sec-websocket-key"]: this header is set by the WebSocket handshake`},
		{name: "any Sec-WebSocket", src: none, headers: map[string]credentials.SecretRef{"Sec-WebSocket-Whatever": ref("s", "k", "")}, want: "set by the WebSocket handshake"},
		{name: "host", src: none, headers: map[string]credentials.SecretRef{"Host": ref("s", "k", "")}, want: "set by the WebSocket handshake"},
		{name: "content-length", src: none, headers: map[string]credentials.SecretRef{"content-length": ref("s", "k", "")}, want: "set by the WebSocket handshake"},
		{name: "transfer-encoding", src: none, headers: map[string]credentials.SecretRef{"Transfer-Encoding": ref("s", "k", "")}, want: "set by the WebSocket handshake"},
		{name: "same name twice", src: none, headers: map[string]credentials.SecretRef{"X-Key": ref("s", "k", ""), "x-key": ref("s", "k", "")},
			want: `secret_headers["X-Key"] and secret_headers["x-key"] are the same header`},
		{name: "also plain", src: none, headers: map[string]credentials.SecretRef{"Authorization": ref("s", "k", "")}, plain: map[string]string{"authorization": "Bearer x"},
			want: `secret_headers["Authorization"]: the header is also among the plain headers`},

		{name: "tls on ws://", src: none, tls: &credentials.TLS{ServerName: "x"}, plainWS: true, want: "tls is only for wss:// URLs"},
		{name: "empty tls", src: none, tls: &credentials.TLS{}},
		{name: "secret ca", src: none, tls: &credentials.TLS{CA: secretMat("s", "tls", "ca"), CAOnly: true}},
		{name: "full", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: dir + "/ca.pem"},
			ClientCert: &credentials.Material{File: "/srv/certs/client/cert.pem"}, ClientKey: secretMat("s", "tls", "key"),
			ServerName: "api.example.com", MinVersion: "1.3"}},
		{name: "material empty", src: none, tls: &credentials.TLS{CA: &credentials.Material{}}, want: "tls.ca: give one of secret, file or inline_pem"},
		{name: "material two sources", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: dir + "/ca.pem", Secret: &credentials.SecretRef{Store: "s", Key: "k"}}},
			want: "tls.ca: give only one of secret, file or inline_pem"},
		{name: "material secret store missing", src: none, tls: &credentials.TLS{ClientCert: secretMat("", "k", ""), ClientKey: secretMat("s", "k", "")},
			want: "tls.client_certificate: secret: store is required"},
		{name: "file without dirs", src: none, tls: &credentials.TLS{CA: &credentials.Material{File: dir + "/ca.pem"}},
			want: `tls.ca: file "/etc/wsm/tls/ca.pem": this service accepts no key material files (its operator allows directories with --tls-files-dir)`},
		{name: "file relative", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: "tls/ca.pem"}}, want: `tls.ca: file "tls/ca.pem": give an absolute, clean path`},
		{name: "file dotdot", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: dir + "/../../passwd"}}, want: "give an absolute, clean path"},
		{name: "file trailing slash", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: dir + "/ca.pem/"}}, want: "give an absolute, clean path"},
		{name: "file outside", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: "/etc/passwd"}},
			want: `tls.ca: file "/etc/passwd" is not under the directories the service allows (/etc/wsm/tls, /srv/certs)`},
		{name: "file is the dir", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: dir}}, want: "is not under the directories"},
		{name: "file sibling prefix", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: dir + "-other/ca.pem"}}, want: "is not under the directories"},
		{name: "file control char", src: files, tls: &credentials.TLS{CA: &credentials.Material{File: dir + "/a\x00b"}}, want: "the path contains a control character"},
		{name: "inline refused", src: files, tls: &credentials.TLS{CA: &credentials.Material{InlinePEM: somePEM}},
			want: "tls.ca: inline_pem: this service does not accept inline key material (its operator enables it with --allow-inline-tls)"},
		{name: "inline allowed", src: inline, tls: &credentials.TLS{CA: &credentials.Material{InlinePEM: somePEM}}},
		{name: "inline too large", src: inline, tls: &credentials.TLS{CA: &credentials.Material{InlinePEM: somePEM + strings.Repeat("x", credentials.MaxMaterialBytes)}},
			want: "tls.ca: inline_pem: larger than 1048576 bytes"},
		{name: "inline not PEM", src: inline, tls: &credentials.TLS{CA: &credentials.Material{InlinePEM: "hello"}}, want: "tls.ca: inline_pem: not PEM"},
		{name: "ca_only without ca", src: none, tls: &credentials.TLS{CAOnly: true}, want: "tls.ca_only needs tls.ca"},
		{name: "cert without key", src: none, tls: &credentials.TLS{ClientCert: secretMat("s", "k", "cert")},
			want: "tls.client_certificate and tls.client_key go together: give both or neither"},
		{name: "key without cert", src: none, tls: &credentials.TLS{ClientKey: secretMat("s", "k", "key")}, want: "give both or neither"},
		{name: "server name IP", src: none, tls: &credentials.TLS{ServerName: "10.0.0.1"}},
		{name: "server name IPv6", src: none, tls: &credentials.TLS{ServerName: "::1"}},
		{name: "server name bad", src: none, tls: &credentials.TLS{ServerName: "a b.example"}, want: `tls.server_name "a b.example" is not a DNS name or IP address`},
		{name: "server name empty label", src: none, tls: &credentials.TLS{ServerName: "a..b"}, want: "is not a DNS name"},
		{name: "server name hyphen", src: none, tls: &credentials.TLS{ServerName: "-a.b"}, want: "is not a DNS name"},
		{name: "server name with port", src: none, tls: &credentials.TLS{ServerName: "a.b:443"}, want: "is not a DNS name"},
		{name: "min version 1.2", src: none, tls: &credentials.TLS{MinVersion: "1.2"}},
		{name: "min version 1.1", src: none, tls: &credentials.TLS{MinVersion: "1.1"}, want: `tls.min_version "1.1" is not supported: use 1.2 or 1.3`},
		{name: "min version enum number", src: none, tls: &credentials.TLS{MinVersion: "7"}, want: `tls.min_version "7" is not supported`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.src.Validate(tc.headers, tc.plain, tc.tls, !tc.plainWS)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Ensure an error never quotes inline key material.
func TestValidateNeverQuotesPEM(t *testing.T) {
	src := &credentials.Source{}
	secret := "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n"
	err := src.Validate(nil, nil, &credentials.TLS{ClientCert: &credentials.Material{InlinePEM: secret}, ClientKey: &credentials.Material{InlinePEM: secret}}, true)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "TOPSECRET")
}
