package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// forwardedKey marks a call one instance forwarded to the instance that holds the socket.
const forwardedKey = "x-wsm-forwarded"

// isForwarded reports whether the incoming call was forwarded by another instance: it carries
// the marker and proved it comes from a peer (from anyone else the marker means nothing).
func isForwarded(ctx context.Context) bool {
	if !fromPeer(ctx) {
		return false
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// DefaultPeerAllow is where other instances may be by default: loopback and the private
// ranges a cluster's pods live in. Everything else (public addresses, link-local, metadata)
// needs --peer-allow.
var DefaultPeerAllow = []string{"127.0.0.0/8", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"}

// PeerPolicy returns the policy for addresses of other instances taken from the directory:
// only allow (DefaultPeerAllow when empty) may be dialed, minus deny.
func PeerPolicy(allow, deny []string) (netguard.Policy, error) {
	if len(allow) == 0 {
		allow = DefaultPeerAllow
	}
	// Denying every address makes the allow-list the only way in (netguard's longest prefix wins).
	return netguard.NewPolicy(allow, append([]string{"0.0.0.0/0", "::/0"}, deny...))
}

// Bounds of what addresses from the directory can make this instance keep.
const (
	// maxPeerConns is how many instances this one keeps a client connection to; the least
	// recently used goes beyond it.
	maxPeerConns = 256
	// maxRefused is how many refused addresses are remembered (to log each once).
	maxRefused = 1024
	// refusedRecheck is how often the watchdog may ask the actors about the connections of a
	// holder it may not ask itself (see [peers.Held]).
	refusedRecheck  = 30 * time.Second
	peerDialTimeout = 5 * time.Second
)

// PeerKeepalive is how often calls between instances ping while open; servers must permit it
// (ServerKeepalive).
const PeerKeepalive = 20 * time.Second

// ServerKeepalive returns the gRPC server's keepalive options: other instances may ping every
// PeerKeepalive while calls are open, and the server pings callers idle for a minute, so that
// a watcher that vanished does not hold its watcher place for the OS's two hours.
func ServerKeepalive() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: PeerKeepalive / 2}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	}
}

// errNoPeerKey refuses peer calls when this instance has no peer key.
var errNoPeerKey = errors.New("no peer key configured (--peer-tokens-file, WSM_PEER_TOKENS or APP_API_TOKEN): calls to other instances are off")

// peers calls other instances (forwarded Sends and SendRaws, the watchdog's Held, event
// following) at addresses read from the directory. Those addresses are not trusted: each is
// checked against the peer policy — by name, and every address actually dialed — and calls
// carry a proof bound to the address rather than a secret.
type peers struct {
	keys   *PeerKeys
	creds  credentials.TransportCredentials // nil: plaintext
	policy netguard.Policy
	log    *zap.Logger
	// refusedHook counts refused addresses (metrics); may be nil.
	refusedHook func()

	mu      sync.Mutex
	conns   map[string]*peerConn
	refused map[string]time.Time // address → when Held last let the watchdog ask the actors
	// vacant: addresses whose last dial found nothing listening (their instance is gone).
	vacant map[string]bool
}

type peerConn struct {
	cc       *grpc.ClientConn
	lastUsed time.Time
}

// check says whether addr may be called at all: there is a peer key, and neither its name
// nor (for an address literal) its address is refused. Names are checked again, by every
// address they resolve to, when dialed.
func (p *peers) check(addr string) error {
	if !p.keys.Enabled() {
		return errNoPeerKey
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("peer address %q: %w", addr, err)
	}
	byName, err := p.policy.CheckHost(host)
	if err != nil || byName {
		return err
	}
	if a, perr := netip.ParseAddr(host); perr == nil {
		return p.policy.CheckAddr(host, a)
	}
	return nil
}

// refuse logs a refused address once and counts it.
func (p *peers) refuse(addr string, err error) {
	if errors.Is(err, errNoPeerKey) {
		return // said once at startup
	}
	p.mu.Lock()
	_, seen := p.refused[addr]
	if !seen {
		p.makeRoomLocked()
		p.refused[addr] = time.Time{}
	}
	p.mu.Unlock()
	if !seen && p.refusedHook != nil {
		p.refusedHook() // once per address, not once per look at it
	}
	if !seen && p.log != nil {
		p.log.Warn("not calling an instance address from the directory: the peer policy refuses it (--peer-allow)",
			zap.String("address", addr), zap.Error(err))
	}
}

// dial connects to a peer under the policy: the Control hook checks every address actually
// dialed, so a name resolving to a refused address is refused before connect(2).
func (p *peers) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := netguard.Dialer{Policy: p.policy, Timeout: peerDialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if netguard.IsDenied(err) {
		p.refuse(addr, err)
	}
	p.noteDial(addr, err)
	return c, err
}

// noteDial remembers whether the last dial of addr found nothing listening there: an
// instance that died (its port closed), as opposed to one that is slow or unreachable.
func (p *peers) noteDial(addr string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if p.vacant == nil || len(p.vacant) >= maxRefused {
			p.vacant = map[string]bool{} // bounded; an instance still gone is refused again
		}
		p.vacant[addr] = true
	case err == nil:
		delete(p.vacant, addr)
	}
}

// ListHeld implements [actors.PeerLister] over the peer API of the instance at addr. A call
// that failed because nothing listens at addr any more wraps [actors.ErrInstanceGone]; one
// without a peer key, or that the instance refuses the key for, wraps [actors.ErrPeerRefused].
func (p *peers) ListHeld(ctx context.Context, addr string, q actors.HeldQuery) ([]actors.ConnectionInfo, bool, error) {
	c, err := p.conn(addr)
	if err != nil {
		if errors.Is(err, errNoPeerKey) {
			return nil, false, fmt.Errorf("%w: %w", actors.ErrPeerRefused, err) // a configuration to fix
		}
		// The peer policy refuses the address: not an instance this one may call, so not one
		// whose answer List can wait for (anything that may call the directory can record one).
		return nil, false, fmt.Errorf("%w (%s): %v", actors.ErrInstanceGone, addr, err)
	}
	in := &pb.ListHeldRequest{Tags: q.Tags, Status: statusOf(q.Status), AfterId: q.After, Limit: int32(q.Limit)}
	var r *pb.ListHeldResponse
	// Twice at most: a call on a connection the instance's death broke fails before anything
	// is dialed; the second dials, and learns whether anything still listens there.
	for range 2 {
		r, err = pb.NewWebSocketManagerPeerClient(c).ListHeld(p.peerCtx(ctx, addr), in, grpc.MaxCallRecvMsgSize(maxListHeldBytes))
		if status.Code(err) != codes.Unavailable {
			break
		}
		p.mu.Lock()
		vacant := p.vacant[addr]
		p.mu.Unlock()
		if vacant || p.wasRefused(addr) { // nothing listens, or the name resolves to a refused address
			return nil, false, fmt.Errorf("%w (%s): %v", actors.ErrInstanceGone, addr, err)
		}
	}
	switch status.Code(err) {
	case codes.OK:
	case codes.Unauthenticated, codes.PermissionDenied:
		return nil, false, fmt.Errorf("%w: %w", actors.ErrPeerRefused, err)
	default:
		return nil, false, err
	}
	out := make([]actors.ConnectionInfo, 0, len(r.GetConnections()))
	for _, c := range r.GetConnections() {
		out = append(out, infoOf(c))
	}
	return out, r.GetMore(), nil
}

// maxListHeldBytes bounds one ListHeld answer (MaxListPageSize connections with their tags).
const maxListHeldBytes = 64 << 20

func (p *peers) conn(addr string) (*grpc.ClientConn, error) {
	if err := p.check(addr); err != nil {
		p.refuse(addr, err)
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if c := p.conns[addr]; c != nil {
		c.lastUsed = now
		return c.cc, nil
	}
	creds := p.creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	// passthrough: the dialer gets the address as written and resolves it itself, so that
	// name rules apply and every resolved address is checked.
	// Keepalive while calls are open: a relayed WatchFrames on an idle connection learns within
	// seconds that a holder vanished without a FIN or RST (node loss, partition).
	c, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(p.dial), grpc.WithAuthority(addr),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: PeerKeepalive, Timeout: PeerKeepalive / 2}))
	if err != nil {
		return nil, err
	}
	if p.conns == nil {
		p.conns = map[string]*peerConn{}
	}
	if len(p.conns) >= maxPeerConns {
		p.evictLocked()
	}
	p.conns[addr] = &peerConn{cc: c, lastUsed: now}
	return c, nil
}

// evictLocked closes the least recently used connection (a call on it fails UNAVAILABLE
// and takes the actor path; a follower follows again on its next refresh).
func (p *peers) evictLocked() {
	var oldest string
	var t time.Time
	for a, c := range p.conns {
		if oldest == "" || c.lastUsed.Before(t) {
			oldest, t = a, c.lastUsed
		}
	}
	if c := p.conns[oldest]; c != nil {
		_ = c.cc.Close()
		delete(p.conns, oldest)
	}
}

func (p *peers) client(addr string) (pb.WebSocketManagerClient, error) {
	c, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewWebSocketManagerClient(c), nil
}

// Held implements [actors.HeldChecker] over the peer API of the instance at addr.
//
// For an address it may not call (no peer key, or the peer policy refuses it) it answers an
// error — the watchdog then asks each connection's actor, the authority, where its socket
// is (which also corrects a false holder record) — at most once per refusedRecheck per
// address; in between it answers that the holder holds them all, so that a cluster without
// a peer key does not ask every actor on every watchdog round.
func (p *peers) Held(ctx context.Context, addr string, ids []string) ([]string, error) {
	c, err := p.conn(addr)
	if err != nil {
		if p.recheckDue(addr) {
			return nil, err
		}
		return ids, nil
	}
	r, err := pb.NewWebSocketManagerPeerClient(c).Held(p.peerCtx(ctx, addr), &pb.HeldRequest{Ids: ids})
	if err != nil {
		if p.wasRefused(addr) && !p.recheckDue(addr) { // a name that resolves to a refused address
			return ids, nil
		}
		return nil, err
	}
	return r.GetHeld(), nil
}

func (p *peers) wasRefused(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.refused[addr]
	return ok
}

// recheckDue reports whether the watchdog may ask the actors about addr's connections now.
func (p *peers) recheckDue(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	last, ok := p.refused[addr]
	if ok && time.Since(last) < refusedRecheck {
		return false
	}
	if !ok {
		p.makeRoomLocked()
	}
	p.refused[addr] = time.Now()
	return true
}

// makeRoomLocked keeps the refused addresses within maxRefused by forgetting the one marked
// longest ago. Forgetting one, not all: a flood of refused addresses from the directory must
// not reset every address's recheck time (which would make the watchdog ask the actors about
// all their connections on every round).
func (p *peers) makeRoomLocked() {
	if p.refused == nil {
		p.refused = map[string]time.Time{}
	}
	if len(p.refused) < maxRefused {
		return
	}
	var oldest string
	var at time.Time
	for a, t := range p.refused {
		if oldest == "" || t.Before(at) {
			oldest, at = a, t
		}
	}
	delete(p.refused, oldest)
}

// Holder says whether this instance holds a connection's socket, and describes those it holds.
type Holder interface {
	Holds(id string) bool
	ListHeld(q actors.HeldQuery) ([]actors.ConnectionInfo, bool)
}

// Peer serves the instance-to-instance API (WebSocketManagerPeer).
type Peer struct {
	pb.UnimplementedWebSocketManagerPeerServer
	holder Holder
}

// NewPeer returns the peer API over this instance's sockets. It answers only calls that
// proved they come from another instance ([Auth] checks the proof).
func NewPeer(h Holder) *Peer { return &Peer{holder: h} }

// Held returns the requested ids whose socket this instance holds.
func (p *Peer) Held(ctx context.Context, in *pb.HeldRequest) (*pb.HeldResponse, error) {
	if !fromPeer(ctx) { // also when registered on a server without Auth
		return nil, actors.Errorf(actors.CodePermissionDenied, "WebSocketManagerPeer is for other instances of this service only")
	}
	if len(in.GetIds()) > maxHeldIDs {
		return nil, actors.Errorf(actors.CodeInvalidArgument, "at most %d ids per call", maxHeldIDs)
	}
	out := &pb.HeldResponse{}
	for _, id := range in.GetIds() {
		if p.holder.Holds(id) {
			out.Held = append(out.Held, id)
		}
	}
	return out, nil
}

// ListHeld describes the connections whose socket this instance holds, from memory.
func (p *Peer) ListHeld(ctx context.Context, in *pb.ListHeldRequest) (*pb.ListHeldResponse, error) {
	if !fromPeer(ctx) { // also when registered on a server without Auth
		return nil, actors.Errorf(actors.CodePermissionDenied, "WebSocketManagerPeer is for other instances of this service only")
	}
	limit := int(in.GetLimit())
	if limit < 0 || limit > actors.MaxListPageSize {
		return nil, actors.Errorf(actors.CodeInvalidArgument, "limit must be between 0 and %d", actors.MaxListPageSize)
	}
	if limit == 0 {
		limit = actors.MaxListPageSize
	}
	status, err := statusName(in.GetStatus())
	if err != nil {
		return nil, err
	}
	infos, more := p.holder.ListHeld(actors.HeldQuery{Tags: in.GetTags(), Status: status, After: in.GetAfterId(), Limit: limit})
	out := &pb.ListHeldResponse{Connections: make([]*pb.WebSocketConnection, 0, len(infos)), More: more}
	for _, in := range infos {
		out.Connections = append(out.Connections, connectionOf(in))
	}
	return out, nil
}

// maxHeldIDs bounds one Held call (a watchdog round asks about at most the whole directory).
const maxHeldIDs = 1 << 20

// peerCtx carries the proof for a call to the instance at addr.
func (p *peers) peerCtx(ctx context.Context, addr string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, peerProofKey, p.keys.proof(addr))
}

// forwardCtx marks a call to the instance at addr as forwarded and carries the proof.
func (p *peers) forwardCtx(ctx context.Context, addr string) context.Context {
	return p.peerCtx(metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"), addr)
}

// retryViaActor reports whether a forwarded call failed before the message was sent: the
// socket was not there (any more), the instance could not be reached or refused to be
// dialed, or it did not accept this instance as a peer. Then the actor decides.
func retryViaActor(err error) bool {
	switch codeFor(err) {
	case codes.Aborted, codes.Unavailable, codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

// peerRefusal tells a refusal by the peer (keys differ) from other failures, for the log.
func peerRefusal(err error) bool {
	c := status.Code(err)
	return (c == codes.Unauthenticated || c == codes.PermissionDenied) && strings.Contains(status.Convert(err).Message(), "peer")
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.cc.Close()
	}
	p.conns = nil
}
