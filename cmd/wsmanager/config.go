package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/peterbourgon/ff/v3"

	"github.com/websocketmanager/websocketmanager/actors"
	upcreds "github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/egress"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
	"github.com/websocketmanager/websocketmanager/actors/publish"
	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/service"
	"github.com/websocketmanager/websocketmanager/service/httpguard"
)

// config is everything the service reads from flags and the environment. Every flag also
// reads WSM_<FLAG_NAME> (dashes as underscores, upper case); a flag on the command line wins.
type config struct {
	host             string
	grpcPort         int
	httpPort         int
	actorHost        string
	actorPort        int
	daprGRPCAddress  string
	pubsub           string
	instanceID       string
	advertise        string
	logLevel         string
	logFormat        string
	handshakeTimeout time.Duration
	pingInterval     time.Duration
	pongTimeout      time.Duration
	sendTimeout      time.Duration
	maxSendTimeout   time.Duration
	shutdownTimeout  time.Duration
	shutdownGrace    time.Duration
	lifecycleTopic   string
	publishBuffer    int
	readLimit        int64
	// Publish memory and size bounds (docs/security.md, "Limits").
	publishBufferBytes         int64
	publishBufferInstanceBytes int64
	publishRetryFor            time.Duration
	maxPublishBytes            int
	// Retention and frame watchers (WatchFrames).
	retainFrames, maxFrameWatchers, maxFrameWatchersPerConn, watchBuffer int
	retainBytes, retainInstanceBytes, watchBufferBytes                   int64
	backoffInitial                                                       time.Duration
	backoffMax                                                           time.Duration
	backoffAttempts                                                      int
	backoffStable                                                        time.Duration
	watchdog                                                             time.Duration
	reviveConcurrency                                                    int
	fenceAfter                                                           time.Duration
	directoryShards                                                      int
	pprofAddress                                                         string
	metricsAuth                                                          bool
	corsOrigins                                                          []string
	allowedHosts                                                         []string
	dialAllow                                                            []string
	dialDeny                                                             []string
	maxConnections                                                       int
	maxPendingSends                                                      int
	maxMessageBytes                                                      int
	apiTokens                                                            []string
	apiTokensFile                                                        string
	tlsCert, tlsKey                                                      string
	tlsClientCA                                                          string
	peerServerName                                                       string
	// Peer calls (docs/security.md, "Instances and peer calls").
	peerTokens               []string
	peerTokensFile           string
	peerAllow, peerDeny      []string
	maxWatchStreams          int
	maxWatchStreamsPerCaller int
	// Span export (docs/operations.md, "Traces"); an empty endpoint turns it off.
	otlpEndpoint string
	otlpInsecure bool
	// Egress through HTTP CONNECT proxies (docs/security.md): [name=]URL entries, hosts dialed
	// directly, and where each proxy's user:password is read.
	egressProxy, egressNoProxy, egressProxyAuth []string
	// PEM CAs trusted for https:// proxies besides the system roots.
	egressProxyCAFile string
	// Upstream TLS key material (docs/security.md): directories whose files a Connect may name,
	// and whether PEM may be given inline (it is then kept in actor state).
	tlsFilesDirs   []string
	allowInlineTLS bool
	// The secrets a Connect may reference (secret headers, TLS material); empty = none.
	secretAllow []string
	// From Dapr's own environment variables (not flags): the token daprd sends on calls to
	// the actor host, and the token this service sends to daprd.
	appAPIToken  string
	daprAPIToken string
}

// listFlag is a comma-separated list flag (repeating the flag appends).
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			*l.v = append(*l.v, e)
		}
	}
	return nil
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flagSet(&c, getenv, stderr)
	err := ff.Parse(fs, args, ff.WithEnvVarPrefix("WSM"))
	if err != nil {
		return c, err
	}
	return c, c.finish(getenv)
}

// flagSet defines every flag, writing into c.
func flagSet(c *config, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wsmanager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.host, "host", "127.0.0.1", "address the gRPC and HTTP APIs listen on (0.0.0.0 for all interfaces)")
	fs.IntVar(&c.grpcPort, "grpc-port", 5002, "gRPC API port")
	fs.IntVar(&c.httpPort, "http-port", 5001, "HTTP API port (REST/JSON transcoding, /healthz)")
	fs.StringVar(&c.actorHost, "actor-host", "127.0.0.1", "address the actor host (daprd's app port) listens on")
	fs.IntVar(&c.actorPort, "actor-port", 5003, "actor host port: give it to daprd as --app-port")
	fs.StringVar(&c.daprGRPCAddress, "dapr-grpc-address", defaultDaprAddress(getenv), "Dapr sidecar gRPC address (default 127.0.0.1:$DAPR_GRPC_PORT, else 127.0.0.1:50001)")
	fs.StringVar(&c.pubsub, "pubsub", "pubsub", "Dapr pub/sub component that StartPublish publishes to")
	fs.StringVar(&c.instanceID, "instance-id", defaultInstanceID(), "name of this instance in List (default <hostname>-<random>)")
	fs.StringVar(&c.advertise, "advertise-address", "", "gRPC address other instances reach this one at, to forward Sends (default 127.0.0.1:<grpc-port>; on Kubernetes $(POD_IP):5002)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or console")
	fs.DurationVar(&c.handshakeTimeout, "handshake-timeout", 10*time.Second, "WebSocket handshake timeout")
	fs.DurationVar(&c.pingInterval, "ping-interval", 15*time.Second, "WebSocket keepalive ping interval")
	fs.DurationVar(&c.pongTimeout, "pong-timeout", 10*time.Second, "how long a connection may stay silent after a ping")
	fs.DurationVar(&c.sendTimeout, "send-timeout", 10*time.Second, "Send timeout when timeout_ms is 0 or less")
	fs.DurationVar(&c.maxSendTimeout, "max-send-timeout", 5*time.Minute, "largest Send timeout accepted")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a shutdown may wait for calls and close handshakes")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 5*time.Second, "on SIGTERM, how long calls in flight (Sends waiting for a reply) may finish before the sockets close; keep it below the sidecar's block-shutdown duration")
	fs.StringVar(&c.lifecycleTopic, "lifecycle-topic", "websocketmanager.lifecycle", "topic for connection lifecycle events; empty turns them off")
	fs.IntVar(&c.publishBuffer, "publish-buffer", 1024, "inbound frames per connection that may wait for the publisher (when full, the connection's overflow policy decides)")
	fs.Int64Var(&c.readLimit, "max-inbound-frame-bytes", session.DefaultReadLimit, "largest inbound frame; a larger one ends the socket (default: the largest binary frame whose event fits in --max-publish-bytes 4 MiB)")
	fs.Int64Var(&c.publishBufferBytes, "publish-buffer-bytes", 8<<20, "bytes of inbound frames per connection that may wait for the publisher (when full, the connection's overflow policy decides)")
	fs.DurationVar(&c.publishRetryFor, "publish-retry-timeout", time.Minute, "how long one frame's publish is retried before it is dropped (counted as publish_failed), so that one frame the broker never takes cannot hold up the rest")
	fs.Int64Var(&c.publishBufferInstanceBytes, "publish-buffer-instance-bytes", 256<<20, "bytes of inbound frames all connections of this instance together may have waiting for the publisher (a connection that finds it full applies its overflow policy to its own frames)")
	fs.IntVar(&c.retainFrames, "retain-frames", 4096, "inbound frames each connection keeps for WatchFrames to resume from (a connection may ask for other bounds)")
	fs.Int64Var(&c.retainBytes, "retain-bytes", 4<<20, "bytes of inbound frames each connection keeps for WatchFrames to resume from")
	fs.Int64Var(&c.retainInstanceBytes, "retain-instance-bytes", 256<<20, "bytes of retained frames all connections of this instance keep together (a connection that finds it full retains less)")
	fs.IntVar(&c.maxFrameWatchers, "max-frame-watchers", 1024, "WatchFrames watches this instance serves from its own connections at once")
	fs.IntVar(&c.maxFrameWatchersPerConn, "max-frame-watchers-per-connection", 16, "WatchFrames watches one connection serves at once")
	fs.Int64Var(&c.watchBufferBytes, "watch-buffer-bytes", 16<<20, "bytes of frames that may wait for one WatchFrames watcher; a watcher that lets it overflow is ended with RESOURCE_EXHAUSTED")
	fs.IntVar(&c.watchBuffer, "watch-buffer", 4096, "frames that may wait for one WatchFrames watcher; a watcher that lets it overflow is ended with RESOURCE_EXHAUSTED")
	fs.IntVar(&c.maxPublishBytes, "max-publish-bytes", publish.DefaultMaxRequestBytes, "largest publish request sent to the sidecar (an inbound frame's event and its topic); a larger frame is dropped as too_large, not retried. Match daprd's --max-body-size (4Mi by default)")
	fs.DurationVar(&c.backoffInitial, "reconnect-initial-backoff", 500*time.Millisecond, "cap of the first reconnect delay (exponential, full jitter)")
	fs.DurationVar(&c.backoffMax, "reconnect-max-backoff", 30*time.Second, "cap of every reconnect delay")
	fs.IntVar(&c.backoffAttempts, "reconnect-max-attempts", 0, "failed reconnect attempts in a row before ERROR; 0 = unlimited")
	fs.DurationVar(&c.backoffStable, "reconnect-stable-after", 10*time.Second, "uptime after which the reconnect backoff starts over")
	fs.IntVar(&c.reviveConcurrency, "revive-concurrency", actors.DefaultReviveConcurrency, "connections this instance's failover watchdog re-establishes at once (each dials its server on the instance placement picks): bounds the re-dial rate after an instance dies, so upstream servers are not stampeded")
	fs.DurationVar(&c.watchdog, "watchdog-interval", 3*time.Second, "period of the failover watchdog (one reminder per directory shard): how soon a surviving instance re-establishes the connections of a dead one")
	fs.IntVar(&c.directoryShards, "directory-shards", actors.DefaultDirectoryShards, "number of directory actors the connection ids are spread over; the same on every instance, and fixed once the directory is in use (an instance with another count refuses to start: docs/scaling.md says how to change it)")
	fs.DurationVar(&c.fenceAfter, "sidecar-fence-after", 5*time.Second, "close every socket when the Dapr sidecar has been unreachable this long (another instance may own them by then)")
	fs.Var(listFlag{&c.corsOrigins}, "cors-allowed-origins", "origins whose pages may call the HTTP port (REST, Connect, gRPC-Web), comma-separated, e.g. https://app.example; * for any; empty = no cross-origin access")
	fs.Var(listFlag{&c.allowedHosts}, "allowed-hosts", "more Host names the HTTP port answers to besides IP addresses, localhost and the --host/--advertise-address names (comma-separated; *.example.com for subdomains; * for any): a DNS rebinding defence")
	fs.BoolVar(&c.metricsAuth, "metrics-auth", false, "require an API bearer token on /metrics too (when --api-tokens are set)")
	fs.StringVar(&c.pprofAddress, "pprof-address", "", "address for Go's /debug/pprof profiles, a loopback address (e.g. 127.0.0.1:6060); empty = off. Needs an API token when tokens are set")
	fs.Var(listFlag{&c.dialAllow}, "dial-allow", "SSRF guard allow-list: host names, *.patterns, IP addresses and CIDRs the service may connect to even if they are loopback, private, link-local or otherwise special (comma-separated); e.g. 127.0.0.0/8,::1 for local servers")
	fs.Var(listFlag{&c.dialDeny}, "dial-deny", "SSRF guard deny-list: host names, *.patterns, IP addresses and CIDRs the service must never connect to (comma-separated); 0.0.0.0/0,::/0 with an allow-list allows only the allow-list")
	fs.IntVar(&c.maxConnections, "max-connections", 0, "most sockets this instance holds; Connect beyond it fails with RESOURCE_EXHAUSTED (0 = the open-file limit minus 1024, at most one per 64 KiB of memory and 1,048,576)")
	fs.IntVar(&c.maxPendingSends, "max-pending-sends", 1024, "most Sends waiting for a reply on one connection; more fail with RESOURCE_EXHAUSTED")
	fs.IntVar(&c.maxMessageBytes, "max-outbound-message-bytes", 1<<20, "largest message a Send or SendRaw may carry; larger ones fail with INVALID_ARGUMENT")
	fs.Var(listFlag{&c.apiTokens}, "api-tokens", "bearer tokens the gRPC and REST APIs accept (comma-separated; prefer the environment variable WSM_API_TOKENS or --api-tokens-file, which do not show in the process list); empty = no authentication")
	fs.StringVar(&c.apiTokensFile, "api-tokens-file", "", "file with one accepted bearer token per line (adds to --api-tokens)")
	fs.StringVar(&c.tlsCert, "tls-cert-file", "", "PEM certificate (chain) for TLS on the gRPC and HTTP ports; re-read when the file changes")
	fs.StringVar(&c.tlsKey, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca-file", "", "PEM CA bundle: API calls (except health checks) must present a client certificate it signed (mTLS); instances also trust it for each other")
	fs.Var(listFlag{&c.peerTokens}, "peer-tokens", "secrets instances of this app prove themselves to each other with (comma-separated; the first signs, all are accepted; prefer WSM_PEER_TOKENS or --peer-tokens-file); empty = derived from APP_API_TOKEN; neither = no calls between instances")
	fs.StringVar(&c.peerTokensFile, "peer-tokens-file", "", "file with one peer token per line (adds to --peer-tokens)")
	fs.Var(listFlag{&c.peerAllow}, "peer-allow", "addresses of other instances this one may call, as read from the directory: host names, *.patterns, IP addresses, CIDRs (comma-separated); empty = loopback and private ranges (127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7)")
	fs.Var(listFlag{&c.peerDeny}, "peer-deny", "addresses of other instances this one must never call, even if --peer-allow covers them (comma-separated)")
	fs.IntVar(&c.maxWatchStreams, "max-watch-streams", 1024, "most WatchEvents streams this instance serves at once; more fail with RESOURCE_EXHAUSTED (0 = no limit)")
	fs.IntVar(&c.maxWatchStreamsPerCaller, "max-watch-streams-per-caller", 64, "most WatchEvents streams one caller (bearer token, else client certificate, else address) may have open on this instance; more fail with RESOURCE_EXHAUSTED (0 = no limit)")
	fs.StringVar(&c.otlpEndpoint, "otlp-endpoint", "", "OTLP/gRPC receiver (an OpenTelemetry collector) to export trace spans to: host:port, or http://host:port (plaintext) / https://host:port; empty = no spans recorded")
	fs.BoolVar(&c.otlpInsecure, "otlp-insecure", false, "send spans to a host:port --otlp-endpoint without TLS (a collector on loopback or in the pod)")
	fs.Var(listFlag{&c.egressProxy}, "egress-proxy", "HTTP CONNECT proxies to reach WebSocket servers through (comma-separated [name=]URL, http:// or https://, no credentials in the URL); the unnamed one is the default, a named one is used when a Connect chooses it (egress_proxy); empty = dial directly")
	fs.Var(listFlag{&c.egressNoProxy}, "egress-no-proxy", "hosts dialed directly even when a proxy applies (comma-separated): host names, .example.com or *.example.com for subdomains, IP addresses and CIDRs (matched against URLs whose host is an address), * for all")
	fs.StringVar(&c.egressProxyCAFile, "egress-proxy-ca-file", "", "PEM CA certificates trusted for https:// --egress-proxy proxies in addition to the system roots (read at start)")
	fs.Var(listFlag{&c.egressProxyAuth}, "egress-proxy-auth", "where each proxy's user:password is read at every CONNECT (comma-separated [name=]file:/abs/path or [name=]secret:store/key[/field]; unnamed = the default proxy), sent as Proxy-Authorization Basic")
	fs.StringVar(&c.peerServerName, "peer-tls-server-name", "", "name to verify in other instances' certificates when forwarding to them over TLS (default: the host of their advertise address)")
	fs.Var(listFlag{&c.tlsFilesDirs}, "tls-files-dir", "absolute directories (comma-separated) whose files a Connect may name as upstream TLS key material (tls.*.file); a path must resolve, symlinks included, inside one of them; empty = file references are refused")
	fs.Var(listFlag{&c.secretAllow}, "secret-allow", "secrets a Connect may reference in secret_headers and tls.*.secret (comma-separated): store (any key of it), store/key, store/prefix*; empty = secret references are refused. Any API caller can have an allowed secret sent to a server it names: keep the --egress-proxy-auth secret out")
	fs.BoolVar(&c.allowInlineTLS, "allow-inline-tls", false, "accept upstream TLS key material given inline in Connect (tls.*.inline_pem); it is then stored in the actor state store, so prefer secret or file references")
	return fs
}

// finish reads what does not come from flags and checks the result.
func (c *config) finish(getenv func(string) string) error {
	c.appAPIToken = getenv("APP_API_TOKEN")
	c.daprAPIToken = getenv("DAPR_API_TOKEN")
	if c.apiTokensFile != "" {
		b, err := os.ReadFile(c.apiTokensFile)
		if err != nil {
			return fmt.Errorf("--api-tokens-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				c.apiTokens = append(c.apiTokens, line)
			}
		}
	}
	if c.peerTokensFile != "" {
		b, err := os.ReadFile(c.peerTokensFile)
		if err != nil {
			return fmt.Errorf("--peer-tokens-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				c.peerTokens = append(c.peerTokens, line)
			}
		}
	}
	if c.advertise == "" {
		c.advertise = fmt.Sprintf("127.0.0.1:%d", c.grpcPort)
	}
	return c.validate()
}

func (c config) validate() error {
	for _, p := range []struct {
		name string
		v    int
	}{{"grpc-port", c.grpcPort}, {"http-port", c.httpPort}, {"actor-port", c.actorPort}} {
		if p.v < 1 || p.v > 65535 {
			return fmt.Errorf("--%s must be between 1 and 65535, got %d", p.name, p.v)
		}
	}
	if c.grpcPort == c.httpPort || c.grpcPort == c.actorPort || c.httpPort == c.actorPort {
		return fmt.Errorf("--grpc-port, --http-port and --actor-port must differ, got %d, %d, %d", c.grpcPort, c.httpPort, c.actorPort)
	}
	if c.pubsub == "" {
		return errors.New("--pubsub must name a Dapr pub/sub component")
	}
	if c.daprGRPCAddress == "" {
		return errors.New("--dapr-grpc-address is required")
	}
	if c.directoryShards < 1 || c.directoryShards > actors.MaxDirectoryShards {
		return fmt.Errorf("--directory-shards must be between 1 and %d, got %d", actors.MaxDirectoryShards, c.directoryShards)
	}
	if c.reviveConcurrency < 1 || c.reviveConcurrency > 4096 {
		return fmt.Errorf("--revive-concurrency must be between 1 and 4096, got %d", c.reviveConcurrency)
	}
	if c.watchdog < time.Second {
		return fmt.Errorf("--watchdog-interval must be at least 1s, got %v", c.watchdog)
	}
	if c.pprofAddress != "" {
		if err := checkLoopback(c.pprofAddress); err != nil {
			return fmt.Errorf("--pprof-address: %w", err)
		}
	}
	if _, err := netguard.NewPolicy(c.dialAllow, c.dialDeny); err != nil {
		return fmt.Errorf("--dial-allow/--dial-deny: %w", err)
	}
	if _, err := service.PeerPolicy(c.peerAllow, c.peerDeny); err != nil {
		return fmt.Errorf("--peer-allow/--peer-deny: %w", err)
	}
	if c.maxWatchStreams < 0 || c.maxWatchStreamsPerCaller < 0 {
		return errors.New("--max-watch-streams and --max-watch-streams-per-caller must not be negative")
	}
	if err := httpguard.ValidateHosts(c.allowedHosts); err != nil {
		return err
	}
	if _, err := httpguard.NewOrigins(c.corsOrigins); err != nil {
		return err
	}
	if c.shutdownGrace < 0 || c.shutdownGrace >= c.shutdownTimeout {
		return fmt.Errorf("--shutdown-grace (%v) must be at least 0 and below --shutdown-timeout (%v)", c.shutdownGrace, c.shutdownTimeout)
	}
	if c.maxConnections < 0 || c.maxPendingSends < 1 || c.maxMessageBytes < 1 {
		return errors.New("--max-connections must not be negative; --max-pending-sends and --max-outbound-message-bytes must be positive")
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if c.tlsClientCA != "" && c.tlsCert == "" {
		return errors.New("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	for _, d := range c.tlsFilesDirs {
		if err := checkTLSFilesDir(d); err != nil {
			return fmt.Errorf("--tls-files-dir: %w", err)
		}
	}
	if _, _, err := c.egress(); err != nil {
		return err
	}
	if _, err := upcreds.ParseSecretAllow(c.secretAllow); err != nil {
		return fmt.Errorf("--secret-allow: %w", err)
	}
	if _, err := c.egressRoots(); err != nil {
		return err
	}
	if c.logFormat != "json" && c.logFormat != "console" {
		return fmt.Errorf("--log-format must be json or console, got %q", c.logFormat)
	}
	return nil
}

// checkTLSFilesDir refuses a --tls-files-dir that is relative, not clean, or not an existing
// directory: a typo would otherwise show only as every file reference failing later.
func checkTLSFilesDir(d string) error {
	if !filepath.IsAbs(d) || filepath.Clean(d) != d {
		return fmt.Errorf("%q must be an absolute, clean path (e.g. /etc/wsmanager/tls)", d)
	}
	fi, err := os.Stat(d)
	if err != nil {
		return fmt.Errorf("%q: %w", d, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%q is not a directory", d)
	}
	return nil
}

func defaultDaprAddress(getenv func(string) string) string {
	if p := getenv("DAPR_GRPC_PORT"); p != "" {
		return "127.0.0.1:" + p
	}
	return "127.0.0.1:50001"
}

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "wsmanager"
	}
	return host + "-" + uuid.NewString()[:8]
}

// egress parses the egress proxy flags: the proxies with their credentials' references, and
// the hosts dialed directly.
func (c config) egress() ([]egress.Proxy, egress.NoProxy, error) {
	proxies, err := egress.ParseProxies(c.egressProxy)
	if err != nil {
		return nil, egress.NoProxy{}, fmt.Errorf("--egress-proxy: %w", err)
	}
	auth, err := egress.ParseAuth(c.egressProxyAuth)
	if err != nil {
		return nil, egress.NoProxy{}, fmt.Errorf("--egress-proxy-auth: %w", err)
	}
	if proxies, err = egress.WithAuth(proxies, auth); err != nil {
		return nil, egress.NoProxy{}, err
	}
	noProxy, err := egress.ParseNoProxy(c.egressNoProxy)
	if err != nil {
		return nil, egress.NoProxy{}, fmt.Errorf("--egress-no-proxy: %w", err)
	}
	return proxies, noProxy, nil
}

// egressRoots reads --egress-proxy-ca-file: the system roots plus its CAs; nil (the system
// roots) when it is not set.
func (c config) egressRoots() (*x509.CertPool, error) {
	if c.egressProxyCAFile == "" {
		return nil, nil
	}
	if len(c.egressProxy) == 0 {
		return nil, errors.New("--egress-proxy-ca-file needs --egress-proxy (it verifies https:// proxies)")
	}
	roots, err := egress.LoadRootCAs(c.egressProxyCAFile)
	if err != nil {
		return nil, fmt.Errorf("--egress-proxy-ca-file: %w", err)
	}
	return roots, nil
}
