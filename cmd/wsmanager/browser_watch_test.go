//go:build integration

package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure the TypeScript client's browser example (clients/typescript/examples/browser) works in
// a real headless Chromium: the page, served from its own origin, watches a connection with
// connect-web (Connect protocol, CORS preflight with the bearer token) and lists the gap
// notice of frames no longer retained, the retained frames, then a live frame.
func TestBrowserWatchInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium on PATH: install Debian's chromium package (make prereqs installs it as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(env.root, "clients", "typescript")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "esbuild")); err != nil {
		runClientCommand(t, ctx, dir, nil, "npm", "ci", "--no-audit", "--no-fund")
	}
	runClientCommand(t, ctx, dir, nil, "npm", "run", "build:example")

	// The page's own server, started first: the service must allow its origin.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	page := &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(dir, "examples", "browser"))), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = page.Serve(l) }()
	t.Cleanup(func() { _ = page.Close() })
	origin := "http://" + l.Addr().String()

	ws := sessiontest.NewServer(t, time.Hour)
	c := newCluster(t)
	c.extraArgs = []string{"--cors-allowed-origins", origin}
	a := c.start("a")

	// 30 frames pushed, the last 10 retained: a watch from 1 gets the gap 1–20 first.
	const id = "browser-watch"
	connectVia(t, a, &pb.ConnectRequest{Url: ws.URL("/pushn?n=30"), ConnectionId: id, RetainFrames: 10})
	_, err = a.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "go"})
	require.NoError(t, err)
	// Wait until the 30th frame is retained (the service's own watch from 1 sees it).
	watchCtx, stopWatch := context.WithTimeout(ctx, waitFor)
	fs, err := a.client.WatchFrames(watchCtx, &pb.WatchFramesRequest{Id: id, FromSequence: new(uint64(1))})
	require.NoError(t, err)
	for {
		f, err := fs.Recv()
		require.NoError(t, err)
		if f.GetSequence() == 30 {
			break
		}
	}
	stopWatch()

	q := url.Values{"url": {"http://" + a.httpAddr}, "id": {id}, "from": {"1"}}
	start := time.Now()
	tab := startChromium(t, ctx, chromium, origin+"/index.html?"+q.Encode()+"#token="+clusterToken)

	want := []string{"frames 1–20 missing (not_retained)"}
	for i := 21; i <= 30; i++ {
		want = append(want, fmt.Sprintf(`%d: {"seq":%d}`, i, i))
	}
	tab.waitList(t, want)
	t.Logf("chromium started and the page listed the retained frames in %v", time.Since(start).Round(time.Millisecond))

	// A live frame: the server echoes what it is sent, as frame 31.
	start = time.Now()
	_, err = a.client.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: "live <b>from</b> the test"})
	require.NoError(t, err)
	want = append(want, "31: live <b>from</b> the test")
	dom := tab.waitList(t, want)
	t.Logf("the live frame was listed within %v (polled every 100ms); status %q: %s", time.Since(start).Round(time.Millisecond), dom.State, dom.Status)
	assert.Equal(t, "watching", dom.State)
	assert.Zero(t, dom.Bold, "frames are rendered as text, not HTML")
}

// chromiumTab is a page of a headless Chromium driven over the DevTools protocol.
type chromiumTab struct {
	conn *websocket.Conn
	log  string // Chromium's output file
	next int
}

// pageDOM is what the test reads of the example page.
type pageDOM struct {
	State  string   `json:"state"`
	Status string   `json:"status"`
	Items  []string `json:"items"`
	Bold   int      `json:"bold"`
}

// startChromium runs Debian's Chromium headless on pageURL with remote debugging on a free
// loopback port, and connects to the page. Chromium (its whole process group) ends with the test.
func startChromium(t *testing.T, ctx context.Context, chromium, pageURL string) *chromiumTab {
	t.Helper()
	profile := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "chromium.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", pageURL)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers (zygote, renderer, GPU) in one group
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = logFile.Close()
	})
	tab := &chromiumTab{log: logPath}
	failf := func(format string, args ...any) {
		t.Helper()
		out, _ := os.ReadFile(logPath)
		require.FailNowf(t, fmt.Sprintf(format, args...), "chromium's output:\n%s", out)
	}

	// Chromium writes the port it chose to DevToolsActivePort in the profile.
	var port int
	deadline := time.Now().Add(waitFor)
	for port == 0 {
		if b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			port, _ = strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
		}
		if port == 0 {
			if time.Now().After(deadline) {
				failf("chromium did not open its DevTools port")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The page target, once Chromium lists it.
	var wsURL string
	for wsURL == "" {
		wsURL = pageTarget(ctx, port, pageURL)
		if wsURL == "" {
			if time.Now().After(deadline) {
				failf("chromium shows no page target for %s", pageURL)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	tab.conn, _, err = websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tab.conn.Close() })
	return tab
}

func pageTarget(ctx context.Context, port int, pageURL string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/json/list", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var targets []struct{ Type, URL, WebSocketDebuggerURL string }
	if json.NewDecoder(resp.Body).Decode(&targets) != nil {
		return ""
	}
	for _, tg := range targets {
		if tg.Type == "page" && strings.HasPrefix(tg.URL, strings.SplitN(pageURL, "#", 2)[0]) {
			return tg.WebSocketDebuggerURL
		}
	}
	return ""
}

// dom reads the page's status and list with Runtime.evaluate.
func (tab *chromiumTab) dom() (pageDOM, error) {
	const expr = `JSON.stringify({
		state: document.getElementById("status")?.dataset.state ?? "",
		status: document.getElementById("status")?.textContent ?? "",
		items: [...document.querySelectorAll("#frames li")].map((li) => li.textContent),
		bold: document.querySelectorAll("#frames b").length,
	})`
	tab.next++
	id := tab.next
	_ = tab.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err := tab.conn.WriteJSON(map[string]any{"id": id, "method": "Runtime.evaluate",
		"params": map[string]any{"expression": expr, "returnByValue": true}})
	if err != nil {
		return pageDOM{}, err
	}
	_ = tab.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				Result struct {
					Value string `json:"value"`
				} `json:"result"`
				ExceptionDetails json.RawMessage `json:"exceptionDetails"`
			} `json:"result"`
			Error json.RawMessage `json:"error"`
		}
		if err := tab.conn.ReadJSON(&msg); err != nil {
			return pageDOM{}, err
		}
		if msg.ID != id {
			continue // an event
		}
		if msg.Error != nil || msg.Result.ExceptionDetails != nil {
			return pageDOM{}, fmt.Errorf("evaluate: %s %s", msg.Error, msg.Result.ExceptionDetails)
		}
		var d pageDOM
		return d, json.Unmarshal([]byte(msg.Result.Result.Value), &d)
	}
}

// waitList polls the page until its list is want (a longer list fails at once) and returns
// what it read last.
func (tab *chromiumTab) waitList(t *testing.T, want []string) pageDOM {
	t.Helper()
	var d pageDOM
	var err error
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		d, err = tab.dom()
		if err == nil && (len(d.Items) >= len(want) || d.State == "error") {
			break
		}
		if errors.Is(err, net.ErrClosed) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !assert.Equal(t, want, d.Items, "the page's list (status %q: %s)", d.State, d.Status) {
		out, _ := os.ReadFile(tab.log)
		require.FailNowf(t, "the page did not show the frames", "read error: %v\nchromium's output:\n%s", err, out)
	}
	return d
}
