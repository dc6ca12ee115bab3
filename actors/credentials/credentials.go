// Package credentials owns what a connection's dial reads from outside its spec: handshake
// header values and TLS key material from a Dapr secret store, from files the operator
// allowed, or given inline when the operator allows that; and the TLS client configuration
// built from them. Everything is read again at every dial, so a rotated secret or file is
// used from the next reconnect. Values are never kept beyond the dial, logged or returned.
package credentials

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
)

// SecretRef names a value in a Dapr secret store component. Its JSON form is part of the
// actor contract (ConnectArgs.secretHeaders, ConnectArgs.tls).
type SecretRef struct {
	Store string `json:"store"`
	Key   string `json:"key"`
	// Field is the value within the secret; empty: the value named Key, or the only value.
	Field string `json:"field,omitempty"`
}

// Material is PEM data by reference: exactly one of its fields is set.
type Material struct {
	Secret *SecretRef `json:"secret,omitempty"`
	// File is an absolute path under one of Source.FileDirs.
	File string `json:"file,omitempty"`
	// InlinePEM is the PEM itself (only with Source.AllowInline).
	InlinePEM string `json:"inlinePem,omitempty"`
}

// TLS is a connection's TLS settings for wss://.
type TLS struct {
	CA         *Material `json:"ca,omitempty"`
	CAOnly     bool      `json:"caOnly,omitempty"`
	ClientCert *Material `json:"clientCertificate,omitempty"`
	ClientKey  *Material `json:"clientKey,omitempty"`
	ServerName string    `json:"serverName,omitempty"`
	// MinVersion is "" (TLS 1.2), "1.2" or "1.3".
	MinVersion string `json:"minVersion,omitempty"`
}

// SecretStore reads one secret: the sidecar's secrets API. A secret is a map of values.
type SecretStore interface {
	GetSecret(ctx context.Context, store, key string) (map[string]string, error)
}

// Source is where references are resolved, under the operator's rules.
type Source struct {
	// Secrets reads secret references; nil: every secret reference fails with ErrUnavailable.
	Secrets SecretStore
	// FileDirs are the directories (absolute, cleaned) whose files may be named as key
	// material (--tls-files-dir); none: file references are refused.
	FileDirs []string
	// AllowInline accepts InlinePEM (--allow-inline-tls).
	AllowInline bool
	// Allow lists the secrets references may name (--secret-allow); empty: none. It is checked
	// at Connect and again at every read (a connection may move to an instance with other flags).
	Allow SecretAllow
}

var (
	// ErrUnavailable means a referenced secret or file could not be read now (missing secret,
	// unknown store, store down, missing file). Connect answers FAILED_PRECONDITION; a
	// reconnect counts it as a failed attempt.
	ErrUnavailable = errors.New("credential unavailable")
	// ErrInvalidMaterial means what was read is not usable (not PEM, key does not match the
	// certificate). Connect answers FAILED_PRECONDITION.
	ErrInvalidMaterial = errors.New("invalid key material")
)

// IsCredentialError reports whether err is a dial that failed on its secrets or key material
// (ErrUnavailable or ErrInvalidMaterial): something an operator fixes, not the server.
func IsCredentialError(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidMaterial)
}

// Validate checks the shape of a connection's references against the operator's rules
// (at Connect, before anything is read): a message naming the field, for INVALID_ARGUMENT.
// secure is whether the URL is wss://; plain are the connection's plain headers.
func (s *Source) Validate(secretHeaders map[string]SecretRef, plain map[string]string, t *TLS, secure bool) error {
	if err := s.validateHeaders(secretHeaders, plain); err != nil {
		return err
	}
	return s.validateTLS(t, secure)
}

// Headers reads the values of secret headers. Errors wrap ErrUnavailable and name the header
// and the reference (never a value).
func (s *Source) Headers(ctx context.Context, refs map[string]SecretRef) (http.Header, error) {
	r := s.reader()
	h := make(http.Header, len(refs))
	for _, name := range sortedKeys(refs) {
		v, err := r.headerValue(ctx, name, refs[name])
		if err != nil {
			return nil, err
		}
		h.Set(name, v)
	}
	return h, nil
}

// TLSConfig reads t's material and builds the client configuration; nil t gives nil (the
// dialer's defaults). Errors wrap ErrUnavailable or ErrInvalidMaterial.
func (s *Source) TLSConfig(ctx context.Context, t *TLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	return s.reader().tlsConfig(ctx, t)
}
