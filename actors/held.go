package actors

import (
	"slices"
	"strings"
	"sync"
)

// heldSpecs keeps, for each session this process holds, the persisted spec it was opened
// with (what [Deps.describe] needs besides the session), so that List is answered from memory
// instead of one actor call per connection. The actor updates it wherever it opens a session,
// changes the publish settings, or closes it; the registry stays the authority on whether a
// session is held (an entry whose session is gone is skipped, and dropped).
type heldSpecs struct {
	mu sync.Mutex
	m  map[string]*spec
}

// set records s (a copy without what describing never needs: header values, on-connect
// messages and inline TLS key material stay in the session's own spec only).
func (h *heldSpecs) set(id string, s *spec) {
	c := *s
	c.Headers, c.OnConnectMessages, c.TLS = nil, nil, shownTLS(s.TLS)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*spec{}
	}
	h.m[id] = &c
}

func (h *heldSpecs) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, id)
}

// drop forgets id's entry if it is still s (a session opened meanwhile recorded a new one).
func (h *heldSpecs) drop(id string, s *spec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[id] == s {
		delete(h.m, id)
	}
}

type heldEntry struct {
	id   string
	spec *spec
}

// after returns the entries with an id after `after` whose tags hold filter, in id order.
func (h *heldSpecs) after(after string, filter map[string]string) []heldEntry {
	h.mu.Lock()
	out := make([]heldEntry, 0, len(h.m))
	for id, s := range h.m {
		if id > after && matches(s.Tags, filter) {
			out = append(out, heldEntry{id, s})
		}
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b heldEntry) int { return strings.Compare(a.id, b.id) })
	return out
}

// HeldQuery selects the held connections ListHeld describes.
type HeldQuery struct {
	Tags map[string]string
	// Status is one of the Status names; "" matches any.
	Status string
	// After: only ids after this one (byte-wise order).
	After string
	// Limit: at most this many (0: all).
	Limit int
}

// listHeld describes the sessions this process holds that q selects, in id order, from memory:
// no actor call, no state read, nothing dialed. more reports that Limit cut the answer short.
func (d *Deps) listHeld(q HeldQuery) (infos []ConnectionInfo, more bool) {
	for _, e := range d.held.after(q.After, q.Tags) {
		sess := d.Registry.Get(e.id)
		if sess == nil { // closed without the actor (shutdown, lost sidecar)
			d.held.drop(e.id, e.spec)
			continue
		}
		in := d.describe(e.id, e.spec, sess, nil)
		if q.Status != "" && in.Status != q.Status {
			continue
		}
		if q.Limit > 0 && len(infos) == q.Limit {
			return infos, true
		}
		infos = append(infos, in)
	}
	return infos, false
}

// ListHeld describes the connections whose socket this process holds, as their actors' Get
// would, from memory. See [HeldQuery].
func (h *Host) ListHeld(q HeldQuery) ([]ConnectionInfo, bool) { return h.deps.listHeld(q) }

// InstanceAddr is the gRPC address other instances reach this one at.
func (h *Host) InstanceAddr() string { return h.deps.InstanceAddr }
