package credentials

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"path/filepath"
	"slices"
	"strings"

	"github.com/websocketmanager/websocketmanager/actors/httpfield"
)

// Bounds of what a connection may reference.
const (
	// MaxSecretHeaders bounds the secret headers of one connection.
	MaxSecretHeaders = 64
	// MaxRefLength bounds a store name, key or field of a SecretRef.
	MaxRefLength = 256
	// MaxPathLength bounds a key material file path.
	MaxPathLength = 4096
	// MaxMaterialBytes bounds one piece of key material (inline, file or secret value).
	MaxMaterialBytes = 1 << 20
	// MaxHeaderValueBytes bounds the value of one secret header as read.
	MaxHeaderValueBytes = 8 << 10
)

// refusedHeaders are set by the WebSocket handshake or by HTTP itself (canonical names): the
// same as the plain headers refuse, plus framing and hop-by-hop headers that a secret could
// otherwise use to break the handshake request.
var refusedHeaders = map[string]bool{
	"Upgrade": true, "Connection": true, "Host": true, "Content-Length": true,
	"Transfer-Encoding": true, "Te": true, "Trailer": true, "Keep-Alive": true,
	"Proxy-Connection": true,
}

func (s *Source) validateHeaders(refs map[string]SecretRef, plain map[string]string) error {
	if len(refs) > MaxSecretHeaders {
		return fmt.Errorf("at most %d secret_headers are allowed, got %d", MaxSecretHeaders, len(refs))
	}
	plainNames := make(map[string]bool, len(plain))
	for k := range plain {
		plainNames[textproto.CanonicalMIMEHeaderKey(k)] = true
	}
	seen := make(map[string]string, len(refs))
	for _, name := range sortedKeys(refs) {
		if len(name) > MaxRefLength || !httpfield.ValidToken(name) {
			return fmt.Errorf("secret_headers[%q]: not a valid HTTP header name", clip(name))
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if refusedHeaders[canon] || strings.HasPrefix(canon, "Sec-Websocket-") {
			return fmt.Errorf("secret_headers[%q]: this header is set by the WebSocket handshake and may not be given", name)
		}
		if other, dup := seen[canon]; dup {
			return fmt.Errorf("secret_headers[%q] and secret_headers[%q] are the same header (names are case-insensitive)", other, name)
		}
		seen[canon] = name
		if plainNames[canon] {
			return fmt.Errorf("secret_headers[%q]: the header is also among the plain headers; give it in one of them", name)
		}
		if err := validateRef(refs[name]); err != nil {
			return fmt.Errorf("secret_headers[%q]: %w", name, err)
		}
		if r := refs[name]; !s.Allow.Allows(r.Store, r.Key) {
			return fmt.Errorf("secret_headers[%q]: %s", name, notAllowed(r))
		}
	}
	return nil
}

func (s *Source) validateTLS(t *TLS, secure bool) error {
	if t == nil {
		return nil
	}
	if !secure {
		return errors.New("tls is only for wss:// URLs")
	}
	for _, m := range []struct {
		field string
		m     *Material
	}{{"tls.ca", t.CA}, {"tls.client_certificate", t.ClientCert}, {"tls.client_key", t.ClientKey}} {
		if m.m == nil {
			continue
		}
		if err := s.validateMaterial(m.m); err != nil {
			return fmt.Errorf("%s: %w", m.field, err)
		}
	}
	inline := 0
	for _, m := range []*Material{t.CA, t.ClientCert, t.ClientKey} {
		if m != nil {
			inline += len(m.InlinePEM)
		}
	}
	if inline > MaxMaterialBytes { // it is kept in actor state: one bound for the connection
		return fmt.Errorf("tls: the inline_pem of tls.ca, tls.client_certificate and tls.client_key together are larger than %d bytes; give the larger ones as secrets", MaxMaterialBytes)
	}
	if t.CAOnly && t.CA == nil {
		return errors.New("tls.ca_only needs tls.ca (the only authority to trust)")
	}
	if (t.ClientCert == nil) != (t.ClientKey == nil) {
		return errors.New("tls.client_certificate and tls.client_key go together: give both or neither")
	}
	if t.ServerName != "" && !validServerName(t.ServerName) {
		return fmt.Errorf("tls.server_name %q is not a DNS name or IP address", clip(t.ServerName))
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		return fmt.Errorf("tls.min_version %q is not supported: use 1.2 or 1.3", clip(t.MinVersion))
	}
	return nil
}

func (s *Source) validateMaterial(m *Material) error {
	n := 0
	if m.Secret != nil {
		n++
	}
	if m.File != "" {
		n++
	}
	if m.InlinePEM != "" {
		n++
	}
	switch {
	case n == 0:
		return errors.New("give one of secret, file or inline_pem")
	case n > 1:
		return errors.New("give only one of secret, file or inline_pem")
	case m.Secret != nil:
		if err := validateRef(*m.Secret); err != nil {
			return fmt.Errorf("secret: %w", err)
		}
		if !s.Allow.Allows(m.Secret.Store, m.Secret.Key) {
			return errors.New(notAllowed(*m.Secret))
		}
	case m.File != "":
		return s.validateFile(m.File)
	default:
		if !s.AllowInline {
			return errors.New("inline_pem: this service does not accept inline key material (its operator enables it with --allow-inline-tls); use a secret instead")
		}
		if len(m.InlinePEM) > MaxMaterialBytes {
			return fmt.Errorf("inline_pem: larger than %d bytes", MaxMaterialBytes)
		}
		if !strings.Contains(m.InlinePEM, "-----BEGIN ") {
			return errors.New("inline_pem: not PEM (no -----BEGIN line)")
		}
	}
	return nil
}

func (s *Source) validateFile(p string) error {
	if len(p) > MaxPathLength {
		return fmt.Errorf("file: the path is longer than %d characters", MaxPathLength)
	}
	if _, bad := httpfield.ControlChar(p); bad {
		return fmt.Errorf("file %q: the path contains a control character", clip(p))
	}
	if len(s.FileDirs) == 0 {
		return fmt.Errorf("file %q: this service accepts no key material files (its operator allows directories with --tls-files-dir); use a secret instead", clip(p))
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("file %q: give an absolute, clean path (no ., .. or repeated or trailing /)", clip(p))
	}
	if len(s.dirsOf(p)) == 0 {
		return fmt.Errorf("file %q is not under the directories the service allows (%s)", clip(p), strings.Join(s.FileDirs, ", "))
	}
	return nil
}

// dirsOf returns the allowed directories p is (lexically) inside of.
func (s *Source) dirsOf(p string) []string {
	var out []string
	for _, d := range s.FileDirs {
		if rel, ok := within(d, p); ok && rel != "." {
			out = append(out, d)
		}
	}
	return out
}

// within reports whether p is dir or inside it, and p relative to dir.
func within(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", false
	}
	return rel, true
}

func validateRef(r SecretRef) error {
	for _, f := range []struct{ name, v string }{{"store", r.Store}, {"key", r.Key}, {"field", r.Field}} {
		if f.v == "" {
			if f.name == "field" {
				continue
			}
			return fmt.Errorf("%s is required", f.name)
		}
		if len(f.v) > MaxRefLength {
			return fmt.Errorf("%s is longer than %d characters", f.name, MaxRefLength)
		}
		if c, bad := httpfield.ControlChar(f.v); bad || strings.ContainsRune(f.v, '\t') {
			if !bad {
				c = '\t'
			}
			return fmt.Errorf("%s contains the control character 0x%02X", f.name, c)
		}
	}
	return nil
}

// validServerName accepts an IP address or a DNS name (labels of letters, digits, hyphens
// and underscores, 1 to 63 characters, not starting or ending with a hyphen; 253 in all),
// with or without a trailing dot.
func validServerName(n string) bool {
	if net.ParseIP(n) != nil {
		return true
	}
	n = strings.TrimSuffix(n, ".") // a fully qualified name; crypto/tls drops the dot itself
	if len(n) > 253 {
		return false
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// clip keeps error texts short when a caller sends a huge name.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
