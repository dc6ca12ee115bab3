package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

func held(instance string, idsAndStatus ...string) []ConnectionInfo {
	var out []ConnectionInfo
	for _, s := range idsAndStatus {
		id, status, _ := strings.Cut(s, "=")
		if status == "" {
			status = StatusConnected
		}
		out = append(out, ConnectionInfo{ID: id, Status: status, InstanceID: instance, Tags: map[string]string{"on": instance}})
	}
	return out
}

func ids(infos []ConnectionInfo) string {
	var s []string
	for _, in := range infos {
		mark := ""
		switch {
		case in.InstanceID == "":
			mark = "?"
		case in.Status != StatusConnected:
			mark = "~"
		}
		s = append(s, in.ID+mark+in.InstanceID)
	}
	return strings.Join(s, " ")
}

// Ensure the merge of the instances' answers with the directory: each id once, unheld ids
// listed as CONNECTING with the reason (not under a tags filter), id order and page cuts that
// never skip an id an instance has not reported yet, and status filtering.
func TestMergeList(t *testing.T) {
	a := func(more bool, infos ...ConnectionInfo) heldAnswer { return heldAnswer{infos: infos, more: more} }
	tests := []struct {
		name     string
		answers  []heldAnswer
		members  []string
		q        listSpec
		want     string // id + "?" unheld / "~" not connected + instance
		wantNext string
	}{
		{"two instances, everything", []heldAnswer{a(false, held("A", "c", "a")...), a(false, held("B", "b")...)},
			[]string{"a", "b", "c"}, listSpec{}, "aA bB cA", ""},
		{"unheld ids come from the directory", []heldAnswer{a(false, held("A", "a")...)},
			[]string{"b", "a", "c"}, listSpec{}, "aA b? c?", ""},
		{"held but not (yet) in the directory is listed", []heldAnswer{a(false, held("A", "a", "new")...)},
			[]string{"a"}, listSpec{}, "aA newA", ""},
		{"a connection two instances report: the connected one", []heldAnswer{a(false, held("A", "x=CONNECTING")...), a(false, held("B", "x")...)},
			[]string{"x"}, listSpec{}, "xB", ""},
		{"both connected: the first instance id", []heldAnswer{a(false, held("B", "x")...), a(false, held("A", "x")...)},
			[]string{"x"}, listSpec{}, "xA", ""},
		{"tags filter leaves unheld out", []heldAnswer{a(false, held("A", "a")...)},
			[]string{"a", "b"}, listSpec{tags: map[string]string{"on": "A"}}, "aA", ""},
		{"status CONNECTING keeps unheld", []heldAnswer{a(false, held("A", "a", "c=CONNECTING")...)},
			[]string{"a", "b", "c"}, listSpec{status: StatusConnecting}, "b? c~A", ""},
		{"another status leaves unheld out", []heldAnswer{a(false, held("A", "a")...)},
			[]string{"a", "b"}, listSpec{status: StatusConnected}, "aA", ""},
		{"page of 2 across instances", []heldAnswer{a(true, held("A", "a", "d")...), a(false, held("B", "b")...)},
			[]string{"a", "b", "d", "e", "f"}, listSpec{pageSize: 2}, "aA bB", "b"},
		{"page bounded by an instance that has more: unheld after its last id wait", []heldAnswer{a(true, held("A", "a", "b")...), a(false, held("B", "z")...)},
			[]string{"a", "b", "c", "z"}, listSpec{pageSize: 2}, "aA bA", "b"},
		{"page after a token", []heldAnswer{a(false, held("A", "c", "d")...), a(false, held("B", "e")...)},
			[]string{"a", "b", "c", "d", "e", "f"}, listSpec{pageSize: 3, after: "b"}, "cA dA eB", "e"},
		{"last page", []heldAnswer{a(false, held("A", "e")...)},
			[]string{"e", "f"}, listSpec{pageSize: 3, after: "d"}, "eA f?", ""},
		{"exactly a page, nobody has more", []heldAnswer{a(false, held("A", "a", "b")...)},
			[]string{"a", "b"}, listSpec{pageSize: 2}, "aA bA", ""},
		{"ids not after the token are dropped", []heldAnswer{a(false, held("A", "a", "c")...)},
			[]string{"a", "b", "c"}, listSpec{pageSize: 5, after: "b"}, "cA", ""},
		{"nothing", nil, nil, listSpec{pageSize: 5}, "", ""},
		{"status CONNECTING, paged: the page is cut before the filter", []heldAnswer{a(false, held("A", "a", "b", "c=CONNECTING")...)},
			[]string{"a", "b", "c", "d"}, listSpec{pageSize: 2, status: StatusConnecting}, "", "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := mergeList(tt.answers, tt.members, tt.q)
			assert.Equal(t, tt.want, ids(got))
			assert.Equal(t, tt.wantNext, next)
			for _, in := range got {
				if in.InstanceID == "" {
					assert.Equal(t, StatusConnecting, in.Status)
					assert.Equal(t, UnheldReason, in.LastError)
				}
			}
		})
	}
}

// Ensure List without pages keeps the order it always had: oldest first, then by id.
func TestMergeListUnpagedOldestFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	infos := []ConnectionInfo{{ID: "a", CreatedAt: t0.Add(2 * time.Second)}, {ID: "b", CreatedAt: t0}, {ID: "c", CreatedAt: t0.Add(2 * time.Second)}}
	got, next := mergeList([]heldAnswer{{infos: infos}}, []string{"a", "b", "c"}, listSpec{})
	assert.Equal(t, []string{"b", "a", "c"}, []string{got[0].ID, got[1].ID, got[2].ID})
	assert.Empty(t, next)
}

// Ensure page tokens round-trip and anything else is refused as INVALID_ARGUMENT.
func TestPageToken(t *testing.T) {
	for _, id := range []string{"a", "conn-1", "ü/+=", strings.Repeat("x", 128)} {
		after, err := pageAfter(PageToken(id))
		require.NoError(t, err)
		assert.Equal(t, id, after)
	}
	after, err := pageAfter("")
	require.NoError(t, err)
	assert.Empty(t, after)
	for _, bad := range []string{"a", "djE6", "!!!", "djI6YQ", "YQ"} { // "v1:" alone, "v2:a", "a"
		_, err := pageAfter(bad)
		assert.Equal(t, CodeInvalidArgument, CodeOf(err), bad)
	}
}

// listActors is the directory for List: members and holders; any other actor call is a
// failure of the test (List must not call connection actors).
type listActors struct {
	fakeActors
	ids     []string
	holders []string
}

// Directory answers as the shards do: with a limit, each shard its first limit ids after the
// given one.
func (f *listActors) Directory(_ context.Context, after string, limit int) ([]string, []string, error) {
	if limit <= 0 {
		return f.ids, f.holders, nil
	}
	shards := map[string][]string{}
	for _, id := range f.ids {
		if id > after {
			shards[DirectoryShard(id)] = append(shards[DirectoryShard(id)], id)
		}
	}
	var out []string
	for _, ids := range shards {
		sort.Strings(ids)
		out = append(out, ids[:min(limit, len(ids))]...)
	}
	return out, f.holders, nil
}
func (f *listActors) Holders(context.Context) ([]string, error) { return f.holders, nil }

type fakeLocal struct {
	addr  string
	infos []ConnectionInfo // sorted by id
}

func (f *fakeLocal) InstanceAddr() string { return f.addr }
func (f *fakeLocal) ListHeld(q HeldQuery) ([]ConnectionInfo, bool) {
	return pageOf(f.infos, q)
}

// pageOf answers q from infos (sorted by id) as an instance does.
func pageOf(infos []ConnectionInfo, q HeldQuery) ([]ConnectionInfo, bool) {
	var out []ConnectionInfo
	for _, in := range infos {
		if in.ID <= q.After || !matches(in.Tags, q.Tags) || (q.Status != "" && in.Status != q.Status) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			return out, true
		}
		out = append(out, in)
	}
	return out, false
}

type fakePeers struct {
	mu    sync.Mutex
	by    map[string][]ConnectionInfo
	err   map[string]error
	calls map[string]int
}

func (f *fakePeers) ListHeld(_ context.Context, addr string, q HeldQuery) ([]ConnectionInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[addr]++
	if err := f.err[addr]; err != nil {
		return nil, false, err
	}
	if q.Limit <= 0 || q.Limit > MaxListPageSize {
		return nil, false, fmt.Errorf("limit %d", q.Limit)
	}
	infos, more := pageOf(f.by[addr], q)
	return infos, more, nil
}

func numbered(instance string, from, to int) []ConnectionInfo {
	var out []ConnectionInfo
	for i := from; i < to; i++ {
		out = append(out, ConnectionInfo{ID: fmt.Sprintf("c%05d", i), Status: StatusConnected, InstanceID: instance})
	}
	return out
}

// Ensure Router.List asks this instance locally and the others through the peer API, pages
// through an instance's connections without a page size, covers every id exactly once in
// pages, counts an instance that cannot be asked as holding nothing (its connections listed
// from the directory, the instance named in a log line), fails naming one that refuses the
// peer key, and never calls a connection's actor.
func TestRouterList(t *testing.T) {
	local := &fakeLocal{addr: "self:1", infos: numbered("A", 0, 4000)}
	peers := &fakePeers{by: map[string][]ConnectionInfo{"b:1": numbered("B", 4000, 12000)}}
	dir := &listActors{holders: []string{"self:1", "b:1"}}
	for i := range 12010 { // the last 10 are held by nobody
		dir.ids = append(dir.ids, fmt.Sprintf("c%05d", i))
	}
	core, logs := observer.New(zap.WarnLevel)
	r := (&Router{actors: dir, sessions: &fakeSessions{}}).WithLists(local, peers, zap.New(core))
	ctx := context.Background()

	all, next, err := r.List(ctx, ListQuery{})
	require.NoError(t, err)
	assert.Empty(t, next)
	require.Len(t, all, 12010)
	assert.Equal(t, 2, peers.calls["b:1"], "8000 held by b: two pages of MaxListPageSize")

	var paged []string
	token := ""
	for {
		page, next, err := r.List(ctx, ListQuery{PageSize: 777, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 777)
		for _, in := range page {
			paged = append(paged, in.ID)
		}
		if next == "" {
			break
		}
		token = next
	}
	assert.Equal(t, dir.ids, paged, "every id once, in id order")
	assert.True(t, slices.IsSorted(paged))

	_, _, err = r.List(ctx, ListQuery{PageSize: MaxListPageSize + 1})
	assert.Equal(t, CodeInvalidArgument, CodeOf(err))
	_, _, err = r.List(ctx, ListQuery{PageSize: 10, PageToken: "garbage"})
	assert.Equal(t, CodeInvalidArgument, CodeOf(err))
	_, _, err = r.List(ctx, ListQuery{PageToken: PageToken("c00001")})
	assert.Equal(t, CodeInvalidArgument, CodeOf(err), "a token without page_size")
	assert.Contains(t, err.Error(), "page_token needs page_size")

	for _, tt := range []struct {
		name   string
		err    error
		logged bool
	}{
		{"nothing runs there", fmt.Errorf("%w: connection refused", ErrInstanceGone), false},
		{"unreachable or slow (a vanished pod)", context.DeadlineExceeded, true},
		{"an older version without ListHeld", errors.New("rpc error: code = Unimplemented"), true},
	} {
		peers.err = map[string]error{"b:1": tt.err}
		logs.TakeAll()
		all, _, err = r.List(ctx, ListQuery{})
		require.NoError(t, err, tt.name)
		unheld := 0
		for _, in := range all {
			if in.InstanceID == "" {
				unheld++
				assert.Equal(t, UnheldReason, in.LastError)
			}
		}
		assert.Equal(t, 8010, unheld, tt.name)
		if tt.logged {
			require.Equal(t, 1, logs.Len(), "one line per List, not per id: %s", tt.name)
			assert.Contains(t, fmt.Sprint(logs.All()[0].ContextMap()["instances"]), "b:1")
		} else {
			assert.Zero(t, logs.Len(), tt.name)
		}
	}

	peers.err = map[string]error{"b:1": fmt.Errorf("%w: rpc error: code = Unauthenticated", ErrPeerRefused)}
	_, _, err = r.List(ctx, ListQuery{})
	assert.Equal(t, CodeUnavailable, CodeOf(err), "a refused peer key is a configuration to fix")
	assert.Contains(t, err.Error(), "b:1")

	assert.Empty(t, dir.calls, "List called a connection actor")
}

// Ensure the held specs answer ListHeld as the actor's Get would, from memory: what the
// copy leaves out (header values, on-connect messages) changes nothing in the description,
// and a session that is gone is not listed.
func TestListHeld(t *testing.T) {
	reg := session.NewRegistry(session.DefaultConfig(), nil, nil, "inst-1", zap.NewNop())
	d := &Deps{InstanceID: "inst-1", InstanceAddr: "127.0.0.1:5002", Registry: reg}
	full := &spec{ConnectArgs: ConnectArgs{URL: "wss://user:pw@example.com/x", AutoReconnect: false,
		Headers: map[string]string{"Authorization": "secret"}, OnConnectMessages: []string{"hello"},
		Tags: map[string]string{"team": "a"}, CreatedAt: time.Unix(1_800_000_000, 0).UTC(),
		SendRate: &SendRateArgs{PerSecond: 3}, EgressProxy: "corp",
		SecretHeaders: map[string]credentials.SecretRef{"X-Key": {Store: "s", Key: "k"}},
		TLS:           &credentials.TLS{ServerName: "example.com"}},
		Topic: "t", Publish: &PublishSettings{BatchMaxFrames: 5}}
	for _, id := range []string{"b", "a", "c"} {
		sess, err := reg.Lost(session.Spec{ID: id, URL: full.URL}, "lost")
		require.NoError(t, err)
		d.held.set(id, full)
		assert.Equal(t, d.describe(id, full, sess, nil), d.describe(id, d.held.m[id], sess, nil), "the copy describes the same")
	}
	other := *full
	other.Tags = map[string]string{"team": "b"}
	d.held.set("c", &other)
	reg.Close(context.Background(), "b", 1000, "gone")

	infos, more := d.listHeld(HeldQuery{})
	assert.False(t, more)
	assert.Equal(t, "a~inst-1 c~inst-1", ids(infos), "b's session is gone")
	assert.NotContains(t, d.held.m, "b", "and its entry dropped")
	assert.Equal(t, "wss://example.com/x", infos[0].URL, "credentials redacted")
	assert.Equal(t, []string{"X-Key"}, infos[0].SecretHeaderNames)

	infos, more = d.listHeld(HeldQuery{Limit: 1})
	assert.True(t, more)
	assert.Equal(t, "a~inst-1", ids(infos))
	infos, _ = d.listHeld(HeldQuery{After: "a"})
	assert.Equal(t, "c~inst-1", ids(infos))
	infos, _ = d.listHeld(HeldQuery{Tags: map[string]string{"team": "b"}})
	assert.Equal(t, "c~inst-1", ids(infos))
	infos, _ = d.listHeld(HeldQuery{Status: StatusConnected})
	assert.Empty(t, infos)
	infos, _ = d.listHeld(HeldQuery{Status: StatusError})
	assert.Len(t, infos, 2)
}

// BenchmarkMergeList merges 100,000 connections held by 5 instances with the directory's ids,
// whole and as the first page of 500.
func BenchmarkMergeList(b *testing.B) {
	const n, instances = 100_000, 5
	answers := make([]heldAnswer, instances)
	members := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("conn-%07d", (i*7919)%n)
		members = append(members, id)
		k := i % instances
		answers[k].infos = append(answers[k].infos, ConnectionInfo{ID: id, Status: StatusConnected, InstanceID: fmt.Sprint(k),
			CreatedAt: time.Unix(int64(i), 0)})
	}
	for k := range answers {
		slices.SortFunc(answers[k].infos, func(a, b ConnectionInfo) int { return strings.Compare(a.ID, b.ID) })
	}
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			out, _ := mergeList(answers, members, listSpec{})
			if len(out) != n {
				b.Fatal(len(out))
			}
		}
	})
	b.Run("page500", func(b *testing.B) {
		pages := make([]heldAnswer, instances)
		for k := range answers {
			pages[k] = heldAnswer{infos: answers[k].infos[:500], more: true}
		}
		for b.Loop() {
			out, _ := mergeList(pages, members, listSpec{pageSize: 500})
			if len(out) != 500 {
				b.Fatal(len(out))
			}
		}
	})
}
