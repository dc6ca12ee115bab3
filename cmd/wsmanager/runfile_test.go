//go:build integration

package main_test

// The Dapr multi-app run file (dapr.yaml), run through the real Dapr CLI built by `make dapr`.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure `dapr run -f dapr.yaml` starts two instances and the consumer with the Redis
// components, and a frame sent by a WebSocket server reaches the consumer app.
func TestRunFileThroughDaprCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := env.root
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(root, ".tools", "bin")+"/", "./cmd/wsmanager", "./cmd/wsconsumer")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	orig, err := os.ReadFile(filepath.Join(root, "dapr.yaml"))
	require.NoError(t, err)
	run := uuid.NewString()[:8]
	topic := "runfile-" + run
	// A free port can be taken between choosing and binding it; a run whose sidecars do not
	// come up is tried again with other ports.
	var ports map[string]int
	var cli *daprstack.Proc
	for attempt := 1; attempt <= 3; attempt++ {
		ports, cli, err = startRunFile(ctx, t, root, string(orig), run, topic, attempt)
		if err == nil {
			break
		}
		t.Logf("dapr run -f, attempt %d: %v", attempt, err)
	}
	require.NoError(t, err)

	ws := sessiontest.NewServer(t, 100*time.Millisecond)
	conn1 := dial(t, ports["5002"])
	conn2 := dial(t, ports["5012"])
	id := "runfile-" + run
	_, err = conn1.Connect(ctx, &pb.ConnectRequest{Url: ws.URL("/stream"), ConnectionId: id, AutoReconnect: true})
	require.NoError(t, err)
	require.Eventually(t, func() bool { // through the other instance
		_, err := conn2.StartPublish(ctx, &pb.StartPublishRequest{Id: id, Topic: topic})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond)
	want := fmt.Sprintf("frame connection=%s", id)
	require.Eventually(t, func() bool { return strings.Contains(cli.Log(), want) }, 60*time.Second, 100*time.Millisecond,
		"the consumer app must print the frames; CLI output:\n%s", cli.Log())
	_, err = conn1.Disconnect(ctx, &pb.DisconnectRequest{Id: id})
	require.NoError(t, err)
}

// startRunFile runs a copy of dapr.yaml with its fixed ports, app-id and topic made unique, so
// that it runs beside `make run-multi` and earlier runs, through the Dapr CLI, and waits until
// both instances' sidecars host actors.
func startRunFile(ctx context.Context, t *testing.T, root, orig, run, topic string, attempt int) (map[string]int, *daprstack.Proc, error) {
	text := strings.ReplaceAll(orig, "appID: wsmanager\n", "appID: wsmanager-"+run+"\n")
	text = strings.ReplaceAll(text, `"--topic", "frames"`, `"--topic", "`+topic+`"`)
	ports := map[string]int{}
	var perr error
	text = regexp.MustCompile(`\b(5\d{3}|3\d{3}|5\d{4})\b`).ReplaceAllStringFunc(text, func(p string) string {
		if _, ok := ports[p]; !ok {
			free, err := daprstack.FreePort()
			if err != nil {
				perr = err
			}
			ports[p] = free
		}
		return strconv.Itoa(ports[p])
	})
	if perr != nil {
		return nil, nil, perr
	}
	runFile := filepath.Join(root, fmt.Sprintf(".dapr-run-%s-%d.yaml", run, attempt))
	if err := os.WriteFile(runFile, []byte(text), 0o644); err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { _ = os.Remove(runFile) })
	st, err := daprstack.NewStack(filepath.Join(env.tmp, fmt.Sprintf("runfile-%s-%d", run, attempt)))
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(st.Stop)
	rt, err := st.StartRuntime(ctx, daprstack.BinDir(root), ports["50005"], ports["50006"])
	if err != nil {
		st.Stop()
		return nil, nil, err
	}
	cli, err := daprstack.StartRunFile(st, root, runFile, rt.SchedulerAddr)
	if err != nil {
		st.Stop()
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, p := range []string{"3500", "3510"} {
		if err := daprstack.WaitActorsReady(wctx, cli, ports[p]); err != nil {
			st.Stop()
			return nil, nil, fmt.Errorf("%w; CLI output:\n%s", err, cli.Log())
		}
	}
	// The consumer app too: its sidecar has loaded the app's subscription.
	if err := daprstack.WaitSubscriptions(wctx, cli, ports["3520"], 1); err != nil {
		st.Stop()
		return nil, nil, fmt.Errorf("consumer: %w; CLI output:\n%s", err, cli.Log())
	}
	return ports, cli, nil
}

func dial(t *testing.T, port int) pb.WebSocketManagerClient {
	t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewWebSocketManagerClient(conn)
}
