// Package netguard owns the outbound-connection policy (the SSRF guard): which hosts and
// addresses the service may open WebSocket connections to. It checks the host name before
// resolving it and every address actually dialed, so a name that resolves to an allowed
// address when checked and to a denied one when dialed (DNS rebinding) is still refused.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// DeniedError reports a dial the policy refused, and which rule refused it.
type DeniedError struct {
	Host string // the host name or address of the URL
	Addr string // the address that was to be dialed, when the refusal came from it
	Rule string
}

func (e *DeniedError) Error() string {
	if e.Addr != "" && e.Addr != e.Host {
		return fmt.Sprintf("connecting to %s (address %s) is denied by %s", e.Host, e.Addr, e.Rule)
	}
	return fmt.Sprintf("connecting to %s is denied by %s", e.Host, e.Rule)
}

// Rules are allow- and deny-list entries: exact host names ("feed.example.com"), host
// patterns ("*.example.com": any subdomain, not the domain itself), IP addresses and CIDR
// prefixes ("10.1.0.0/16").
type Rules struct {
	hosts    []string // exact, lower case
	patterns []string // ".example.com" for "*.example.com"
	prefixes []netip.Prefix
}

// ParseRules parses entries of an allow- or deny-list; empty entries are skipped.
func ParseRules(entries []string) (Rules, error) {
	var r Rules
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return Rules{}, fmt.Errorf("%q is not a CIDR prefix: %w", e, err)
			}
			r.prefixes = append(r.prefixes, p.Masked())
		case isAddr(e):
			a, _ := netip.ParseAddr(strings.Trim(e, "[]"))
			a = a.Unmap()
			r.prefixes = append(r.prefixes, netip.PrefixFrom(a, a.BitLen()))
		case strings.HasPrefix(e, "*."):
			if !validHost(e[2:]) {
				return Rules{}, fmt.Errorf("%q is not a host pattern (use *.example.com)", e)
			}
			r.patterns = append(r.patterns, e[1:])
		default:
			if !validHost(e) {
				return Rules{}, fmt.Errorf("%q is neither a host name, a host pattern (*.example.com), an IP address nor a CIDR prefix", e)
			}
			r.hosts = append(r.hosts, e)
		}
	}
	return r, nil
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// matchHost returns the entry matching host, if any.
func (r Rules) matchHost(host string) (string, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range r.hosts {
		if h == host {
			return h, true
		}
	}
	for _, p := range r.patterns {
		if strings.HasSuffix(host, p) && len(host) > len(p) {
			return "*" + p, true
		}
	}
	return "", false
}

// matchAddr returns the longest prefix containing a, if any.
func (r Rules) matchAddr(a netip.Addr) (netip.Prefix, bool) {
	var best netip.Prefix
	found := false
	for _, p := range r.prefixes {
		if p.Contains(a) && (!found || p.Bits() > best.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}

// special are the ranges denied by default: addresses that reach this host, its network or
// infrastructure rather than a public server.
var special = func() []struct {
	p    netip.Prefix
	name string
} {
	list := []struct{ cidr, name string }{
		{"0.0.0.0/8", "unspecified/this-network"},
		{"10.0.0.0/8", "private (RFC 1918)"},
		{"100.64.0.0/10", "shared address space (RFC 6598)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (includes cloud metadata 169.254.169.254)"},
		{"172.16.0.0/12", "private (RFC 1918)"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation (TEST-NET-1)"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private (RFC 1918)"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation (TEST-NET-2)"},
		{"203.0.113.0/24", "documentation (TEST-NET-3)"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved (includes broadcast)"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"64:ff9b::/96", "NAT64 (embeds IPv4)"},
		{"64:ff9b:1::/48", "NAT64 local use"},
		{"100::/64", "discard-only"},
		{"2001::/23", "IETF protocol assignments"},
		{"2001:db8::/32", "documentation"},
		{"2002::/16", "6to4 (embeds IPv4)"},
		{"fc00::/7", "unique local (IPv6 ULA)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]struct {
		p    netip.Prefix
		name string
	}, len(list))
	for i, s := range list {
		out[i].p = netip.MustParsePrefix(s.cidr)
		out[i].name = s.name
	}
	return out
}()

// Policy decides which targets may be dialed. The zero Policy denies the special ranges and
// allows everything else.
//
// Order of decision for a host name h resolving to address a:
//  1. h matches the deny-list → denied;
//  2. h matches the allow-list → allowed (the operator trusts the name, whatever it resolves to);
//  3. the longest CIDR of either list containing a decides (a tie denies);
//  4. a in a special range (loopback, private, link-local, …) → denied;
//  5. otherwise allowed.
type Policy struct {
	Allow, Deny Rules
	// Off turns the guard off entirely (for development only).
	Off bool
}

// NewPolicy builds a policy from allow- and deny-list entries.
func NewPolicy(allow, deny []string) (Policy, error) {
	a, err := ParseRules(allow)
	if err != nil {
		return Policy{}, fmt.Errorf("allow-list: %w", err)
	}
	d, err := ParseRules(deny)
	if err != nil {
		return Policy{}, fmt.Errorf("deny-list: %w", err)
	}
	return Policy{Allow: a, Deny: d}, nil
}

// CheckHost applies the name rules. It returns (true, nil) when the name alone allows the
// host, (false, nil) when its addresses decide, and an error when the name is denied.
func (p Policy) CheckHost(host string) (bool, error) {
	if p.Off {
		return true, nil
	}
	if e, ok := p.Deny.matchHost(host); ok {
		return false, &DeniedError{Host: host, Rule: fmt.Sprintf("the deny-list entry %q", e)}
	}
	if _, ok := p.Allow.matchHost(host); ok {
		return true, nil
	}
	return false, nil
}

// CheckAddr applies the address rules to a, an address host resolved to.
func (p Policy) CheckAddr(host string, a netip.Addr) error {
	if p.Off {
		return nil
	}
	a = a.Unmap()
	dp, denied := p.Deny.matchAddr(a)
	ap, allowed := p.Allow.matchAddr(a)
	switch {
	case denied && (!allowed || dp.Bits() >= ap.Bits()):
		return &DeniedError{Host: host, Addr: a.String(), Rule: fmt.Sprintf("the deny-list entry %q", dp)}
	case allowed:
		return nil
	}
	for _, s := range special {
		if s.p.Contains(a) {
			return &DeniedError{Host: host, Addr: a.String(), Rule: fmt.Sprintf("the default rule for %s addresses (%s); allow it with --dial-allow if this target is intended", s.name, s.p)}
		}
	}
	return nil
}

// Dialer dials TCP connections for WebSocket handshakes under a policy.
type Dialer struct {
	Policy  Policy
	Timeout time.Duration // connect timeout; the context bounds it too
	// Resolver resolves host names; nil uses net.DefaultResolver.
	Resolver *net.Resolver
}

// DialContext is a NetDialContext for gorilla's websocket.Dialer: addr is the URL's
// host:port. The name is checked first; every address the connection is actually made to is
// checked again in the socket's Control hook, just before connect(2).
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	byName, err := d.Policy.CheckHost(host)
	if err != nil {
		return nil, err
	}
	var denied atomic.Pointer[DeniedError] // Control may run for several addresses at once
	nd := net.Dialer{Timeout: d.Timeout, Resolver: d.Resolver}
	if !byName {
		nd.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("unexpected dial address %q: %w", address, err)
			}
			if err := d.Policy.CheckAddr(host, ap.Addr()); err != nil {
				var de *DeniedError
				if errors.As(err, &de) {
					denied.Store(de)
				}
				return err
			}
			return nil
		}
	}
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		if de := denied.Load(); de != nil {
			return nil, de // report the rule, not the dialer's wrapping of it
		}
	}
	return c, err
}

// IsDenied reports whether err is, or wraps, a policy refusal.
func IsDenied(err error) bool {
	var d *DeniedError
	return errors.As(err, &d)
}
