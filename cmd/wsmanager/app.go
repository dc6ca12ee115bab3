package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/backoff"
	upcreds "github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/egress"
	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/netguard"
	"github.com/websocketmanager/websocketmanager/actors/publish"
	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/tracing"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
	"github.com/websocketmanager/websocketmanager/service"
	"github.com/websocketmanager/websocketmanager/service/gateway"
	"github.com/websocketmanager/websocketmanager/service/httpguard"
)

// app wires the service together and owns its listeners and long-lived parts.
type app struct {
	cfg      config
	log      *zap.Logger
	daprConn *grpc.ClientConn
	registry *session.Registry
	// lifecycle publishes status changes; started before the first session, stopped after the last.
	lifecycle *publish.Lifecycle
	host      *actors.Host
	// bareGuard checks Host and Origin on the listeners that take no API bodies (actor host, pprof).
	bareGuard *httpguard.Guard
	grpc      *grpc.Server
	health    *health.Server
	http      *http.Server
	tls       *tls.Config // nil: plaintext
	svc       *service.Server
	metrics   *metrics.Metrics
	tokens    *service.Tokens
	ready     *readiness
	hub       *service.EventHub
	actors    *actors.Client
	spans     *tracing.Exporter // nil unless --otlp-endpoint
}

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	zc := zap.NewProductionConfig()
	if format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	return zc.Build()
}

func newApp(cfg config, getenv func(string) string) (*app, error) {
	log, err := newLogger(cfg.logLevel, cfg.logFormat)
	if err != nil {
		return nil, err
	}
	log = log.With(zap.String(logkey.InstanceID, cfg.instanceID))
	if err := actors.SetDirectoryShards(cfg.directoryShards); err != nil {
		return nil, fmt.Errorf("--directory-shards: %w", err)
	}

	// The Go SDK's actor state manager dials its own process-wide client from the environment.
	if getenv("DAPR_GRPC_ENDPOINT") == "" {
		_ = os.Setenv("DAPR_GRPC_ENDPOINT", cfg.daprGRPCAddress)
	}
	// The sidecar may start after us or restart: wait for it within each call's deadline (rather
	// than failing fast) and retry the connection at least every second (gRPC's default backoff
	// grows to two minutes, which would keep us unavailable long after the sidecar is back).
	daprConn, err := grpc.NewClient(cfg.daprGRPCAddress,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(daprToken(cfg.daprAPIToken)),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("dapr sidecar address %q: %w", cfg.daprGRPCAddress, err)
	}
	dc := dapr.NewClientWithConnection(daprConn)

	scfg := session.DefaultConfig()
	scfg.HandshakeTimeout = cfg.handshakeTimeout
	scfg.PingInterval = cfg.pingInterval
	scfg.PongTimeout = cfg.pongTimeout
	scfg.PublishBuffer = cfg.publishBuffer
	scfg.PublishBufferBytes = cfg.publishBufferBytes
	scfg.PublishBufferInstanceBytes = cfg.publishBufferInstanceBytes
	scfg.PublishRetryFor = cfg.publishRetryFor
	scfg.RetainFrames, scfg.RetainBytes, scfg.RetainInstanceBytes = cfg.retainFrames, cfg.retainBytes, cfg.retainInstanceBytes
	scfg.MaxWatchers, scfg.MaxWatchersPerConnection, scfg.WatchBuffer = cfg.maxFrameWatchers, cfg.maxFrameWatchersPerConn, cfg.watchBuffer
	scfg.WatchBufferBytes = cfg.watchBufferBytes
	scfg.ShutdownFlush = cfg.shutdownTimeout // a shutdown flush never outlasts it, deadline or not
	scfg.ReadLimit = cfg.readLimit
	scfg.MaxConnections = cfg.maxConnections
	if scfg.MaxConnections == 0 {
		scfg.MaxConnections = connectionsForOpenFiles()
	}
	scfg.MaxPendingSends = cfg.maxPendingSends
	scfg.MaxMessageBytes = cfg.maxMessageBytes
	policy, err := netguard.NewPolicy(cfg.dialAllow, cfg.dialDeny)
	if err != nil {
		return nil, err
	}
	guard := &netguard.Dialer{Policy: policy, Timeout: cfg.handshakeTimeout}
	scfg.Dial = guard.DialContext
	// One source of secret headers and TLS material: Connect checks references against it,
	// every dial reads through it (the sidecar's secrets API, the allowed files).
	secretAllow, err := upcreds.ParseSecretAllow(cfg.secretAllow)
	if err != nil {
		return nil, fmt.Errorf("--secret-allow: %w", err)
	}
	creds := &upcreds.Source{Secrets: newDaprSecrets(daprConn), FileDirs: cfg.tlsFilesDirs, AllowInline: cfg.allowInlineTLS, Allow: secretAllow}
	scfg.Credentials = creds
	// With egress proxies the dial goes through them (the guard decides before the proxy is
	// asked, see actors/egress), except for --egress-no-proxy hosts.
	proxies, noProxy, err := cfg.egress()
	if err != nil {
		return nil, err
	}
	proxyRoots, err := cfg.egressRoots()
	if err != nil {
		return nil, err
	}
	for _, p := range proxies {
		// The proxy's password is the operator's, not the callers': an allowed secret can be
		// sent by any caller to a server of its choosing.
		if p.Auth != nil && p.Auth.Secret != nil && secretAllow.Allows(p.Auth.Secret.Store, p.Auth.Secret.Key) {
			log.Warn("--secret-allow covers the secret of --egress-proxy-auth: any API caller can have the proxy's credentials sent to a server it names; narrow --secret-allow",
				zap.String("proxy", p.Name), zap.String("store", p.Auth.Secret.Store), zap.String("key", p.Auth.Secret.Key))
		}
	}
	var egressNames []string
	if len(proxies) > 0 {
		ed := &egress.Dialer{Guard: guard, Proxies: proxies, NoProxy: noProxy, Secrets: creds.Secrets, RootCAs: proxyRoots}
		scfg.Dial, egressNames = ed.DialContext, ed.Names()
	}
	var registry *session.Registry // the metrics read it when scraped, after it exists
	m := metrics.New(func() map[string]int { return registry.StatusCounts() })
	scfg.Metrics = m
	if err := scfg.Validate(); err != nil {
		return nil, err
	}
	bcfg := backoff.Config{Initial: cfg.backoffInitial, Max: cfg.backoffMax, MaxAttempts: cfg.backoffAttempts, StableAfter: cfg.backoffStable}
	if err := bcfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.maxPublishBytes <= 0 {
		return nil, errors.New("--max-publish-bytes must be positive")
	}
	scfg.MaxPublishBytes = cfg.maxPublishBytes // batch events are cut to fit
	pub := publish.NewDapr(dc, cfg.pubsub).WithMaxRequestBytes(cfg.maxPublishBytes)
	lifecycle := publish.NewLifecycle(pub, cfg.lifecycleTopic, 4, 4096, log.Named("lifecycle"))
	hub := service.NewEventHub()
	registry = session.NewRegistry(scfg, pub, tee{lifecycle, hub}, cfg.instanceID, log.Named("session"))
	m.ObserveBufferedBytes(registry.BufferedBytes)
	if n := cfg.readLimit/3*4 + publish.EnvelopeReserve; n > int64(cfg.maxPublishBytes) {
		// Legitimate (large Send replies are not published), but published frames that large are dropped.
		log.Warn("binary frames near --max-inbound-frame-bytes cannot be published within --max-publish-bytes; they will be dropped as too_large",
			zap.Int64("max_inbound_frame_bytes", cfg.readLimit), zap.Int("max_publish_bytes", cfg.maxPublishBytes))
	}
	client := actors.NewClient(dc).WithMetrics(m)
	router := actors.NewRouter(client, registry, cfg.instanceID).WithDialPolicy(policy)
	svcCfg := service.DefaultConfig()
	svcCfg.DefaultSendTimeout = cfg.sendTimeout
	svcCfg.MaxSendTimeout = cfg.maxSendTimeout
	svcCfg.SelfAddr = cfg.advertise
	svcCfg.Events = hub
	tokens := service.NewTokens(cfg.apiTokens)
	peerKeys := service.NewPeerKeys(cfg.peerTokens)
	if !peerKeys.Enabled() {
		// Instances of one app share APP_API_TOKEN; API callers do not have it.
		peerKeys = service.NewPeerKeys([]string{service.DerivePeerKey(cfg.appAPIToken)})
	}
	if !peerKeys.Enabled() {
		log.Warn("no peer key: instances do not call each other (Sends to another instance's connections wait in the actor's turn, WatchEvents shows this instance's events only, failover checks are slower); set WSM_PEER_TOKENS (the same on every instance) or APP_API_TOKEN")
	}
	peerPolicy, err := service.PeerPolicy(cfg.peerAllow, cfg.peerDeny)
	if err != nil {
		return nil, err
	}
	svcCfg.PeerKeys, svcCfg.PeerPolicy = peerKeys, &peerPolicy
	svcCfg.PeerRefused = m.PeerRefused
	svcCfg.MaxWatchStreams, svcCfg.MaxWatchStreamsPerCaller = cfg.maxWatchStreams, cfg.maxWatchStreamsPerCaller
	tlsCfg, certs, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	svcCfg.PeerCreds = peerCreds(cfg, tlsCfg, certs)
	svc := service.New(svcCfg, router, log.Named("service"))
	router.WithForwarder(svc.Forwarder()) // Sends to another instance's socket go there directly
	hostCfg := actors.DefaultHostConfig()
	hostCfg.AppAPIToken = cfg.appAPIToken
	hostCfg.MaxRequestBytes = int64(maxActorRequestBytes(cfg))
	// Host and Origin checks for the bodyless HTTP listeners: the actor host and pprof.
	bareGuard, err := httpGuard(cfg, log, false)
	if err != nil {
		return nil, err
	}
	hostCfg.Guard = bareGuard.Handler
	host := actors.NewHost(hostCfg, &actors.Deps{
		InstanceID:         cfg.instanceID,
		InstanceAddr:       cfg.advertise,
		Registry:           registry,
		Directory:          client,
		Backoff:            bcfg,
		DefaultSendTimeout: cfg.sendTimeout,
		MaxSendTimeout:     cfg.maxSendTimeout,
		Reminders:          dc,
		WatchdogInterval:   cfg.watchdog,
		ReviveConcurrency:  cfg.reviveConcurrency,
		Peers:              svc.HeldChecker(),
		Credentials:        creds,
		EgressProxies:      egressNames,
		Log:                log.Named("actors"),
	})
	router.WithLists(host, svc.HeldLister(), log.Named("list")) // List asks each instance, not each connection's actor

	// The same interceptors for unary calls and streams (service.Interceptors says which, in
	// which order): tracing, logging, metrics, panic recovery and the one mapping of errors to
	// statuses, then authentication (API token, or for calls from other instances their peer proof).
	auth := &service.Auth{Tokens: tokens, Peers: peerKeys, Self: cfg.advertise}
	unary, stream := service.Interceptors(service.InterceptorConfig{Log: log.Named("rpc"), Metrics: m, Auth: auth,
		// No call runs forever: one without a deadline gets the longest a Send may wait, plus margin.
		DefaultDeadline: cfg.maxSendTimeout + 30*time.Second})
	var opts []grpc.ServerOption
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
		if tlsCfg.ClientCAs != nil {
			unary = append(unary, service.ClientCertUnary())
			stream = append(stream, service.ClientCertStream())
		}
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...), grpc.MaxRecvMsgSize(maxRequestBytes(cfg)))
	opts = append(opts, service.ServerKeepalive()...)
	gs := grpc.NewServer(opts...)
	pb.RegisterWebSocketManagerServer(gs, svc)
	pb.RegisterWebSocketManagerPeerServer(gs, service.NewPeer(router))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	return &app{cfg: cfg, log: log, daprConn: daprConn, registry: registry, lifecycle: lifecycle, host: host,
		metrics: m, tokens: tokens, ready: newReadiness(hs), hub: hub, actors: client,
		grpc: gs, health: hs, svc: svc, tls: tlsCfg, bareGuard: bareGuard}, nil
}

func (a *app) run(ctx context.Context) error {
	defer func() { _ = a.log.Sync() }()
	// Spans are exported from the first call on (nothing is started without --otlp-endpoint).
	spans, err := tracing.Setup(ctx, tracing.ExportConfig{Endpoint: a.cfg.otlpEndpoint, Insecure: a.cfg.otlpInsecure,
		ServiceName: "websocketmanager", InstanceID: a.cfg.instanceID, Log: a.log.Named("otlp")})
	if err != nil {
		return fmt.Errorf("--otlp-endpoint: %w", err)
	}
	a.spans = spans
	// Until the runner owns them, what run acquired is released here if it returns early.
	var undo []func()
	started := false
	defer func() {
		if started {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = spans.Shutdown(flush)
	}()
	lc := net.ListenConfig{}
	listen := func(what, host string, port int) (net.Listener, error) {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", what, err)
		}
		undo = append(undo, func() { _ = l.Close() })
		return l, nil
	}
	grpcL, err := listen("gRPC", a.cfg.host, a.cfg.grpcPort)
	if err != nil {
		return err
	}
	httpL, err := listen("HTTP", a.cfg.host, a.cfg.httpPort)
	if err != nil {
		return err
	}
	actorL, err := listen("actor host", a.cfg.actorHost, a.cfg.actorPort)
	if err != nil {
		return err
	}

	// REST, the Connect protocol and gRPC-Web: vanguard over the gRPC server itself (its
	// ServeHTTP), so HTTP calls pass the same interceptors as gRPC calls (service/gateway).
	api, err := gateway.New(a.grpc, int64(maxRequestBytes(a.cfg)))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", cors(a.cfg.corsOrigins, api))
	mux.Handle("GET /readyz", a.ready)
	mux.Handle("GET /metrics", a.metricsHandler())
	guard, err := httpGuard(a.cfg, a.log, true)
	if err != nil {
		return err
	}
	httpHandler := guard.Handler(mux)
	if a.tls != nil && a.tls.ClientCAs != nil {
		httpHandler = requireClientCert(httpHandler)
	}
	a.http = &http.Server{Handler: httpHandler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: a.tls}

	// One runner owns every long-lived part: each serves in its own goroutine of the group
	// until stopped; the stopper waits for a signal (ctx) or the first part that fails, then
	// stops everything in order (shutdown), which makes the servers return; Wait waits for all.
	var pprof *http.Server
	var pprofL net.Listener
	if a.cfg.pprofAddress != "" {
		if pprofL, err = lc.Listen(ctx, "tcp", a.cfg.pprofAddress); err != nil {
			a.log.Error("pprof listener; profiles are off", zap.Error(err))
		} else {
			pprof = pprofServer(a.tokens)
			pprof.Handler = a.bareGuard.Handler(pprof.Handler) // a rebinding page must not read /debug/pprof/cmdline
		}
	}
	started = true
	a.lifecycle.Start()
	a.registry.Start()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return named("gRPC server", a.grpc.Serve(grpcL)) })
	g.Go(func() error {
		serve := a.http.Serve
		if a.tls != nil {
			serve = func(l net.Listener) error { return a.http.ServeTLS(l, "", "") }
		}
		return named("HTTP server", ignoreClosed(serve(httpL)))
	})
	g.Go(func() error { return named("actor host", a.host.Serve(actorL)) })
	// The fence watches the sidecar until the very end (shutdown publishes through it).
	fenceCtx, stopFence := context.WithCancel(context.Background())
	g.Go(func() error { a.fence(fenceCtx); return nil })
	g.Go(func() error { return named("directory", a.checkDirectoryShards(gctx)) })
	if pprof != nil {
		g.Go(func() error { return named("pprof server", ignoreClosed(pprof.Serve(pprofL))) })
		a.log.Info("pprof profiles served", zap.String("address", pprofL.Addr().String()))
	}
	g.Go(func() error {
		<-gctx.Done()
		if ctx.Err() != nil {
			a.log.Info("shutting down")
		} else {
			a.log.Error("a part of the service stopped; shutting down")
		}
		a.shutdown()
		stopFence()
		if pprof != nil {
			_ = pprof.Close()
		}
		return nil
	})
	a.log.Info("wsmanager started",
		zap.String("grpc", grpcL.Addr().String()),
		zap.String("http", httpL.Addr().String()),
		zap.String("actor_host", actorL.Addr().String()),
		zap.String("dapr_grpc", a.cfg.daprGRPCAddress),
		zap.String("pubsub", a.cfg.pubsub),
		zap.Strings("dial_allow", a.cfg.dialAllow), zap.Strings("dial_deny", a.cfg.dialDeny),
		zap.Strings("egress_proxy", a.cfg.egressProxy)) // URLs without credentials (refused)
	err = g.Wait()
	if err != nil {
		a.log.Error("server stopped", zap.Error(err))
	}
	return err
}

// named adds which part of the service an error came from.
func named(part string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", part, err)
	}
	return nil
}

// ignoreClosed turns the error an HTTP server's Serve returns after Shutdown or Close into nil.
func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown stops in reverse order of start: API first, then the actor host, then the sockets.
func (a *app) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.shutdownTimeout)
	defer cancel()
	a.health.Shutdown()
	a.hub.Close() // event streams would hold the graceful stop open
	// 1. Take no new API calls; let the ones in flight (Sends waiting for their reply) finish,
	// for at most --shutdown-grace. The sockets stay open meanwhile, and so does the actor
	// host: the sidecar keeps our actors (it blocks its own shutdown until the actor host
	// stops answering), so no other instance opens these connections yet.
	grace, cancelGrace := context.WithTimeout(ctx, a.cfg.shutdownGrace)
	defer cancelGrace()
	// HTTP calls reach the gRPC server through its ServeHTTP, whose transports GracefulStop
	// closes at once rather than drains: so the HTTP server drains first, then the gRPC
	// server (its own connections keep being served meanwhile).
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if a.http != nil {
			_ = a.http.Shutdown(grace)
		}
	}()
	stopped := make(chan struct{})
	go func() { <-httpDone; a.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-grace.Done():
		a.log.Warn("calls still running after the shutdown grace; they fail now", zap.Duration("grace", a.cfg.shutdownGrace))
	}
	// 2. Close every socket with a close frame (1001) and publish the frames they received
	// (bounded by --shutdown-timeout).
	a.registry.Shutdown(ctx)
	// 3. End whatever call still runs (it has no socket any more).
	a.grpc.Stop()
	<-stopped
	if a.http != nil {
		_ = a.http.Close()
	}
	<-httpDone
	// 4. Now the actor host goes: the sidecar's health check fails and it gives our actors up.
	_ = a.host.Shutdown(ctx)
	a.registry.Shutdown(ctx) // sessions a late actor call opened meanwhile
	a.lifecycle.Stop(ctx)
	// The spans of the last calls and publishes: sent within 5 s more, then given up.
	flush, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
	if err := a.spans.Shutdown(flush); err != nil {
		a.log.Warn("span export at shutdown", zap.Error(err))
	}
	cancelFlush()
	a.svc.Close()
	_ = a.daprConn.Close()
	a.log.Info("stopped")
}

// fence watches the sidecar every second: it records readiness, and it closes every socket
// when the sidecar has been unreachable for --sidecar-fence-after:
// by then placement may have given this instance's actors to another instance, which will
// open their sockets there. Closing ours keeps one socket per connection. The watchdog
// reminders bring the connections back once the sidecar (or another instance) is reachable.
func (a *app) fence(ctx context.Context) {
	md := runtimev1pb.NewDaprClient(a.daprConn)
	var lastOK = time.Now()
	var lastAnnounce time.Time
	fenced := false
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		meta, err := md.GetMetadata(cctx, &runtimev1pb.GetMetadataRequest{})
		cancel()
		a.ready.observe(meta, err)
		if ok, _ := a.ready.state(); ok && time.Since(lastAnnounce) >= actors.AnnounceEvery {
			// Event watches on other instances follow this one from now on.
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := a.actors.Announce(actx, a.cfg.advertise); err == nil {
				lastAnnounce = time.Now()
			} else if ctx.Err() == nil {
				a.log.Debug("announce this instance", zap.Error(err))
			}
			cancel()
		}
		switch {
		case err == nil:
			lastOK, fenced = time.Now(), false
		case !fenced && time.Since(lastOK) >= a.cfg.fenceAfter && ctx.Err() == nil:
			fenced = true
			a.log.Warn("Dapr sidecar unreachable; closing every socket so that no connection is held twice", zap.Duration("unreachable_for", time.Since(lastOK)), zap.Error(err))
			a.registry.CloseAll(ctx, 1001, "lost contact with the Dapr sidecar")
		}
	}
}

// checkDirectoryShards announces this instance once the sidecar is ready, and fails (which
// stops the instance) when the directory records another shard count than --directory-shards:
// this instance would look for connection ids in the wrong shards.
func (a *app) checkDirectoryShards(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if ok, _ := a.ready.state(); ok {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := a.actors.Announce(actx, a.cfg.advertise)
			cancel()
			switch {
			case err == nil:
				return nil
			case actors.CodeOf(err) == actors.CodeFailedPrecondition:
				a.log.Error("wrong directory shard count; stopping", zap.Error(err))
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// daprToken sends Dapr's API token (DAPR_API_TOKEN) on every call to the sidecar, including
// those this service makes on the raw connection.
func daprToken(token string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "dapr-api-token", token)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// requireClientCert answers 401 to REST calls without a verified client certificate (mTLS);
// the health check stays open for probes.
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !openPath(r.URL.Path) && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":16,"message":"this service requires a client certificate signed by its client CA (mTLS)"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxRequestBytes bounds one API request: room for the largest message (twice: JSON escapes
// and base64 grow it) and the rest of the request. A message above --max-outbound-message-bytes
// but within this gets INVALID_ARGUMENT naming the limit; a request beyond it is refused whole.
func maxRequestBytes(cfg config) int {
	return max(4<<20, 2*cfg.maxMessageBytes+64<<10)
}

// maxActorRequestBytes bounds one call from the sidecar to the actor host: an actor Send
// carries the message JSON-encoded, where escaping can make a text message up to six times
// its size (every control character becomes \u00XX) and base64 makes a binary one 4/3.
func maxActorRequestBytes(cfg config) int {
	return max(4<<20, 6*cfg.maxMessageBytes+64<<10)
}

// Bounds of the default --max-connections.
const (
	// bytesPerConnection is what one idle connection costs this process (measured ~28 KB,
	// docs/performance.md) plus its sidecar's actor, rounded up generously.
	bytesPerConnection = 64 << 10
	// connectionsCeiling caps the default whatever the limits say.
	connectionsCeiling = 1 << 20
)

// connectionsForOpenFiles is the default --max-connections: every socket is a file, and the
// process needs some for everything else. A huge or unlimited open-file limit must not mean
// "no limit": the default is also bounded by memory (the cgroup's limit, else the machine's)
// and by a fixed ceiling.
func connectionsForOpenFiles() int {
	var rl syscall.Rlimit
	openFiles := uint64(0) // unknown
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		openFiles = rl.Cur
	}
	return defaultMaxConnections(openFiles, memoryLimit())
}

// defaultMaxConnections derives --max-connections from the open-file limit and the memory
// available (0: unknown).
func defaultMaxConnections(openFiles, memory uint64) int {
	n := connectionsCeiling
	if openFiles > 0 && openFiles < uint64(connectionsCeiling)+1024 {
		n = max(int(openFiles)-1024, 64)
	}
	if memory > 0 {
		n = min(n, int(max(memory/bytesPerConnection, 64)))
	}
	return n
}

// memoryLimit returns the memory this process may use: its cgroup's limit (v2, then v1),
// else the machine's memory; 0 if unknown.
func memoryLimit() uint64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && v < 1<<60 {
			return v
		}
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err == nil {
		return uint64(si.Totalram) * uint64(si.Unit)
	}
	return 0
}

// openPath reports the HTTP paths that need no client certificate: the probes.
func openPath(path string) bool { return path == "/healthz" || path == "/readyz" }

// metricsHandler serves /metrics; with --metrics-auth it needs an API token like any call.
func (a *app) metricsHandler() http.Handler {
	h := a.metrics.Handler()
	if !a.cfg.metricsAuth || !a.tokens.Enabled() {
		return h
	}
	return requireBearer(a.tokens, "/metrics requires a bearer token (--metrics-auth)", h)
}

// requireBearer answers 401 with message to requests without an accepted API token.
func requireBearer(tokens *service.Tokens, message string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokens.ValidAuthorization(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wsmanager"`)
			http.Error(w, message, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tee hands each lifecycle event to the publisher and to the local WatchEvents streams.
type tee []session.Lifecycle

func (t tee) Emit(e publish.Event) {
	for _, l := range t {
		l.Emit(e)
	}
}
