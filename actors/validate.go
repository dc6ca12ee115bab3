package actors

import (
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/websocketmanager/websocketmanager/actors/correlation"
	"github.com/websocketmanager/websocketmanager/actors/httpfield"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// Limits on what a caller may ask for.
const (
	MaxIDLength          = 128
	MaxTags              = 32
	MaxTagKeyLength      = 64
	MaxTagValueLength    = 256
	MaxHeaders           = 32
	MaxHeaderBytes       = 8 << 10
	MaxSubprotocols      = 16
	MaxOnConnectMessages = 32
	MaxTopicLength       = 256
	// Sizes bounded by bytes, not only by count: each is stored with the connection and sent
	// again on every reconnect.
	MaxURLBytes          = 8 << 10
	MaxSubprotocolLength = 128
	MaxOnConnectBytes    = 64 << 10
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// topicPattern: letters, digits and . _ - / : (what Dapr components accept as topic names).
var topicPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:-]*$`)

// ValidateID checks a caller-chosen connection id.
func ValidateID(id string) *ErrorInfo {
	switch {
	case id == "":
		return errorf(CodeInvalidArgument, "connection id is empty")
	case len(id) > MaxIDLength:
		return errorf(CodeInvalidArgument, "connection id is longer than %d characters", MaxIDLength)
	case !idPattern.MatchString(id):
		return errorf(CodeInvalidArgument, "connection id %q may contain only letters, digits, '.', '_', '-' and ':' and must start with a letter or digit", id)
	}
	return nil
}

// ValidateTopic checks a pub/sub topic name.
func ValidateTopic(topic string) *ErrorInfo {
	switch {
	case topic == "":
		return errorf(CodeInvalidArgument, "topic is required")
	case len(topic) > MaxTopicLength:
		return errorf(CodeInvalidArgument, "topic is longer than %d characters", MaxTopicLength)
	case !topicPattern.MatchString(topic):
		return errorf(CodeInvalidArgument, "topic %q may contain only letters, digits, '.', '_', '-', '/' and ':'", topic)
	}
	return nil
}

// ValidatePublish checks the publish settings of a StartPublish.
func ValidatePublish(p PublishSettings) *ErrorInfo {
	switch {
	case p.BatchMaxFrames < 0 || p.BatchMaxFrames > MaxBatchFrames:
		return errorf(CodeInvalidArgument, "batch_max_frames %d is outside 0..%d", p.BatchMaxFrames, MaxBatchFrames)
	case p.BatchMaxBytes < 0 || p.BatchMaxBytes > MaxBatchBytes:
		return errorf(CodeInvalidArgument, "batch_max_bytes %d is outside 0..%d", p.BatchMaxBytes, MaxBatchBytes)
	case p.BatchMaxDelayMS < 0 || p.BatchMaxDelayMS > MaxBatchDelayMS:
		return errorf(CodeInvalidArgument, "batch_max_delay_ms %d is outside 0..%d", p.BatchMaxDelayMS, MaxBatchDelayMS)
	}
	switch p.Overflow {
	case "", OverflowDropNewest, OverflowDropOldest, OverflowBackpressure:
	default:
		return errorf(CodeInvalidArgument, "overflow %q is not one of %s, %s, %s", p.Overflow, OverflowDropNewest, OverflowDropOldest, OverflowBackpressure)
	}
	return nil
}

// ValidateURL checks that raw is a ws:// or wss:// URL with a host.
func ValidateURL(raw string) *ErrorInfo {
	if raw == "" {
		return errorf(CodeInvalidArgument, "url is required, e.g. ws://host:port/path")
	}
	if len(raw) > MaxURLBytes {
		return errorf(CodeInvalidArgument, "url is longer than %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errorf(CodeInvalidArgument, "url is not a valid URL: %v", strings.ReplaceAll(err.Error(), raw, RedactURL(raw)))
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return errorf(CodeInvalidArgument, "url scheme must be ws or wss, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return errorf(CodeInvalidArgument, "url must name a host, e.g. ws://host:port/path")
	}
	return validateHostPort(u.Host)
}

// validateHostPort checks the host[:port] of a URL beyond what url.Parse checks: url.Parse
// accepts "h:" (no port), "h:080", "h:0", "h:99999" and "h:80:80" (host "h:80"), which
// dialers read in their own ways (a missing port as 80 or 0, 99999 refused late or wrapped).
func validateHostPort(hostport string) *ErrorInfo {
	host, port, hasPort := hostport, "", false
	if i := strings.LastIndexByte(hostport, ':'); i > strings.LastIndexByte(hostport, ']') {
		host, port, hasPort = hostport[:i], hostport[i+1:], true
	}
	if strings.HasPrefix(host, "[") {
		// url.Parse checked the IPv6 literal; a zone must name an interface (eth0) or its index.
		if _, zone, ok := strings.Cut(host, "%"); ok && !zonePattern.MatchString(strings.TrimSuffix(zone, "]")) {
			return errorf(CodeInvalidArgument, "url: the zone of an IPv6 address must be an interface name or number, e.g. ws://[fe80::1%%25eth0]:8080/")
		}
	} else if strings.Contains(host, ":") {
		return errorf(CodeInvalidArgument, "url: the host must not contain ':'; write IPv6 addresses in brackets, e.g. ws://[2001:db8::1]:8080/")
	}
	if !hasPort {
		return nil
	}
	if port == "" {
		return errorf(CodeInvalidArgument, "url: ':' after the host must be followed by a port from 1 to 65535 (or leave out the ':' for the scheme's default port)")
	}
	if !validPort(port) {
		return errorf(CodeInvalidArgument, "url: port %q must be a decimal number from 1 to 65535 without leading zeros", port)
	}
	return nil
}

// validPort reports whether port is a decimal number from 1 to 65535 in its one spelling (no
// sign, no leading zeros): the rule for URLs and for instance addresses alike.
func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == port
}

var zonePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RedactURL returns raw without user-info (for errors and List); "" if it does not parse.
func RedactURL(raw string) string { return session.RedactURL(raw) }

// handshakeHeaders are set by the WebSocket handshake itself and may not be given.
var handshakeHeaders = map[string]bool{
	"Upgrade": true, "Connection": true, "Sec-Websocket-Key": true, "Sec-Websocket-Version": true,
	"Sec-Websocket-Extensions": true, "Sec-Websocket-Protocol": true, "Host": true,
}

// Validate checks everything a Connect asks for.
func (a *ConnectArgs) Validate() *ErrorInfo {
	if e := ValidateURL(a.URL); e != nil {
		return e
	}
	if len(a.Headers) > MaxHeaders {
		return errorf(CodeInvalidArgument, "at most %d headers are allowed, got %d", MaxHeaders, len(a.Headers))
	}
	size := 0
	for k, v := range a.Headers {
		size += len(k) + len(v)
		if !httpfield.ValidToken(k) {
			return errorf(CodeInvalidArgument, "header name %q is not a valid HTTP header name", k)
		}
		if handshakeHeaders[textproto.CanonicalMIMEHeaderKey(k)] {
			return errorf(CodeInvalidArgument, "header %q is set by the WebSocket handshake; use subprotocols for Sec-WebSocket-Protocol", k)
		}
		if c, bad := httpfield.ControlChar(v); bad {
			return errorf(CodeInvalidArgument, "the value of header %q contains the control character 0x%02X; only tab is allowed (values are not shown)", k, c)
		}
	}
	if size > MaxHeaderBytes {
		return errorf(CodeInvalidArgument, "headers are larger than %d bytes", MaxHeaderBytes)
	}
	if len(a.Subprotocols) > MaxSubprotocols {
		return errorf(CodeInvalidArgument, "at most %d subprotocols are allowed", MaxSubprotocols)
	}
	for _, p := range a.Subprotocols {
		if len(p) > MaxSubprotocolLength {
			return errorf(CodeInvalidArgument, "subprotocols may have at most %d characters", MaxSubprotocolLength)
		}
		if !httpfield.ValidToken(p) {
			return errorf(CodeInvalidArgument, "subprotocol %q is not a valid token", p)
		}
	}
	if len(a.OnConnectMessages) > MaxOnConnectMessages {
		return errorf(CodeInvalidArgument, "at most %d on-connect messages are allowed", MaxOnConnectMessages)
	}
	onConnect := 0
	for _, m := range a.OnConnectMessages {
		onConnect += len(m)
	}
	if onConnect > MaxOnConnectBytes {
		return errorf(CodeInvalidArgument, "on-connect messages are larger than %d bytes together", MaxOnConnectBytes)
	}
	if _, err := a.Correlation.config(); err != nil {
		return errorf(CodeInvalidArgument, "correlation: %v", err)
	}
	if len(a.Tags) > MaxTags {
		return errorf(CodeInvalidArgument, "at most %d tags are allowed, got %d", MaxTags, len(a.Tags))
	}
	for k, v := range a.Tags {
		if k == "" || len(k) > MaxTagKeyLength {
			return errorf(CodeInvalidArgument, "tag keys must have 1 to %d characters", MaxTagKeyLength)
		}
		if len(v) > MaxTagValueLength {
			return errorf(CodeInvalidArgument, "tag %q: values may have at most %d characters", k, MaxTagValueLength)
		}
	}
	r := a.Reconnect
	if r.InitialBackoffMS < 0 || r.MaxBackoffMS < 0 || r.MaxAttempts < 0 {
		return errorf(CodeInvalidArgument, "reconnect settings must not be negative")
	}
	if r.InitialBackoffMS > 0 && r.MaxBackoffMS > 0 && r.MaxBackoffMS < r.InitialBackoffMS {
		return errorf(CodeInvalidArgument, "reconnect: max backoff must be at least the initial backoff")
	}
	if a.IdleTimeoutMS < 0 {
		return errorf(CodeInvalidArgument, "idle timeout must not be negative")
	}
	if a.RetainFrames < 0 || a.RetainFrames > MaxRetainFrames {
		return errorf(CodeInvalidArgument, "retain_frames %d is outside 0..%d", a.RetainFrames, MaxRetainFrames)
	}
	if a.RetainBytes < 0 || a.RetainBytes > MaxRetainBytes {
		return errorf(CodeInvalidArgument, "retain_bytes %d is outside 0..%d", a.RetainBytes, MaxRetainBytes)
	}
	if e := a.SendRate.validate(); e != nil {
		return e
	}
	if e := a.validateCompression(); e != nil {
		return e
	}
	return nil
}

// config turns the contract's correlation setting into the correlation package's.
func (c CorrelationArgs) config() (correlation.Config, error) {
	cfg := correlation.Config{Field: c.Field}
	if c.Mode != "" {
		m, err := correlation.ParseMode(c.Mode)
		if err != nil {
			return cfg, err
		}
		cfg.Mode = m
	}
	cfg = cfg.Normalize()
	return cfg, cfg.Validate()
}

// header returns the headers as an http.Header.
func header(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}
