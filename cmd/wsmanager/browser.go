package main

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/grpc"
)

// browserHandler serves the Connect protocol and gRPC-Web (and gRPC over HTTP) for the
// services of gs on the HTTP port, at /<package>.<Service>/<Method>, so that
// @connectrpc/connect-web works from a page. Calls go through gs's interceptors.
func browserHandler(gs *grpc.Server) (http.Handler, error) {
	return vanguardgrpc.NewTranscoder(gs)
}

// CORS headers the browser protocols and the REST API need.
var (
	corsAllowHeaders = strings.Join([]string{"Content-Type", "Authorization", "Connect-Protocol-Version", "Connect-Timeout-Ms",
		"Connect-Accept-Encoding", "Connect-Content-Encoding", "Grpc-Timeout", "X-Grpc-Web", "X-User-Agent",
		"Traceparent", "Tracestate"}, ", ")
	corsExposeHeaders = strings.Join([]string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin",
		"Connect-Content-Encoding", "Traceparent"}, ", ")
)

// cors lets pages from the allowed origins call the API (default: none; "*" for any). A
// request from any other origin gets no CORS headers, so the browser refuses its answer.
func cors(allowed []string, next http.Handler) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	anyOrigin := slices.Contains(allowed, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !(anyOrigin || slices.Contains(allowed, origin)) {
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
