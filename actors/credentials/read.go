package credentials

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/websocketmanager/websocketmanager/actors/httpfield"
)

// credError is a failure to read or use a reference: its text names the reference (never
// a value); it wraps its kind (ErrUnavailable or ErrInvalidMaterial) and the cause, if any.
type credError struct {
	kind  error
	msg   string
	cause error
}

func (e *credError) Error() string   { return e.msg }
func (e *credError) Unwrap() []error { return []error{e.kind, e.cause} }

func fail(kind, cause error, format string, args ...any) error {
	return &credError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// reader resolves the references of one call: each secret is read once per call.
type reader struct {
	src     *Source
	secrets map[[2]string]secretResult
}

type secretResult struct {
	values map[string]string
	err    error
}

func (s *Source) reader() *reader {
	return &reader{src: s, secrets: map[[2]string]secretResult{}}
}

func describeRef(r SecretRef) string {
	d := fmt.Sprintf("secret store %q key %q", r.Store, r.Key)
	if r.Field != "" {
		d += fmt.Sprintf(" field %q", r.Field)
	}
	return d
}

// secret reads the value r names; what is the start of an error text (e.g. "secret header X").
func (r *reader) secret(ctx context.Context, what string, ref SecretRef) (string, error) {
	desc := describeRef(ref)
	if !r.src.Allow.Allows(ref.Store, ref.Key) { // checked at Connect, maybe on an instance with other flags
		return "", fail(ErrUnavailable, nil, "%s: %s", what, notAllowed(ref))
	}
	if r.src.Secrets == nil {
		return "", fail(ErrUnavailable, nil, "%s: %s: this service has no secret store client", what, desc)
	}
	k := [2]string{ref.Store, ref.Key}
	res, ok := r.secrets[k]
	if !ok {
		res.values, res.err = r.src.Secrets.GetSecret(ctx, ref.Store, ref.Key)
		r.secrets[k] = res
	}
	if res.err != nil {
		return "", fail(ErrUnavailable, res.err, "%s: %s: %v", what, desc, res.err)
	}
	v, err := Field(res.values, ref)
	if err != nil {
		return "", fail(ErrUnavailable, nil, "%s: %s: %v", what, desc, err)
	}
	return v, nil
}

// Field returns the value ref names among a secret's values: the one named Field, else the
// one named Key, else the secret's only value. Its error names the fields there are, never a
// value. The egress proxy's credentials are picked the same way.
func Field(values map[string]string, ref SecretRef) (string, error) {
	if ref.Field != "" {
		v, ok := values[ref.Field]
		if !ok {
			return "", fmt.Errorf("not found (the secret has %s)", fieldNames(values))
		}
		return v, nil
	}
	if v, ok := values[ref.Key]; ok {
		return v, nil
	}
	if len(values) == 1 {
		for _, v := range values {
			return v, nil
		}
	}
	if len(values) == 0 {
		return "", errors.New("not found (the secret is empty)")
	}
	return "", fmt.Errorf("the secret has %s; name one in field", fieldNames(values))
}

func fieldNames(m map[string]string) string {
	if len(m) == 0 {
		return "no fields"
	}
	names := sortedKeys(m)
	const show = 10
	more := ""
	if len(names) > show {
		more = fmt.Sprintf(" and %d more", len(names)-show)
		names = names[:show]
	}
	return fmt.Sprintf("the fields %s%s", strings.Join(names, ", "), more)
}

func (r *reader) headerValue(ctx context.Context, name string, ref SecretRef) (string, error) {
	what := "secret header " + name
	v, err := r.secret(ctx, what, ref)
	if err != nil {
		return "", err
	}
	// A value kept in a file (a token written with echo) commonly ends in a line break: one
	// is dropped. Any other control character is refused: it would split the request.
	v = strings.TrimSuffix(strings.TrimSuffix(v, "\n"), "\r")
	if c, bad := httpfield.ControlChar(v); bad {
		return "", fail(ErrInvalidMaterial, nil, "%s: the value read from %s contains the control character 0x%02X, which a header value may not (the value is not shown)", what, describeRef(ref), c)
	}
	if len(v) > MaxHeaderValueBytes {
		return "", fail(ErrInvalidMaterial, nil, "%s: the value read from %s is larger than %d bytes", what, describeRef(ref), MaxHeaderValueBytes)
	}
	return v, nil
}

// material reads m; field names it in errors (e.g. "tls.ca").
func (r *reader) material(ctx context.Context, field string, m *Material) ([]byte, string, error) {
	switch {
	case m.Secret != nil:
		desc := describeRef(*m.Secret)
		v, err := r.secret(ctx, field, *m.Secret)
		if err != nil {
			return nil, desc, err
		}
		if len(v) > MaxMaterialBytes {
			return nil, desc, fail(ErrInvalidMaterial, nil, "%s: %s is larger than %d bytes", field, desc, MaxMaterialBytes)
		}
		return []byte(v), desc, nil
	case m.File != "":
		desc := fmt.Sprintf("file %q", m.File)
		b, err := r.src.readFile(field, m.File)
		return b, desc, err
	case m.InlinePEM != "":
		if !r.src.AllowInline { // the operator may have withdrawn it since Connect
			return nil, "inline PEM", fail(ErrUnavailable, nil, "%s: this service no longer accepts inline key material (--allow-inline-tls); give it again as a secret", field)
		}
		if len(m.InlinePEM) > MaxMaterialBytes {
			return nil, "inline PEM", fail(ErrInvalidMaterial, nil, "%s: the inline PEM is larger than %d bytes", field, MaxMaterialBytes)
		}
		return []byte(m.InlinePEM), "inline PEM", nil
	}
	return nil, "", fail(ErrInvalidMaterial, nil, "%s: give one of secret, file or inline_pem", field)
}

// readFile reads p if it is inside one of the allowed directories, also after following
// symbolic links: the directories are opened as os.Root, which refuses any path (or link)
// that leads outside, also when a link is swapped while it is opened.
func (s *Source) readFile(field, p string) ([]byte, error) {
	if err := s.validateFile(p); err != nil {
		return nil, fail(ErrUnavailable, nil, "%s: %v", field, err)
	}
	var firstErr error
	for _, dir := range s.dirsOf(p) {
		rel, _ := within(dir, p)
		b, err := readUnder(dir, rel)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	err := firstErr
	switch {
	case errors.Is(err, errTooLarge):
		return nil, fail(ErrInvalidMaterial, nil, "%s: file %q is larger than %d bytes", field, p, MaxMaterialBytes)
	case errors.Is(err, errNotRegular):
		return nil, fail(ErrInvalidMaterial, nil, "%s: file %q is not a regular file", field, p)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fail(ErrUnavailable, err, "%s: file %q does not exist", field, p)
	case errors.Is(err, fs.ErrPermission):
		return nil, fail(ErrUnavailable, err, "%s: file %q may not be read by the service (permission denied)", field, p)
	case escapes(s, p):
		return nil, fail(ErrInvalidMaterial, err, "%s: file %q leads (through a symbolic link) outside the directories the service allows (%s)", field, p, strings.Join(s.FileDirs, ", "))
	case s.absoluteLink(p) != "":
		// os.Root follows only links that stay inside by their own text, so an absolute
		// target is refused even when it points back inside.
		link := s.absoluteLink(p)
		if link == p {
			return nil, fail(ErrInvalidMaterial, err, "%s: file %q is a symbolic link with an absolute target; use a relative link or the file itself", field, p)
		}
		return nil, fail(ErrInvalidMaterial, err, "%s: file %q: %q is a symbolic link with an absolute target; use a relative link or the file itself", field, p, link)
	}
	return nil, fail(ErrUnavailable, err, "%s: file %q cannot be read: %v", field, p, err)
}

var (
	errTooLarge   = errors.New("too large")
	errNotRegular = errors.New("not a regular file")
)

func readUnder(dir, rel string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO put there must not block the dial.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, errNotRegular
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxMaterialBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMaterialBytes {
		return nil, errTooLarge
	}
	return b, nil
}

// escapes reports whether p, with its symbolic links resolved, is outside every allowed
// directory (with theirs resolved): only to explain a refusal.
func escapes(s *Source, p string) bool {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false
	}
	for _, d := range s.FileDirs {
		if rd, err := filepath.EvalSymlinks(d); err == nil {
			if _, ok := within(rd, resolved); ok {
				return false
			}
		}
	}
	return true
}

// absoluteLink returns the first of p and its parent directories below an allowed directory
// that is a symbolic link with an absolute target, or "": only to explain a refusal.
func (s *Source) absoluteLink(p string) string {
	for _, dir := range s.dirsOf(p) {
		var below []string
		for d := p; d != dir && d != "/" && d != "."; d = filepath.Dir(d) {
			below = append(below, d)
		}
		for i := len(below) - 1; i >= 0; i-- {
			if target, err := os.Readlink(below[i]); err == nil && filepath.IsAbs(target) {
				return below[i]
			}
		}
	}
	return ""
}

func (r *reader) tlsConfig(ctx context.Context, t *TLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	switch t.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fail(ErrInvalidMaterial, nil, "tls.min_version %q is not supported: use 1.2 or 1.3", clip(t.MinVersion))
	}
	if t.CA != nil {
		pem, desc, err := r.material(ctx, "tls.ca", t.CA)
		if err != nil {
			return nil, err
		}
		certs, err := parseCerts(pem)
		if err != nil {
			return nil, fail(ErrInvalidMaterial, nil, "tls.ca (%s): %v", desc, err)
		}
		pool := x509.NewCertPool()
		if !t.CAOnly {
			// The pool returned is the caller's own copy. Without it only the CA would be
			// trusted, which the connection did not ask for (tls.ca_only).
			sys, err := x509.SystemCertPool()
			if err != nil {
				return nil, fail(ErrUnavailable, err, "tls.ca: the system root certificates cannot be loaded to add the CA to (%v): fix the machine's root store, or set tls.ca_only to trust only tls.ca", err)
			}
			pool = sys
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		cfg.RootCAs = pool
	}
	if t.ClientCert != nil && t.ClientKey != nil {
		cert, err := r.clientCert(ctx, t)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (r *reader) clientCert(ctx context.Context, t *TLS) (tls.Certificate, error) {
	certPEM, certDesc, err := r.material(ctx, "tls.client_certificate", t.ClientCert)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, keyDesc, err := r.material(ctx, "tls.client_key", t.ClientKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if _, err := parseCerts(certPEM); err != nil {
		return tls.Certificate{}, fail(ErrInvalidMaterial, nil, "tls.client_certificate (%s): %v", certDesc, err)
	}
	if !hasKeyBlock(keyPEM) {
		return tls.Certificate{}, fail(ErrInvalidMaterial, nil, "tls.client_key (%s): no PEM private key in it (expected a -----BEGIN ... PRIVATE KEY----- block)", keyDesc)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The texts of X509KeyPair's errors never quote the input; they are rephrased for
		// the cases people meet.
		msg := err.Error()
		switch {
		case strings.Contains(msg, "does not match"):
			msg = "the key is not the private key of the certificate (they do not match)"
		case strings.Contains(msg, "failed to parse private key"):
			msg = "the private key does not parse (expected PKCS #1, PKCS #8 or EC, unencrypted)"
		}
		return tls.Certificate{}, fail(ErrInvalidMaterial, nil, "tls.client_key (%s) with tls.client_certificate (%s): %s", keyDesc, certDesc, msg)
	}
	return cert, nil
}

// parseCerts returns the certificates of PEM data; an error that never quotes the data.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		if hasKeyBlock(data) {
			return nil, errors.New("no PEM certificate in it, but a private key (are certificate and key swapped?)")
		}
		return nil, errors.New("no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)")
	}
	return certs, nil
}

func hasKeyBlock(data []byte) bool {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if b.Type == "PRIVATE KEY" || strings.HasSuffix(b.Type, " PRIVATE KEY") {
			return true
		}
	}
}
