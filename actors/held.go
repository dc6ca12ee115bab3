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

// after returns the entries with an id after `after` whose tags hold filter, in id order: all
// of them, or with n > 0 the n first. A page of 500 of an instance holding 20,000 keeps 500
// on a heap instead of sorting 20,000.
func (h *heldSpecs) after(after string, filter map[string]string, n int) []heldEntry {
	h.mu.Lock()
	var out []heldEntry
	if n <= 0 {
		out = make([]heldEntry, 0, len(h.m))
	} else {
		out = make([]heldEntry, 0, n+1)
	}
	for id, s := range h.m {
		if id <= after || !matches(s.Tags, filter) {
			continue
		}
		if n <= 0 {
			out = append(out, heldEntry{id, s})
			continue
		}
		if len(out) == n && id >= out[0].id {
			continue // not among the n first
		}
		out = append(out, heldEntry{id, s})
		up(out, len(out)-1)
		if len(out) > n {
			out[0] = out[len(out)-1]
			out = out[:len(out)-1]
			down(out, 0)
		}
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b heldEntry) int { return strings.Compare(a.id, b.id) })
	return out
}

// up and down keep out a max-heap by id (the largest of the n first at out[0]).
func up(out []heldEntry, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if out[p].id >= out[i].id {
			return
		}
		out[p], out[i] = out[i], out[p]
		i = p
	}
}

func down(out []heldEntry, i int) {
	for {
		l, big := 2*i+1, i
		if l < len(out) && out[l].id > out[big].id {
			big = l
		}
		if r := l + 1; r < len(out) && out[r].id > out[big].id {
			big = r
		}
		if big == i {
			return
		}
		out[i], out[big] = out[big], out[i]
		i = big
	}
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
	if q.Limit <= 0 {
		infos, _, _ = d.heldPage(q, 0)
		return infos, false
	}
	// The page's first Limit+1 held ids decide it, unless some are closed or filtered out by
	// status: then the next ones after the last seen.
	for {
		// A whole page each time: asking for only the few still missing would scan every held
		// connection once per missing one.
		page, last, exhausted := d.heldPage(q, q.Limit+1)
		for _, in := range page {
			if len(infos) == q.Limit {
				return infos, true
			}
			infos = append(infos, in)
		}
		if exhausted {
			return infos, false
		}
		q.After = last
	}
}

// heldPage describes the first n held connections after q.After that q selects (n ≤ 0: all);
// last is the last id looked at, exhausted that there were no more than n to look at.
func (d *Deps) heldPage(q HeldQuery, n int) (infos []ConnectionInfo, last string, exhausted bool) {
	entries := d.held.after(q.After, q.Tags, n)
	exhausted = n <= 0 || len(entries) < n
	for _, e := range entries {
		last = e.id
		sess := d.Registry.Get(e.id)
		if sess == nil { // closed without the actor (shutdown, lost sidecar)
			d.held.drop(e.id, e.spec)
			continue
		}
		in := d.describe(e.id, e.spec, sess, nil)
		if q.Status != "" && in.Status != q.Status {
			continue
		}
		infos = append(infos, in)
	}
	return infos, last, exhausted
}

// ListHeld describes the connections whose socket this process holds, as their actors' Get
// would, from memory. See [HeldQuery].
func (h *Host) ListHeld(q HeldQuery) ([]ConnectionInfo, bool) { return h.deps.listHeld(q) }

// InstanceAddr is the gRPC address other instances reach this one at.
func (h *Host) InstanceAddr() string { return h.deps.InstanceAddr }
