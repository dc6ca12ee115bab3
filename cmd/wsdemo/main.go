// Command wsdemo is a demo WebSocket server for trying the service: /echo sends every frame
// back, /stream pushes a numbered JSON frame every --interval.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	interval := flag.Duration("interval", time.Second, "time between frames on /stream")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := sessiontest.NewHandler(*interval)
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		h.Close()
	}()
	fmt.Fprintf(os.Stderr, "wsdemo: echo on ws://%s/echo, stream on ws://%s/stream\n", *addr, *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "wsdemo:", err)
		os.Exit(1)
	}
}
