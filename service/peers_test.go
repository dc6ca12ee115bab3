package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

func fixedKeys(now time.Time, keys ...string) *PeerKeys {
	k := NewPeerKeys(keys)
	k.now = func() time.Time { return now }
	return k
}

// Ensure a peer proof is accepted only for the address it was made for, within the time
// window, and with one of the shared keys.
func TestPeerProof(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	signer := fixedKeys(now, "k1")
	self := "10.0.0.7:5002"
	good := signer.proof(self)
	tests := []struct {
		name     string
		verifier *PeerKeys
		proof    string
		want     bool
	}{
		{"made for this address", fixedKeys(now, "k1"), good, true},
		{"clock a little ahead", fixedKeys(now.Add(4*time.Minute), "k1"), good, true},
		{"rotation: the old key is still accepted", fixedKeys(now, "k2", "k1"), good, true},
		{"made for another address", fixedKeys(now, "k1"), signer.proof("10.0.0.8:5002"), false},
		{"expired", fixedKeys(now.Add(6*time.Minute), "k1"), good, false},
		{"from the future", fixedKeys(now.Add(-6*time.Minute), "k1"), good, false},
		{"another key", fixedKeys(now, "other"), good, false},
		{"no keys", NewPeerKeys(nil), good, false},
		{"an API token", fixedKeys(now, "k1"), "k1", false},
		{"empty", fixedKeys(now, "k1"), "", false},
		{"no signature", fixedKeys(now, "k1"), "v1.1800000000.", false},
		{"bad time", fixedKeys(now, "k1"), "v1.x." + strings.Split(good, ".")[2], false},
		{"other version", fixedKeys(now, "k1"), "v2" + good[2:], false},
		{"too long", fixedKeys(now, "k1"), good + strings.Repeat("A", 200), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.verifier.verify(tt.proof, self))
		})
	}
}

// Ensure the derived key depends on APP_API_TOKEN and is not the token itself.
func TestDerivePeerKey(t *testing.T) {
	assert.Empty(t, DerivePeerKey(""))
	a, b := DerivePeerKey("app-token"), DerivePeerKey("other")
	assert.NotEqual(t, a, b)
	assert.NotContains(t, a, "app-token")
	assert.Equal(t, a, DerivePeerKey("app-token"))
}

// FuzzPeerProof: whatever arrives in x-wsm-peer, verify neither panics nor accepts it
// unless it is a proof made with the key for this address.
func FuzzPeerProof(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k := fixedKeys(now, "k")
	f.Add(k.proof("127.0.0.1:5002"))
	f.Add("v1.1800000000.AAAA")
	f.Add("v1..")
	f.Add("v1.-9223372036854775808.x")
	f.Fuzz(func(t *testing.T, v string) {
		if k.verify(v, "127.0.0.1:5002") && v != k.proof("127.0.0.1:5002") {
			// Another encoding of the same MAC and time would be a second valid form.
			t.Fatalf("accepted %q", v)
		}
	})
}

type fakeServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeServerStream) Context() context.Context { return f.ctx }

// Ensure the Peer service and the forwarded marker are honoured only with a peer proof, and
// that a proof replaces the API token.
func TestAuthPeerCalls(t *testing.T) {
	const self = "127.0.0.1:5002"
	keys := NewPeerKeys([]string{"peer-key"})
	auth := &Auth{Tokens: NewTokens([]string{"api"}), Peers: keys, Self: self}
	held := "/" + pb.WebSocketManagerPeer_ServiceDesc.ServiceName + "/Held"
	send := pb.WebSocketManager_Send_FullMethodName
	tests := []struct {
		name      string
		method    string
		md        []string
		auth      *Auth
		want      codes.Code
		peer, fwd bool
	}{
		{"API token on the Peer service", held, []string{"authorization", "Bearer api"}, auth, codes.PermissionDenied, false, false},
		{"nothing on the Peer service", held, nil, auth, codes.Unauthenticated, false, false},
		{"open API, Peer service", held, nil, &Auth{Tokens: NewTokens(nil), Peers: keys, Self: self}, codes.PermissionDenied, false, false},
		{"peer proof on the Peer service", held, []string{peerProofKey, keys.proof(self)}, auth, codes.OK, true, false},
		{"proof for another instance", held, []string{peerProofKey, keys.proof("127.0.0.1:5012")}, auth, codes.Unauthenticated, false, false},
		{"proof with another key", held, []string{peerProofKey, NewPeerKeys([]string{"x"}).proof(self)}, auth, codes.Unauthenticated, false, false},
		{"proof to an instance without keys", held, []string{peerProofKey, keys.proof(self)}, &Auth{Tokens: NewTokens([]string{"api"}), Self: self}, codes.Unauthenticated, false, false},
		{"API caller sets the forwarded marker", send, []string{"authorization", "Bearer api", forwardedKey, "1"}, auth, codes.OK, false, false},
		{"forwarded by a peer, no API token", send, []string{forwardedKey, "1", peerProofKey, keys.proof(self)}, auth, codes.OK, true, true},
		{"API token only", send, []string{"authorization", "Bearer api"}, auth, codes.OK, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(tt.md...))
			var gotPeer, gotFwd bool
			_, err := tt.auth.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: tt.method}, func(ctx context.Context, _ any) (any, error) {
				gotPeer, gotFwd = fromPeer(ctx), isForwarded(ctx)
				return nil, nil
			})
			assert.Equal(t, tt.want, codeFor(err), "%v", err)
			assert.Equal(t, tt.peer, gotPeer, "from a peer")
			assert.Equal(t, tt.fwd, gotFwd, "forwarded")
			// Streams decide the same.
			err = tt.auth.Stream()(nil, fakeServerStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: tt.method}, func(_ any, ss grpc.ServerStream) error {
				assert.Equal(t, tt.peer, fromPeer(ss.Context()))
				return nil
			})
			assert.Equal(t, tt.want, codeFor(err), "stream: %v", err)
		})
	}
	// The Peer service refuses a call without proof even on a server without Auth.
	_, err := NewPeer(nil).Held(context.Background(), &pb.HeldRequest{Ids: []string{"x"}})
	assert.Equal(t, codes.PermissionDenied, codeFor(err))
}

// Ensure the default peer policy allows loopback and private ranges only, --peer-allow
// replaces it and --peer-deny wins.
func TestPeerPolicy(t *testing.T) {
	def, err := PeerPolicy(nil, nil)
	require.NoError(t, err)
	custom, err := PeerPolicy([]string{"10.1.0.0/16", "203.0.113.5"}, []string{"10.1.2.0/24"})
	require.NoError(t, err)
	tests := []struct {
		addr        string
		def, custom bool
	}{
		{"127.0.0.1", true, false},
		{"::1", true, false},
		{"10.9.8.7", true, false},
		{"172.20.0.1", true, false},
		{"192.168.1.1", true, false},
		{"100.64.0.1", true, false},
		{"fd00::1", true, false},
		{"8.8.8.8", false, false},
		{"::ffff:8.8.8.8", false, false},
		{"169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"203.0.113.5", false, true},
		{"10.1.1.1", true, true},
		{"10.1.2.3", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			assert.Equal(t, tt.def, def.CheckAddr(tt.addr, a) == nil, "default policy")
			assert.Equal(t, tt.custom, custom.CheckAddr(tt.addr, a) == nil, "custom policy")
		})
	}
	_, err = PeerPolicy([]string{"not a/cidr"}, nil)
	assert.Error(t, err)
}

// recorder is a TCP listener that counts the connections made to it.
func recorder(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	return sessiontest.CountingListener(t, "127.0.0.1:0")
}

func testPeers(t *testing.T, allow ...string) *peers {
	t.Helper()
	pol, err := PeerPolicy(allow, nil)
	require.NoError(t, err)
	return &peers{keys: NewPeerKeys([]string{"k"}), policy: pol, log: zap.NewNop()}
}

// Ensure an address the peer policy refuses is never dialed, whether it is refused by its
// literal address or by what its name resolves to, and that the refusal is counted.
func TestPeersRefuseWithoutDialing(t *testing.T) {
	addr, dialed := recorder(t)
	_, port, _ := net.SplitHostPort(addr)
	p := testPeers(t, "10.0.0.0/8") // loopback not allowed
	var refused atomic.Int32
	p.refusedHook = func() { refused.Add(1) }
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := p.Held(ctx, addr, []string{"a"})
	require.Error(t, err, "a literal refused address")
	assert.Empty(t, p.conns, "no client connection is kept for it")

	// A name that resolves to a refused address: refused at dial time, by the address.
	_, err = p.Held(ctx, net.JoinHostPort("localhost", port), []string{"a"})
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	c, err := p.client(addr)
	assert.Nil(t, c)
	assert.Error(t, err)
	assert.Equal(t, int32(0), dialed.Load(), "nothing connected to the refused listener")
	assert.Equal(t, int32(2), refused.Load(), "each refused address is counted once, however often it is looked at")
}

// Ensure a flood of refused addresses cannot reset the recheck times of the others: the
// bound forgets one address at a time, the one marked longest ago.
func TestRefusedAddressesBounded(t *testing.T) {
	p := testPeers(t, "10.0.0.0/8")
	require.True(t, p.recheckDue("keep:1"))
	for i := range 3 * maxRefused {
		p.refuse(fmt.Sprintf("flood-%d:1", i), errors.New("refused"))
	}
	assert.LessOrEqual(t, len(p.refused), maxRefused)
	require.True(t, p.recheckDue("fresh:1"))
	assert.False(t, p.recheckDue("fresh:1"), "a recent mark survives the flood")
	assert.False(t, p.recheckDue("keep:1"), "a mark made before the flood survives it")
}

// Ensure Held lets the watchdog ask the actors about a refused holder's connections once per
// refusedRecheck, and otherwise answers that the holder holds them (no storm of Locates).
func TestHeldRefusedIsThrottled(t *testing.T) {
	for _, p := range map[string]*peers{
		"no peer key":     {keys: NewPeerKeys(nil), log: zap.NewNop()},
		"policy refusing": testPeers(t, "10.0.0.0/8"),
	} {
		_, err := p.Held(context.Background(), "127.0.0.1:1", []string{"a", "b"})
		require.Error(t, err, "the first round asks the actors")
		got, err := p.Held(context.Background(), "127.0.0.1:1", []string{"a", "b"})
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b"}, got, "later rounds trust the record")
		p.mu.Lock()
		p.refused["127.0.0.1:1"] = time.Now().Add(-refusedRecheck)
		p.mu.Unlock()
		_, err = p.Held(context.Background(), "127.0.0.1:1", []string{"a"})
		require.Error(t, err, "after refusedRecheck the actors are asked again")
	}
}

// Ensure the client connections kept for directory addresses are bounded.
func TestPeerConnsBounded(t *testing.T) {
	p := testPeers(t)
	defer p.close()
	for i := range maxPeerConns + 50 {
		_, err := p.conn(fmt.Sprintf("10.0.%d.%d:5002", i/250, i%250+1))
		require.NoError(t, err)
	}
	assert.Len(t, p.conns, maxPeerConns)
	_, err := p.conn("8.8.8.8:5002")
	assert.True(t, err != nil && !errors.Is(err, errNoPeerKey))
	assert.Len(t, p.conns, maxPeerConns)
}

// Ensure forwarded calls that the peer did not accept go through the actor.
func TestRetryViaActor(t *testing.T) {
	for c, want := range map[codes.Code]bool{
		codes.Aborted: true, codes.Unavailable: true, codes.Unauthenticated: true, codes.PermissionDenied: true,
		codes.OK: false, codes.NotFound: false, codes.DeadlineExceeded: false, codes.InvalidArgument: false, codes.FailedPrecondition: false,
	} {
		assert.Equal(t, want, retryViaActor(status.Error(c, "x")), c.String())
	}
}

// Ensure the WatchEvents limits: per instance, per caller, and released streams count no more.
func TestStreamLimiter(t *testing.T) {
	l := newStreamLimiter(3, 2)
	r1, err := l.acquire("a")
	require.NoError(t, err)
	_, err = l.acquire("a")
	require.NoError(t, err)
	_, err = l.acquire("a")
	assert.Equal(t, codes.ResourceExhausted, codeFor(err), "per caller")
	assert.Contains(t, status.Convert(err).Message(), "--max-watch-streams-per-caller")
	_, err = l.acquire("b")
	require.NoError(t, err)
	_, err = l.acquire("c")
	assert.Equal(t, codes.ResourceExhausted, codeFor(err), "per instance")
	r1()
	r1() // idempotent
	_, err = l.acquire("c")
	require.NoError(t, err)
	assert.Len(t, l.by, 3)

	unlimited := newStreamLimiter(0, 0)
	for range 100 {
		_, err := unlimited.acquire("a")
		require.NoError(t, err)
	}
}

// Ensure callers are told apart by token first, then by address.
func TestCallerOf(t *testing.T) {
	const method = "/websocketmanager.v1.WebSocketManager/WatchEvents"
	callerWith := func(a *Auth, auth string) string {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", auth))
		ctx, err := a.authenticate(ctx, method)
		require.NoError(t, err, auth)
		return callerOf(ctx)
	}
	withTokens := &Auth{Tokens: NewTokens([]string{"one", "two"})}
	a := callerWith(withTokens, "Bearer one")
	assert.NotEqual(t, a, callerWith(withTokens, "Bearer two"))
	assert.NotContains(t, a, "one", "the token is not the key")
	// Every spelling the token check accepts is one caller: the per-caller limit holds.
	for _, spelling := range []string{"bearer one", "Bearer  one", "Bearer one ", "Bearer \tone", "Bearer one  "} {
		assert.Equal(t, a, callerWith(withTokens, spelling), "%q", spelling)
	}
	// Without tokens anyone can write any header: it names nobody.
	open := &Auth{Tokens: NewTokens(nil)}
	assert.Equal(t, callerWith(open, "Bearer x"), callerWith(open, "Bearer y"))
	assert.Equal(t, "unknown", callerOf(context.Background()))
}
