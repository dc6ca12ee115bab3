package route

import (
	"maps"
	"slices"
)

// Check is the first half of a failover watchdog round: whom to ask about which connections.
type Check struct {
	// Here are recorded as held by this instance: its own sessions answer.
	Here []string
	// Ask maps a holder instance's address to the ids recorded there: one Held call each.
	Ask map[string][]string
	// Unheld have nobody to ask (no holder recorded, the holder counts as gone, or other
	// instances cannot be called): Locate them.
	Unheld []string
}

// PlanCheck sorts a round's members (id → recorded holder address, "" for none). self is this
// instance's address; canAsk says whether other instances can be called at all; gone says
// whether a holder counts as gone (it did not answer in a recent round).
func PlanCheck(members map[string]string, self string, canAsk bool, gone func(addr string) bool) Check {
	c := Check{Ask: map[string][]string{}}
	for _, id := range slices.Sorted(maps.Keys(members)) {
		switch holder := members[id]; {
		case holder == "":
			c.Unheld = append(c.Unheld, id)
		case holder == self:
			c.Here = append(c.Here, id)
		case !canAsk || gone(holder):
			c.Unheld = append(c.Unheld, id)
		default:
			c.Ask[holder] = append(c.Ask[holder], id)
		}
	}
	return c
}

// Answer is what one holder said when asked which of its ids it holds.
type Answer struct {
	Held []string
	// Failed: it did not answer (in time).
	Failed bool
}

// Verdict is the second half of a round.
type Verdict struct {
	// Locate are the connections nobody holds: their actors are asked where they are, which
	// re-establishes each socket wherever placement puts the actor.
	Locate []string
	// Gone are the holders that did not answer: they count as gone until the next round, and
	// their connections go elsewhere.
	Gone []string
}

// Judge decides from the answers (here: this instance's own; answers: by holder address,
// a holder without an answer did not answer). When the instance is stopping it does
// nothing: an answer may have failed only because of that, and the shard's next reminder
// fires on whichever instance hosts it then.
func Judge(c Check, here Answer, answers map[string]Answer, stopping bool) Verdict {
	var v Verdict
	if stopping {
		return v
	}
	v.Locate = append(v.Locate, c.Unheld...)
	v.Locate = append(v.Locate, notHeld(c.Here, here.Held)...)
	for _, holder := range slices.Sorted(maps.Keys(c.Ask)) {
		ids := c.Ask[holder]
		a, ok := answers[holder]
		if !ok || a.Failed {
			v.Gone = append(v.Gone, holder)
			v.Locate = append(v.Locate, ids...)
			continue
		}
		v.Locate = append(v.Locate, notHeld(ids, a.Held)...)
	}
	slices.Sort(v.Locate)
	return v
}

func notHeld(ids, held []string) []string {
	h := make(map[string]bool, len(held))
	for _, id := range held {
		h[id] = true
	}
	var out []string
	for _, id := range ids {
		if !h[id] {
			out = append(out, id)
		}
	}
	return out
}

// LocateResult is how a watchdog Locate ended.
type LocateResult int

// Locate results.
const (
	// Found: the actor holds the socket at Located.Addr now.
	Found LocateResult = iota
	// Missing: the actor says the connection does not exist (it was disconnected).
	Missing
	// LocateFailed: the call failed; the next round retries.
	LocateFailed
)

// Located is one connection's Locate result.
type Located struct {
	Result LocateResult
	Addr   string
}

// Records is what the watchdog writes back to the directory after its Locates.
type Records struct {
	// Holders maps a connection id to its new holder's address (SetHolders on its shard).
	Holders map[string]string
	// Remove are directory entries of connections that no longer exist.
	Remove []string
	// Retry failed this round; the next round tries them again.
	Retry []string
}

// Record decides what to write back. A connection found at an instance without an address
// (one that cannot be called) keeps its old record: the next round asks its actor again.
func Record(results map[string]Located) Records {
	r := Records{Holders: map[string]string{}}
	for _, id := range slices.Sorted(maps.Keys(results)) {
		switch l := results[id]; l.Result {
		case Found:
			if l.Addr != "" {
				r.Holders[id] = l.Addr
			}
		case Missing:
			r.Remove = append(r.Remove, id)
		default:
			r.Retry = append(r.Retry, id)
		}
	}
	return r
}
