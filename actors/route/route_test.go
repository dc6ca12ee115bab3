package route

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Ensure every branch of a Send's routing decides as documented.
func TestNext(t *testing.T) {
	elsewhere := Holder{Addr: "10.0.0.2:5002"}
	tests := []struct {
		name string
		give Facts
		want Step
	}{
		{"held here: send on the local session", Facts{HeldHere: true}, SendHere},
		{"held here, forwarded call", Facts{Scope: HereOnly, HeldHere: true}, SendHere},
		{"forwarded call, not held here: ABORTED, never forwarded again", Facts{Scope: HereOnly, CanForward: true}, NotHeldHere},
		{"not held here: ask the directory first (no activation)", Facts{CanForward: true}, AskDirectory},
		{"unknown id: NOT_FOUND", Facts{CanForward: true, Member: NotMember}, NotFound},
		{"member: locate it", Facts{CanForward: true, Member: Member}, Locate},
		{"located here and the session is there now", Facts{HeldHere: true, Member: Member, Located: true, Holder: Holder{Here: true}}, SendHere},
		{"located here but the session closed since: the actor decides", Facts{CanForward: true, Member: Member, Located: true, Holder: Holder{Here: true}}, ViaActor},
		{"held elsewhere: forward to the holder", Facts{CanForward: true, Member: Member, Located: true, Holder: elsewhere}, Forward},
		{"held elsewhere, no address: the actor's turn", Facts{CanForward: true, Member: Member, Located: true, Holder: Holder{}}, ViaActor},
		{"held elsewhere, no forwarder: the actor's turn", Facts{Member: Member, Located: true, Holder: elsewhere}, ViaActor},
		{"holder unreachable, stopping, or no longer holds it: the actor decides", Facts{CanForward: true, Member: Member, Located: true, Holder: elsewhere, ForwardMissed: true}, ViaActor},
		{"forward missed and the socket came here meanwhile", Facts{HeldHere: true, CanForward: true, Member: Member, Located: true, Holder: elsewhere, ForwardMissed: true}, SendHere},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Next(tt.give))
		})
	}
}

// allFacts enumerates every combination of facts Next can see.
func allFacts() []Facts {
	var out []Facts
	for _, scope := range []Scope{Anywhere, HereOnly} {
		for _, held := range []bool{false, true} {
			for _, fwd := range []bool{false, true} {
				for _, m := range []Membership{Unasked, Member, NotMember} {
					for _, located := range []bool{false, true} {
						for _, h := range []Holder{{}, {Here: true}, {Addr: "a:1"}} {
							for _, missed := range []bool{false, true} {
								out = append(out, Facts{scope, held, fwd, m, located, h, missed})
							}
						}
					}
				}
			}
		}
	}
	return out
}

// Ensure Next never asks again for a fact it already has: with it, a Send makes at most one
// directory call, one Locate and one forward, whatever the answers.
func TestNextLearnsEachFactOnce(t *testing.T) {
	for _, f := range allFacts() {
		switch Next(f) {
		case AskDirectory:
			assert.Equal(t, Unasked, f.Member, "%+v", f)
		case Locate:
			assert.False(t, f.Located, "%+v", f)
			assert.Equal(t, Member, f.Member, "Locate only for a known member: %+v", f)
		case Forward:
			assert.False(t, f.ForwardMissed, "%+v", f)
			assert.True(t, f.Located && f.CanForward && f.Holder.Addr != "" && !f.Holder.Here && f.Scope == Anywhere, "%+v", f)
		case SendHere:
			assert.True(t, f.HeldHere, "%+v", f)
		case NotHeldHere:
			assert.Equal(t, HereOnly, f.Scope, "%+v", f)
		case NotFound:
			assert.Equal(t, NotMember, f.Member, "%+v", f)
		case ViaActor:
			assert.Equal(t, Anywhere, f.Scope, "a forwarded call never reaches the actor from here: %+v", f)
		default:
			t.Fatalf("no step for %+v", f)
		}
	}
}

// Ensure every walk through the decisions, whatever the directory, Locate, the forward and
// the local sessions answer, ends within MaxSteps with at most one Locate.
func TestEveryWalkEndsWithOneLocateAtMost(t *testing.T) {
	type world struct {
		member, heldAtStart, heldAfterLocate, heldAfterMiss, fwd bool
		holder                                                   Holder
		scope                                                    Scope
		missed                                                   bool
	}
	var worlds []world
	for i := range 1 << 6 {
		bit := func(n int) bool { return i&(1<<n) != 0 }
		for _, h := range []Holder{{}, {Here: true}, {Addr: "a:1"}} {
			for _, s := range []Scope{Anywhere, HereOnly} {
				worlds = append(worlds, world{bit(0), bit(1), bit(2), bit(3), bit(4), h, s, bit(5)})
			}
		}
	}
	for _, w := range worlds {
		f := Facts{Scope: w.scope, CanForward: w.fwd, HeldHere: w.heldAtStart}
		locates, steps := 0, 0
		for done := false; !done; steps++ {
			if !assert.Less(t, steps, MaxSteps, "%+v", w) {
				break
			}
			switch Next(f) {
			case AskDirectory:
				f.Member = MembershipOf(w.member)
			case Locate:
				locates++
				f.Located, f.Holder, f.HeldHere = true, w.holder, w.heldAfterLocate
			case Forward:
				done = !w.missed
				f.ForwardMissed, f.HeldHere = true, w.heldAfterMiss
			default:
				done = true
			}
		}
		assert.LessOrEqual(t, locates, 1, "%+v", w)
	}
}

func TestActivate(t *testing.T) {
	tests := []struct {
		name                string
		held, autoReconnect bool
		want                Activation
	}{
		{"this instance holds the socket", true, true, UseHeld},
		{"held, auto_reconnect off", true, false, UseHeld},
		{"activated here after the holder went away: reopen", false, true, Reopen},
		{"activated here, auto_reconnect off: lost, no dial", false, false, MarkLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Activate(tt.held, tt.autoReconnect))
		})
	}
}

func TestTakeoverReason(t *testing.T) {
	assert.Equal(t, "", TakeoverReason("", "me"), "first establishment")
	assert.Equal(t, "", TakeoverReason("me", "me"), "re-established on the same instance")
	assert.Equal(t, "taken over from instance other", TakeoverReason("other", "me"))
}

func TestStepString(t *testing.T) {
	assert.Equal(t, "locate", Locate.String())
	assert.Equal(t, "unknown step", Step(0).String())
	assert.Equal(t, "unknown step", Step(99).String())
}
