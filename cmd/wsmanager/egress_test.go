//go:build integration

package main_test

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/egress/egresstest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// hostRecorder is a WebSocket echo server that records the Host of every handshake and
// counts the TCP connections it accepted.
type hostRecorder struct {
	port     string
	mu       sync.Mutex
	hosts    []string
	accepted int
}

func (h *hostRecorder) Hosts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.hosts...)
}

func (h *hostRecorder) Accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted
}

func startHostRecorder(t *testing.T, addr string) *hostRecorder {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	h := &hostRecorder{port: strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
	up := websocket.Upgrader{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.mu.Lock()
			h.accepted++
			h.mu.Unlock()
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hosts = append(h.hosts, r.Host)
		h.mu.Unlock()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, m); err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

func basicAuth(up string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(up)) }

// Ensure egress through HTTP CONNECT proxies on the real runtime: the service started with
// --egress-proxy (a default proxy that requires credentials read from a file, and a named
// one), --egress-no-proxy and --dial-deny. A Connect goes through the default proxy, which is
// asked to CONNECT to the address the service resolved and checked while the server sees the
// URL's Host; echo works. Rotating the credentials file takes effect at the next dial. A
// Connect may choose the named proxy; an unknown name is INVALID_ARGUMENT; a denied target is
// PERMISSION_DENIED with no proxy asked; a --egress-no-proxy host is dialed directly.
func TestEgressProxy(t *testing.T) {
	def := egresstest.Start(t, egresstest.RequireAuth("alice:first"))
	corp := egresstest.Start(t)
	auth := filepath.Join(t.TempDir(), "proxy-auth")
	require.NoError(t, os.WriteFile(auth, []byte("alice:first\n"), 0o600))
	ws := startHostRecorder(t, "127.0.0.1:0")
	direct := startHostRecorder(t, "127.0.0.3:0")
	c := newCluster(t)
	c.extraArgs = []string{
		"--egress-proxy", def.URL + ",corp=" + corp.URL,
		"--egress-proxy-auth", "file:" + auth,
		"--egress-no-proxy", "127.0.0.3",
		"--dial-deny", deniedLoopback,
	}
	in := c.start("egress")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connect := func(t *testing.T, req *pb.ConnectRequest) (string, error) {
		t.Helper()
		resp, err := in.client.Connect(ctx, req)
		if err != nil {
			return "", err
		}
		require.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus())
		id := resp.GetConnectionId()
		t.Cleanup(func() { _, _ = in.client.Disconnect(context.Background(), &pb.DisconnectRequest{Id: id}) })
		return id, nil
	}
	echo := func(t *testing.T, id string) {
		t.Helper()
		resp, err := in.client.Send(ctx, &pb.SendRequest{Id: id, Message: "through the proxy", TimeoutMs: 5000})
		require.NoError(t, err)
		assert.Equal(t, "through the proxy", resp.GetResponse())
	}
	target := "127.0.0.1:" + ws.port

	t.Run("default proxy with credentials", func(t *testing.T) {
		id, err := connect(t, &pb.ConnectRequest{Url: "ws://localhost:" + ws.port + "/echo"})
		require.NoError(t, err)
		echo(t, id)
		reqs := def.Requests()
		require.Len(t, reqs, 1)
		assert.Equal(t, target, reqs[0].Target, "the checked address, never the name")
		assert.Equal(t, basicAuth("alice:first"), reqs[0].Auth)
		assert.Equal(t, []string{"localhost:" + ws.port}, ws.Hosts(), "the server sees the URL's host")
		assert.Empty(t, corp.Requests())
	})

	t.Run("rotated credentials file", func(t *testing.T) {
		require.NoError(t, os.WriteFile(auth, []byte("alice:second"), 0o600))
		_, err := connect(t, &pb.ConnectRequest{Url: "ws://" + target + "/echo"})
		require.Error(t, err, "the proxy still wants the old password")
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		assert.Contains(t, status.Convert(err).Message(), "refused the proxy credentials (HTTP 407")
		assert.NotContains(t, status.Convert(err).Message(), "second")
		def.SetAuth("alice:second")
		id, err := connect(t, &pb.ConnectRequest{Url: "ws://" + target + "/echo"})
		require.NoError(t, err)
		echo(t, id)
		reqs := def.Requests()
		require.Len(t, reqs, 3)
		assert.Equal(t, basicAuth("alice:second"), reqs[1].Auth)
		assert.Equal(t, basicAuth("alice:second"), reqs[2].Auth)
		assert.NotContains(t, in.svc.Log(), "alice:", "credentials never logged")
		assert.NotContains(t, in.svc.Log(), base64.StdEncoding.EncodeToString([]byte("alice:second")))
	})

	t.Run("named proxy", func(t *testing.T) {
		before := len(def.Requests())
		id, err := connect(t, &pb.ConnectRequest{Url: "ws://" + target + "/echo", EgressProxy: "corp"})
		require.NoError(t, err)
		echo(t, id)
		assert.Equal(t, []string{target}, corp.Targets())
		assert.Len(t, def.Requests(), before)
		list, err := in.client.List(ctx, &pb.ListRequest{})
		require.NoError(t, err)
		for _, conn := range list.GetConnections() {
			if conn.GetId() == id {
				assert.Equal(t, "corp", conn.GetEgressProxy(), "List shows the chosen proxy")
			}
		}
	})

	t.Run("unknown proxy name", func(t *testing.T) {
		_, err := connect(t, &pb.ConnectRequest{Url: "ws://" + target + "/echo", EgressProxy: "nope"})
		require.Error(t, err)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		assert.Contains(t, status.Convert(err).Message(), `egress_proxy "nope"`)
	})

	t.Run("denied target", func(t *testing.T) {
		before := [2]int{len(def.Requests()), len(corp.Requests())}
		for _, proxy := range []string{"", "corp"} {
			_, err := connect(t, &pb.ConnectRequest{Url: "ws://" + deniedLoopback + ":" + ws.port + "/echo", EgressProxy: proxy})
			require.Error(t, err)
			assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		}
		assert.Equal(t, before, [2]int{len(def.Requests()), len(corp.Requests())}, "no proxy was asked")
	})

	t.Run("no-proxy host goes direct", func(t *testing.T) {
		before := [2]int{len(def.Requests()), len(corp.Requests())}
		id, err := connect(t, &pb.ConnectRequest{Url: "ws://127.0.0.3:" + direct.port + "/echo"})
		require.NoError(t, err)
		echo(t, id)
		assert.Equal(t, before, [2]int{len(def.Requests()), len(corp.Requests())}, "no proxy was asked")
		assert.Equal(t, 1, direct.Accepted())
		assert.Equal(t, []string{"127.0.0.3:" + direct.port}, direct.Hosts())
	})
}

// Ensure the guard's decision on the addresses a name resolves to holds through the proxy:
// "localhost" passes the name rules (the API's early check), but the service resolves it
// itself, finds 127.0.0.1 denied (--dial-deny) and refuses the Connect with
// PERMISSION_DENIED without asking the proxy anything.
func TestEgressProxyChecksResolvedAddresses(t *testing.T) {
	proxy := egresstest.Start(t)
	ws := startHostRecorder(t, "127.0.0.1:0")
	c := newCluster(t)
	c.extraArgs = []string{"--egress-proxy", proxy.URL, "--dial-deny", "127.0.0.1"}
	in := c.start("egress-resolved")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := in.client.Connect(ctx, &pb.ConnectRequest{Url: "ws://localhost:" + ws.port + "/echo"})
	require.Error(t, err)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), `deny-list entry "127.0.0.1/32"`)
	assert.Empty(t, proxy.Requests(), "the proxy is never asked")
	assert.Zero(t, ws.Accepted())
}
