package actors

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/route"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

const (
	selfID   = "instance-a"
	holderID = "instance-b"
	holderAt = "10.0.0.2:5002"
)

// fakeActors is the actor layer in memory: which ids the directory knows, what Locate
// answers (and what it does: activating the actor may open the socket here), and a log of
// every call.
type fakeActors struct {
	mu        sync.Mutex
	members   map[string]bool
	memberErr error
	located   ConnectionInfo
	locateErr error
	onLocate  func() // runs inside Locate (the actor activated and opened the socket)
	calls     []string
}

func (f *fakeActors) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeActors) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

var errUnexpected = errors.New("unexpected call")

func (f *fakeActors) Connect(context.Context, string, ConnectArgs) (ConnectionInfo, error) {
	f.record("Connect")
	return ConnectionInfo{}, errUnexpected
}
func (f *fakeActors) Disconnect(context.Context, string) error { f.record("Disconnect"); return nil }
func (f *fakeActors) Get(context.Context, string) (ConnectionInfo, error) {
	f.record("Get")
	return ConnectionInfo{}, errUnexpected
}
func (f *fakeActors) Locate(context.Context, string) (ConnectionInfo, error) {
	f.record("Locate")
	if f.onLocate != nil {
		f.onLocate()
	}
	return f.located, f.locateErr
}
func (f *fakeActors) StartPublish(context.Context, string, PublishArgs) error {
	f.record("StartPublish")
	return nil
}
func (f *fakeActors) StopPublish(context.Context, string) error { f.record("StopPublish"); return nil }
func (f *fakeActors) Send(_ context.Context, _ string, in SendArgs) (SendReply, error) {
	f.record("Send")
	return SendReply{Response: "actor:" + in.Message}, nil
}
func (f *fakeActors) SendRaw(context.Context, string, SendArgs) error {
	f.record("SendRaw")
	return nil
}
func (f *fakeActors) IsMember(_ context.Context, id string) (bool, error) {
	f.record("IsMember")
	return f.members[id], f.memberErr
}
func (f *fakeActors) Directory(context.Context, string, int) ([]string, []string, error) {
	return nil, nil, errUnexpected
}
func (f *fakeActors) Holders(context.Context) ([]string, error) { return nil, errUnexpected }

// fakeSession is a socket held here; err, if set, is what the socket fails with.
type fakeSession struct{ err error }

func (s *fakeSession) Send(_ context.Context, f session.Frame, _ time.Duration) (session.Frame, error) {
	if s.err != nil {
		return session.Frame{}, s.err
	}
	return session.Frame{Data: append([]byte("here:"), f.Data...)}, nil
}

func (s *fakeSession) SendRaw(context.Context, session.Frame) error { return s.err }

func (s *fakeSession) Watch(*uint64, bool) (*session.Watcher, error) { return nil, s.err }

type fakeSessions struct {
	mu sync.Mutex
	m  map[string]localSession
}

func (f *fakeSessions) session(id string) localSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[id]
}

func (f *fakeSessions) put(id string, s localSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[id] = s
}

// fakeForwarder is the peer client: how the forwarded call ends, and the addresses called.
type fakeForwarder struct {
	outcome route.Forwarded
	err     error
	onCall  func() // runs during the call (e.g. the socket moves here meanwhile)
	mu      sync.Mutex
	addrs   []string
}

func (f *fakeForwarder) call(addr string) {
	f.mu.Lock()
	f.addrs = append(f.addrs, addr)
	f.mu.Unlock()
	if f.onCall != nil {
		f.onCall()
	}
}

func (f *fakeForwarder) ForwardSend(_ context.Context, addr, _ string, in SendArgs, _ time.Duration) (SendReply, route.Forwarded, error) {
	f.call(addr)
	if f.err != nil {
		return SendReply{}, f.outcome, f.err
	}
	return SendReply{Response: "holder:" + in.Message}, f.outcome, nil
}

func (f *fakeForwarder) ForwardSendRaw(_ context.Context, addr, _ string, _ SendArgs) (route.Forwarded, error) {
	f.call(addr)
	return f.outcome, f.err
}

// routerCase is one branch of Send/SendRaw routing, with what the fakes answer and what the
// caller must see.
type routerCase struct {
	name      string
	scope     route.Scope
	heldHere  localSession // the session here at the start (nil: none)
	member    bool
	memberErr error
	located   ConnectionInfo
	locateErr error
	openHere  bool  // Locate opens the socket here
	noForward bool  // the router has no forwarder
	fwdMissed bool  // the forwarded call misses the socket (route.Missed)
	fwdErr    error // the forwarded call's error
	moveHere  bool  // the socket arrives here during the forward

	wantReply string // Send only: the answer ("" when an error is expected)
	wantCode  Code   // the error's code, "" for none or wantErr
	wantErr   error  // an error passed on as it is
	wantCalls []string
	wantFwd   int // forwarded calls
}

var errHolder = errors.New("the holder's own status") // stands for a gRPC status of another instance

func routerCases() []routerCase {
	here := ConnectionInfo{InstanceID: selfID, InstanceAddr: "10.0.0.1:5002"}
	elsewhere := ConnectionInfo{InstanceID: holderID, InstanceAddr: holderAt}
	return []routerCase{
		{name: "local: held here, no actor call", heldHere: &fakeSession{}, wantReply: "here:m"},
		{name: "forwarded here and held here", scope: route.HereOnly, heldHere: &fakeSession{}, wantReply: "here:m"},
		{name: "forwarded here, not held here: ABORTED, no actor call", scope: route.HereOnly, wantCode: CodeAborted},
		{name: "unknown id: NOT_FOUND from the directory, no actor activated", wantCode: CodeNotFound, wantCalls: []string{"IsMember"}},
		{name: "directory unreachable", memberErr: errHolder, wantErr: errHolder, wantCalls: []string{"IsMember"}},
		{name: "actor missing: Locate says NOT_FOUND", member: true, locateErr: &Error{Code: CodeNotFound, Message: "gone"},
			wantCode: CodeNotFound, wantCalls: []string{"IsMember", "Locate"}},
		{name: "Locate activates the actor here: send on the new local session", member: true, located: here, openHere: true,
			wantReply: "here:m", wantCalls: []string{"IsMember", "Locate"}},
		{name: "located here but the session closed again: the actor decides", member: true, located: here,
			wantReply: "actor:m", wantCalls: []string{"IsMember", "Locate", "Send"}},
		{name: "elsewhere: forwarded, the holder answers", member: true, located: elsewhere,
			wantReply: "holder:m", wantCalls: []string{"IsMember", "Locate"}, wantFwd: 1},
		{name: "elsewhere: the holder's error is final and passed on as it is", member: true, located: elsewhere,
			fwdErr:  errHolder,
			wantErr: errHolder, wantCalls: []string{"IsMember", "Locate"}, wantFwd: 1},
		{name: "holder unreachable or stopping: the actor decides, no second Locate", member: true, located: elsewhere,
			fwdMissed: true, fwdErr: errHolder,
			wantReply: "actor:m", wantCalls: []string{"IsMember", "Locate", "Send"}, wantFwd: 1},
		{name: "holder no longer holds it and the socket came here: local, no second Locate", member: true, located: elsewhere,
			fwdMissed: true, fwdErr: errHolder, moveHere: true,
			wantReply: "here:m", wantCalls: []string{"IsMember", "Locate"}, wantFwd: 1},
		{name: "elsewhere without an address: the actor's turn", member: true, located: ConnectionInfo{InstanceID: holderID},
			wantReply: "actor:m", wantCalls: []string{"IsMember", "Locate", "Send"}},
		{name: "elsewhere, no forwarder: the actor's turn", member: true, located: elsewhere, noForward: true,
			wantReply: "actor:m", wantCalls: []string{"IsMember", "Locate", "Send"}},
		{name: "instance stopping: its session refuses, UNAVAILABLE, nothing else tried", heldHere: &fakeSession{err: session.ErrShuttingDown},
			wantCode: CodeUnavailable},
		{name: "Locate fails (sidecar): passed on", member: true, locateErr: errHolder,
			wantErr: errHolder, wantCalls: []string{"IsMember", "Locate"}},
	}
}

func newTestRouter(tt routerCase) (*Router, *fakeActors, *fakeSessions, *fakeForwarder) {
	sessions := &fakeSessions{m: map[string]localSession{}}
	if tt.heldHere != nil {
		sessions.put("c1", tt.heldHere)
	}
	actors := &fakeActors{members: map[string]bool{"c1": tt.member}, memberErr: tt.memberErr, located: tt.located, locateErr: tt.locateErr}
	if tt.openHere {
		actors.onLocate = func() { sessions.put("c1", &fakeSession{}) }
	}
	fwd := &fakeForwarder{err: tt.fwdErr}
	if tt.fwdMissed {
		fwd.outcome = route.Missed
	}
	if tt.moveHere {
		fwd.onCall = func() { sessions.put("c1", &fakeSession{}) }
	}
	r := &Router{actors: actors, sessions: sessions, instanceID: selfID}
	if !tt.noForward {
		r.WithForwarder(fwd)
	}
	return r, actors, sessions, fwd
}

// Ensure Send takes the documented route in every branch, with exactly the calls it needs.
func TestRouterSend(t *testing.T) {
	for _, tt := range routerCases() {
		t.Run(tt.name, func(t *testing.T) {
			r, actors, _, fwd := newTestRouter(tt)
			got, err := r.Send(t.Context(), "c1", SendArgs{Message: "m"}, time.Second, tt.scope)
			checkRouted(t, tt, err, actors, fwd, "Send")
			assert.Equal(t, tt.wantReply, got.Response)
		})
	}
}

// Ensure SendRaw takes the same routes as Send.
func TestRouterSendRaw(t *testing.T) {
	for _, tt := range routerCases() {
		t.Run(tt.name, func(t *testing.T) {
			r, actors, _, fwd := newTestRouter(tt)
			err := r.SendRaw(t.Context(), "c1", SendArgs{Message: "m"}, tt.scope)
			checkRouted(t, tt, err, actors, fwd, "SendRaw")
		})
	}
}

func checkRouted(t *testing.T, tt routerCase, err error, actors *fakeActors, fwd *fakeForwarder, method string) {
	t.Helper()
	switch {
	case tt.wantErr != nil:
		assert.Same(t, tt.wantErr, err)
	case tt.wantCode != "":
		assert.Equal(t, tt.wantCode, CodeOf(err), "%v", err)
	default:
		require.NoError(t, err)
	}
	want := make([]string, 0, len(tt.wantCalls))
	for _, c := range tt.wantCalls {
		if c == "Send" {
			c = method // the actor's own Send or SendRaw
		}
		want = append(want, c)
	}
	assert.Equal(t, want, append([]string{}, actors.calls...), "actor calls")
	assert.Len(t, fwd.addrs, tt.wantFwd, "forwarded calls")
	for _, a := range fwd.addrs {
		assert.Equal(t, holderAt, a)
	}
}

// Ensure the worst path — held elsewhere, the forward misses, the actor's turn — asks the
// directory once and calls Locate once (it used to call both twice).
func TestSendLocatesAtMostOnce(t *testing.T) {
	for _, method := range []string{"Send", "SendRaw"} {
		t.Run(method, func(t *testing.T) {
			r, actors, _, fwd := newTestRouter(routerCase{member: true,
				located:   ConnectionInfo{InstanceID: holderID, InstanceAddr: holderAt},
				fwdMissed: true, fwdErr: errHolder})
			var err error
			if method == "Send" {
				_, err = r.Send(t.Context(), "c1", SendArgs{Message: "m"}, time.Second, route.Anywhere)
			} else {
				err = r.SendRaw(t.Context(), "c1", SendArgs{Message: "m"}, route.Anywhere)
			}
			require.NoError(t, err)
			assert.Equal(t, 1, actors.count("Locate"), "Locate calls")
			assert.Equal(t, 1, actors.count("IsMember"), "directory calls")
			assert.Equal(t, 1, actors.count(method), "actor sends")
			assert.Len(t, fwd.addrs, 1, "forwarded calls")
		})
	}
}

// Ensure calls other than Send answer NOT_FOUND for an unknown id without calling its actor
// (which would activate it), and call the actor for a known one.
func TestRouterKnown(t *testing.T) {
	tests := []struct {
		name      string
		member    bool
		held      bool
		wantCode  Code
		wantCalls []string
	}{
		{"unknown id: no actor call", false, false, CodeNotFound, []string{"IsMember", "IsMember", "IsMember"}},
		{"member", true, false, "", []string{"IsMember", "Disconnect", "IsMember", "StartPublish", "IsMember", "StopPublish"}},
		{"held here: no directory call", false, true, "", []string{"Disconnect", "StartPublish", "StopPublish"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := routerCase{member: tt.member}
			if tt.held {
				rc.heldHere = &fakeSession{}
			}
			r, actors, _, _ := newTestRouter(rc)
			for _, err := range []error{
				r.Disconnect(t.Context(), "c1"),
				r.StartPublish(t.Context(), "c1", PublishArgs{Topic: "t"}),
				r.StopPublish(t.Context(), "c1"),
			} {
				assert.Equal(t, tt.wantCode, CodeOf(err))
			}
			assert.Equal(t, tt.wantCalls, actors.calls)
		})
	}
}

// Ensure the registry adapter never hands out a typed nil (which would look like a session).
func TestRegistrySessionsNil(t *testing.T) {
	s := registrySessions{session.NewRegistry(session.DefaultConfig(), nil, nil, "i", nil)}
	assert.Nil(t, s.session("none"))
}
