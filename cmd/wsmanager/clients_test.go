//go:build integration

package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// run runs a command in dir with the service's addresses in its environment, and fails the
// test with its output if it fails.
func runClientCommand(t *testing.T, ctx context.Context, dir string, extraEnv []string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v:\n%s", name, args, out)
	t.Logf("%s %v:\n%s", name, args, out)
}

func clientEnv(ws *sessiontest.Server) []string {
	return []string{
		"WSM_GRPC_URL=http://" + env.grpcAddr, "WSM_HTTP_URL=" + env.httpURL, "WSM_TOKEN=" + env.apiToken,
		"WSM_HOST=127.0.0.1", "WSM_PORT=" + env.grpcAddr[len("127.0.0.1:"):], "WS_URL=" + ws.URL("/echo"),
	}
}

// Ensure the TypeScript client (connect-es) works against the running service: the API
// reference's example as written, gRPC from Node with connect-node, and the Connect protocol
// with the browser library connect-web.
func TestTypeScriptClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(env.root, "clients", "typescript")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "tsc")); err != nil {
		runClientCommand(t, ctx, dir, nil, "npm", "ci", "--no-audit", "--no-fund")
	}
	runClientCommand(t, ctx, dir, nil, "npx", "tsc", "-p", ".")
	ws := sessiontest.NewServer(t, time.Hour)
	runClientCommand(t, ctx, dir, clientEnv(ws), "node", "--test", "dist/test/")
}

// Ensure the Python client works against the running service with Debian's grpcio: the API
// reference's example, every call, events and errors.
func TestPythonClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(env.root, "clients", "python")
	ws := sessiontest.NewServer(t, time.Hour)
	runClientCommand(t, ctx, dir, append(clientEnv(ws), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1"),
		"/usr/bin/python3", "-m", "unittest", "-v", "tests/test_client.py", "tests/test_frames.py")
}
