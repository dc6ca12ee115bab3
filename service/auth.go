package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/websocketmanager/websocketmanager/actors"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Tokens are the bearer tokens the API accepts. The zero value (no tokens) accepts every call.
type Tokens struct {
	sums [][sha256.Size]byte
}

// NewTokens returns the accepted tokens; empty entries are ignored.
func NewTokens(list []string) *Tokens {
	t := &Tokens{}
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			t.sums = append(t.sums, sha256.Sum256([]byte(s)))
		}
	}
	return t
}

// Enabled reports whether calls must carry a token.
func (t *Tokens) Enabled() bool { return t != nil && len(t.sums) > 0 }

// Valid compares tok with every accepted token in constant time (hashing first, so neither
// the length nor the content of a token leaks through timing).
func (t *Tokens) Valid(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	ok := 0
	for i := range t.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], t.sums[i][:])
	}
	return ok == 1
}

// openMethods need no token: health checks (probes must work without secrets).
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// authorize checks the "authorization: Bearer <token>" metadata of a call.
func (t *Tokens) authorize(ctx context.Context, fullMethod string) error {
	if !t.Enabled() || openMethod(fullMethod) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return actors.Errorf(actors.CodeUnauthenticated, "this service requires a bearer token: send the header 'authorization: Bearer <token>'")
	}
	if !t.ValidAuthorization(vals[0]) {
		return actors.Errorf(actors.CodeUnauthenticated, "the bearer token is not valid for this service")
	}
	return nil
}

// bearerToken returns the token of an Authorization header value ("Bearer <token>").
func bearerToken(v string) (string, bool) {
	tok, found := strings.CutPrefix(v, "Bearer ")
	if !found {
		tok, found = strings.CutPrefix(v, "bearer ")
	}
	return strings.TrimSpace(tok), found
}

// tokenName names the token of an accepted Authorization header: the same for every spelling
// of the header (a map key for per-caller limits, not a secret).
func tokenName(v string) string {
	tok, _ := bearerToken(v)
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:8])
}

// ValidAuthorization reports whether an Authorization header value is "Bearer <token>" with an
// accepted token.
func (t *Tokens) ValidAuthorization(v string) bool {
	tok, found := bearerToken(v)
	return found && t.Valid(tok)
}

// AuthUnary rejects calls without a valid bearer token with UNAUTHENTICATED (no peer calls).
func AuthUnary(t *Tokens) grpc.UnaryServerInterceptor { return (&Auth{Tokens: t}).Unary() }

// AuthStream is AuthUnary for streaming calls.
func AuthStream(t *Tokens) grpc.StreamServerInterceptor { return (&Auth{Tokens: t}).Stream() }

// ClientCertUnary requires a verified client certificate (mTLS) on every call except health
// checks; the TLS layer verifies a certificate when one is presented.
func ClientCertUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := clientCert(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// ClientCertStream is ClientCertUnary for streaming calls.
func ClientCertStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := clientCert(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

func clientCert(ctx context.Context, fullMethod string) error {
	if openMethod(fullMethod) {
		return nil
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			return nil
		}
	}
	return actors.Errorf(actors.CodeUnauthenticated, "this service requires a client certificate signed by its client CA (mTLS)")
}

// peerProofKey carries a call's proof that it comes from another instance of this service.
const peerProofKey = "x-wsm-peer"

// peerProofWindow is how far a proof's time may be from this instance's clock: a proof is
// bound to the address it was sent to, so the window only limits how long a proof copied
// off the wire stays usable against that one instance.
const peerProofWindow = 5 * time.Minute

// peerKeyLabel derives the default peer key from APP_API_TOKEN (see [DerivePeerKey]).
const peerKeyLabel = "websocketmanager peer key v1"

// PeerKeys are the secrets instances prove themselves to each other with. The secret itself
// never travels: a call carries an HMAC of the address it is sent to and the time, so an
// address that is not an instance (anything written into the directory) collects nothing it
// could use elsewhere. The first key signs; every key is accepted (rotation).
type PeerKeys struct {
	keys [][]byte
	now  func() time.Time
}

// NewPeerKeys returns the peer keys; empty entries are ignored.
func NewPeerKeys(list []string) *PeerKeys {
	k := &PeerKeys{now: time.Now}
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			k.keys = append(k.keys, []byte(s))
		}
	}
	return k
}

// DerivePeerKey returns the peer key derived from Dapr's APP_API_TOKEN: every instance of one
// app shares that token, API callers do not have it, and the derivation keeps the token
// itself off the wire.
func DerivePeerKey(appAPIToken string) string {
	if appAPIToken == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(appAPIToken))
	m.Write([]byte(peerKeyLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// Enabled reports whether this instance can make and accept peer calls.
func (k *PeerKeys) Enabled() bool { return k != nil && len(k.keys) > 0 }

func peerMAC(key []byte, target string, unix int64) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "wsm-peer-v1\x00%s\x00%d", target, unix)
	return m.Sum(nil)
}

// proof returns the value of peerProofKey for a call to the instance at target.
func (k *PeerKeys) proof(target string) string {
	t := k.now().Unix()
	return "v1." + strconv.FormatInt(t, 10) + "." + base64.RawURLEncoding.EncodeToString(peerMAC(k.keys[0], target, t))
}

// verify reports whether v is a proof, made with one of the keys, for a call to self within
// the time window. v comes from the network: anything may be in it.
func (k *PeerKeys) verify(v, self string) bool {
	if !k.Enabled() || len(v) > 128 {
		return false
	}
	rest, ok := strings.CutPrefix(v, "v1.")
	if !ok {
		return false
	}
	ts, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(t, 10) != ts { // one spelling per proof
		return false
	}
	if d := k.now().Sub(time.Unix(t, 0)); d > peerProofWindow || d < -peerProofWindow {
		return false
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || base64.RawURLEncoding.EncodeToString(mac) != sig { // the decoder skips line breaks
		return false
	}
	ok = false
	for _, key := range k.keys {
		ok = hmac.Equal(mac, peerMAC(key, self, t)) || ok // every key, no early exit
	}
	return ok
}

// peerService is the instance-to-instance API: only peers may call it.
func peerService(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/"+pb.WebSocketManagerPeer_ServiceDesc.ServiceName+"/")
}

// callInfo is what authentication found out about a call, for the interceptors outside it
// (logging, metrics) that run before it.
type callInfo struct {
	peer bool // the call proved it comes from another instance
	// token names the accepted API token the call carried (a hash prefix of the token itself,
	// whatever the spelling of its header); "" without tokens configured.
	token string
}

type callInfoKey struct{}

// withCallInfo returns ctx with a callInfo (the one ctx has already, if any).
func withCallInfo(ctx context.Context) (context.Context, *callInfo) {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ctx, ci
	}
	ci := &callInfo{}
	return context.WithValue(ctx, callInfoKey{}, ci), ci
}

// fromPeer reports whether the call proved it comes from another instance.
func fromPeer(ctx context.Context) bool {
	ci, ok := ctx.Value(callInfoKey{}).(*callInfo)
	return ok && ci.peer
}

// Auth authenticates API and peer calls: API calls by bearer token, calls from other
// instances by their peer proof (which replaces the token: the forwarding instance has
// authenticated the caller already).
type Auth struct {
	Tokens *Tokens
	Peers  *PeerKeys
	// Self is this instance's advertise address: the one peer proofs must be made for.
	Self string
}

func (a *Auth) authenticate(ctx context.Context, fullMethod string) (context.Context, error) {
	if openMethod(fullMethod) {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if proofs := md.Get(peerProofKey); len(proofs) > 0 {
		if !a.Peers.Enabled() {
			return ctx, actors.Errorf(actors.CodeUnauthenticated, "this instance accepts no calls from other instances: it has no peer key (--peer-tokens-file, WSM_PEER_TOKENS or APP_API_TOKEN)")
		}
		if !a.Peers.verify(proofs[0], a.Self) {
			return ctx, actors.Errorf(actors.CodeUnauthenticated, "the peer proof is not valid for this instance: instances must share a peer key and --advertise-address must be the address they reach it at")
		}
		ctx, ci := withCallInfo(ctx)
		ci.peer = true
		return ctx, nil
	}
	if err := a.Tokens.authorize(ctx, fullMethod); err != nil {
		return ctx, err
	}
	if peerService(fullMethod) {
		return ctx, actors.Errorf(actors.CodePermissionDenied, "WebSocketManagerPeer is for other instances of this service only; an API token is not enough")
	}
	if a.Tokens.Enabled() {
		if v := md.Get("authorization"); len(v) > 0 {
			var ci *callInfo
			ctx, ci = withCallInfo(ctx)
			ci.token = tokenName(v[0])
		}
	}
	return ctx, nil
}

// Unary rejects calls that are neither from a peer nor carry a valid bearer token.
func (a *Auth) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream is Unary for streaming calls (WatchEvents, reflection, health watch).
func (a *Auth) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
