package main

import (
	"encoding/json"
	"net/http"
	"sync"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// readiness is whether this instance can serve: its sidecar answers and the sidecar's actor
// runtime is running and connected to placement. The sidecar watch (app.fence) updates it
// every second; /readyz and the gRPC health service report it.
type readiness struct {
	health *health.Server

	mu     sync.Mutex
	ready  bool
	reason string
}

func newReadiness(hs *health.Server) *readiness {
	r := &readiness{health: hs, reason: "not checked yet"}
	r.publish()
	return r
}

// observe records the result of one look at the sidecar's metadata.
func (r *readiness) observe(md *runtimev1pb.GetMetadataResponse, err error) {
	ready, reason := true, "ready"
	switch ar := md.GetActorRuntime(); {
	case err != nil:
		ready, reason = false, "the Dapr sidecar does not answer: "+err.Error()
	case ar.GetRuntimeStatus() != runtimev1pb.ActorRuntime_RUNNING || !ar.GetHostReady():
		ready, reason = false, "the sidecar's actor runtime is not running yet ("+ar.GetRuntimeStatus().String()+")"
	case ar.GetPlacement() != "placement: connected":
		ready, reason = false, "the sidecar is not connected to placement ("+ar.GetPlacement()+")"
	}
	r.mu.Lock()
	changed := r.ready != ready
	r.ready, r.reason = ready, reason
	r.mu.Unlock()
	if changed {
		r.publish()
	}
}

func (r *readiness) state() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.reason
}

// publish mirrors readiness into the gRPC health service (which ignores it after Shutdown).
func (r *readiness) publish() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok, _ := r.state(); ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	r.health.SetServingStatus("", st)
	r.health.SetServingStatus(pb.WebSocketManager_ServiceDesc.ServiceName, st)
}

// ServeHTTP is /readyz: 200 when ready, 503 with the reason otherwise.
func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	ok, reason := r.state()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "reason": reason})
}
