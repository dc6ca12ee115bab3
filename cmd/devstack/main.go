// Command devstack is `make run`: it starts placement, scheduler, a demo WebSocket server, one
// daprd and the service on fixed loopback ports, prints how to call it, and on Ctrl-C stops
// every process it started.
//
// With --run-file (`make run-multi`) it starts placement, scheduler and the demo server, then
// hands the apps to the real Dapr CLI: dapr run -f <file> --runtime-path <the project's runtime>.
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
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
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
	runFile := flag.String("run-file", "", "a Dapr multi-app run file to run with the Dapr CLI instead of the single instance")
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
	// The wss:// demo (client certificate required) and the secret store holding what a
	// connection needs for it; new certificates and token at every start.
	pki, err := newDemoPKI()
	if err != nil {
		return fmt.Errorf("demo certificates: %w", err)
	}
	secretsFile, err := writeSecrets(dir, pki)
	if err != nil {
		return fmt.Errorf("demo secrets: %w", err)
	}
	stopTLS, err := startDemoTLS(pki)
	if err != nil {
		return err
	}
	defer stopTLS()
	if *runFile != "" {
		return runMulti(ctx, startCtx, st, root, *runFile, rt.SchedulerAddr)
	}
	res, err := filepath.Abs(*resources)
	if err != nil {
		return err
	}
	if res, err = withSecretStore(dir, res, secretsFile); err != nil {
		return err
	}
	d, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{AppID: "wsmanager", AppPort: 5003, HTTPPort: 3500, GRPCPort: 50001, ResourcesPath: res, LogLevel: "info"})
	if err != nil {
		return err
	}
	o := svcargs.Options{GRPCPort: 5002, HTTPPort: 5001, ActorPort: 5003, DaprGRPCPort: 50001, LogFormat: "console",
		DialAllow: svcargs.Loopback, // the demo server is on loopback, which the SSRF guard denies unless allowed
		// Connects may name the demo secrets (demo-client-tls, demo-api-token), no others.
		SecretAllow: []string{"secretstore/demo-*"}}
	svc, err := st.Start("wsmanager", o.Environ(), filepath.Join(binDir, "wsmanager"), o.Args()...)
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

// runMulti runs a multi-app run file through the Dapr CLI, with placement and scheduler
// already started (the CLI's slim mode starts neither).
func runMulti(ctx, startCtx context.Context, st *daprstack.Stack, root, runFile, schedulerAddr string) error {
	if err := daprstack.EnsureRedis(startCtx); err != nil {
		return err
	}
	st.EchoNames = append(st.EchoNames, "dapr")
	cli, err := daprstack.StartRunFile(st, root, runFile, schedulerAddr)
	if err != nil {
		return err
	}
	// The ports of dapr.yaml: both instances' sidecars must host actors before calls work.
	for _, port := range []int{3500, 3510} {
		if err := daprstack.WaitActorsReady(startCtx, cli, port); err != nil {
			return err
		}
	}
	fmt.Fprint(os.Stderr, multiBanner)
	select {
	case <-ctx.Done():
	case <-exited(cli):
		return fmt.Errorf("the Dapr CLI exited; see %s", cli.LogPath())
	}
	fmt.Fprintln(os.Stderr, "devstack: stopping")
	return nil
}

const multiBanner = `
================================================================================
Multi-app run is up (Ctrl-C stops everything): two instances of the service and a consumer.
  instance-1: gRPC 127.0.0.1:5002, REST http://127.0.0.1:5001
  instance-2: gRPC 127.0.0.1:5012, REST http://127.0.0.1:5011
  consumer:   prints every frame published to the topic "frames" (lines "== APP - wsconsumer ==")
  demo WebSocket server: ws://127.0.0.1:9001/stream
  demo wss:// server (client certificate required): wss://127.0.0.1:9443/echo; secret store
  "secretstore" (components/secretstore.yaml over .tools/run/secrets.json): demo-client-tls, demo-api-token
  (--secret-allow secretstore/demo-*)

  curl -s -XPOST localhost:5001/v1/connect -H 'Content-Type: application/json' -d '{"url":"ws://127.0.0.1:9001/stream","autoReconnect":true,"connectionId":"demo"}'
  curl -s -XPOST localhost:5011/v1/connections/demo/publish -H 'Content-Type: application/json' -d '{"topic":"frames"}'
  curl -s localhost:5011/v1/connections
================================================================================
`

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
  demo wss:// server (client certificate required): wss://127.0.0.1:9443/echo
  Dapr secret store "secretstore" (.tools/run/secrets.json): demo-client-tls (ca, cert, key), demo-api-token
    (Connects may name these only: --secret-allow secretstore/demo-*)
  Dapr sidecar: HTTP 127.0.0.1:3500, gRPC 127.0.0.1:50001

Try it (REST):
  curl -s -XPOST localhost:5001/v1/connect -H 'Content-Type: application/json' -d '{"url":"ws://127.0.0.1:9001/echo"}'
  curl -s -XPOST localhost:5001/v1/connections/<id>/send -H 'Content-Type: application/json' -d '{"message":"Hello WebSocket!","timeoutMs":5000}'
  curl -s localhost:5001/v1/connections
  curl -s -XDELETE localhost:5001/v1/connections/<id>

Try it (gRPC):
  grpcurl -plaintext -d '{"url":"ws://127.0.0.1:9001/echo"}' 127.0.0.1:5002 websocketmanager.v1.WebSocketManager/Connect
  grpcurl -plaintext -d '{"id":"<id>","message":"Hello WebSocket!","timeout_ms":5000}' 127.0.0.1:5002 websocketmanager.v1.WebSocketManager/Send
  grpcurl -plaintext 127.0.0.1:5002 websocketmanager.v1.WebSocketManager/List

Try it (CLI, in another terminal; .tools/bin/wsmctl):
  .tools/bin/wsmctl events                                  # follows lifecycle events live
  .tools/bin/wsmctl connect ws://127.0.0.1:9001/echo --id demo
  .tools/bin/wsmctl send demo "Hello WebSocket!"
  .tools/bin/wsmctl list
  .tools/bin/wsmctl disconnect demo
  .tools/bin/wsmctl connect wss://127.0.0.1:9443/echo --id mtls --tls-ca secret:secretstore/demo-client-tls/ca \
      --tls-cert secret:secretstore/demo-client-tls/cert --tls-key secret:secretstore/demo-client-tls/key \
      --secret-header X-Api-Token=secretstore/demo-api-token

Watch it: http://127.0.0.1:5001/metrics (Prometheus), /readyz, /healthz;
  Grafana dashboard: deploy/grafana/wsmanager-dashboard.json (docs/operations.md)
================================================================================
`
