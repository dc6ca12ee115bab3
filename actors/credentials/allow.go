package credentials

import (
	"fmt"
	"strings"

	"github.com/websocketmanager/websocketmanager/actors/httpfield"
)

// SecretAllow is the operator's list of the secrets a Connect may reference (--secret-allow):
// without it any API caller could have any secret the sidecar can read sent to a server the
// caller controls. The zero value allows none.
type SecretAllow struct {
	entries []allowEntry
}

// allowEntry allows the keys of store: all of them, the one key, or those starting with key.
type allowEntry struct {
	store, key string
	anyKey     bool
	prefix     bool
}

// ParseSecretAllow parses --secret-allow entries: "store" (any key of the store), "store/key"
// (that key; a key may itself contain /) and "store/prefix*" (keys starting with prefix;
// "store/*" is the same as "store"). Empty entries are skipped.
func ParseSecretAllow(entries []string) (SecretAllow, error) {
	var a SecretAllow
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		entry, err := parseAllowEntry(e)
		if err != nil {
			return SecretAllow{}, fmt.Errorf("entry %q: %w", clip(e), err)
		}
		a.entries = append(a.entries, entry)
	}
	return a, nil
}

func parseAllowEntry(e string) (allowEntry, error) {
	if c, bad := httpfield.ControlChar(e); bad || strings.ContainsRune(e, '\t') {
		if !bad {
			c = '\t'
		}
		return allowEntry{}, fmt.Errorf("contains the control character 0x%02X", c)
	}
	store, key, hasKey := strings.Cut(e, "/")
	switch {
	case store == "":
		return allowEntry{}, fmt.Errorf("no store name: give store, store/key or store/prefix*")
	case strings.Contains(store, "*"):
		return allowEntry{}, fmt.Errorf("the store name may not contain *: give store (all its keys), store/key or store/prefix*")
	case len(store) > MaxRefLength:
		return allowEntry{}, fmt.Errorf("the store name is longer than %d characters", MaxRefLength)
	case !hasKey:
		return allowEntry{store: store, anyKey: true}, nil
	case key == "":
		return allowEntry{}, fmt.Errorf("no key after %q: give store (all its keys), store/key or store/prefix*", store+"/")
	}
	prefix := strings.HasSuffix(key, "*")
	key = strings.TrimSuffix(key, "*")
	if strings.Contains(key, "*") {
		return allowEntry{}, fmt.Errorf("* may only end the entry (store/prefix*)")
	}
	if len(key) > MaxRefLength {
		return allowEntry{}, fmt.Errorf("the key is longer than %d characters", MaxRefLength)
	}
	if prefix && key == "" {
		return allowEntry{store: store, anyKey: true}, nil
	}
	return allowEntry{store: store, key: key, prefix: prefix}, nil
}

// Allows reports whether a Connect may reference the secret key of store. Names are compared
// exactly (case-sensitive, as secret stores and Dapr component names are).
func (a SecretAllow) Allows(store, key string) bool {
	for _, e := range a.entries {
		if e.store != store {
			continue
		}
		switch {
		case e.anyKey:
			return true
		case e.prefix && strings.HasPrefix(key, e.key):
			return true
		case !e.prefix && key == e.key:
			return true
		}
	}
	return false
}

// notAllowed is the refusal of a reference outside the list (the field is not part of it).
func notAllowed(r SecretRef) string {
	return fmt.Sprintf("secret store %q key %q is not one this service may read (--secret-allow)", clip(r.Store), clip(r.Key))
}
