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
	Addr string // the address that was to be dialed (canonical form), when the refusal came from it
	// Embeds names the IPv4 address Addr embeds, and how, when that address was refused
	// ("127.0.0.2 (NAT64 64:ff9b::/96)").
	Embeds string
	Rule   string
}

func (e *DeniedError) Error() string {
	target := e.Host
	switch {
	case e.Embeds != "":
		target = fmt.Sprintf("%s (address %s, which embeds %s)", e.Host, e.Addr, e.Embeds)
	case e.Addr != "" && e.Addr != e.Host:
		target = fmt.Sprintf("%s (address %s)", e.Host, e.Addr)
	}
	return fmt.Sprintf("connecting to %s is denied by %s", target, e.Rule)
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
// Addresses and prefixes are stored in canonical form (IPv4-mapped ones as IPv4). Zones and
// IPv4 addresses in any notation but dotted decimal are refused: the guard ignores zones,
// and "127.1" would otherwise be taken for a host name that never matches the address.
func ParseRules(entries []string) (Rules, error) {
	var r Rules
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case strings.Contains(e, "%"):
			return Rules{}, fmt.Errorf("%q has a zone (%%…): the guard decides on addresses without their zone, so write the address or prefix alone", e)
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return Rules{}, fmt.Errorf("%q is not a CIDR prefix: %w", e, err)
			}
			r.prefixes = append(r.prefixes, canonicalPrefix(p.Masked()))
		case isAddr(e):
			a, _ := netip.ParseAddr(strings.Trim(e, "[]"))
			a = Canonical(a)
			r.prefixes = append(r.prefixes, netip.PrefixFrom(a, a.BitLen()))
		case endsInNumber(e):
			return Rules{}, fmt.Errorf("%q ends in a number but is no IPv4 address in dotted decimal; write the address as a.b.c.d (e.g. 127.0.0.1) or a CIDR prefix", e)
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

// canonicalPrefix turns a prefix of IPv4-mapped addresses (::ffff:10.0.0.0/104) into the
// IPv4 prefix it covers (10.0.0.0/8): addresses are matched in canonical form.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

// endsInNumber reports whether the last label of host is a number (decimal, 0x-hex or
// octal): such names are IPv4 addresses to URL parsers and many resolvers (WHATWG URL "ends
// in a number"), never DNS names.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if _, ok := parseIPv4Part(last); ok {
		return true
	}
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
	host = normalizeHost(host)
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

// normalizeHost lowers host and drops trailing dots ("Feed.Example." is "feed.example").
func normalizeHost(host string) string {
	return strings.TrimRight(strings.ToLower(host), ".")
}

// matchAddr returns the longest prefix containing a (canonical), if any.
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
		// The first entry containing an address names the rule: specific before general.
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible IPv6 (deprecated, embeds IPv4)"},
		{"::ffff:0:0:0/96", "IPv4-translated IPv6 (embeds IPv4)"},
		{"64:ff9b::/96", "NAT64 (embeds IPv4)"},
		{"64:ff9b:1::/48", "NAT64 local use (embeds IPv4)"},
		{"100::/64", "discard-only"},
		{"2001::/32", "Teredo (embeds IPv4)"},
		{"2001::/23", "IETF protocol assignments"},
		{"2001:db8::/32", "documentation"},
		{"2002::/16", "6to4 (embeds IPv4)"},
		{"3fff::/20", "documentation"},
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
//
// Steps 3-5 run on the canonical form of a (no zone, IPv4-mapped as IPv4) and again on every
// IPv4 address a embeds (NAT64, 6to4, Teredo, …); any denial denies. So every spelling of an
// address is decided as its canonical form (zones, mapped forms, case, legacy IPv4 notations)
// or more strictly (embedded forms, whose prefixes are also special ranges).
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
//
// A host that is an address in any spelling a URL parser or resolver may accept ("::1%lo",
// "127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.1.") is no name: no name rule
// applies to it, and it is decided as the address it denotes right away (and again, as
// every address, when dialed).
func (p Policy) CheckHost(host string) (bool, error) {
	if p.Off {
		return true, nil
	}
	if a, ok := ParseHostAddr(host); ok {
		return false, p.CheckAddr(host, a)
	}
	if e, ok := p.Deny.matchHost(host); ok {
		return false, &DeniedError{Host: host, Rule: fmt.Sprintf("the deny-list entry %q", e)}
	}
	if _, ok := p.Allow.matchHost(host); ok {
		return true, nil
	}
	return false, nil
}

// CheckAddr applies the address rules to a, an address host resolved to (or the address
// host spells). The policy decides on the canonical form of a (see Canonical) and then on
// every IPv4 address a embeds (see Embedded): an embedded form is allowed only if both the
// IPv6 address itself and each IPv4 address it embeds are allowed, so it is never decided
// more leniently than the IPv4 address it reaches.
func (p Policy) CheckAddr(host string, a netip.Addr) error {
	if p.Off {
		return nil
	}
	c := Canonical(a)
	if rule, denied := p.decide(c); denied {
		return &DeniedError{Host: host, Addr: c.String(), Rule: rule}
	}
	for _, e := range Embedded(c) {
		if rule, denied := p.decide(e.Addr); denied {
			return &DeniedError{Host: host, Addr: c.String(), Embeds: fmt.Sprintf("%s (%s)", e.Addr, e.Form), Rule: rule}
		}
	}
	return nil
}

// decide applies the lists, then the special ranges, to the canonical address a.
func (p Policy) decide(a netip.Addr) (rule string, denied bool) {
	dp, inDeny := p.Deny.matchAddr(a)
	ap, inAllow := p.Allow.matchAddr(a)
	switch {
	case inDeny && (!inAllow || dp.Bits() >= ap.Bits()):
		return fmt.Sprintf("the deny-list entry %q", dp), true
	case inAllow:
		return "", false
	}
	for _, s := range special {
		if s.p.Contains(a) {
			return fmt.Sprintf("the default rule for %s addresses (%s); allow it with --dial-allow if this target is intended", s.name, s.p), true
		}
	}
	return "", false
}

// Canonical is the form of an address the policy decides on: without its zone (a zone only
// picks the interface, not the address reached), and an IPv4-mapped address
// (::ffff:a.b.c.d) as the IPv4 address a.b.c.d (Go dials it as IPv4).
func Canonical(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

// Embedding is an IPv4 address carried inside an IPv6 address, and the form that carries it.
type Embedding struct {
	Form string // e.g. "NAT64 64:ff9b::/96"
	Addr netip.Addr
}

// Embedded returns the IPv4 addresses an IPv6 address carries in a well-known form: IPv4-
// compatible (::a.b.c.d, except :: and ::1), IPv4-translated (::ffff:0:a.b.c.d, ::ffff:0:0:0/96), NAT64
// (64:ff9b::/96; the local-use 64:ff9b:1::/48 at every RFC 6052 position it may use), 6to4
// (2002:aabb:ccdd::/48), Teredo (server and de-obfuscated client of 2001::/32) and ISATAP
// interface ids (…:0:5efe:a.b.c.d, …:200:5efe:a.b.c.d, under any prefix). A translator, relay
// or tunnel may deliver traffic for such an address to the IPv4 address it carries.
func Embedded(a netip.Addr) []Embedding {
	a = Canonical(a)
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	var out []Embedding
	add := func(form string, v [4]byte) { out = append(out, Embedding{Form: form, Addr: netip.AddrFrom4(v)}) }
	switch {
	case zero(b[:12]):
		if !zero(b[12:15]) || b[15] > 1 { // :: and ::1 are no IPv4-compatible addresses
			add("IPv4-compatible ::/96", [4]byte(b[12:16]))
		}
	case zero(b[:8]) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0:
		add("IPv4-translated ::ffff:0:0:0/96", [4]byte(b[12:16]))
	case nat64.Contains(a):
		add("NAT64 64:ff9b::/96", [4]byte(b[12:16]))
	case nat64Local.Contains(a):
		// The operator picks the prefix length inside the /48, so every RFC 6052 position it
		// may use (48, 56, 64, 96; bits 64-71 are always skipped) is decided. Candidates in
		// 0.0.0.0/8 are what the zero padding of the other lengths reads as, and no
		// translator forwards to "this network": they are left out, or no address under the
		// prefix could ever be allowed.
		for _, c := range []struct {
			form string
			v    [4]byte
		}{
			{"NAT64 local use 64:ff9b:1::/48 as /48", [4]byte{b[6], b[7], b[9], b[10]}},
			{"NAT64 local use 64:ff9b:1::/48 as /56", [4]byte{b[7], b[9], b[10], b[11]}},
			{"NAT64 local use 64:ff9b:1::/48 as /64", [4]byte(b[9:13])},
			{"NAT64 local use 64:ff9b:1::/48 as /96", [4]byte(b[12:16])},
		} {
			if c.v[0] != 0 {
				add(c.form, c.v)
			}
		}
	case b[0] == 0x20 && b[1] == 0x02:
		add("6to4 2002::/16", [4]byte(b[2:6]))
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		add("Teredo 2001::/32 server", [4]byte(b[4:8]))
		add("Teredo 2001::/32 client", [4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}
	// ISATAP: 00-00-5E-FE in modified EUI-64 (universal/local and group bits may be set).
	if b[8]&^0x03 == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		add("ISATAP interface id", [4]byte(b[12:16]))
	}
	return out
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
)

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ParseHostAddr returns the address a URL host denotes when it is an address in any
// spelling: an IP literal (brackets and zone allowed; "::ffff:127.0.0.1", "::1%lo") or an
// IPv4 address in the notations inet_aton(3) and WHATWG URL parsers accept: 1 to 4 parts of
// decimal, 0x-hex or 0-octal numbers, the last filling the remaining bytes, one trailing dot
// allowed ("127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.1."). ok is false for
// host names.
func ParseHostAddr(host string) (a netip.Addr, ok bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true
	}
	if h, zone, found := strings.Cut(host, "%"); found {
		// Zones on IPv4 ("127.0.0.1%lo") are ignored by dialers: decide on the address.
		if a, ok := ParseHostAddr(h); ok && zone != "" {
			return a, true
		}
		return netip.Addr{}, false
	}
	return parseIPv4Number(host)
}

// parseIPv4Number parses the legacy IPv4 notations (see ParseHostAddr).
func parseIPv4Number(host string) (netip.Addr, bool) {
	if len(host) > 1 {
		host = strings.TrimSuffix(host, ".")
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, part := range parts {
		n, ok := parseIPv4Part(part)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 0xff {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if rest := 8 * (4 - i); n >= 1<<rest {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Part parses one part of a legacy IPv4 address: 0x-hex, 0-octal or decimal.
func parseIPv4Part(s string) (uint64, bool) {
	base := 10
	switch {
	case s == "":
		return 0, false
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
		if s == "" {
			return 0, true // "0x" is 0 to WHATWG URL parsers
		}
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	var n uint64
	for _, c := range []byte(s) {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= uint64(base) {
			return 0, false
		}
		n = n*uint64(base) + d
		if n > 0xffffffff {
			return 0, false
		}
	}
	return n, true
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
			a, ok := dialedAddr(address)
			if !ok { // fail closed: an address the guard cannot read is not dialed
				de := &DeniedError{Host: host, Addr: address, Rule: "the guard: the address to be dialed could not be read"}
				denied.Store(de)
				return de
			}
			if err := d.Policy.CheckAddr(host, a); err != nil {
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

// dialedAddr reads the address net.Dialer hands to Control: "1.2.3.4:80", "[::1]:80",
// "[fe80::1%eth0]:80", and for an IPv4-mapped address with a zone "127.0.0.1%lo:80".
func dialedAddr(address string) (netip.Addr, bool) {
	h, _, err := net.SplitHostPort(address)
	if err != nil {
		return netip.Addr{}, false
	}
	h, _, _ = strings.Cut(h, "%") // the zone does not change the decision (see Canonical)
	a, err := netip.ParseAddr(h)
	return a, err == nil
}

// IsDenied reports whether err is, or wraps, a policy refusal.
func IsDenied(err error) bool {
	var d *DeniedError
	return errors.As(err, &d)
}
