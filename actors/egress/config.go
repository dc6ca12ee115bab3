package egress

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
)

// Proxy is one of the operator's HTTP CONNECT proxies (--egress-proxy).
type Proxy struct {
	// Name is what a connection's egress_proxy names; "" is the default proxy.
	Name string
	// URL is http://host[:port] or https://host[:port], without userinfo, path or query.
	URL *url.URL
	// Auth is where its credentials are read at every CONNECT; nil: none are sent.
	Auth *Auth
}

// label names the proxy in errors: by name and host, never with credentials.
func (p *Proxy) label() string {
	if p.Name == "" {
		return fmt.Sprintf("the default egress proxy (%s)", p.URL.Host)
	}
	return fmt.Sprintf("egress proxy %q (%s)", p.Name, p.URL.Host)
}

// address is the proxy's host:port, with the scheme's port when the URL has none.
func (p *Proxy) address() string {
	if p.URL.Port() != "" {
		return p.URL.Host
	}
	if p.URL.Scheme == "https" {
		return net.JoinHostPort(p.URL.Hostname(), "443")
	}
	return net.JoinHostPort(p.URL.Hostname(), "80")
}

// Auth is a reference to a proxy's "user:password" (--egress-proxy-auth): exactly one of
// File (absolute path) and Secret is set.
type Auth struct {
	File   string
	Secret *credentials.SecretRef
}

// ParseProxies parses --egress-proxy entries, `[name=]URL`. At most one entry is unnamed
// (the default proxy); names are unique. URL userinfo is refused: the command line is
// visible in the process list, so credentials come from --egress-proxy-auth.
func ParseProxies(entries []string) ([]Proxy, error) {
	var out []Proxy
	seen := map[string]bool{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, raw := splitName(e)
		if name != "" && !validName(name) {
			return nil, fmt.Errorf("%q: a proxy name is letters, digits, '-', '_' and '.' (at most 64)", name)
		}
		if seen[name] {
			if name == "" {
				return nil, fmt.Errorf("%q: only one proxy may be unnamed (the default); name the others as name=URL", e)
			}
			return nil, fmt.Errorf("proxy name %q is given twice", name)
		}
		seen[name] = true
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: not a URL (use http://host:port or https://host:port)", redactURL(raw))
		}
		if u.User != nil {
			return nil, fmt.Errorf("proxy %q: credentials in the URL are refused (the process list would show them); put user:password in a file or secret and name it with --egress-proxy-auth", redactURL(raw))
		}
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("proxy %q: the scheme must be http:// or https:// (an HTTP CONNECT proxy)", redactURL(raw))
		case u.Hostname() == "":
			return nil, fmt.Errorf("proxy %q has no host", raw)
		case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.Opaque != "":
			return nil, fmt.Errorf("proxy %q: give only scheme, host and port", raw)
		}
		if p := u.Port(); p != "" {
			if n, err := netip.ParseAddrPort("0.0.0.0:" + p); err != nil || n.Port() == 0 {
				return nil, fmt.Errorf("proxy %q: port %q is not a port number", raw, p)
			}
		}
		out = append(out, Proxy{Name: name, URL: &url.URL{Scheme: u.Scheme, Host: u.Host}})
	}
	return out, nil
}

// ParseAuth parses --egress-proxy-auth entries, `[name=]file:/abs/path` or
// `[name=]secret:store/key[/field]`, by proxy name ("" = the default proxy).
func ParseAuth(entries []string) (map[string]Auth, error) {
	out := map[string]Auth{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, ref := splitName(e)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("credentials for proxy %q are given twice", name)
		}
		var a Auth
		switch {
		case strings.HasPrefix(ref, "file:"):
			p := strings.TrimPrefix(ref, "file:")
			if !filepath.IsAbs(p) || filepath.Clean(p) != p {
				return nil, fmt.Errorf("%q: the file must be an absolute, clean path", e)
			}
			a.File = p
		case strings.HasPrefix(ref, "secret:"):
			parts := strings.Split(strings.TrimPrefix(ref, "secret:"), "/")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || len(parts) == 3 && parts[2] == "" {
				return nil, fmt.Errorf("%q: write secret:store/key or secret:store/key/field", e)
			}
			a.Secret = &credentials.SecretRef{Store: parts[0], Key: parts[1]}
			if len(parts) == 3 {
				a.Secret.Field = parts[2]
			}
		default:
			return nil, fmt.Errorf("%q: write [name=]file:/abs/path or [name=]secret:store/key[/field]", e)
		}
		out[name] = a
	}
	return out, nil
}

// WithAuth attaches auth to the proxies; an entry for a proxy that is not configured is an
// error (a typo would otherwise send no credentials).
func WithAuth(proxies []Proxy, auth map[string]Auth) ([]Proxy, error) {
	out := append([]Proxy(nil), proxies...)
	for name, a := range auth {
		found := false
		for i := range out {
			if out[i].Name == name {
				out[i].Auth, found = &a, true
			}
		}
		if !found {
			if name == "" {
				return nil, fmt.Errorf("--egress-proxy-auth has an unnamed entry but --egress-proxy has no unnamed (default) proxy")
			}
			return nil, fmt.Errorf("--egress-proxy-auth names proxy %q, which --egress-proxy does not configure", name)
		}
	}
	return out, nil
}

// NoProxy are the targets dialed directly (--egress-no-proxy).
type NoProxy struct {
	all      bool
	hosts    []string // exact, lower case
	suffixes []string // ".example.com"
	prefixes []netip.Prefix
}

// ParseNoProxy parses --egress-no-proxy entries: exact host names, `.example.com` and
// `*.example.com` (subdomains, not the domain itself: list it too), IP addresses, CIDR
// prefixes, and `*` (never proxy). Addresses match URLs whose host is that address (in any
// spelling); names are not resolved to match them.
func ParseNoProxy(entries []string) (NoProxy, error) {
	var n NoProxy
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case e == "*":
			n.all = true
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return NoProxy{}, fmt.Errorf("%q is not a CIDR prefix: %w", e, err)
			}
			n.prefixes = append(n.prefixes, canonicalPrefix(p.Masked()))
		case isAddr(e):
			a, _ := netip.ParseAddr(strings.Trim(e, "[]"))
			a = netguard.Canonical(a)
			n.prefixes = append(n.prefixes, netip.PrefixFrom(a, a.BitLen()))
		case strings.HasPrefix(e, "*.") || strings.HasPrefix(e, "."):
			s := e[strings.IndexByte(e, '.'):]
			if !validHost(s[1:]) {
				return NoProxy{}, fmt.Errorf("%q is not a host suffix (use .example.com or *.example.com)", e)
			}
			n.suffixes = append(n.suffixes, s)
		default:
			if strings.Contains(e, ":") {
				return NoProxy{}, fmt.Errorf("%q: entries are hosts, suffixes, addresses or CIDRs, without a port", e)
			}
			if _, ok := netguard.ParseHostAddr(e); ok {
				return NoProxy{}, fmt.Errorf("%q: write an IPv4 address in dotted decimal (a.b.c.d)", e)
			}
			if !validHost(e) {
				return NoProxy{}, fmt.Errorf("%q is neither a host name, a suffix (.example.com), an IP address, a CIDR prefix nor *", e)
			}
			n.hosts = append(n.hosts, strings.TrimSuffix(e, "."))
		}
	}
	return n, nil
}

// canonicalPrefix turns a prefix of IPv4-mapped addresses (::ffff:10.0.0.0/104) into the
// IPv4 prefix it covers (10.0.0.0/8): hosts are matched in canonical form.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// Match reports whether host (a URL's host, without port) is dialed directly.
func (n NoProxy) Match(host string) bool {
	if n.all {
		return true
	}
	if a, ok := netguard.ParseHostAddr(host); ok {
		a = netguard.Canonical(a)
		for _, p := range n.prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	host = strings.TrimRight(strings.ToLower(host), ".")
	for _, h := range n.hosts {
		if h == host {
			return true
		}
	}
	for _, s := range n.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

func splitName(e string) (name, rest string) {
	// "name=URL": a URL never has '=' before its "://", nor a reference before its "file:"/"secret:".
	if i := strings.IndexByte(e, '='); i >= 0 && !strings.Contains(e[:i], ":") {
		return strings.TrimSpace(e[:i]), strings.TrimSpace(e[i+1:])
	}
	return "", e
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

func validHost(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// redactURL drops userinfo from a URL for an error message.
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			return raw[:i+3] + "…@" + rest[at+1:]
		}
	}
	if strings.Contains(raw, "@") {
		return "(a URL with credentials)"
	}
	return raw
}
