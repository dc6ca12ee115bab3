//go:build integration

package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes into it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Ensure the CLI does what its help says against the running service: every command, a
// readable table and JSON, live events, plain-word errors and the documented exit codes.
func TestCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wsmctl")
	build := exec.Command("go", "build", "-o", bin, "../wsmctl")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	ws := sessiontest.NewServer(t, time.Hour)
	baseEnv := append(os.Environ(), "WSMCTL_ADDR="+env.grpcAddr)
	authed := append(baseEnv, "WSMCTL_TOKEN="+env.apiToken)
	ctl := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return stdout.String(), stderr.String(), code
	}

	// events follows live, until it is stopped.
	evCtx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	events := exec.CommandContext(evCtx, bin, "events")
	events.Env = authed
	var evOut syncBuffer
	events.Stdout, events.Stderr = &evOut, &evOut
	require.NoError(t, events.Start())
	defer func() { stopEvents(); _ = events.Wait() }()
	// The watch is live once it shows a probe connection's events.
	require.Eventually(t, func() bool {
		_, _, _ = ctl(authed, "connect", ws.URL("/echo"), "--id", "cli-probe")
		_, _, _ = ctl(authed, "disconnect", "cli-probe")
		return strings.Contains(evOut.String(), "cli-probe")
	}, waitFor, 100*time.Millisecond)

	stdout, stderr, code := ctl(authed, "connect", ws.URL("/echo"), "--id", "cli-1", "--tag", "team=cli", "--auto-reconnect")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "cli-1\n", stdout)

	stdout, _, code = ctl(authed, "list", "--tag", "team=cli")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^ID\s+STATUS\s+INSTANCE\s+URL`, stdout)
	assert.Regexp(t, `(?m)^cli-1\s+CONNECTED\s+`, stdout)

	stdout, _, code = ctl(authed, "--output", "json", "list")
	require.Equal(t, 0, code)
	var listed struct {
		Connections []struct{ ID, Status string }
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &listed), stdout)
	assert.Contains(t, listed.Connections, struct{ ID, Status string }{"cli-1", "CONNECTED"})

	stdout, _, code = ctl(authed, "send", "cli-1", "Hello WebSocket!", "--reply-timeout", "5s")
	require.Equal(t, 0, code)
	assert.Equal(t, "Hello WebSocket!\n", stdout)
	_, _, code = ctl(authed, "sendraw", "cli-1", "raw")
	assert.Equal(t, 0, code)
	_, _, code = ctl(authed, "publish", "start", "cli-1", env.topics[0])
	assert.Equal(t, 0, code)
	_, _, code = ctl(authed, "publish", "stop", "cli-1")
	assert.Equal(t, 0, code)
	_, _, code = ctl(authed, "disconnect", "cli-1")
	assert.Equal(t, 0, code)

	require.Eventually(t, func() bool {
		s := evOut.String()
		return strings.Contains(s, "cli-1  CONNECTING → CONNECTED") && strings.Contains(s, "cli-1  CONNECTED → DISCONNECTED")
	}, waitFor, 50*time.Millisecond, "events printed live: %s", evOut.String())

	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"not found", authed, []string{"disconnect", "cli-1"}, 3, "not found"},
		{"already exists", authed, []string{"connect", ws.URL("/echo"), "--id", "cli-dup"}, 0, ""},
		{"already exists again", authed, []string{"connect", ws.URL("/echo"), "--id", "cli-dup"}, 4, "already exists"},
		{"no token", baseEnv, []string{"list"}, 5, "set WSMCTL_TOKEN"},
		{"denied target", authed, []string{"connect", "ws://169.254.169.254/"}, 5, "link-local"},
		{"invalid request", authed, []string{"connect", "http://example.com/"}, 2, "scheme must be ws or wss"},
		{"unreachable service", append(authed, "WSMCTL_ADDR=127.0.0.1:1"), []string{"--timeout", "2s", "list"}, 6, "cannot reach the service"},
		{"unknown command", authed, []string{"frobnicate"}, 2, "unknown command"},
		{"missing argument", authed, []string{"send", "x"}, 2, "usage: wsmctl send"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := ctl(tt.env, tt.args...)
			assert.Equal(t, tt.code, code, stderr)
			assert.Contains(t, stderr, tt.stderr)
		})
	}
	_, _, _ = ctl(authed, "disconnect", "cli-dup")
}

// Ensure the Go client works against the running service as its examples show.
func TestGoClient(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	c, err := wsmclient.New(env.grpcAddr, wsmclient.WithToken(env.apiToken), wsmclient.WithTimeout(10*time.Second))
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()

	watchCtx, stopWatch := context.WithCancel(ctx)
	seen := make(chan *wsmclient.LifecycleEvent, 16)
	probed := make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		done <- c.WatchEvents(watchCtx, "", func(ev *wsmclient.LifecycleEvent) error {
			switch id := ev.GetConnectionId(); {
			case id == "go-client":
				seen <- ev
			case strings.HasPrefix(id, "go-probe-"):
				select {
				case probed <- id:
				default:
				}
			}
			return nil
		})
	}()
	// The watch is live once it reports a probe connection's event (each probe a new id, so a
	// late event of an earlier one is no answer); then go-client's events all reach it.
	probes := 0
	require.Eventually(t, func() bool {
		probes++
		id := fmt.Sprint("go-probe-", probes)
		_, err := c.Connect(ctx, &wsmclient.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: id})
		require.NoError(t, err)
		require.NoError(t, c.Disconnect(ctx, id))
		deadline := time.After(time.Second)
		for {
			select {
			case got := <-probed:
				if got == id {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}, waitFor, time.Millisecond)
	conn, err := c.Connect(ctx, &wsmclient.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: "go-client"})
	require.NoError(t, err)
	select {
	case ev := <-seen:
		assert.Equal(t, "CONNECTED", ev.GetStatus().String())
	case <-time.After(waitFor):
		t.Fatal("the Connect's lifecycle event did not reach the watcher")
	}
	reply, err := c.Send(ctx, conn.GetConnectionId(), "Hello WebSocket!", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "Hello WebSocket!", reply.GetResponse())
	list, err := c.List(ctx, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, list)
	require.NoError(t, c.Disconnect(ctx, "go-client"))
	assert.Equal(t, codes.NotFound, wsmclient.Code(c.Disconnect(ctx, "go-client")))

	select {
	case ev := <-seen:
		assert.Equal(t, "DISCONNECTED", ev.GetStatus().String())
	case <-time.After(waitFor):
		t.Fatal("the Disconnect's lifecycle event did not reach the watcher")
	}
	stopWatch()
	require.NoError(t, <-done, "a cancelled watch ends without error")
}
