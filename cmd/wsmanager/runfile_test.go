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

	// The same run file with its fixed ports, app-id and topic made unique, so that this test
	// runs beside `make run-multi` and earlier runs.
	orig, err := os.ReadFile(filepath.Join(root, "dapr.yaml"))
	require.NoError(t, err)
	run := uuid.NewString()[:8]
	topic := "runfile-" + run
	text := strings.ReplaceAll(string(orig), "appID: wsmanager\n", "appID: wsmanager-"+run+"\n")
	text = strings.ReplaceAll(text, `"--topic", "frames"`, `"--topic", "`+topic+`"`)
	ports := map[string]int{}
	text = regexp.MustCompile(`\b(5\d{3}|3\d{3}|5\d{4})\b`).ReplaceAllStringFunc(text, func(p string) string {
		if _, ok := ports[p]; !ok {
			free, err := daprstack.FreePort()
			require.NoError(t, err)
			ports[p] = free
		}
		return strconv.Itoa(ports[p])
	})
	runFile := filepath.Join(root, ".dapr-run-"+run+".yaml")
	require.NoError(t, os.WriteFile(runFile, []byte(text), 0o644))
	t.Cleanup(func() { _ = os.Remove(runFile) })

	st, err := daprstack.NewStack(filepath.Join(env.tmp, "runfile-"+run))
	require.NoError(t, err)
	t.Cleanup(st.Stop)
	rt, err := st.StartRuntime(ctx, daprstack.BinDir(root), ports["50005"], ports["50006"])
	require.NoError(t, err)
	cli, err := daprstack.StartRunFile(st, root, runFile, rt.SchedulerAddr)
	require.NoError(t, err)
	for _, p := range []string{"3500", "3510"} {
		require.NoError(t, daprstack.WaitActorsReady(ctx, cli, ports[p]), "CLI output:\n%s", cli.Log())
	}

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

func dial(t *testing.T, port int) pb.WebSocketManagerClient {
	t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewWebSocketManagerClient(conn)
}
