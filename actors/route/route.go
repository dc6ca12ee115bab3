// Package route decides, as plain values, where a Send goes, when a connection's socket is
// (re-)established on an instance, and what the failover watchdog does with each directory
// shard's holders. Nothing here calls anything: the router, the connection actor and the
// watchdog (package actors) gather the facts, ask these functions, and carry the decision
// out. So every branch is table-tested without Dapr, sockets or other instances.
package route

// Scope is where a Send may be answered.
type Scope int

// Scopes.
const (
	// Anywhere: a caller's own call. This instance's socket, the holder instance (forwarded)
	// or the connection's actor may answer it.
	Anywhere Scope = iota
	// HereOnly: another instance forwarded the call because this one held the socket. If it
	// does not (any more) the answer is ABORTED and the forwarding instance lets the actor
	// decide, so a call is never forwarded twice.
	HereOnly
)

// Membership is what the connection id's directory shard said about it.
type Membership int

// Memberships.
const (
	Unasked Membership = iota
	Member
	NotMember
)

// MembershipOf turns the directory's answer into a Membership.
func MembershipOf(member bool) Membership {
	if member {
		return Member
	}
	return NotMember
}

// Holder is where the connection's actor (Locate) said the socket is.
type Holder struct {
	// Here: this instance holds it.
	Here bool
	// Addr is the holding instance's gRPC address ("": it cannot be called directly).
	Addr string
}

// Facts is what the router knows about one Send so far. Every fact but HeldHere is learnt at
// most once (Next never asks for one already known), so one Send makes at most one directory
// call, one Locate and one forward. HeldHere is looked up before every step: it is a map read.
type Facts struct {
	Scope Scope
	// HeldHere: this instance holds a session of the connection right now.
	HeldHere bool
	// CanForward: this instance can call other instances (it was given a forwarder).
	CanForward bool
	Member     Membership
	// Located: Locate answered, with Holder.
	Located bool
	Holder  Holder
	// ForwardMissed: the call forwarded to the holder did not reach the socket there (the
	// instance was unreachable or stopping, refused this one as a peer, or no longer held it).
	ForwardMissed bool
}

// Step is what the router does next for a Send.
type Step int

// Steps. SendHere, NotHeldHere, NotFound and ViaActor end the Send; so does Forward unless
// the holder missed the socket.
const (
	// SendHere sends on this instance's session; its answer is final.
	SendHere Step = iota + 1
	// NotHeldHere answers ABORTED: a forwarded call found no socket here.
	NotHeldHere
	// AskDirectory asks the id's directory shard whether the connection exists. Shards are
	// few and always active, so an unknown id activates no actor.
	AskDirectory
	// NotFound answers NOT_FOUND: the directory does not know the id.
	NotFound
	// Locate asks the connection's actor where the socket is. The call activates the actor
	// wherever placement puts it, and the actor opens the socket there if nobody holds it.
	Locate
	// Forward forwards the call to the holder at Holder.Addr.
	Forward
	// ViaActor calls the actor's own Send, which waits in the actor's turn; its answer is final.
	ViaActor
)

var stepNames = [...]string{"", "send here", "not held here", "ask directory", "not found", "locate", "forward", "via actor"}

func (s Step) String() string {
	if s <= 0 || int(s) >= len(stepNames) {
		return "unknown step"
	}
	return stepNames[s]
}

// MaxSteps bounds the steps of one Send: the directory, Locate, one forward, and the final step.
const MaxSteps = 4

// Next returns the router's next step for a Send given what it knows so far.
func Next(f Facts) Step {
	switch {
	case f.HeldHere:
		return SendHere // also after Locate or a missed forward brought the socket here
	case f.Scope == HereOnly:
		return NotHeldHere
	case f.ForwardMissed:
		// The holder did not take it: the actor decides (without a second Locate; its own Send
		// opens the socket wherever it runs).
		return ViaActor
	case f.Member == Unasked:
		return AskDirectory
	case f.Member == NotMember:
		return NotFound
	case !f.Located:
		return Locate
	case f.Holder.Here:
		// Located here, but the session is gone again (closed since): the actor decides.
		return ViaActor
	case f.Holder.Addr == "" || !f.CanForward:
		return ViaActor
	default:
		return Forward
	}
}

// Forwarded says how a call forwarded to the holder instance ended.
type Forwarded int

// Forward outcomes.
const (
	// Answered: the holder answered (a reply or an error); that answer is final.
	Answered Forwarded = iota
	// Missed: the call did not reach the socket there (see [Facts].ForwardMissed); nothing was
	// sent, so the actor may decide.
	Missed
)

// Activation is what a connection's actor does about the socket when it is called on an
// instance (Locate, Send, SendRaw).
type Activation int

// Activations.
const (
	// UseHeld: this instance holds the socket; use it.
	UseHeld Activation = iota
	// Reopen: this instance does not hold it (the actor was activated here after the holder
	// went away, or placement moved it here): record the takeover, then dial here.
	Reopen
	// MarkLost: as Reopen, but auto_reconnect is off: record the socket as lost, do not dial.
	MarkLost
)

// Activate decides what the actor does with the socket.
func Activate(heldHere, autoReconnect bool) Activation {
	switch {
	case heldHere:
		return UseHeld
	case autoReconnect:
		return Reopen
	default:
		return MarkLost
	}
}

// TakeoverReason is the reason a re-established session reports (in its lifecycle event):
// "" when this instance (or nobody) held it before.
func TakeoverReason(prevInstance, self string) string {
	if prevInstance == "" || prevInstance == self {
		return ""
	}
	return "taken over from instance " + prevInstance
}
