//go:build integration

package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// cliWatch is a running `wsmctl watch`.
type cliWatch struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{} // closed when the process has ended (err set)
	err            error
}

func startCLIWatch(t *testing.T, bin string, args ...string) *cliWatch {
	t.Helper()
	w := &cliWatch{cmd: exec.Command(bin, append([]string{"watch"}, args...)...), done: make(chan struct{})}
	w.cmd.Env = append(os.Environ(), "WSMCTL_ADDR="+env.grpcAddr, "WSMCTL_TOKEN="+env.apiToken)
	w.cmd.Stdout, w.cmd.Stderr = &w.stdout, &w.stderr
	require.NoError(t, w.cmd.Start())
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			_ = w.cmd.Process.Kill()
			<-w.done
		}
		if t.Failed() {
			t.Logf("wsmctl watch %v\nstdout:\n%s\nstderr:\n%s", args, w.stdout.String(), w.stderr.String())
		}
	})
	return w
}

func (w *cliWatch) lines() []string {
	return strings.Split(strings.TrimSuffix(w.stdout.String(), "\n"), "\n")
}

// exitCode waits for the process to end and returns its exit code.
func (w *cliWatch) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(waitFor):
		t.Fatal("wsmctl watch did not end")
	}
	if ee := (*exec.ExitError)(nil); errors.As(w.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, w.err)
	return 0
}

// interrupt sends Ctrl-C and returns the exit code.
func (w *cliWatch) interrupt(t *testing.T) int {
	t.Helper()
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGINT))
	return w.exitCode(t)
}

// watchCLIFrame is the i-th frame the feed of TestWatchCLI pushes: text, text on two lines
// (i = 3), or binary (every fifth).
func watchCLIFrame(_, i int) (int, []byte) {
	switch {
	case i == 3:
		return websocket.TextMessage, []byte("two\nlines")
	case i%5 == 0:
		return websocket.BinaryMessage, []byte{byte(i), 0xff}
	}
	return websocket.TextMessage, fmt.Appendf(nil, `{"n":%d}`, i)
}

const rfc3339Nano = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`

// Ensure `wsmctl watch` prints a connection's frames as they arrive, in order and complete,
// one line each (text, quoted text, base64, replies with --include-replies), announces frames
// that are no longer retained, ends with exit code 0 on Ctrl-C, and exits 3 for an unknown id.
func TestWatchCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wsmctl")
	out, err := exec.Command("go", "build", "-o", bin, "../wsmctl").CombinedOutput()
	require.NoError(t, err, "%s", out)
	c, err := wsmclient.New(env.grpcAddr, wsmclient.WithToken(env.apiToken))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("live, in order, with a reply", func(t *testing.T) {
		const n = 20
		feed := newFeed(t, feedOpts{n: n, waitGo: true, frame: watchCLIFrame})
		id := connectWith(t, &pb.ConnectRequest{Url: feed.url()})
		w := startCLIWatch(t, bin, id, "--from", "1", "--include-replies")
		require.NoError(t, c.SendRaw(ctx, id, "go")) // the feed starts pushing (not echoed)
		pollUntil(t, waitFor, 20*time.Millisecond, func() bool { return len(w.lines()) >= n },
			"wsmctl prints the %d frames", n)
		// The reply to a Send carries the number of the frame before it.
		r, err := c.Send(ctx, id, "ping", 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "ping", r.GetResponse())
		pollUntil(t, waitFor, 20*time.Millisecond, func() bool { return len(w.lines()) >= n+1 }, "wsmctl prints the reply")
		assert.Equal(t, 0, w.interrupt(t), "Ctrl-C ends the watch with exit code 0")
		assert.Empty(t, w.stderr.String())

		lines := w.lines()
		require.Len(t, lines, n+1, "%q", lines)
		for i := 1; i <= n; i++ {
			var want string
			switch typ, data := watchCLIFrame(1, i); {
			case i == 3:
				want = `text,quoted "two\\nlines"`
			case typ == websocket.BinaryMessage:
				want = "binary " + regexp.QuoteMeta(base64Std(data))
			default:
				want = "text " + regexp.QuoteMeta(string(data))
			}
			assert.Regexp(t, fmt.Sprintf(`^%d %s %s$`, i, rfc3339Nano, want), lines[i-1], "frame %d", i)
		}
		assert.Regexp(t, fmt.Sprintf(`^%d %s text,reply ping$`, n, rfc3339Nano), lines[n])
	})

	t.Run("frames no longer retained are announced", func(t *testing.T) {
		const n, retain = 20, 5
		feed := newFeed(t, feedOpts{n: n, frame: watchCLIFrame})
		id := connectWith(t, &pb.ConnectRequest{Url: feed.url(), RetainFrames: retain})
		pollUntil(t, waitFor, 10*time.Millisecond, func() bool { return feed.sentBy(1) == n }, "the feed pushes its frames")
		// The service has read them all once a watch from the last one shows it.
		for f, err := range c.Watch(ctx, id, wsmclient.WithFrom(n)) {
			require.NoError(t, err)
			require.Equal(t, uint64(n), f.GetSequence())
			break
		}
		w := startCLIWatch(t, bin, "--from", "1", id) // flags before or after the id
		pollUntil(t, waitFor, 20*time.Millisecond, func() bool { return len(w.lines()) >= 1+retain },
			"wsmctl prints the gap and the retained frames")
		assert.Equal(t, 0, w.interrupt(t))
		lines := w.lines()
		require.Len(t, lines, 1+retain, "%q", lines)
		assert.Equal(t, fmt.Sprintf("missing 1-%d (not_retained)", n-retain), lines[0])
		for i := n - retain + 1; i <= n; i++ {
			assert.Regexp(t, fmt.Sprintf(`^%d %s `, i, rfc3339Nano), lines[i-(n-retain)], "frame %d", i)
		}
	})

	t.Run("unknown connection", func(t *testing.T) {
		w := startCLIWatch(t, bin, "no-such-connection")
		assert.Equal(t, 3, w.exitCode(t), "exit code for not found")
		assert.Contains(t, w.stderr.String(), "NotFound")
	})
}

func base64Std(b []byte) string {
	out, _ := json.Marshal(b) // encoding/json writes []byte as standard base64
	return strings.Trim(string(out), `"`)
}

// watchResumeScript watches N frames of connection CONN_ID from sequence 1 with the Python
// client, ends its own stream after CUT frames (an own disconnect: the call is cancelled),
// watches again from the sequence after the last frame it got, and prints what it saw.
const watchResumeScript = `
import asyncio, json, os, time
from websocketmanager import WebSocketManagerClient

async def main():
    cid, n, cut = os.environ["CONN_ID"], int(os.environ["N"]), int(os.environ["CUT"])
    got, missing, resumed_from = [], [], None
    async with WebSocketManagerClient(host=os.environ["WSM_HOST"], port=int(os.environ["WSM_PORT"])) as client:
        await client.send_raw(cid, "go")  # the feed starts pushing
        for start in (1, None):
            if start is None:
                resumed_from = start = got[-1][0] + 1
                cut_at = time.monotonic()
            watch = client.watch(cid, from_sequence=start)
            async for f in watch:
                if f.HasField("missing"):
                    missing.append([f.missing.from_sequence, f.missing.to_sequence, f.missing.reason])
                    continue
                got.append((f.sequence, f.text))
                if len(got) in (cut, n):
                    break
            await watch.aclose()  # ends the call at once
    print(json.dumps({"sequences": [s for s, _ in got], "texts": [t for _, t in got],
                      "missing": missing, "resumed_from": resumed_from,
                      "after_cut_seconds": time.monotonic() - cut_at}))

asyncio.run(asyncio.wait_for(main(), 60))
`

// Ensure the Python client's watch follows a real connection and, after it ends its own
// stream mid-way and watches again with from_sequence, misses nothing and repeats nothing.
// (Its resume logic against a fake service, and frame events with replies, are unit tests run
// here too: they need no service, but `make test` runs the Python tests from this package.)
func TestWatchPythonResume(t *testing.T) {
	const n, cut = 300, 100
	runClientCommand(t, context.Background(), filepath.Join(env.root, "clients", "python"),
		[]string{"PYTHONPATH=" + filepath.Join(env.root, "clients", "python"), "PYTHONDONTWRITEBYTECODE=1"},
		"/usr/bin/python3", "-m", "unittest", "-v", "tests/test_watch.py", "tests/test_frames_reply.py")
	// 5 ms apart: the feed is still pushing when the script cuts its stream.
	feed := newFeed(t, feedOpts{n: n, interval: 5 * time.Millisecond, waitGo: true, frame: seqFrame})
	id := connectWith(t, &pb.ConnectRequest{Url: feed.url()})
	script := filepath.Join(t.TempDir(), "watch_resume.py")
	require.NoError(t, os.WriteFile(script, []byte(watchResumeScript), 0o600))
	dir := filepath.Join(env.root, "clients", "python")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", script)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1",
		"WSM_HOST=127.0.0.1", "WSM_PORT="+env.grpcAddr[len("127.0.0.1:"):], "WSM_TOKEN="+env.apiToken,
		"CONN_ID="+id, fmt.Sprint("N=", n), fmt.Sprint("CUT=", cut))
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "stdout %s\nstderr %s", out, stderr.String())
	var r struct {
		Sequences   []uint64
		Texts       []string
		Missing     [][]any
		ResumedFrom uint64  `json:"resumed_from"`
		AfterCut    float64 `json:"after_cut_seconds"`
	}
	require.NoError(t, json.Unmarshal(out, &r), "%s", out)
	assert.Empty(t, r.Missing, "no gap notice")
	assert.Equal(t, uint64(cut+1), r.ResumedFrom)
	require.Len(t, r.Sequences, n)
	for i := 1; i <= n; i++ {
		_, data := seqFrame(1, i)
		require.Equal(t, uint64(i), r.Sequences[i-1], "frame %d: sequence", i)
		require.Equal(t, string(data), r.Texts[i-1], "frame %d: text", i)
	}
	// The feed needs ≥ 1 s for the frames after the cut: a second watch that took about that
	// long got them live, not from retention only.
	t.Logf("the resumed watch took %.2f s for frames %d..%d", r.AfterCut, cut+1, n)
}
