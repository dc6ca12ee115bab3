package credentials_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// allowed parses an allow-list that the test knows to be valid.
func allowed(t testing.TB, entries ...string) credentials.SecretAllow {
	t.Helper()
	a, err := credentials.ParseSecretAllow(entries)
	require.NoError(t, err)
	return a
}

// Ensure --secret-allow entries allow a whole store, one key or the keys with a prefix, and
// that malformed entries are refused with a message saying what to give.
func TestParseSecretAllow(t *testing.T) {
	type probe struct {
		store, key string
		want       bool
	}
	tests := []struct {
		name    string
		entries []string
		probes  []probe
		err     string
	}{
		{name: "empty allows none", entries: nil, probes: []probe{{"s", "k", false}, {"", "", false}}},
		{name: "blank entries skipped", entries: []string{"", "  "}, probes: []probe{{"s", "k", false}}},
		{name: "whole store", entries: []string{"secretstore"},
			probes: []probe{{"secretstore", "anything", true}, {"secretstore", "a/b", true}, {"other", "anything", false}, {"secretstoreX", "k", false}, {"Secretstore", "k", false}}},
		{name: "store/*", entries: []string{"s/*"}, probes: []probe{{"s", "k", true}, {"t", "k", false}}},
		{name: "exact key", entries: []string{"s/api-token"},
			probes: []probe{{"s", "api-token", true}, {"s", "api-token2", false}, {"s", "api", false}, {"t", "api-token", false}, {"s", "API-TOKEN", false}}},
		{name: "key with slash", entries: []string{"vault/team/a/token"}, probes: []probe{{"vault", "team/a/token", true}, {"vault", "team/a", false}}},
		{name: "prefix", entries: []string{"secretstore/demo-*"},
			probes: []probe{{"secretstore", "demo-client-tls", true}, {"secretstore", "demo-", true}, {"secretstore", "demo", false}, {"secretstore", "prod-x", false}, {"other", "demo-x", false}}},
		{name: "several", entries: []string{" a/x ", "b", "c/p*"},
			probes: []probe{{"a", "x", true}, {"a", "y", false}, {"b", "z", true}, {"c", "pq", true}, {"c", "q", false}}},
		{name: "no store", entries: []string{"/key"}, err: `entry "/key": no store name`},
		{name: "no key", entries: []string{"s/"}, err: `entry "s/": no key after "s/"`},
		{name: "star in store", entries: []string{"*"}, err: `entry "*": the store name may not contain *`},
		{name: "star in store with key", entries: []string{"s*/k"}, err: "the store name may not contain *"},
		{name: "star inside key", entries: []string{"s/a*b"}, err: `entry "s/a*b": * may only end the entry (store/prefix*)`},
		{name: "two stars", entries: []string{"s/a**"}, err: "* may only end the entry"},
		{name: "control character", entries: []string{"s/a\nb"}, err: "contains the control character 0x0A"},
		{name: "tab", entries: []string{"s/a\tb"}, err: "contains the control character 0x09"},
		{name: "key too long", entries: []string{"s/" + strings.Repeat("k", credentials.MaxRefLength+1)}, err: "the key is longer than 256 characters"},
		{name: "store too long", entries: []string{strings.Repeat("s", credentials.MaxRefLength+1)}, err: "the store name is longer than 256 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := credentials.ParseSecretAllow(tc.entries)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			for _, p := range tc.probes {
				assert.Equal(t, p.want, a.Allows(p.store, p.key), "%s/%s", p.store, p.key)
			}
		})
	}
}

// Ensure secrets outside --secret-allow are refused at Connect (naming the field and the flag)
// and again at every read, as ErrUnavailable, without asking the store.
func TestSecretAllowEnforced(t *testing.T) {
	store := &fakeStore{}
	store.set("s", "api", map[string]string{"token": "Bearer s3cr3t"})
	store.set("s", "other", map[string]string{"token": "Bearer s3cr3t"})
	ca := secretMat("s", "other", "ca")
	headers := map[string]credentials.SecretRef{"X-Key": ref("s", "other", "token")}

	for _, src := range []*credentials.Source{
		{Secrets: store},
		{Secrets: store, Allow: allowed(t, "s/api", "t", "s/oth")},
	} {
		err := src.Validate(headers, nil, nil, true)
		require.Error(t, err)
		assert.Equal(t, `secret_headers["X-Key"]: secret store "s" key "other" is not one this service may read (--secret-allow)`, err.Error())
		err = src.Validate(nil, nil, &credentials.TLS{CA: ca}, true)
		require.Error(t, err)
		assert.Equal(t, `tls.ca: secret store "s" key "other" is not one this service may read (--secret-allow)`, err.Error())

		// A connection accepted elsewhere (another instance, other flags) fails at the dial.
		_, err = src.Headers(context.Background(), headers)
		require.ErrorIs(t, err, credentials.ErrUnavailable)
		assert.Equal(t, `secret header X-Key: secret store "s" key "other" is not one this service may read (--secret-allow)`, err.Error())
		_, err = src.TLSConfig(context.Background(), &credentials.TLS{CA: ca})
		require.ErrorIs(t, err, credentials.ErrUnavailable)
		assert.Contains(t, err.Error(), `tls.ca: secret store "s" key "other" is not one this service may read (--secret-allow)`)
		assert.Zero(t, store.readsOf("s", "other"), "the store is not asked")
	}

	src := &credentials.Source{Secrets: store, Allow: allowed(t, "s/api", "s/oth*")}
	require.NoError(t, src.Validate(headers, nil, &credentials.TLS{CA: ca}, true))
	h, err := src.Headers(context.Background(), map[string]credentials.SecretRef{"X-Key": ref("s", "api", "token")})
	require.NoError(t, err)
	assert.Equal(t, "Bearer s3cr3t", h.Get("X-Key"))
}

// FuzzParseSecretAllow feeds the parser arbitrary flag values: it must never panic, an accepted
// list must allow nothing of a store it does not name, and must allow exactly what its
// entries say.
func FuzzParseSecretAllow(f *testing.F) {
	for _, s := range []string{"secretstore/demo-*", "s", "s/k,t/p*", "*", "s/a*b", "/k", "s/", "s//", "a/b/c*", " s / k ", "s/*", "s\x00/k", "é/ü*"} {
		f.Add(s, "s", "k")
	}
	f.Fuzz(func(t *testing.T, flag, store, key string) {
		a, err := credentials.ParseSecretAllow(strings.Split(flag, ","))
		if err != nil {
			return
		}
		named := false
		for _, e := range strings.Split(flag, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			s, k, hasKey := strings.Cut(e, "/")
			if s != store {
				continue
			}
			if !hasKey || k == "*" || k == key || strings.HasSuffix(k, "*") && strings.HasPrefix(key, strings.TrimSuffix(k, "*")) {
				named = true
			}
		}
		if got := a.Allows(store, key); got != named {
			t.Fatalf("%q allows %q/%q: %v, want %v", flag, store, key, got, named)
		}
		if store == "" && a.Allows(store, key) {
			t.Fatalf("%q allows the empty store", flag)
		}
	})
}
