package actors

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
)

const (
	wdSelf = "10.0.0.1:5002"
	wdB    = "10.0.0.2:5002"
	wdC    = "10.0.0.3:5002"
)

// fakeDirectory answers the watchdog's Locate calls from a table and records what it writes.
type fakeDirectory struct {
	mu      sync.Mutex
	locate  map[string]ConnectionInfo // id → where Locate puts it
	fail    map[string]error          // id → Locate's error
	located []string
	holders map[string]string // id → recorded holder (SetHolders, flattened)
	shards  map[string]bool   // shards written
	removed []string
}

func (d *fakeDirectory) Locate(_ context.Context, id string) (ConnectionInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.located = append(d.located, id)
	return d.locate[id], d.fail[id]
}

func (d *fakeDirectory) SetHolders(_ context.Context, shard string, h map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, addr := range h {
		if DirectoryShard(id) != shard {
			return errors.New("holder written to the wrong shard")
		}
		d.holders[id] = addr
	}
	d.shards[shard] = true
	return nil
}

func (d *fakeDirectory) RemoveMember(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removed = append(d.removed, id)
	return nil
}

// fakeHeld is the other instances: what each holds, or its error; and who was asked.
type fakeHeld struct {
	mu    sync.Mutex
	held  map[string][]string
	fail  map[string]error
	asked map[string][]string
}

func (f *fakeHeld) Held(_ context.Context, addr string, ids []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[addr] = append(f.asked[addr], ids...)
	return f.held[addr], f.fail[addr]
}

func newTestWatchdog(heldHere []string, dir *fakeDirectory, peers HeldChecker) *watchdog {
	return &watchdog{self: wdSelf, interval: time.Minute, dir: dir, peers: peers, log: zap.NewNop(),
		holds:   func(id string) bool { return slices.Contains(heldHere, id) },
		pending: map[string]map[string]string{}, unreachable: map[string]time.Time{}, wake: make(chan struct{}, 1),
		locating: map[string]bool{}, active: map[string]bool{}, sem: make(chan struct{}, DefaultReviveConcurrency)}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Ensure a watchdog round carries out route's decisions: each holder asked once about its
// own connections, Locate only for connections nobody holds, new holders recorded in their
// shard, missing connections removed from the directory.
func TestWatchdogRound(t *testing.T) {
	members := map[string]map[string]string{
		"s1": {"mine": wdSelf, "lost-here": wdSelf, "b-held": wdB, "b-lost": wdB},
		"s2": {"c-held": wdC, "unrecorded": "", "disconnected": wdB},
	}
	moved := ConnectionInfo{InstanceAddr: wdC}
	tests := []struct {
		name        string
		noPeers     bool
		held        map[string][]string
		fail        map[string]error
		locateFail  map[string]error
		stopping    bool
		wantAsked   map[string][]string
		wantLocated []string
		wantHolders map[string]string
		wantRemoved []string
		wantGone    []string
	}{
		{name: "every holder answers",
			held:        map[string][]string{wdB: {"b-held"}, wdC: {"c-held"}},
			wantAsked:   map[string][]string{wdB: {"b-held", "b-lost", "disconnected"}, wdC: {"c-held"}},
			wantLocated: []string{"b-lost", "disconnected", "lost-here", "unrecorded"},
			wantHolders: map[string]string{"b-lost": wdC, "lost-here": wdC, "unrecorded": wdC},
			wantRemoved: []string{"disconnected"}},
		{name: "holder unreachable: its connections are located, it counts as gone",
			held:        map[string][]string{wdC: {"c-held"}},
			fail:        map[string]error{wdB: errors.New("connection refused")},
			wantAsked:   map[string][]string{wdB: {"b-held", "b-lost", "disconnected"}, wdC: {"c-held"}},
			wantLocated: []string{"b-held", "b-lost", "disconnected", "lost-here", "unrecorded"},
			wantHolders: map[string]string{"b-held": wdC, "b-lost": wdC, "lost-here": wdC, "unrecorded": wdC},
			wantRemoved: []string{"disconnected"},
			wantGone:    []string{wdB}},
		{name: "Locate fails: nothing recorded, the next round retries",
			held:        map[string][]string{wdB: {"b-held", "disconnected"}, wdC: {"c-held"}},
			locateFail:  map[string]error{"b-lost": errors.New("sidecar down")},
			wantAsked:   map[string][]string{wdB: {"b-held", "b-lost", "disconnected"}, wdC: {"c-held"}},
			wantLocated: []string{"b-lost", "lost-here", "unrecorded"},
			wantHolders: map[string]string{"lost-here": wdC, "unrecorded": wdC}},
		{name: "no peer client: other instances' connections are located",
			noPeers:     true,
			wantAsked:   map[string][]string{},
			wantLocated: []string{"b-held", "b-lost", "c-held", "disconnected", "lost-here", "unrecorded"},
			wantHolders: map[string]string{"b-held": wdC, "b-lost": wdC, "c-held": wdC, "lost-here": wdC, "unrecorded": wdC},
			wantRemoved: []string{"disconnected"}},
		{name: "instance stopping: no Locate, nobody marked gone",
			fail:      map[string]error{wdB: context.Canceled, wdC: context.Canceled},
			stopping:  true,
			wantAsked: map[string][]string{wdB: {"b-held", "b-lost", "disconnected"}, wdC: {"c-held"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := &fakeDirectory{holders: map[string]string{}, shards: map[string]bool{},
				locate: map[string]ConnectionInfo{"b-held": moved, "b-lost": moved, "c-held": moved, "lost-here": moved, "unrecorded": moved}}
			dir.fail = map[string]error{"disconnected": &Error{Code: CodeNotFound, Message: "gone"}}
			for id, err := range tt.locateFail {
				dir.fail[id] = err
			}
			peers := &fakeHeld{held: tt.held, fail: tt.fail, asked: map[string][]string{}}
			w := newTestWatchdog([]string{"mine"}, dir, peers)
			if tt.noPeers {
				w.peers = nil
			}
			ctx, cancel := context.WithCancel(t.Context())
			if tt.stopping {
				cancel()
			}
			defer cancel()
			w.round(ctx, members)

			for addr, ids := range peers.asked {
				peers.asked[addr] = sorted(ids)
			}
			assert.Equal(t, tt.wantAsked, peers.asked, "Held calls")
			assert.Equal(t, tt.wantLocated, sorted(dir.located), "Locate calls")
			if tt.wantHolders == nil {
				tt.wantHolders = map[string]string{}
			}
			assert.Equal(t, tt.wantHolders, dir.holders, "recorded holders")
			assert.Equal(t, tt.wantRemoved, dir.removed, "removed from the directory")
			var gone []string
			for addr := range w.unreachable {
				if w.gone(addr) {
					gone = append(gone, addr)
				}
			}
			assert.Equal(t, tt.wantGone, gone, "holders counted as gone")
		})
	}
}

// Ensure a holder that did not answer is not asked again until the interval has passed: its
// connections are located directly meanwhile.
func TestWatchdogSkipsGoneHolder(t *testing.T) {
	dir := &fakeDirectory{holders: map[string]string{}, shards: map[string]bool{}, locate: map[string]ConnectionInfo{"b1": {InstanceAddr: wdC}}}
	peers := &fakeHeld{fail: map[string]error{wdB: errors.New("timeout")}, asked: map[string][]string{}}
	w := newTestWatchdog(nil, dir, peers)
	w.round(t.Context(), map[string]map[string]string{"s": {"b1": wdB}})
	w.round(t.Context(), map[string]map[string]string{"s": {"b1": wdB}})
	assert.Equal(t, map[string][]string{wdB: {"b1"}}, peers.asked, "asked once")
	assert.Equal(t, []string{"b1", "b1"}, dir.located, "located in both rounds")

	w.unreachable[wdB] = time.Now().Add(-time.Second) // the interval has passed
	w.round(t.Context(), map[string]map[string]string{"s": {"b1": wdB}})
	assert.Equal(t, map[string][]string{wdB: {"b1", "b1"}}, peers.asked, "asked again")
}
