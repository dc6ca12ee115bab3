package actors

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// MaxListPageSize bounds ListQuery.PageSize and one ListHeld answer between instances.
const MaxListPageSize = 5000

// UnheldReason is the last error of a connection that the directory has and no answering
// instance holds (its instance died, or did not answer List). It promises no outcome: the
// watchdog's takeover re-establishes a connection with auto_reconnect, and ends one without in
// ERROR.
const UnheldReason = "held by no instance now (its instance stopped or does not answer); the failover watchdog takes it over within a few seconds"

// Bounds of the calls one List makes to other instances. The timeout is short: a List waits
// for the slowest instance, and one that does not answer in time is listed from the directory.
const (
	listPeerConcurrency = 16
	listPeerTimeout     = 3 * time.Second
)

// ErrInstanceGone says that no instance this one may call runs at an address: nothing listens
// there any more (the dial was refused: the process is gone), or the peer policy refuses the
// address. Its connections are listed as held by no instance, not as a failure of List.
var ErrInstanceGone = errors.New("no instance runs at this address")

// ErrPeerRefused says that this instance may not ask other instances: it has no peer key, or
// an instance refuses its peer key (UNAUTHENTICATED, PERMISSION_DENIED). A configuration to
// fix, so List fails with it instead of listing that instance's connections as unheld.
var ErrPeerRefused = errors.New("the peer key is missing or refused")

// ListQuery selects what [Router.List] returns.
type ListQuery struct {
	// Tags: only connections whose tags hold all these pairs.
	Tags map[string]string
	// Status is one of the Status names; "" matches any.
	Status string
	// PageSize: at most this many, in id order (0: all, oldest first).
	PageSize int
	// PageToken is the next token of the previous page ("" for the first).
	PageToken string
}

// HeldLister answers which connections this process holds, from memory ([*Host]).
type HeldLister interface {
	ListHeld(q HeldQuery) (infos []ConnectionInfo, more bool)
	InstanceAddr() string
}

// PeerLister asks the instance at addr for the connections it holds (the service's peer
// client). An error wrapping [ErrInstanceGone] means that nothing runs there.
type PeerLister interface {
	ListHeld(ctx context.Context, addr string, q HeldQuery) (infos []ConnectionInfo, more bool, err error)
}

// WithLists makes List ask instances for the connections they hold (this one through local,
// the others through peers) instead of calling each connection's actor. Set it before serving.
// log (nil: none) names the instances that do not answer a List.
func (r *Router) WithLists(local HeldLister, peers PeerLister, log *zap.Logger) *Router {
	if log == nil {
		log = zap.NewNop()
	}
	r.local, r.peers, r.listLog = local, peers, log
	return r
}

// ListHeld describes the connections this process holds (the peer API's answer).
func (r *Router) ListHeld(q HeldQuery) ([]ConnectionInfo, bool) {
	if r.local == nil {
		return nil, false
	}
	return r.local.ListHeld(q)
}

// pageTokenPrefix versions the page token, so its form can change without misreading old ones.
const pageTokenPrefix = "v1:"

// PageToken returns the opaque token of the page after id.
func PageToken(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + id))
}

// pageAfter returns the id a page token continues after ("" for no token).
func pageAfter(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	after, ok := strings.CutPrefix(string(raw), pageTokenPrefix)
	if err != nil || !ok || after == "" {
		return "", errorf(CodeInvalidArgument, "page_token is not one List returned; start again without it").Err()
	}
	return after, nil
}

// List describes the connections q selects: every instance reports the connections it holds
// from memory (one call per instance, this one without a call), and the directory supplies
// the ids no answering instance holds (CONNECTING with [UnheldReason], until the watchdog
// takes them over). It never calls a connection's actor, so it never activates one or dials.
// It returns the token of the next page ("" on the last page and without PageSize).
//
// An instance that cannot be asked (nothing runs there, unreachable, slower than
// listPeerTimeout, an older version without ListHeld) counts as holding nothing: after a
// rolling update the directory names vanished pods for minutes, and List must not fail
// meanwhile. Only [ErrPeerRefused] fails it (UNAVAILABLE, naming the instance).
func (r *Router) List(ctx context.Context, q ListQuery) ([]ConnectionInfo, string, error) {
	if q.PageSize < 0 || q.PageSize > MaxListPageSize {
		return nil, "", errorf(CodeInvalidArgument, "page_size must be between 0 (everything) and %d", MaxListPageSize).Err()
	}
	if q.PageToken != "" && q.PageSize == 0 {
		// Unpaged answers are oldest first, not in id order: a token would skip by the wrong order.
		return nil, "", errorf(CodeInvalidArgument, "page_token needs page_size (the page_size of the List that returned it)").Err()
	}
	after, err := pageAfter(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	if r.local == nil {
		return nil, "", errorf(CodeInternal, "List is not wired to the instances (WithLists)").Err()
	}
	hq := HeldQuery{Tags: q.Tags, Status: q.Status, After: after, Limit: q.PageSize}
	if q.Status == StatusConnecting {
		// Unheld connections are CONNECTING: telling them apart needs every held id, whatever
		// its status (mergeList filters). A page may then hold fewer than PageSize.
		hq.Status = ""
	}
	// The other instances the last List found are asked while the directory is read; this
	// one, and those the directory names besides, after it. A List takes about the longer of
	// the two, not both. This instance is asked after the read, so that a Connect it completes
	// meanwhile (held, then added to the directory) is never listed as held by no instance;
	// another instance's can be, for that one List (docs/scaling.md).
	var known []string
	if p := r.lastHolders.Load(); p != nil {
		known = *p
	}
	type asked struct {
		answers []heldAnswer
		err     error
	}
	first := make(chan asked, 1)
	go func() {
		a, err := r.askInstances(ctx, known, hq, false)
		first <- asked{a, err}
	}()
	// One read of every shard gives both; for a page only as many ids of each shard as the
	// page can need (see [Client.Directory]), so a page costs the same at any fleet size.
	members, holders, err := r.actors.Directory(ctx, after, q.PageSize)
	got := <-first
	if err != nil {
		return nil, "", err
	}
	if got.err != nil {
		return nil, "", got.err
	}
	answers := got.answers
	r.lastHolders.Store(&holders)
	more, err := r.askInstances(ctx, without(holders, known), hq, true)
	if err != nil {
		return nil, "", err
	}
	answers = append(answers, more...)
	if err := ctx.Err(); err != nil {
		return nil, "", err // the caller gave up: the instances did not fail to answer
	}
	out, next := mergeList(answers, members, listSpec{tags: q.Tags, status: q.Status, pageSize: q.PageSize, after: after})
	if next != "" {
		return out, PageToken(next), nil
	}
	return out, "", nil
}

// heldAnswer is one instance's answer: its held connections in id order, and whether more
// matched after the last.
type heldAnswer struct {
	infos []ConnectionInfo
	more  bool
}

// without returns the addresses of a that are not in b.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// askInstances asks every other instance of addrs (listPeerConcurrency at once), and this one
// with self, for the connections they hold that hq selects. The answers leave out the
// instances that cannot be asked; only [ErrPeerRefused] fails.
func (r *Router) askInstances(ctx context.Context, addrs []string, hq HeldQuery, self bool) ([]heldAnswer, error) {
	selfAddr := r.local.InstanceAddr()
	var answers []heldAnswer
	if self {
		infos, more := r.local.ListHeld(hq)
		answers = append(answers, heldAnswer{infos, more})
	}
	var (
		mu         sync.Mutex
		failures   []string       // refused peer key: fails the List
		unanswered []string       // listed from the directory
		g          errgroup.Group // no shared cancel: every instance is asked, every failure named
	)
	g.SetLimit(listPeerConcurrency)
	for _, addr := range addrs {
		if addr == selfAddr || addr == "" {
			continue
		}
		g.Go(func() error {
			a, err := r.askPeer(ctx, addr, hq)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrInstanceGone):
			case errors.Is(err, ErrPeerRefused):
				failures = append(failures, fmt.Sprintf("%s (%v)", addr, err))
			case err != nil:
				unanswered = append(unanswered, fmt.Sprintf("%s (%v)", addr, err))
			default:
				answers = append(answers, a)
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(failures) > 0 {
		sort.Strings(failures)
		return nil, errorf(CodeUnavailable, "cannot list the connections held by instance %s: check the peer keys of the instances (--peer-tokens-file)",
			strings.Join(failures, ", ")).Err()
	}
	if len(unanswered) > 0 && ctx.Err() == nil {
		sort.Strings(unanswered)
		r.listLog.Warn("List: instances did not answer; their connections are listed from the directory as held by no instance",
			zap.Strings("instances", unanswered))
	}
	return answers, nil
}

// askPeer asks the instance at addr; without a page size it pages through all it holds.
func (r *Router) askPeer(ctx context.Context, addr string, hq HeldQuery) (heldAnswer, error) {
	if r.peers == nil {
		return heldAnswer{}, errors.New("calls to other instances are off")
	}
	paged := hq.Limit > 0
	if !paged {
		hq.Limit = MaxListPageSize
	}
	var all heldAnswer
	for {
		cctx, cancel := context.WithTimeout(ctx, listPeerTimeout)
		infos, more, err := r.peers.ListHeld(cctx, addr, hq)
		cancel()
		if err != nil {
			return heldAnswer{}, err
		}
		all.infos = append(all.infos, infos...)
		if paged || !more || len(infos) == 0 {
			all.more = paged && more
			return all, nil
		}
		hq.After = infos[len(infos)-1].ID
	}
}

// listSpec is what mergeList needs of a ListQuery (the token decoded).
type listSpec struct {
	tags     map[string]string
	status   string
	pageSize int
	after    string
}

// mergeList merges the instances' answers with the directory's members into one List
// answer: each id once (a connection two instances report while it moves: the CONNECTED one,
// else the first instance id), members no instance reported as held by no instance (left out
// by a tags filter: their tags are unknown), in id order cut to the page size when paged, else
// oldest first; then filtered by status. next is the id the next page starts after ("": no
// next page).
func mergeList(answers []heldAnswer, members []string, q listSpec) (out []ConnectionInfo, next string) {
	// A paged answer cut short at id b says nothing about ids after b: only ids up to the
	// smallest such b can be decided, and the page holds no more than those anyway (that
	// answer alone has a page's worth up to b).
	bound, bounded, anyMore := "", false, false
	for _, a := range answers {
		if a.more && len(a.infos) > 0 {
			anyMore = true
			if last := a.infos[len(a.infos)-1].ID; !bounded || last < bound {
				bound, bounded = last, true
			}
		}
	}
	decided := func(id string) bool { return id > q.after && (!bounded || id <= bound) }
	n := 0
	for _, a := range answers {
		n += len(a.infos)
	}
	byID := make(map[string]int, n)
	out = make([]ConnectionInfo, 0, n)
	for _, a := range answers {
		for _, in := range a.infos {
			if !decided(in.ID) {
				continue
			}
			if i, ok := byID[in.ID]; ok {
				if preferred(in, out[i]) {
					out[i] = in
				}
				continue
			}
			byID[in.ID] = len(out)
			out = append(out, in)
		}
	}
	if len(q.tags) == 0 && (q.status == "" || q.status == StatusConnecting) {
		for _, id := range members {
			if _, ok := byID[id]; ok || !decided(id) {
				continue
			}
			byID[id] = len(out)
			out = append(out, ConnectionInfo{ID: id, Status: StatusConnecting, LastError: UnheldReason})
		}
	}
	if q.pageSize == 0 {
		out = sortedBy(out, func(a, b *ConnectionInfo) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		return withStatus(out, q.status), ""
	}
	out = sortedBy(out, func(a, b *ConnectionInfo) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > q.pageSize {
		out, anyMore = out[:q.pageSize], true
	}
	if anyMore && len(out) > 0 {
		next = out[len(out)-1].ID
	}
	return withStatus(out, q.status), next
}

// sortedBy sorts infos by cmp through pointers: moving the large structs themselves at every
// step of the sort costs more than the comparisons at 100,000 connections.
func sortedBy(infos []ConnectionInfo, cmp func(a, b *ConnectionInfo) int) []ConnectionInfo {
	ptrs := make([]*ConnectionInfo, len(infos))
	for i := range infos {
		ptrs[i] = &infos[i]
	}
	slices.SortFunc(ptrs, cmp)
	out := make([]ConnectionInfo, len(infos))
	for i, p := range ptrs {
		out[i] = *p
	}
	return out
}

// withStatus keeps the connections in status ("": all), in place.
func withStatus(infos []ConnectionInfo, status string) []ConnectionInfo {
	if status == "" {
		return infos
	}
	return slices.DeleteFunc(infos, func(in ConnectionInfo) bool { return in.Status != status })
}

// preferred says whether a describes a connection two instances report better than b.
func preferred(a, b ConnectionInfo) bool {
	if (a.Status == StatusConnected) != (b.Status == StatusConnected) {
		return a.Status == StatusConnected
	}
	return cmp.Less(a.InstanceID, b.InstanceID)
}
