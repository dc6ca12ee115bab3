package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Retained is an inbound frame as a connection keeps it for its watchers.
type Retained struct {
	Seq        uint64
	ReceivedAt time.Time
	Data       []byte
	Binary     bool
	// Reply is set when the frame answered a Send; a reply takes no number of its own (Seq is
	// the number of the frame before it), so the sequence of pushed frames has no gaps.
	Reply bool
}

func retainedCost(f Retained) int64 { return int64(cap(f.Data)) + frameOverhead }

// Gap is a range of sequence numbers a watcher asked for and will not get.
type Gap struct {
	From, To uint64
	// Reason is GapNotRetained or GapMoved.
	Reason string
}

// Gap reasons.
const (
	// GapNotRetained: the frames are older than what the connection retains.
	GapNotRetained = "not_retained"
	// GapMoved: the frames were received before the connection was established on this
	// instance (a failover or a move); numbers in the range may never have been used.
	GapMoved = "moved"
)

// Errors that end a watch. Both carry the sequence to resume from ([ResumeFrom]).
var (
	// ErrWatcherSlow: the watcher did not keep up and its buffer overflowed.
	ErrWatcherSlow = errors.New("the watcher did not keep up with the connection's frames")
	// ErrWatchEnded: the connection closed or left this instance; watch again to resume.
	ErrWatchEnded = errors.New("the connection is no longer held by this instance")
	// ErrConnectionEnded: the connection ended for good (DISCONNECTED or ERROR without
	// reconnecting); no more frames will come.
	ErrConnectionEnded = errors.New("the connection ended; no more frames will come")
	// ErrDisconnected: the connection was disconnected by request.
	ErrDisconnected = errors.New("the connection was disconnected")
	// ErrTooManyWatchers: a watcher limit (per connection or per instance) is reached.
	ErrTooManyWatchers = errors.New("too many frame watchers")
)

// WatchEnd is why a watch ended, with the sequence to resume from.
type WatchEnd struct {
	Err        error
	ResumeFrom uint64
}

func (e *WatchEnd) Error() string {
	if !errors.Is(e.Err, ErrWatchEnded) && !errors.Is(e.Err, ErrWatcherSlow) {
		return e.Err.Error() // watching again cannot help
	}
	return fmt.Sprintf("%v; watch again from sequence %d (trailer wsm-resume-from)", e.Err, e.ResumeFrom)
}

func (e *WatchEnd) Unwrap() error { return e.Err }

// ResumeFrom returns the sequence a watch that ended with err should resume from, if any.
func ResumeFrom(err error) (uint64, bool) {
	var e *WatchEnd
	if errors.As(err, &e) {
		return e.ResumeFrom, true
	}
	return 0, false
}

// ring is a connection's retained frames, oldest first, bounded by frames and bytes (its
// own) and by the instance's retention budget (shared).
type ring struct {
	frames     []Retained
	held       int64
	maxFrames  int
	maxBytes   int64
	budget     *budget
	lost       uint64 // the highest sequence evicted or never retained (0: none)
	firstLocal uint64 // the first sequence this instance numbered
}

// add retains f, evicting the oldest as the bounds require. A frame that cannot be retained
// (larger than the bounds, or the instance budget is full with nothing of this ring to give)
// is not retained: a resume from it reports a gap.
func (r *ring) add(f Retained) {
	if r.maxFrames <= 0 {
		r.lost = f.Seq
		return
	}
	cost := retainedCost(f)
	if cost > r.maxBytes {
		r.evictAll()
		r.lost = f.Seq
		return
	}
	for len(r.frames) > 0 && (len(r.frames) >= r.maxFrames || r.held+cost > r.maxBytes) {
		r.evict()
	}
	for !r.budget.reserve(cost) {
		if len(r.frames) == 0 {
			r.lost = f.Seq
			return
		}
		r.evict()
	}
	r.frames = append(r.frames, f)
	r.held += cost
}

func (r *ring) evict() {
	f := r.frames[0]
	r.frames[0] = Retained{}
	r.frames = r.frames[1:]
	c := retainedCost(f)
	r.held -= c
	r.budget.release(c)
	r.lost = max(r.lost, f.Seq)
}

func (r *ring) evictAll() {
	for len(r.frames) > 0 {
		r.evict()
	}
}

// from returns the retained frames with sequence ≥ from, and the gap before them, if any:
// numbers from `from` on that are not retained any more or were numbered elsewhere.
func (r *ring) from(from uint64, includeReplies bool) (gap *Gap, out []Retained) {
	if from < r.firstLocal {
		gap = &Gap{From: from, To: r.firstLocal - 1, Reason: GapMoved}
	}
	if r.lost >= max(from, r.firstLocal) {
		if gap == nil {
			gap = &Gap{From: from, Reason: GapNotRetained}
		}
		gap.To, gap.Reason = r.lost, GapNotRetained
	}
	for _, f := range r.frames {
		// A reply carries the number of the frame before it: a resume from N includes the
		// replies that came after frame N, not those after frame N-1.
		if f.Seq < from || (f.Reply && !includeReplies) {
			continue
		}
		out = append(out, f)
	}
	return gap, out
}

// Watcher follows a connection's inbound frames. Read it with Next; Close it when done.
type Watcher struct {
	s              *Session
	includeReplies bool
	gap            *Gap
	backlog        []Retained
	end            atomic.Pointer[WatchEnd]
	done           chan struct{} // closed when the watch ends (end is set first)
	next           uint64        // the sequence to resume from
	min            uint64        // frames numbered below it are not wanted (a resume from the future)

	// The frames handed over and not yet read, bounded by frames and bytes; it grows only as
	// frames wait (an idle watcher holds no buffer).
	mu     sync.Mutex
	queue  []Retained
	bytes  int64
	notify chan struct{} // cap 1: a frame was queued
}

// watchLimit counts the watchers of a registry against its maximum.
type watchLimit struct {
	max int64
	n   atomic.Int64
}

func (l *watchLimit) acquire() bool {
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

func (l *watchLimit) release() { l.n.Add(-1) }

// Watch starts following the connection's frames: with from set, the retained frames from
// that sequence first (after a Gap, if some are missing), then live ones. buffer bounds the
// frames waiting for the watcher; when it overflows the watch ends with ErrWatcherSlow.
func (s *Session) Watch(from *uint64, includeReplies bool) (*Watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, &WatchEnd{Err: ErrWatchEnded, ResumeFrom: s.seq + 1}
	}
	if len(s.watchers) >= s.cfg.MaxWatchersPerConnection {
		return nil, fmt.Errorf("%w: this connection has %d already (--max-frame-watchers-per-connection)", ErrTooManyWatchers, len(s.watchers))
	}
	if !s.watchLimit.acquire() {
		return nil, fmt.Errorf("%w: this instance serves %d already (--max-frame-watchers)", ErrTooManyWatchers, s.cfg.MaxWatchers)
	}
	w := &Watcher{s: s, includeReplies: includeReplies, done: make(chan struct{}), notify: make(chan struct{}, 1), next: s.seq + 1}
	if from != nil && *from == 0 {
		from = new(s.ring.firstLocal) // 0 asks for everything retained (on this instance)
	}
	if from != nil {
		w.gap, w.backlog = s.ring.from(*from, includeReplies)
		w.next, w.min = *from, *from
	}
	if s.watchers == nil {
		s.watchers = map[*Watcher]struct{}{}
	}
	s.watchers[w] = struct{}{}
	if s.ended != nil { // the connection ended for good: what is retained, then the end
		w.finishLocked(s.ended)
	}
	return w, nil
}

// Next returns the next frame, or (gap set) the frames that are missing before it. It ends
// with a *WatchEnd error, or ctx's error.
func (w *Watcher) Next(ctx context.Context) (Retained, *Gap, error) {
	if g := w.gap; g != nil {
		w.gap = nil
		w.next = g.To + 1
		return Retained{}, g, nil
	}
	if len(w.backlog) > 0 {
		f := w.backlog[0]
		w.backlog = w.backlog[1:]
		w.advance(f)
		return f, nil, nil
	}
	for {
		if f, ok := w.pop(); ok { // frames that came before the end are still delivered
			w.advance(f)
			return f, nil, nil
		}
		select {
		case <-w.notify:
		case <-w.done:
			if f, ok := w.pop(); ok {
				w.advance(f)
				return f, nil, nil
			}
			e := *w.end.Load()
			e.ResumeFrom = w.next
			return Retained{}, nil, &e
		case <-ctx.Done():
			return Retained{}, nil, ctx.Err()
		}
	}
}

func (w *Watcher) pop() (Retained, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return Retained{}, false
	}
	f := w.queue[0]
	w.queue[0] = Retained{}
	w.queue = w.queue[1:]
	w.bytes -= retainedCost(f)
	return f, true
}

// Position is the sequence the watch would resume from now: before the first Next, where it
// starts.
func (w *Watcher) Position() uint64 { return w.next }

func (w *Watcher) advance(f Retained) {
	if !f.Reply {
		w.next = f.Seq + 1
	}
}

// offer hands f to the watcher without blocking; a full buffer (by frames or bytes) ends the
// watch. Call with w.s.mu held.
func (w *Watcher) offer(f Retained) {
	if (f.Reply && !w.includeReplies) || f.Seq < w.min {
		return
	}
	cost := retainedCost(f)
	w.mu.Lock()
	full := len(w.queue) >= w.s.cfg.WatchBuffer || w.bytes+cost > w.s.cfg.WatchBufferBytes
	if !full {
		w.queue = append(w.queue, f)
		w.bytes += cost
	}
	w.mu.Unlock()
	if full {
		w.finishLocked(ErrWatcherSlow)
		return
	}
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// finishLocked ends the watch with err. Call with w.s.mu held.
func (w *Watcher) finishLocked(err error) {
	if _, ok := w.s.watchers[w]; !ok {
		return
	}
	delete(w.s.watchers, w)
	w.s.watchLimit.release()
	w.end.Store(&WatchEnd{Err: err})
	close(w.done)
}

// Close stops the watch.
func (w *Watcher) Close() {
	w.s.mu.Lock()
	w.finishLocked(context.Canceled)
	w.s.mu.Unlock()
}

// recordLocked retains an inbound frame and hands it to the watchers. Call with s.mu held.
// A closed session retains nothing more (its ring was emptied and its budget given back).
func (s *Session) recordLocked(f Retained) {
	if s.ctx.Err() != nil {
		return
	}
	s.ring.add(f)
	for w := range s.watchers {
		w.offer(f)
	}
}

// endedLocked records that the connection ended for good (no reconnect): its watches end, and
// later ones get what is retained and then the end. Call with s.mu held.
func (s *Session) endedLocked() {
	s.ended = ErrConnectionEnded
	s.endWatchersLocked(ErrConnectionEnded, false)
}

// endWatchersLocked ends every watch with err and, when the session closes (release), gives
// back what its ring holds. Call with s.mu held.
func (s *Session) endWatchersLocked(err error, release bool) {
	for w := range s.watchers {
		w.finishLocked(err)
	}
	if release {
		s.ring.evictAll()
	}
}
