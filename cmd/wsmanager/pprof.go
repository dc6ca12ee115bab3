package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"

	"github.com/websocketmanager/websocketmanager/service"
)

// pprofServer serves Go's runtime profiles on their own listener (--pprof-address), never on
// the API ports: profiles reveal internals (command line, heap contents) and cost CPU, so they
// are off unless asked for, only on loopback, and behind the API token when there is one.
func pprofServer(tokens *service.Tokens) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	var h http.Handler = mux
	if tokens.Enabled() {
		h = requireBearer(tokens, "profiles require an API bearer token: send 'Authorization: Bearer <token>'", mux)
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

// checkLoopback refuses a --pprof-address that is not a loopback address: a host name could
// resolve to anything, and an empty host listens on every interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().IsLoopback() || a.Zone() != "" {
		return fmt.Errorf("%q must be a loopback address such as 127.0.0.1:6060 (profiles are never served beyond this host)", addr)
	}
	return nil
}
