package actors

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	actorerr "github.com/dapr/go-sdk/actor/error"
	"github.com/dapr/go-sdk/actor/runtime"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/tracing"
)

// HostConfig is the actor runtime configuration this process hands to its sidecar.
type HostConfig struct {
	// IdleTimeout is how long an actor may go uncalled before Dapr deactivates it. A
	// deactivated connection actor closes its socket, so this is long. Default 720h.
	IdleTimeout time.Duration
	// DrainTimeout is how long in-flight calls may finish when placement moves actors away.
	// It must stay well below placement's dissemination timeout (8s): a sidecar still draining
	// when that passes is dropped from the round, and the others may activate its actors while
	// it still runs them. Default 2s.
	DrainTimeout time.Duration
	// AppAPIToken, when set, is required in the dapr-api-token header of every call but the
	// health check: daprd sends it when started with the same APP_API_TOKEN, so nothing else
	// that reaches the port can drive the actors.
	AppAPIToken string
	// MaxRequestBytes bounds the body of one call from the sidecar (an actor method's
	// arguments, a reminder's data); a larger one is answered 413 without being read whole.
	// Default 4 MiB; the service sets it from --max-outbound-message-bytes.
	MaxRequestBytes int64
	// Guard, when set, wraps every callback (outermost): the service checks Host and Origin
	// there, so that a DNS-rebinding web page cannot drive the actors through a browser on
	// this host when no AppAPIToken is set.
	Guard func(http.Handler) http.Handler
}

// DefaultHostConfig returns the defaults documented on [HostConfig].
func DefaultHostConfig() HostConfig {
	return HostConfig{IdleTimeout: 720 * time.Hour, DrainTimeout: 2 * time.Second, MaxRequestBytes: 4 << 20}
}

// Host serves the actor callbacks daprd makes to this process (the "app port"). It is not
// part of the public API and should listen on loopback only.
type Host struct {
	cfg  HostConfig
	deps *Deps
	rt   *runtime.ActorRunTimeContext
	srv  *http.Server
}

// NewHost registers the actor types with the Go SDK's process-wide actor runtime. Call it
// once per process, before daprd first asks for /dapr/config.
func NewHost(cfg HostConfig, deps *Deps) *Host {
	rt := runtime.GetActorRuntimeInstanceContext()
	deps.watchdog = newWatchdog(deps)
	rt.RegisterActorFactory(NewConnectionFactory(deps))
	rt.RegisterActorFactory(NewDirectoryFactory(deps))
	h := &Host{cfg: cfg, deps: deps, rt: rt}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dapr/config", h.config)
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "[]")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("PUT /actors/{type}/{id}/method/{method}", h.invoke)
	mux.HandleFunc("PUT /actors/{type}/{id}/method/remind/{name}", h.reminder)
	mux.HandleFunc("PUT /actors/{type}/{id}/method/timer/{name}", h.timer)
	mux.HandleFunc("DELETE /actors/{type}/{id}", h.deactivate)
	var handler http.Handler = mux
	if cfg.MaxRequestBytes > 0 {
		handler = http.MaxBytesHandler(handler, cfg.MaxRequestBytes)
	}
	if cfg.AppAPIToken != "" {
		handler = requireAppToken(cfg.AppAPIToken, handler)
	}
	if cfg.Guard != nil {
		handler = cfg.Guard(handler)
	}
	h.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	return h
}

// Serve serves on l until Shutdown. The failover watchdog runs while it serves.
func (h *Host) Serve(l net.Listener) error {
	h.deps.watchdog.start()
	if err := h.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting calls and waits for running ones until ctx ends, then stops the
// watchdog.
func (h *Host) Shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	h.deps.watchdog.shutdown()
	return err
}

// requireAppToken lets through only requests carrying daprd's app API token (compared in
// constant time, after hashing), and the health check.
func requireAppToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("dapr-api-token")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 && !(r.Method == http.MethodGet && r.URL.Path == "/healthz") {
			http.Error(w, "missing or wrong dapr-api-token: only this app's Dapr sidecar (started with the same APP_API_TOKEN) may call the actor host", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// config answers daprd's /dapr/config. The SDK's own answer cannot set the idle timeout and
// always sends drainRebalancedActors=false, which cancels in-flight calls on every rebalance.
func (h *Host) config(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"entities":                h.rt.RegisteredActorTypes(),
		"actorIdleTimeout":        h.cfg.IdleTimeout.String(),
		"drainOngoingCallTimeout": h.cfg.DrainTimeout.String(),
		"drainRebalancedActors":   true,
	})
}

// traced continues the trace daprd passes on (traceparent), for the actor's own Dapr calls
// and its logs; the call is a server span of it when spans are exported. The caller ends it.
func traced(r *http.Request) (context.Context, trace.Span) {
	return tracing.StartServer(r.Context(), nil, "actor "+r.PathValue("type")+"/"+r.PathValue("method"),
		r.Header.Get(tracing.ParentHeader), r.Header.Get(tracing.StateHeader))
}

func (h *Host) invoke(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	ctx, span := traced(r)
	defer span.End()
	if ce := h.deps.Log.Check(zap.DebugLevel, "actor call"); ce != nil {
		ce.Write(zap.String("actor_type", r.PathValue("type")), zap.String("actor_id", r.PathValue("id")),
			zap.String("method", r.PathValue("method")), tracing.Field(ctx))
	}
	out, aerr := h.rt.InvokeActorMethod(ctx, r.PathValue("type"), r.PathValue("id"), canonicalMethod(r.PathValue("method")), body)
	if !h.ok(w, r, aerr) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (h *Host) reminder(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	h.ok(w, r, h.rt.InvokeReminder(r.Context(), r.PathValue("type"), r.PathValue("id"), r.PathValue("name"), body))
}

func (h *Host) timer(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	h.ok(w, r, h.rt.InvokeTimer(r.Context(), r.PathValue("type"), r.PathValue("id"), r.PathValue("name"), body))
}

// readBody reads a callback's body; one above the size limit is answered 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit), http.StatusRequestEntityTooLarge)
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		return nil, false
	}
	return body, true
}

// methodNames maps lower-cased method names to the Go method names the SDK dispatches on, so
// that "get" and "Get" both call Get.
var methodNames = func() map[string]string {
	m := map[string]string{}
	for _, name := range append(append([]string{}, ConnectionMethods...), DirectoryMethods...) {
		m[strings.ToLower(name)] = name
	}
	return m
}()

func canonicalMethod(name string) string {
	if n, ok := methodNames[strings.ToLower(name)]; ok {
		return n
	}
	return name
}

// deactivate runs when Dapr moves an actor away from this process or lets it go idle: the
// socket goes with it, because the next activation (here or elsewhere) dials again.
func (h *Host) deactivate(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	if typ == ConnectionType {
		closed := h.deps.Registry.Close(r.Context(), id, 1001, "actor moved to another instance")
		h.deps.held.forget(id)
		if closed {
			h.deps.Log.Info("actor deactivated, socket closed", zap.String(logkey.ConnectionID, id))
		}
	}
	aerr := h.rt.Deactivate(r.Context(), typ, id)
	if aerr == actorerr.ErrActorIDNotFound {
		aerr = actorerr.Success // never activated here: nothing to do
	}
	h.ok(w, r, aerr)
}

// ok writes the status for an SDK result and reports whether it was a success. A method
// failure carries text in the body, which daprd passes on as "(500) <text>".
func (h *Host) ok(w http.ResponseWriter, r *http.Request, aerr actorerr.ActorErr) bool {
	switch aerr {
	case actorerr.Success:
		return true
	case actorerr.ErrActorTypeNotFound, actorerr.ErrActorMethodNoFound:
		w.WriteHeader(http.StatusNotFound)
	default:
		h.deps.Log.Warn("actor callback failed", zap.String("path", r.URL.Path), zap.Int("sdk_code", int(aerr)))
		w.WriteHeader(http.StatusInternalServerError)
	}
	return false
}
