// Command wsmanager is the WebSocket Manager service: the gRPC API, its REST/JSON
// transcoding, and the Dapr actor host that owns the connections. It runs beside a Dapr
// sidecar (daprd) whose --app-port is this service's --actor-port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "wsmanager:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	app, err := newApp(cfg, getenv)
	if err != nil {
		return err
	}
	return app.run(ctx)
}
