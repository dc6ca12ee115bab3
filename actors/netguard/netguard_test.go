package netguard

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Ensure the default policy and the lists decide as documented on Policy.
func TestPolicy(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		host, addr  string
		wantDenied  string // substring of the rule; "" = allowed
	}{
		{"public address", nil, nil, "feed.example", "93.184.216.34", ""},
		{"cloud metadata", nil, nil, "169.254.169.254", "169.254.169.254", "link-local"},
		{"loopback", nil, nil, "localhost", "127.0.0.1", "loopback"},
		{"private 10/8", nil, nil, "db.internal", "10.1.2.3", "RFC 1918"},
		{"private 172.16/12", nil, nil, "x", "172.20.0.1", "RFC 1918"},
		{"private 192.168/16", nil, nil, "x", "192.168.1.1", "RFC 1918"},
		{"unspecified", nil, nil, "0.0.0.0", "0.0.0.0", "unspecified"},
		{"multicast", nil, nil, "x", "239.1.1.1", "multicast"},
		{"ipv6 loopback", nil, nil, "x", "::1", "loopback"},
		{"ipv6 ULA", nil, nil, "x", "fd00::1", "unique local"},
		{"ipv6 link-local", nil, nil, "x", "fe80::1", "link-local"},
		{"ipv4-mapped loopback", nil, nil, "x", "::ffff:127.0.0.1", "loopback"},
		{"NAT64 embedding metadata", nil, nil, "x", "64:ff9b::a9fe:a9fe", "NAT64"},
		{"public ipv6", nil, nil, "x", "2606:4700::1111", ""},
		{"allow CIDR loopback", []string{"127.0.0.0/8"}, nil, "localhost", "127.0.0.1", ""},
		{"allow single address", []string{"::1"}, nil, "x", "::1", ""},
		{"allow host name", []string{"db.internal"}, nil, "db.internal", "10.1.2.3", ""},
		{"allow host pattern", []string{"*.svc.cluster.local"}, nil, "feed.ns.svc.cluster.local", "10.96.0.10", ""},
		{"pattern does not match the bare domain", []string{"*.example.com"}, nil, "example.com", "10.0.0.1", "RFC 1918"},
		{"deny host wins over allow host", []string{"*.example.com"}, []string{"evil.example.com"}, "evil.example.com", "93.184.216.34", "deny-list"},
		{"deny public CIDR", nil, []string{"93.184.0.0/16"}, "x", "93.184.216.34", "deny-list"},
		{"longer allow prefix beats shorter deny", []string{"10.1.2.0/24"}, []string{"10.0.0.0/8"}, "x", "10.1.2.3", ""},
		{"longer deny prefix beats shorter allow", []string{"10.0.0.0/8"}, []string{"10.1.2.0/24"}, "x", "10.1.2.3", "deny-list"},
		{"allow-only: deny all, allow one network", []string{"93.184.216.0/24"}, []string{"0.0.0.0/0", "::/0"}, "x", "1.1.1.1", "deny-list"},
		{"allow-only: the allowed network", []string{"93.184.216.0/24"}, []string{"0.0.0.0/0", "::/0"}, "x", "93.184.216.34", ""},
		{"host names are case-insensitive", []string{"DB.Internal"}, nil, "db.INTERNAL.", "10.1.2.3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.allow, tt.deny)
			require.NoError(t, err)
			byName, err := p.CheckHost(tt.host)
			if err == nil && !byName {
				err = p.CheckAddr(tt.host, netip.MustParseAddr(tt.addr))
			}
			if tt.wantDenied == "" {
				assert.NoError(t, err)
				return
			}
			require.True(t, IsDenied(err), "want a denial, got %v", err)
			assert.Contains(t, err.Error(), tt.wantDenied)
		})
	}
}

func TestParseRulesRejectsGarbage(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "*.", "*", "exa mple.com", "http://x", "a..b/8", "**.x.com"} {
		_, err := ParseRules([]string{bad})
		assert.Error(t, err, bad)
	}
	r, err := ParseRules([]string{" ", "", "127.0.0.1", "[::1]", "10.0.0.0/8", "*.a.b", "a.b"})
	require.NoError(t, err)
	assert.Len(t, r.prefixes, 3)
	assert.Equal(t, []string{".a.b"}, r.patterns)
	assert.Equal(t, []string{"a.b"}, r.hosts)
}

// Ensure the address actually dialed is checked: a name that is on no list but resolves to
// loopback is refused at connect time — the same check stops a name re-pointed (DNS
// rebinding) between any earlier look-up and the dial, because no earlier look-up is trusted.
func TestDialChecksTheAddressActuallyDialed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	d := &Dialer{Timeout: time.Second}
	_, err = d.DialContext(ctx, "tcp", net.JoinHostPort("localhost", itoa(port)))
	var de *DeniedError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "localhost", de.Host)
	assert.True(t, strings.HasPrefix(de.Addr, "127.") || de.Addr == "::1", de.Addr)

	allowed, err := NewPolicy([]string{"127.0.0.0/8", "::1"}, nil)
	require.NoError(t, err)
	d = &Dialer{Policy: allowed, Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	require.NoError(t, err)
	c.Close()

	denyName, err := NewPolicy([]string{"127.0.0.0/8"}, []string{"localhost"})
	require.NoError(t, err)
	d = &Dialer{Policy: denyName, Timeout: time.Second}
	_, err = d.DialContext(ctx, "tcp", net.JoinHostPort("localhost", itoa(port)))
	require.ErrorAs(t, err, &de)
	assert.Contains(t, de.Rule, `"localhost"`)
}

func itoa(i int) string { return strconv.Itoa(i) }

// FuzzPolicy feeds arbitrary list entries, host names and addresses: parsing never panics,
// a policy never allows a special-range address unless an allow entry names it, every
// spelling of the address that denotes it (zoned, IPv4-mapped) is decided alike, and every
// IPv6 address embedding a denied IPv4 address is denied.
func FuzzPolicy(f *testing.F) {
	f.Add("127.0.0.0/8", "10.0.0.0/8", "localhost", "127.0.0.1")
	f.Add("*.example.com", "", "a.example.com", "169.254.169.254")
	f.Add("", "0.0.0.0/0", "x", "::ffff:10.0.0.1")
	f.Add("127.0.0.0/8,::1", "127.0.0.2", "x", "::1%lo")
	f.Add("64:ff9b::/96,2002::/16", "", "x", "64:ff9b::a9fe:a9fe")
	f.Add("::/0,0.0.0.0/0", "10.0.0.0/8", "x", "2001:0:101:101::f5ff:fffe")
	f.Fuzz(func(t *testing.T, allow, deny, host, addr string) {
		p, err := NewPolicy(strings.Split(allow, ","), strings.Split(deny, ","))
		if err != nil {
			return
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		byName, herr := p.CheckHost(host)
		if herr != nil || byName {
			return
		}
		verdict := p.CheckAddr(host, a) == nil
		if verdict && len(p.Allow.prefixes) == 0 {
			for _, s := range special {
				if s.p.Contains(Canonical(a)) {
					t.Fatalf("special address %s allowed with no allow entry", a)
				}
			}
		}
		c := Canonical(a)
		spellings := []netip.Addr{c}
		if c.Is6() {
			spellings = append(spellings, c.WithZone("eth0"))
		} else {
			spellings = append(spellings, netip.AddrFrom16(c.As16()), netip.AddrFrom16(c.As16()).WithZone("lo"))
		}
		for _, s := range spellings {
			if got := p.CheckAddr(host, s) == nil; got != verdict {
				t.Fatalf("%s decided %v, its spelling %s decided %v", a, verdict, s, got)
			}
		}
		for _, e := range Embedded(c) {
			if verdict && p.CheckAddr(host, e.Addr) != nil {
				t.Fatalf("%s allowed although it embeds the denied %s (%s)", a, e.Addr, e.Form)
			}
		}
	})
}
