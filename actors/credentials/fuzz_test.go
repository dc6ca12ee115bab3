package credentials_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// FuzzValidate feeds Validate arbitrary references: it must never panic, and whatever it
// accepts must be safe to use: a file path inside an allowed directory, a header name and
// references without line breaks.
func FuzzValidate(f *testing.F) {
	f.Add("Authorization", "secretstore", "api", "token", "/etc/wsm/tls/ca.pem", "", "api.example.com", "1.3", true)
	f.Add("X-Key", "s", "k", "", "/etc/wsm/tls/../../etc/passwd", "-----BEGIN CERTIFICATE-----", "10.0.0.1", "", false)
	f.Add("Sec-WebSocket-Key", "", "k", "f\n", "/etc/wsm/tls-evil/ca.pem", "x", "a..b", "1.1", true)
	f.Add("x key", "s", "k", "", "/srv/certs/a/./b", "", "-a", "1.2", false)
	f.Add("Host", "s", "k", "", "/srv/certs", "", "", "", true)
	dirs := []string{"/etc/wsm/tls", "/srv/certs"}
	allow := allowed(f, "secretstore", "s/k", "s/api*")
	f.Fuzz(func(t *testing.T, name, store, key, field, path, inlinePEM, serverName, minVersion string, caOnly bool) {
		src := &credentials.Source{FileDirs: dirs, AllowInline: true, Allow: allow}
		r := credentials.SecretRef{Store: store, Key: key, Field: field}
		headers := map[string]credentials.SecretRef{name: r}
		spec := &credentials.TLS{CA: &credentials.Material{File: path}, CAOnly: caOnly, ServerName: serverName, MinVersion: minVersion}
		if inlinePEM != "" {
			spec.ClientCert = &credentials.Material{InlinePEM: inlinePEM}
			spec.ClientKey = &credentials.Material{Secret: &r}
		}
		if err := src.Validate(headers, map[string]string{"X-Plain": "v"}, spec, true); err != nil {
			return
		}
		inside := false
		for _, d := range dirs {
			if strings.HasPrefix(path, d+"/") && filepath.Clean(path) == path {
				inside = true
			}
		}
		if !inside {
			t.Fatalf("accepted the file %q outside %v", path, dirs)
		}
		if strings.ContainsAny(name+store+key+field, "\r\n\x00") {
			t.Fatalf("accepted a line break or NUL in a name or reference: %q", name+store+key+field)
		}
		if strings.EqualFold(name, "X-Plain") || strings.EqualFold(name, "Host") || strings.HasPrefix(strings.ToLower(name), "sec-websocket-") {
			t.Fatalf("accepted the header name %q", name)
		}
		if store != "secretstore" && !(store == "s" && (key == "k" || strings.HasPrefix(key, "api"))) {
			t.Fatalf("accepted secret store %q key %q outside the allow-list", store, key)
		}
		if minVersion != "" && minVersion != "1.2" && minVersion != "1.3" {
			t.Fatalf("accepted min_version %q", minVersion)
		}
	})
}
