package credentials_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// fakeStore is an in-memory secret store: store → key → fields. It counts reads.
type fakeStore struct {
	mu      sync.Mutex
	secrets map[string]map[string]map[string]string
	down    bool
	reads   map[string]int
}

func (f *fakeStore) GetSecret(_ context.Context, store, key string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reads == nil {
		f.reads = map[string]int{}
	}
	f.reads[store+"/"+key]++
	if f.down {
		return nil, errors.New("connection refused")
	}
	s, ok := f.secrets[store]
	if !ok {
		return nil, fmt.Errorf("secret store %s not found", store)
	}
	v, ok := s[key]
	if !ok {
		return nil, errors.New("secret not found")
	}
	out := map[string]string{}
	for k, x := range v {
		out[k] = x
	}
	return out, nil
}

func (f *fakeStore) set(store, key string, fields map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secrets == nil {
		f.secrets = map[string]map[string]map[string]string{}
	}
	if f.secrets[store] == nil {
		f.secrets[store] = map[string]map[string]string{}
	}
	f.secrets[store][key] = fields
}

func (f *fakeStore) readsOf(store, key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[store+"/"+key]
}

// Ensure secret headers are read from the store with the documented field selection, and
// that each failure names the header and reference, wraps the right error and never shows a
// value.
func TestHeaders(t *testing.T) {
	const value = "Bearer s3cr3t-value"
	tests := []struct {
		name    string
		secrets map[string]map[string]string // key → fields, in store "s"
		refs    map[string]credentials.SecretRef
		want    http.Header
		kind    error
		errText string
	}{
		{name: "field", secrets: map[string]map[string]string{"api": {"token": value, "other": "x"}},
			refs: map[string]credentials.SecretRef{"authorization": ref("s", "api", "token")}, want: http.Header{"Authorization": {value}}},
		{name: "value named key", secrets: map[string]map[string]string{"api": {"api": value, "other": "x"}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "")}, want: http.Header{"X-Key": {value}}},
		{name: "only value", secrets: map[string]map[string]string{"api": {"token": value}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "")}, want: http.Header{"X-Key": {value}}},
		{name: "trailing line break dropped", secrets: map[string]map[string]string{"api": {"token": value + "\r\n"}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "")}, want: http.Header{"X-Key": {value}}},
		{name: "two headers", secrets: map[string]map[string]string{"api": {"a": "1", "b": "2"}},
			refs: map[string]credentials.SecretRef{"X-A": ref("s", "api", "a"), "X-B": ref("s", "api", "b")}, want: http.Header{"X-A": {"1"}, "X-B": {"2"}}},
		{name: "field missing", secrets: map[string]map[string]string{"api": {"token": value}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "f")}, kind: credentials.ErrUnavailable,
			errText: `secret header X-Key: secret store "s" key "api" field "f": not found (the secret has the fields token)`},
		{name: "ambiguous", secrets: map[string]map[string]string{"api": {"a": value, "b": value}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "")}, kind: credentials.ErrUnavailable,
			errText: `secret header X-Key: secret store "s" key "api": the secret has the fields a, b; name one in field`},
		{name: "key missing", secrets: map[string]map[string]string{},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "nope", "")}, kind: credentials.ErrUnavailable,
			errText: `secret header X-Key: secret store "s" key "nope": secret not found`},
		{name: "store missing", refs: map[string]credentials.SecretRef{"X-Key": ref("other", "k", "")}, kind: credentials.ErrUnavailable,
			errText: `secret header X-Key: secret store "other" key "k": secret store other not found`},
		{name: "line break inside", secrets: map[string]map[string]string{"api": {"token": "a\r\nX-Injected: 1"}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "")}, kind: credentials.ErrInvalidMaterial,
			errText: `secret header X-Key: the value read from secret store "s" key "api" contains the control character 0x0D, which a header value may not (the value is not shown)`},
		{name: "NUL", secrets: map[string]map[string]string{"api": {"token": "a\x00b"}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "")}, kind: credentials.ErrInvalidMaterial, errText: "control character 0x00"},
		{name: "too long", secrets: map[string]map[string]string{"api": {"token": strings.Repeat("x", 9000)}},
			refs: map[string]credentials.SecretRef{"X-Key": ref("s", "api", "")}, kind: credentials.ErrInvalidMaterial, errText: "is larger than 8192 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeStore{}
			store.set("s", "placeholder", map[string]string{})
			for k, v := range tc.secrets {
				store.set("s", k, v)
			}
			src := &credentials.Source{Secrets: store, Allow: allowed(t, "s", "other")}
			h, err := src.Headers(context.Background(), tc.refs)
			if tc.kind == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, h)
				return
			}
			require.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), tc.errText)
			assert.NotContains(t, err.Error(), "s3cr3t")
			assert.NotContains(t, err.Error(), "Injected")
		})
	}
}

// Ensure a store that is down or absent fails with ErrUnavailable (the store's error kept
// for errors.Is), and that each secret is read once per call.
func TestHeadersStore(t *testing.T) {
	store := &fakeStore{}
	store.set("s", "api", map[string]string{"a": "1", "b": "2"})
	src := &credentials.Source{Secrets: store, Allow: allowed(t, "s/api")}
	refs := map[string]credentials.SecretRef{"X-A": ref("s", "api", "a"), "X-B": ref("s", "api", "b")}
	_, err := src.Headers(context.Background(), refs)
	require.NoError(t, err)
	assert.Equal(t, 1, store.readsOf("s", "api"), "one read per secret per call")
	_, err = src.Headers(context.Background(), refs)
	require.NoError(t, err)
	assert.Equal(t, 2, store.readsOf("s", "api"), "read again at the next call (rotation)")

	store.set("s", "api", map[string]string{"a": "rotated", "b": "2"})
	h, err := src.Headers(context.Background(), refs)
	require.NoError(t, err)
	assert.Equal(t, "rotated", h.Get("X-A"))

	store.down = true
	_, err = src.Headers(context.Background(), refs)
	require.ErrorIs(t, err, credentials.ErrUnavailable)
	assert.Equal(t, `secret header X-A: secret store "s" key "api" field "a": connection refused`, err.Error())

	_, err = (&credentials.Source{Allow: allowed(t, "s")}).Headers(context.Background(), refs)
	require.ErrorIs(t, err, credentials.ErrUnavailable)
	assert.Contains(t, err.Error(), "this service has no secret store client")
}
