// Package svcargs builds the command line and environment of a wsmanager process from typed
// options: the one place the integration tests, wsbench and devstack say how they start the
// service, so that a renamed or new flag is changed here, not in every caller. Zero values
// leave the service's own default (its flags document them: docs/configuration.md).
package svcargs

import (
	"strconv"
	"strings"
	"time"
)

// Options describe one wsmanager process.
type Options struct {
	// Ports: --grpc-port, --http-port, --actor-port (daprd's --app-port).
	GRPCPort, HTTPPort, ActorPort int
	// DaprGRPCAddress is the sidecar's gRPC address (--dapr-grpc-address).
	DaprGRPCAddress string
	// DaprGRPCPort sets DAPR_GRPC_PORT in the environment (the service derives its sidecar
	// address from it), for a caller that runs the sidecar on a fixed port.
	DaprGRPCPort int
	InstanceID   string
	// LogLevel and LogFormat: --log-level, --log-format.
	LogLevel, LogFormat string
	// LifecycleTopic is --lifecycle-topic; NoLifecycleEvents turns lifecycle events off.
	LifecycleTopic    string
	NoLifecycleEvents bool
	// DialAllow and DialDeny are the SSRF guard's lists (--dial-allow, --dial-deny).
	DialAllow, DialDeny []string
	// SecretAllow is --secret-allow: the secrets a Connect may reference.
	SecretAllow []string
	// Keepalive and reconnect timing (--ping-interval, --pong-timeout,
	// --reconnect-initial-backoff, --reconnect-max-backoff).
	PingInterval, PongTimeout      time.Duration
	ReconnectInitial, ReconnectMax time.Duration
	// WatchdogInterval is --watchdog-interval.
	WatchdogInterval time.Duration
	// PublishBuffer is --publish-buffer.
	PublishBuffer int
	// PprofAddress is --pprof-address.
	PprofAddress string
	// OTLPEndpoint is --otlp-endpoint; a plaintext host:port (--otlp-insecure) when OTLPInsecure.
	OTLPEndpoint string
	OTLPInsecure bool
	// Secrets travel in the environment, never on the command line (the process list shows
	// it): WSM_API_TOKENS, WSM_PEER_TOKENS, APP_API_TOKEN, DAPR_API_TOKEN.
	APITokens, PeerTokens     []string
	AppAPIToken, DaprAPIToken string
	// Env is added to the environment as written (KEY=value).
	Env []string
	// Extra flags, added last as written (a later flag wins).
	Extra []string
}

// Args is the command line (without the program name).
func (o Options) Args() []string {
	var a []string
	str := func(flag, v string) {
		if v != "" {
			a = append(a, "--"+flag, v)
		}
	}
	num := func(flag string, v int) {
		if v != 0 {
			a = append(a, "--"+flag, strconv.Itoa(v))
		}
	}
	dur := func(flag string, v time.Duration) {
		if v != 0 {
			a = append(a, "--"+flag, v.String())
		}
	}
	list := func(flag string, v []string) { str(flag, strings.Join(v, ",")) }
	num("grpc-port", o.GRPCPort)
	num("http-port", o.HTTPPort)
	num("actor-port", o.ActorPort)
	str("dapr-grpc-address", o.DaprGRPCAddress)
	str("instance-id", o.InstanceID)
	str("log-level", o.LogLevel)
	str("log-format", o.LogFormat)
	if o.NoLifecycleEvents {
		a = append(a, "--lifecycle-topic", "")
	} else {
		str("lifecycle-topic", o.LifecycleTopic)
	}
	list("dial-allow", o.DialAllow)
	list("dial-deny", o.DialDeny)
	list("secret-allow", o.SecretAllow)
	dur("ping-interval", o.PingInterval)
	dur("pong-timeout", o.PongTimeout)
	dur("reconnect-initial-backoff", o.ReconnectInitial)
	dur("reconnect-max-backoff", o.ReconnectMax)
	dur("watchdog-interval", o.WatchdogInterval)
	num("publish-buffer", o.PublishBuffer)
	str("pprof-address", o.PprofAddress)
	str("otlp-endpoint", o.OTLPEndpoint)
	if o.OTLPInsecure {
		a = append(a, "--otlp-insecure")
	}
	return append(a, o.Extra...)
}

// Environ is the environment to add to the process's (KEY=value).
func (o Options) Environ() []string {
	var e []string
	set := func(k, v string) {
		if v != "" {
			e = append(e, k+"="+v)
		}
	}
	set("WSM_API_TOKENS", strings.Join(o.APITokens, ","))
	set("WSM_PEER_TOKENS", strings.Join(o.PeerTokens, ","))
	set("APP_API_TOKEN", o.AppAPIToken)
	set("DAPR_API_TOKEN", o.DaprAPIToken)
	if o.DaprGRPCPort != 0 {
		set("DAPR_GRPC_PORT", strconv.Itoa(o.DaprGRPCPort))
	}
	return append(e, o.Env...)
}

// Loopback is the SSRF guard allow-list of local test servers (denied by default).
var Loopback = []string{"127.0.0.0/8", "::1"}
