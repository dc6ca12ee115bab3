package main

import (
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
	"github.com/websocketmanager/websocketmanager/service/httpguard"
)

// CORS headers the browser protocols and the REST API need.
var (
	corsAllowHeaders = strings.Join([]string{"Content-Type", "Authorization", "Connect-Protocol-Version", "Connect-Timeout-Ms",
		"Connect-Accept-Encoding", "Connect-Content-Encoding", "Grpc-Timeout", "X-Grpc-Web", "X-User-Agent",
		"Traceparent", "Tracestate"}, ", ")
	corsExposeHeaders = strings.Join([]string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin",
		"Connect-Content-Encoding", "Traceparent"}, ", ")
)

// cors lets pages from the allowed origins call the API (default: none; "*" for any). A
// request from any other origin gets no CORS headers (and httpGuard refuses it before).
func cors(allowed []string, next http.Handler) http.Handler {
	origins, err := httpguard.NewOrigins(allowed)
	if len(allowed) == 0 || err != nil { // err: config validation refused the entries already
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !origins.Allows(origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", strconv.Itoa(7200))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiBodies are the media types each path of the HTTP port takes. REST takes JSON only: the
// media types a page may send without a CORS preflight (text/plain, forms, multipart) are
// refused everywhere. The browser protocols (the Connect protocol and gRPC-Web, served by
// service/gateway so that @connectrpc/connect-web works from a page) take what vanguard
// serves; gRPC (HTTP/2, so only with TLS) stays available there.
func apiBodies() []httpguard.Body {
	return []httpguard.Body{
		{Prefix: "/v1/", Types: []string{"application/json"}},
		{Prefix: "/" + pb.WebSocketManager_ServiceDesc.ServiceName + "/", Types: []string{
			"application/json", "application/proto", // Connect unary
			"application/connect+json", "application/connect+proto", // Connect streaming
			"application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json",
			"application/grpc-web-text", "application/grpc-web-text+proto",
			"application/grpc", "application/grpc+proto", "application/grpc+json",
		}},
	}
}

// httpGuard refuses cross-site and DNS-rebinding requests (docs/security.md). With bodies,
// it also checks request media types against apiBodies (the API port); the probes skip the
// Host and Origin checks.
func httpGuard(cfg config, log *zap.Logger, bodies bool) (*httpguard.Guard, error) {
	gc := httpguard.Config{
		AllowedOrigins: cfg.corsOrigins,
		AllowedHosts:   cfg.allowedHosts,
		ListenHosts:    []string{cfg.host, httpguard.HostOf(cfg.advertise)},
		OpenPaths:      []string{"/healthz", "/readyz"},
		Log:            log.Named("httpguard"),
	}
	if bodies {
		gc.Bodies = apiBodies()
	}
	return httpguard.New(gc)
}
