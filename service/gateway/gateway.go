// Package gateway owns the HTTP side of the API: the REST/JSON transcoding of the gRPC service
// (grpc-gateway, driven by the google.api.http rules in the .proto) and the HTTP health check.
package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// New returns the HTTP handler. REST calls are forwarded over conn, a client connection to the
// service's own gRPC server, so that they pass through the same interceptors as gRPC calls.
// A request body larger than maxBody is refused (400).
func New(ctx context.Context, conn *grpc.ClientConn, maxBody int64) (http.Handler, error) {
	gw := runtime.NewServeMux(
		// The W3C trace context travels on as is (other headers keep the gateway's defaults).
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			switch strings.ToLower(key) {
			case "traceparent", "tracestate":
				return strings.ToLower(key), true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	if err := pb.RegisterWebSocketManagerHandler(ctx, gw, conn); err != nil {
		return nil, fmt.Errorf("register REST routes: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.MaxBytesHandler(gw, maxBody))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux, nil
}
