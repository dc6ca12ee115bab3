// Package httpguard keeps web pages of other sites out of the HTTP API.
//
// A browser lets any page send a "simple" cross-origin request (GET, or a POST with a
// text/plain, form or multipart body) without asking the server first, and a page whose DNS
// name is rebound to 127.0.0.1 can even read the answers (same origin, as far as the browser
// knows). Bearer tokens are no defence when none are configured (the default), so the guard
// refuses, before anything else runs:
//
//   - requests whose Host is not one of this service's names (421): DNS rebinding needs a
//     name the attacker controls, so IP literals, localhost and the configured names pass;
//   - requests from a page of an origin not on the CORS allow-list (403), and requests a
//     browser marks as cross-site or same-site without saying from which origin;
//   - request bodies of a media type the path does not take (415): REST takes only
//     application/json, so a page can no longer send a body without a CORS preflight.
//
// The probes (Config.OpenPaths) skip the Host and Origin checks: kubelet sends the pod IP or
// anything else as Host, and they answer nothing worth stealing.
package httpguard

import (
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// Body says which media types requests under a path prefix may carry.
type Body struct {
	Prefix string   // e.g. "/v1/"
	Types  []string // accepted media types, lower case, without parameters
}

// Config configures a Guard.
type Config struct {
	// AllowedOrigins are the origins whose pages may call (--cors-allowed-origins); "*" for
	// any (except "null"). A request without an Origin header is not from a page and passes.
	AllowedOrigins []string
	// AllowedHosts extend the default Host allow-list (--allowed-hosts): names, "*.example.com"
	// (subdomains, not the domain itself), IP literals, or "*" for any Host.
	AllowedHosts []string
	// ListenHosts are the hosts of the listen and advertise addresses; names among them are
	// allowed too (IP literals are allowed anyway).
	ListenHosts []string
	// OpenPaths skip the Host and Origin checks (probes), matched exactly.
	OpenPaths []string
	// Bodies maps path prefixes to the media types their requests may carry (first match).
	// A POST, PUT or PATCH, and any request with a body, on a path of no prefix is refused.
	// Nil turns the media type check off.
	Bodies []Body
	Log    *zap.Logger
}

// Guard is an HTTP middleware; build it with New.
type Guard struct {
	origins   *Origins
	hosts     hostList
	openPaths []string
	bodies    []Body
	log       *zap.Logger
}

// New checks cfg and returns its Guard.
func New(cfg Config) (*Guard, error) {
	origins, err := NewOrigins(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	hosts, err := newHostList(cfg.AllowedHosts, cfg.ListenHosts)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	return &Guard{origins: origins, hosts: hosts, openPaths: cfg.OpenPaths, bodies: cfg.Bodies, log: log}, nil
}

// Handler refuses what the guard does not allow and passes everything else to next.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, code, msg := g.check(r); status != 0 {
			g.log.Debug("HTTP request refused", zap.Int("status", status), zap.String("reason", msg),
				zap.String("method", r.Method), zap.String("path", truncate(r.URL.Path)),
				zap.String("host", truncate(r.Host)), zap.String("origin", truncate(r.Header.Get("Origin"))))
			refuse(w, status, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// gRPC codes of the refusals, as the REST gateway would write them.
const (
	codeInvalidArgument  = 3
	codePermissionDenied = 7
)

// check returns the HTTP status, gRPC code and message of a refusal, or status 0.
func (g *Guard) check(r *http.Request) (int, int, string) {
	if !slices.Contains(g.openPaths, r.URL.Path) {
		if host, ok := ParseHost(r.Host); !ok || !g.hosts.allows(host) {
			return http.StatusMisdirectedRequest, codePermissionDenied, fmt.Sprintf(
				"this service does not answer to the host name %q (a DNS rebinding defence); call it by an allowed name or add the name to --allowed-hosts", truncate(r.Host))
		}
		if vs := r.Header.Values("Origin"); len(vs) > 0 {
			if len(vs) > 1 || !g.origins.Allows(vs[0]) {
				return http.StatusForbidden, codePermissionDenied, fmt.Sprintf(
					"pages of the origin %q may not call this service; add the origin to --cors-allowed-origins if they should", truncate(strings.Join(vs, ", ")))
			}
		} else if site := strings.ToLower(r.Header.Get("Sec-Fetch-Site")); site == "cross-site" || site == "same-site" {
			return http.StatusForbidden, codePermissionDenied,
				"the browser marked this request as sent by a page of another site without naming its origin; pages may call only with CORS from an origin in --cors-allowed-origins"
		}
	}
	if g.bodies == nil || !needsMediaType(r) {
		return 0, 0, ""
	}
	var types []string
	for _, b := range g.bodies {
		if strings.HasPrefix(r.URL.Path, b.Prefix) {
			types = b.Types
			break
		}
	}
	if len(types) == 0 {
		return http.StatusUnsupportedMediaType, codeInvalidArgument, fmt.Sprintf("%s %s takes no request body", r.Method, truncate(r.URL.Path))
	}
	want := "send Content-Type: " + strings.Join(types, " or ")
	vs := r.Header.Values("Content-Type")
	switch {
	case len(vs) == 0:
		return http.StatusUnsupportedMediaType, codeInvalidArgument, "the request has no Content-Type; " + want
	case len(vs) > 1:
		return http.StatusUnsupportedMediaType, codeInvalidArgument, "the request has more than one Content-Type header; " + want
	}
	if mt, ok := ParseMediaType(vs[0]); !ok || !slices.Contains(types, mt) {
		return http.StatusUnsupportedMediaType, codeInvalidArgument, fmt.Sprintf("unsupported Content-Type %q; %s", truncate(vs[0]), want)
	}
	return 0, 0, ""
}

// needsMediaType: methods that take a body must name its type even when it is empty (a page
// may send an empty text/plain POST without a preflight); others only when they carry one.
func needsMediaType(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	// -1: length unknown (chunked, or HTTP/2 without END_STREAM): a body may follow.
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// ParseMediaType returns the lower-case media type of a Content-Type value, refusing values
// that do not parse and text in any charset but UTF-8 (JSON is UTF-8; the decoders assume it).
func ParseMediaType(v string) (string, bool) {
	mt, params, err := mime.ParseMediaType(v)
	if typ, sub, ok := strings.Cut(mt, "/"); err != nil || !ok || typ == "" || sub == "" {
		return "", false // mime accepts a bare token such as "json"
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return "", false
	}
	return mt, true
}

// ParseHost returns the host of a Host header value in canonical form: lower case, without
// port, IPv6 brackets and a trailing dot. An empty value (HTTP/1.0 without Host; no browser
// sends that) gives "" and true. ok is false for anything that is not a host name or IP
// literal with an optional numeric port.
func ParseHost(v string) (host string, ok bool) {
	if v == "" {
		return "", true
	}
	h := v
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || !validPort(h[end+1:]) {
			return "", false
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() {
			return "", false
		}
		return strings.ToLower(a.WithZone("").String()), true
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if strings.Count(h, ":") > 1 { // IPv6 without brackets: not a valid Host
			return "", false
		}
		if !validPort(h[i:]) {
			return "", false
		}
		h = h[:i]
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), true
	}
	if !validName(h) {
		return "", false
	}
	return h, true
}

// validPort accepts "" or ":<1-5 digits>".
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) < 2 || len(s) > 6 {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validName: lower-case DNS labels of letters, digits, '-' and '_' (some internal names use it).
func validName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// hostList is the Host allow-list: exact names, "*." suffixes, or any.
type hostList struct {
	any      bool
	names    []string
	suffixes []string // ".example.com" for "*.example.com"
}

// defaultHosts are allowed always: browsers resolve localhost and its subdomains to loopback
// themselves (RFC 6761), so no attacker can rebind them.
var defaultHosts = []string{"localhost", "*.localhost"}

func newHostList(allowed, listen []string) (hostList, error) {
	var l hostList
	for _, e := range defaultHosts {
		_ = l.add(e)
	}
	for _, e := range allowed {
		if err := l.add(e); err != nil {
			return hostList{}, fmt.Errorf("--allowed-hosts: %w", err)
		}
	}
	for _, e := range listen {
		h, ok := ParseHost(e)
		if !ok || h == "" {
			continue
		}
		if _, err := netip.ParseAddr(h); err != nil { // IP literals pass anyway
			l.names = append(l.names, h)
		}
	}
	return l, nil
}

// ValidateHosts checks --allowed-hosts entries.
func ValidateHosts(entries []string) error {
	var l hostList
	for _, e := range entries {
		if err := l.add(e); err != nil {
			return fmt.Errorf("--allowed-hosts: %w", err)
		}
	}
	return nil
}

func (l *hostList) add(e string) error {
	e = strings.ToLower(strings.TrimSpace(e))
	switch {
	case e == "*":
		l.any = true
	case strings.HasPrefix(e, "*."):
		name := strings.TrimSuffix(e[2:], ".")
		if !validName(name) {
			return fmt.Errorf("%q is not a *.domain pattern", e)
		}
		l.suffixes = append(l.suffixes, "."+name)
	default:
		if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
			l.names = append(l.names, a.String()) // allowed anyway; accepted for clarity
			return nil
		}
		h, ok := ParseHost(e)
		if !ok || h == "" || h != strings.TrimSuffix(e, ".") {
			return fmt.Errorf("%q is not a host name or IP address (give no port and no scheme)", e)
		}
		l.names = append(l.names, h)
	}
	return nil
}

func (l hostList) allows(h string) bool {
	if l.any || h == "" {
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true // rebinding needs a name the attacker's DNS answers for
	}
	if slices.Contains(l.names, h) {
		return true
	}
	for _, s := range l.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// Origins is the CORS allow-list (--cors-allowed-origins).
type Origins struct {
	any     bool
	origins []string
}

// NewOrigins checks the entries: "*" or scheme://host[:port], nothing after it.
func NewOrigins(entries []string) (*Origins, error) {
	o := &Origins{}
	for _, e := range entries {
		if e == "*" {
			o.any = true
			continue
		}
		n := strings.ToLower(strings.TrimSuffix(e, "/"))
		u, err := url.Parse(n)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || n == "null" {
			return nil, fmt.Errorf("--cors-allowed-origins: %q is not an origin (scheme://host[:port], e.g. https://app.example)", e)
		}
		o.origins = append(o.origins, n)
	}
	return o, nil
}

// Allows reports whether pages of origin may call. "null" (sandboxed frames, files, data:
// URLs: any page can send it) never may.
func (o *Origins) Allows(origin string) bool {
	origin = strings.ToLower(origin)
	if origin == "" || origin == "null" {
		return false
	}
	return o.any || slices.Contains(o.origins, origin)
}

// HostOf returns the host of a host:port address (or the address itself without a port).
func HostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func refuse(w http.ResponseWriter, status, code int, msg string) {
	b, err := json.Marshal(struct {
		Code    int      `json:"code"`
		Message string   `json:"message"`
		Details []string `json:"details"`
	}{code, msg, []string{}})
	if err != nil {
		b = []byte(`{"code":13,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// truncate keeps hostile header values short in messages and logs.
func truncate(s string) string {
	const n = 200
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
