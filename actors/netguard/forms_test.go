package netguard

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// decideHost is the guard's whole decision for a URL host that is an address (or any host
// when addr is invalid): "" when allowed, else the error text.
func decideHost(p Policy, host string, addr netip.Addr) string {
	byName, err := p.CheckHost(host)
	if err == nil && !byName && addr.IsValid() {
		err = p.CheckAddr(host, addr)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// Ensure every spelling of a denied address is denied, with the rule that denies the
// canonical address (or the default rule of the embedding prefix), under the default policy,
// an allow-list policy and an allow-only policy.
func TestEveryFormOfADeniedAddress(t *testing.T) {
	loopbackOK := []string{"127.0.0.0/8", "::1"} // as in make run and the e2e stack
	allowOnly := []string{"0.0.0.0/0", "::/0"}
	tests := []struct {
		name        string
		allow, deny []string
		host        string // URL host (without brackets)
		addr        string // the address the host resolves to / is dialed; "" = the host's own
		wantDenied  string // substring of the error; "" = allowed
	}{
		// Zones: decided on the address without the zone.
		{"zoned loopback, default policy", nil, nil, "::1%lo", "", "loopback"},
		{"zoned loopback, allow-only", []string{"93.184.216.0/24"}, allowOnly, "::1%lo", "", `deny-list entry "::/0"`},
		{"zoned loopback, allowed like ::1", loopbackOK, nil, "::1%lo", "", ""},
		{"zoned link-local", nil, nil, "fe80::1%eth0", "", "link-local"},
		{"zoned link-local, allow-only", []string{"fe80::2/128"}, allowOnly, "fe80::1%eth0", "", "deny-list"},
		{"zoned ULA", nil, nil, "fd00::1%eth0", "", "unique local"},
		{"zoned ULA, allow-only", []string{"2606:4700::/32"}, allowOnly, "fd00::1%eth0", "", "deny-list"},
		{"zoned address denied by a deny entry", loopbackOK, []string{"::1"}, "::1%lo", "", `deny-list entry "::1/128"`},
		{"zoned mapped address", loopbackOK, []string{"127.0.0.2"}, "::ffff:127.0.0.2%lo", "", `deny-list entry "127.0.0.2/32"`},
		{"zoned IPv4 (as a dialer prints it)", loopbackOK, []string{"127.0.0.2"}, "127.0.0.2%lo", "", "deny-list"},
		{"zone only on the dialed address", nil, nil, "feed.example", "fe80::1%eth0", "link-local"},
		// IPv4-mapped: the IPv4 address itself.
		{"mapped", loopbackOK, []string{"127.0.0.2"}, "::ffff:127.0.0.2", "", "deny-list"},
		{"mapped, hex and upper case", loopbackOK, []string{"127.0.0.2"}, "0:0:0:0:0:FFFF:7F00:2", "", "deny-list"},
		{"mapped, allowed like the IPv4 address", loopbackOK, []string{"127.0.0.2"}, "::ffff:127.0.0.1", "", ""},
		{"mapped metadata", nil, nil, "::ffff:169.254.169.254", "", "link-local"},
		// Embedded forms: denied by the IPv4 address's rule, and by default as embeddings.
		{"IPv4-compatible", loopbackOK, []string{"127.0.0.2"}, "::127.0.0.2", "", "IPv4-compatible"},
		{"IPv4-compatible, prefix allowed", []string{"::/96", "127.0.0.0/8"}, []string{"127.0.0.2"}, "::7f00:2", "", "which embeds 127.0.0.2 (IPv4-compatible ::/96)"},
		{"IPv4-compatible metadata", []string{"::/96"}, nil, "::169.254.169.254", "", "link-local"},
		{"IPv4-compatible of an allowed address is still an embedding", loopbackOK, nil, "::127.0.0.1", "", "IPv4-compatible"},
		{"IPv4-translated", []string{"::ffff:0:0:0/96"}, nil, "::ffff:0:10.0.0.1", "", "which embeds 10.0.0.1 (IPv4-translated"},
		{"IPv4-translated by default", nil, nil, "::ffff:0:1.1.1.1", "", "IPv4-translated"},
		{"NAT64", []string{"64:ff9b::/96"}, nil, "64:ff9b::a9fe:a9fe", "", "which embeds 169.254.169.254 (NAT64 64:ff9b::/96)"},
		{"NAT64 of a public address, prefix allowed", []string{"64:ff9b::/96"}, nil, "64:ff9b::1.1.1.1", "", ""},
		{"NAT64 under an IPv4 deny", []string{"64:ff9b::/96"}, []string{"1.1.1.0/24"}, "64:ff9b::1.1.1.1", "", `deny-list entry "1.1.1.0/24"`},
		{"NAT64 in an allow-only policy allowing only IPv4", []string{"1.1.1.0/24"}, allowOnly, "64:ff9b::1.1.1.1", "", `"::/0"`},
		{"NAT64 local use /96", []string{"64:ff9b:1::/48"}, nil, "64:ff9b:1::10.0.0.1", "", "RFC 1918"},
		{"NAT64 local use /48 position", []string{"64:ff9b:1::/48"}, nil, "64:ff9b:1:a00:1:100::", "", "10.0.1.1"},
		{"NAT64 local use /64 position", []string{"64:ff9b:1::/48"}, nil, "64:ff9b:1:0:a:0:100::", "", "10.0.0.1"},
		{"6to4", []string{"2002::/16"}, nil, "2002:a9fe:a9fe::1", "", "which embeds 169.254.169.254 (6to4"},
		{"6to4 by default", nil, nil, "2002:101:101::1", "", "6to4"},
		{"Teredo client", []string{"2001::/32"}, nil, "2001:0:101:101::80ff:fffd", "", "which embeds 127.0.0.2 (Teredo 2001::/32 client)"},
		{"Teredo server", []string{"2001::/32"}, nil, "2001:0:a00:1::fefe:fefe", "", "which embeds 10.0.0.1 (Teredo 2001::/32 server)"},
		{"Teredo by default", nil, nil, "2001:0:101:101::fefe:fefe", "", "Teredo"},
		{"ISATAP under a public prefix", nil, nil, "2606:4700::5efe:a00:1", "", "which embeds 10.0.0.1 (ISATAP"},
		{"ISATAP with the u bit", nil, nil, "2606:4700::200:5efe:7f00:1", "", "127.0.0.1"},
		{"ISATAP of a public address", nil, nil, "2606:4700::5efe:101:101", "", ""},
		{"ISATAP of a denied address under an allowed prefix", []string{"2606:4700::/32", "127.0.0.0/8"}, []string{"127.0.0.2"}, "2606:4700::5efe:7f00:2", "", "deny-list"},
		// IPv4 in legacy notations: decided as the address, whatever the resolver does.
		{"two parts", loopbackOK, []string{"127.0.0.2"}, "127.2", "", "deny-list"},
		{"one hex number", loopbackOK, []string{"127.0.0.2"}, "0x7f000002", "", "deny-list"},
		{"one decimal number", loopbackOK, []string{"127.0.0.2"}, "2130706434", "", "deny-list"},
		{"octal part", loopbackOK, []string{"127.0.0.2"}, "0177.0.0.2", "", "deny-list"},
		{"hex parts, upper case", loopbackOK, []string{"127.0.0.2"}, "0X7F.0.0.0X2", "", "deny-list"},
		{"leading zeros", loopbackOK, []string{"127.0.0.2"}, "127.000.000.002", "", "deny-list"},
		{"trailing dot", loopbackOK, []string{"127.0.0.2"}, "127.0.0.2.", "", "deny-list"},
		{"metadata as one number", nil, nil, "2852039166", "", "link-local"},
		{"legacy notation of an allowed address", loopbackOK, []string{"127.0.0.2"}, "127.1", "", ""},
		// Names: case and trailing dots do not escape a deny entry.
		{"upper-case name", nil, []string{"evil.example"}, "EVIL.Example", "93.184.216.34", "deny-list"},
		{"trailing dots", nil, []string{"evil.example"}, "evil.example..", "93.184.216.34", "deny-list"},
		// A name rule never applies to an address spelled as a number.
		{"numeric host is no name", nil, nil, "2130706433", "", "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.allow, tt.deny)
			require.NoError(t, err)
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			} else {
				var ok bool
				a, ok = ParseHostAddr(tt.host)
				require.True(t, ok, "%q is an address", tt.host)
			}
			got := decideHost(p, tt.host, a)
			if tt.wantDenied == "" {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, tt.wantDenied)
		})
	}
}

func TestParseHostAddr(t *testing.T) {
	tests := []struct{ give, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"[::1]", "::1"},
		{"::1%lo", "::1%lo"},
		{"127.0.0.1%lo", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"0x", "0.0.0.0"},
		{"0", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},
		{"256.0.0.1", ""},
		{"1.2.3.4.5", ""},
		{"127.0.0.1..", ""},
		{"08.0.0.1", ""},
		{"0x1g", ""},
		{"1.2.65536", ""},
		{"localhost", ""},
		{"example.com", ""},
		{"", ""},
		{".", ""},
		{"%lo", ""},
	}
	for _, tt := range tests {
		a, ok := ParseHostAddr(tt.give)
		if tt.want == "" {
			assert.False(t, ok, "%q parsed as %v", tt.give, a)
			continue
		}
		if assert.True(t, ok, tt.give) {
			assert.Equal(t, tt.want, a.String(), tt.give)
		}
	}
}

// Ensure list entries are read in canonical form: zones and legacy IPv4 notations are
// refused with a message saying what to write; IPv4-mapped prefixes become IPv4 prefixes.
func TestParseRulesForms(t *testing.T) {
	for _, bad := range []struct{ give, want string }{
		{"fe80::1%eth0", "zone"},
		{"fe80::%eth0/64", "zone"},
		{"127.1", "dotted decimal"},
		{"0x7f000001", "dotted decimal"},
		{"2130706433", "dotted decimal"},
		{"127.0.0.1.", "dotted decimal"},
		{"host.123", "dotted decimal"},
		{"*.0.1", "dotted decimal"},
	} {
		_, err := ParseRules([]string{bad.give})
		if assert.Error(t, err, bad.give) {
			assert.Contains(t, err.Error(), bad.want, bad.give)
		}
	}
	r, err := ParseRules([]string{"::ffff:10.0.0.0/104", "::ffff:127.0.0.2", "[::1]", "::ffff:0:0/96"})
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.2/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("0.0.0.0/0"),
	}, r.prefixes)

	// A mapped deny entry denies the IPv4 address in every spelling.
	p, err := NewPolicy([]string{"127.0.0.0/8"}, []string{"::ffff:127.0.0.2"})
	require.NoError(t, err)
	assert.Contains(t, decideHost(p, "127.0.0.2", netip.MustParseAddr("127.0.0.2")), "deny-list")
}

// startListener accepts on addr ("127.0.0.1:0") and counts the connections it accepts.
func startListener(t *testing.T, addr string) (port string, accepted *atomic.Int32) {
	t.Helper()
	a, accepted := sessiontest.CountingListener(t, addr)
	_, port, _ = net.SplitHostPort(a)
	return port, accepted
}

// Ensure the real Dialer refuses every spelling of a denied address with a DeniedError and
// never reaches a listener on it: under the default policy (loopback denied) and under the
// e2e stack's policy (loopback allowed, one address denied). Some spellings reach the
// listener without the guard (mapped, zoned, localhost), the others are refused before any
// resolver could read them its own way.
func TestDialerRefusesEveryForm(t *testing.T) {
	port, accepted := startListener(t, "127.0.0.2:0")
	defaultPolicy := Policy{}
	stack, err := NewPolicy([]string{"127.0.0.0/8", "::1"}, []string{"127.0.0.2"})
	require.NoError(t, err)
	hosts := []string{
		"127.0.0.2", "::ffff:127.0.0.2", "::ffff:7f00:2", "::FFFF:127.0.0.2", "::ffff:127.0.0.2%lo",
		"0:0:0:0:0:ffff:7f00:0002", "::127.0.0.2", "::ffff:0:127.0.0.2", "64:ff9b::127.0.0.2",
		"64:ff9b:1::127.0.0.2", "2002:7f00:2::1", "2001:0:7f00:2::1", "2001:0:101:101::80ff:fffd",
		"fe80::5efe:7f00:2%lo", "127.2", "127.0.2", "0x7f000002", "2130706434", "0177.0.0.2",
		"0x7f.0.0.2", "127.0.0.2.", "127.000.000.002", "127.0.0.2%lo",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, pc := range []struct {
		name string
		p    Policy
	}{{"default", defaultPolicy}, {"loopback allowed, 127.0.0.2 denied", stack}} {
		for _, h := range hosts {
			t.Run(pc.name+"/"+h, func(t *testing.T) {
				d := &Dialer{Policy: pc.p, Timeout: time.Second}
				c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h, port))
				if c != nil {
					c.Close()
				}
				var de *DeniedError
				require.ErrorAs(t, err, &de, "%v", err)
			})
		}
	}
	assert.Zero(t, accepted.Load(), "the listener on the denied address was reached")
}

// Ensure zoned IPv6 loopback is refused by the real Dialer before it reaches a listener on ::1
// (it connects without the fix: the zone hid the address from every rule).
func TestDialerRefusesZonedLoopback(t *testing.T) {
	port, accepted := startListener(t, "[::1]:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	allowOnly, err := NewPolicy([]string{"93.184.216.0/24"}, []string{"0.0.0.0/0", "::/0"})
	require.NoError(t, err)
	for _, p := range []Policy{{}, allowOnly} {
		for _, h := range []string{"::1%lo", "0:0:0:0:0:0:0:1%lo", "::1%1", "::1%eth0"} {
			d := &Dialer{Policy: p, Timeout: time.Second}
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h, port))
			if c != nil {
				c.Close()
			}
			var de *DeniedError
			require.ErrorAs(t, err, &de, "%s: %v", h, err)
		}
	}
	assert.Zero(t, accepted.Load())
}

// Ensure the address a name resolves to is checked in every form a DNS answer can carry:
// a stub DNS server answers A and AAAA records with embedded, mapped and special forms of
// loopback, and the Control hook refuses each before connect(2).
func TestDialerRefusesResolvedForms(t *testing.T) {
	port, accepted := startListener(t, "127.0.0.1:0")
	answers := map[string][]netip.Addr{
		"v4.test.":        {netip.MustParseAddr("127.0.0.1")},
		"mapped.test.":    {netip.MustParseAddr("::ffff:127.0.0.1")},
		"compat.test.":    {netip.MustParseAddr("::127.0.0.1")},
		"nat64.test.":     {netip.MustParseAddr("64:ff9b::127.0.0.1")},
		"sixtofour.test.": {netip.MustParseAddr("2002:7f00:1::1")},
		"teredo.test.":    {netip.MustParseAddr("2001:0:101:101::80ff:fffe")},
		"isatap.test.":    {netip.MustParseAddr("2606:4700::5efe:7f00:1")},
		"both.test.":      {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::ffff:127.0.0.1")},
	}
	dns := startStubDNS(t, answers)
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns)
	}}
	// The stack's policy would allow 127.0.0.1 itself; deny it so that every form must be caught.
	p, err := NewPolicy([]string{"127.0.0.0/8", "::1"}, []string{"127.0.0.1"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for name := range answers {
		t.Run(name, func(t *testing.T) {
			d := &Dialer{Policy: p, Timeout: time.Second, Resolver: res}
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(strings.TrimSuffix(name, "."), port))
			if c != nil {
				c.Close()
			}
			var de *DeniedError
			require.ErrorAs(t, err, &de, "%v", err)
			assert.Equal(t, strings.TrimSuffix(name, "."), de.Host)
		})
	}
	assert.Zero(t, accepted.Load())
}

// startStubDNS answers A and AAAA questions for the names in answers (anything else: no
// records) on a loopback UDP port and returns its address.
func startStubDNS(t *testing.T, answers map[string][]netip.Addr) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := stubDNSAnswer(buf[:n], answers); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func stubDNSAnswer(q []byte, answers map[string][]netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	// The question: labels, then type and class.
	i, name := 12, ""
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		name += strings.ToLower(string(q[i+1:i+1+l])) + "."
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	var rrs [][]byte
	for _, a := range answers[name] {
		var rdata []byte
		switch {
		case qtype == 1 && a.Is4():
			b := a.As4()
			rdata = b[:]
		case qtype == 28 && a.Is6():
			b := a.As16()
			rdata = b[:]
		default:
			continue
		}
		rr := []byte{0xc0, 12} // pointer to the question's name
		rr = binary.BigEndian.AppendUint16(rr, qtype)
		rr = binary.BigEndian.AppendUint16(rr, 1)
		rr = binary.BigEndian.AppendUint32(rr, 60)
		rr = binary.BigEndian.AppendUint16(rr, uint16(len(rdata)))
		rrs = append(rrs, append(rr, rdata...))
	}
	resp := append([]byte{}, q[:2]...)            // id
	resp = append(resp, 0x84|q[2]&0x01, 0x80)     // response, authoritative, RD copied, RA, NOERROR
	resp = binary.BigEndian.AppendUint16(resp, 1) // questions
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(rrs)))
	resp = append(resp, 0, 0, 0, 0) // authority, additional
	resp = append(resp, question...)
	for _, rr := range rrs {
		resp = append(resp, rr...)
	}
	return resp
}

// Property: for random addresses and random policies of allow and deny CIDRs, the decision
// for every spelling of an address equals the decision for its canonical form (zoned,
// IPv4-mapped, textual and legacy IPv4 spellings), or is at least as strict (embedded forms:
// denied whenever the canonical address is denied; the one documented exception: NAT64
// local-use candidates in 0.0.0.0/8). The seed is logged for reproduction.
func TestCanonicalFormProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for range 3000 {
		p := randomPolicy(r)
		c := randomAddr(r)
		canon := decideHost(p, c.String(), c)
		for _, s := range sameSpellings(r, c) {
			a, ok := ParseHostAddr(s)
			require.True(t, ok, "%q", s)
			got := decideHost(p, s, a)
			require.Equal(t, canon == "", got == "", "seed %d: %s decided %q, its spelling %q decided %q (policy %+v)", seed, c, canon, s, got, p)
		}
		if !c.Is4() || canon == "" {
			continue
		}
		for i, e := range embeddedSpellings(r, c) {
			if i >= 3 && i <= 6 && c.As4()[0] == 0 {
				continue // documented: NAT64 local-use candidates in 0.0.0.0/8 are not decided
			}
			got := decideHost(p, e.String(), e)
			require.NotEmpty(t, got, "seed %d: %s is denied (%s) but its embedding %s is allowed (policy %+v)", seed, c, canon, e, p)
		}
	}
}

// interesting are prefixes random addresses and policies are drawn from, so that rules and
// special ranges are hit often.
var interesting = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("169.254.169.0/24"), netip.MustParsePrefix("93.184.216.0/24"),
	netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"),
	netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fe80::/64"),
	netip.MustParsePrefix("fd00::/16"), netip.MustParsePrefix("2606:4700::/32"),
	netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("2001::/32"), netip.MustParsePrefix("::/96"),
}

func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	var rnd [16]byte
	binary.BigEndian.PutUint64(rnd[:8], r.Uint64())
	binary.BigEndian.PutUint64(rnd[8:], r.Uint64())
	off := 0
	if p.Addr().Is4() {
		off = 12
	}
	for bit := p.Bits() + off*8; bit < 128; bit++ {
		mask := byte(0x80 >> (bit % 8))
		b[bit/8] = b[bit/8]&^mask | rnd[bit/8]&mask
	}
	if p.Addr().Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

func randomAddr(r *rand.Rand) netip.Addr {
	if r.IntN(4) == 0 { // anywhere
		if r.IntN(2) == 0 {
			return randomIn(r, netip.MustParsePrefix("0.0.0.0/0"))
		}
		return randomIn(r, netip.MustParsePrefix("::/0"))
	}
	return randomIn(r, interesting[r.IntN(len(interesting))])
}

func randomPolicy(r *rand.Rand) Policy {
	list := func() []string {
		var out []string
		for range r.IntN(4) {
			a := randomAddr(r)
			out = append(out, netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked().String())
		}
		return out
	}
	p, err := NewPolicy(list(), list())
	if err != nil {
		panic(err)
	}
	return p
}

// sameSpellings are spellings of c that denote c itself.
func sameSpellings(r *rand.Rand, c netip.Addr) []string {
	zone := []string{"lo", "eth0", "1", "%"}[r.IntN(4)]
	if c.Is6() {
		return []string{
			c.StringExpanded(), strings.ToUpper(c.String()), "[" + c.String() + "]",
			c.WithZone(zone).String(), c.String() + "%" + zone,
		}
	}
	v := binary.BigEndian.Uint32(c.AsSlice())
	b := c.As4()
	mapped := netip.AddrFrom16(c.As16())
	return []string{
		mapped.String(), mapped.StringExpanded(), mapped.WithZone(zone).String(), c.String() + "%" + zone,
		fmt.Sprint(v), fmt.Sprintf("0x%x", v), fmt.Sprintf("0%o", v), fmt.Sprintf("%d.%d", b[0], v&0xffffff),
		fmt.Sprintf("%d.%d.%d", b[0], b[1], v&0xffff), fmt.Sprintf("0x%X.0%o.%d.0x%x", b[0], b[1], b[2], b[3]),
		c.String() + ".", fmt.Sprintf("0%o.0x%02x.%d.00%o", b[0], b[1], b[2], b[3]),
	}
}

// embeddedSpellings are IPv6 addresses that embed the IPv4 address c, the other bits random;
// indices 3-6 are the NAT64 local-use positions.
func embeddedSpellings(r *rand.Rand, c netip.Addr) []netip.Addr {
	v := c.As4()
	rnd := func() byte { return byte(r.Uint32()) }
	with := func(b [16]byte, at []int) netip.Addr {
		for i, pos := range at {
			b[pos] = v[i]
		}
		return netip.AddrFrom16(b)
	}
	randomPrefix := func(prefix netip.Prefix) [16]byte { return randomIn(r, prefix).As16() }
	teredo := randomPrefix(netip.MustParsePrefix("2001::/32"))
	for i := range 4 {
		teredo[12+i] = ^v[i]
	}
	isatap := randomPrefix(netip.MustParsePrefix("::/0"))
	isatap[8], isatap[9], isatap[10], isatap[11] = rnd()&0x03, 0, 0x5e, 0xfe
	local := randomPrefix(nat64Local)
	return []netip.Addr{
		with([16]byte{}, []int{12, 13, 14, 15}),
		with([16]byte{8: 0xff, 9: 0xff}, []int{12, 13, 14, 15}),
		with(randomPrefix(nat64), []int{12, 13, 14, 15}),
		with(local, []int{6, 7, 9, 10}),
		with(local, []int{7, 9, 10, 11}),
		with(local, []int{9, 10, 11, 12}),
		with(local, []int{12, 13, 14, 15}),
		with(randomPrefix(netip.MustParsePrefix("2002::/16")), []int{2, 3, 4, 5}),
		with(randomPrefix(netip.MustParsePrefix("2001::/32")), []int{4, 5, 6, 7}),
		netip.AddrFrom16(teredo),
		with(isatap, []int{12, 13, 14, 15}),
		with(randomPrefix(netip.MustParsePrefix("2002::/16")), []int{2, 3, 4, 5}).WithZone("eth0"),
	}
}

// FuzzParseHostAddr: any URL host: never panics; what parses as an address is decided as that
// address; a legacy IPv4 spelling denotes the same address as its dotted-decimal form.
func FuzzParseHostAddr(f *testing.F) {
	for _, s := range []string{"127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.1.", "::1%lo", "[fe80::1%eth0]", "127.0.0.1%lo", "0x", "example.com", "1.2.3.4.5", "08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		a, ok := ParseHostAddr(host)
		if !ok {
			return
		}
		require.True(t, a.IsValid())
		p := Policy{}
		assert.Equal(t, decideHost(p, a.WithZone("").String(), a) == "", decideHost(p, host, a) == "", host)
	})
}
