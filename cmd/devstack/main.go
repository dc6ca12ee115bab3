// Command devstack is `make run`: it starts placement, scheduler, a demo WebSocket server, one
// daprd and the service on fixed loopback ports, prints how to call it, and on Ctrl-C stops
// every process it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	bins := flag.String("bin", "", "folder with the built wsmanager and wsdemo binaries")
	resources := flag.String("resources", "components/inmemory", "Dapr components folder")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := daprstack.RepoRoot()
	if err != nil {
		return err
	}
	if err := daprstack.EnsureBinaries(ctx, root, os.Stderr); err != nil {
		return err
	}
	dir := filepath.Join(root, ".tools", "run")
	_ = os.RemoveAll(dir)
	st, err := daprstack.NewStack(dir)
	if err != nil {
		return err
	}
	st.Echo, st.EchoNames = os.Stderr, []string{"wsmanager", "wsdemo"}
	binDir, err := filepath.Abs(*bins)
	if err != nil {
		return err
	}
	defer st.Stop()

	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	bin := daprstack.BinDir(root)
	rt, err := st.StartRuntime(startCtx, bin, 50005, 50006)
	if err != nil {
		return err
	}
	demo, err := st.Start("wsdemo", nil, filepath.Join(binDir, "wsdemo"), "--addr", "127.0.0.1:9001")
	if err != nil {
		return err
	}
	if err := daprstack.WaitTCP(startCtx, demo, "127.0.0.1:9001"); err != nil {
		return err
	}
	res, err := filepath.Abs(*resources)
	if err != nil {
		return err
	}
	d, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{AppID: "wsmanager", AppPort: 5003, HTTPPort: 3500, GRPCPort: 50001, ResourcesPath: res, LogLevel: "info"})
	if err != nil {
		return err
	}
	svc, err := st.Start("wsmanager", []string{"DAPR_GRPC_PORT=50001"}, filepath.Join(binDir, "wsmanager"),
		"--grpc-port", "5002", "--http-port", "5001", "--actor-port", "5003", "--log-format", "console")
	if err != nil {
		return err
	}
	if err := daprstack.WaitTCP(startCtx, svc, "127.0.0.1:5002"); err != nil {
		return err
	}
	if err := d.WaitActorsReady(startCtx); err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, banner)
	select {
	case <-ctx.Done():
	case <-exited(svc, d.Proc, demo):
		return fmt.Errorf("a process exited; see the logs in %s", dir)
	}
	fmt.Fprintln(os.Stderr, "devstack: stopping")
	return nil
}

func exited(ps ...*daprstack.Proc) <-chan struct{} {
	ch := make(chan struct{})
	for _, p := range ps {
		go func() {
			for !p.Exited() {
				time.Sleep(200 * time.Millisecond)
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}()
	}
	return ch
}

const banner = `
================================================================================
WebSocket Manager is running (Ctrl-C stops everything).
  gRPC      127.0.0.1:5002   (reflection on: grpcurl -plaintext 127.0.0.1:5002 list)
  HTTP/REST http://127.0.0.1:5001
  demo WebSocket server: ws://127.0.0.1:9001/echo  and  ws://127.0.0.1:9001/stream
  Dapr sidecar: HTTP 127.0.0.1:3500, gRPC 127.0.0.1:50001

Try it (REST):
  curl -s -XPOST localhost:5001/v1/connect -d '{"url":"ws://127.0.0.1:9001/echo"}'
  curl -s -XPOST localhost:5001/v1/connections/<id>/send -d '{"message":"Hello WebSocket!","timeoutMs":5000}'
  curl -s localhost:5001/v1/connections
  curl -s -XDELETE localhost:5001/v1/connections/<id>

Try it (gRPC):
  grpcurl -plaintext -d '{"url":"ws://127.0.0.1:9001/echo"}' 127.0.0.1:5002 websocketmanager.v1.WebSocketManager/Connect
  grpcurl -plaintext -d '{"id":"<id>","message":"Hello WebSocket!","timeout_ms":5000}' 127.0.0.1:5002 websocketmanager.v1.WebSocketManager/Send
  grpcurl -plaintext 127.0.0.1:5002 websocketmanager.v1.WebSocketManager/List
================================================================================
`
