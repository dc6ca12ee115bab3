package actors

import (
	"context"
	"sync"
	"time"
)

// addBatchTimeout bounds one gathered AddMany call: it is made for several Connects, so it
// cannot end with the context of the one that happens to make it.
const addBatchTimeout = 30 * time.Second

// addBatcher gathers the directory Adds this process makes to one shard at the same time into
// one AddMany call. A shard's actor takes one call at a time anyway: while its call is under
// way, later Adds for it wait, and the next call takes all of them — under load each Connect
// costs a fraction of a directory call (a turn and a state transaction), with no added wait
// when there is no load. No goroutine of its own: the first waiter makes the call and hands
// the next one to the first Add that waited meanwhile.
type addBatcher struct {
	mu sync.Mutex
	// shards holds a queue while a call for that shard is under way or about to be.
	shards map[string]*addQueue
}

type addQueue struct {
	waiting []*pendingAdd
}

type pendingAdd struct {
	id, holder string
	done       chan error    // the outcome of the call that carried this Add
	lead       chan struct{} // this Add makes the next call
}

// add adds id with its holder through call, together with the Adds to the same shard that
// wait at the same time.
func (b *addBatcher) add(ctx context.Context, shard, id, holder string,
	call func(ctx context.Context, shard string, holders map[string]string) error) error {
	p := &pendingAdd{id: id, holder: holder, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.shards == nil {
		b.shards = map[string]*addQueue{}
	}
	q := b.shards[shard]
	leads := q == nil // no call under way: this Add makes it
	if leads {
		q = &addQueue{}
		b.shards[shard] = q
	}
	q.waiting = append(q.waiting, p)
	b.mu.Unlock()
	if !leads {
		select {
		case err := <-p.done:
			return err
		case <-p.lead:
		case <-ctx.Done():
			if b.leave(q, p) {
				return ctx.Err()
			}
			// Already taken into a call, or told to make the next one: see it through.
			select {
			case err := <-p.done:
				return err
			case <-p.lead:
			}
		}
	}
	b.mu.Lock()
	n := min(len(q.waiting), MaxAddMany)
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	b.mu.Unlock()
	holders := make(map[string]string, len(batch))
	for _, w := range batch {
		holders[w.id] = w.holder
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), addBatchTimeout)
	err := call(cctx, shard, holders)
	cancel()
	for _, w := range batch {
		w.done <- err
	}
	b.mu.Lock()
	if len(q.waiting) > 0 {
		q.waiting[0].lead <- struct{}{}
	} else {
		delete(b.shards, shard)
	}
	b.mu.Unlock()
	return <-p.done
}

// leave takes p out of the queue if no call has taken it yet.
func (b *addBatcher) leave(q *addQueue, p *pendingAdd) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, w := range q.waiting {
		if w == p {
			if i == 0 && len(p.lead) > 0 {
				return false // told to lead: it must
			}
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return true
		}
	}
	return false
}
