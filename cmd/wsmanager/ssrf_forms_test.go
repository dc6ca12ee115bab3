//go:build integration

package main_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// countingListener counts the connections a test server accepted.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// startWSServerOn starts a WebSocket test server (sessiontest's echo etc.) on addr and
// returns its port and the listener that counts who reached it.
func startWSServerOn(t *testing.T, addr string) (string, *countingListener) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	cl := &countingListener{Listener: l}
	h := sessiontest.NewHandler(time.Hour)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(cl) }()
	t.Cleanup(func() {
		h.Close()
		_ = srv.Close()
	})
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), cl
}

// Ensure every spelling of a denied address is denied through the real service: zoned,
// IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo and ISATAP forms and
// legacy IPv4 notations of the stack's denied loopback address get PERMISSION_DENIED, so do
// embedded forms of an allowed loopback address (their prefixes stay denied by default);
// bad ports and control characters in headers get INVALID_ARGUMENT. Neither server is
// reached. A zoned, mapped spelling of an allowed address connects (zones are removed, not
// refused). The stack runs with --dial-allow 127.0.0.0/8,::1 --dial-deny 127.0.0.2.
func TestSSRFGuardEveryForm(t *testing.T) {
	denied, deniedSrv := startWSServerOn(t, deniedLoopback+":0")
	allowed, allowedSrv := startWSServerOn(t, "127.0.0.1:0")
	ai, err := strconv.Atoi(allowed)
	require.NoError(t, err)
	denyEntry := `deny-list entry "` + deniedLoopback + `/32"`
	tests := []struct {
		name, url string
		headers   map[string]string
		subproto  []string
		code      codes.Code
		want      string
	}{
		{"dotted decimal", "ws://127.0.0.2:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"IPv4-mapped", "ws://[::ffff:127.0.0.2]:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"IPv4-mapped, hex, upper case", "ws://[0:0:0:0:0:FFFF:7F00:2]:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"IPv4-mapped with a zone", "ws://[::ffff:127.0.0.2%25lo]:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"IPv4-compatible", "ws://[::127.0.0.2]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "IPv4-compatible"},
		{"IPv4-compatible with a zone", "ws://[::127.0.0.2%25lo]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "IPv4-compatible"},
		{"IPv4-translated", "ws://[::ffff:0:127.0.0.2]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "IPv4-translated"},
		{"NAT64", "ws://[64:ff9b::127.0.0.2]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "NAT64"},
		{"NAT64 local use", "ws://[64:ff9b:1::127.0.0.2]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "NAT64 local use"},
		{"6to4", "ws://[2002:7f00:2::1]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "6to4"},
		{"Teredo client", "ws://[2001:0:101:101::80ff:fffd]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "Teredo"},
		{"ISATAP, link-local with a zone", "ws://[fe80::5efe:127.0.0.2%25lo]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "link-local"},
		{"link-local with a zone", "ws://[fe80::1%25lo]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "link-local"},
		{"ULA with a zone", "ws://[fd00::1%251]:" + denied + "/echo", nil, nil, codes.PermissionDenied, "unique local"},
		{"IPv4-compatible form of an allowed address", "ws://[::127.0.0.1]:" + allowed + "/echo", nil, nil, codes.PermissionDenied, "IPv4-compatible"},
		{"NAT64 form of an allowed address", "ws://[64:ff9b::127.0.0.1]:" + allowed + "/echo", nil, nil, codes.PermissionDenied, "NAT64"},
		{"two-part IPv4", "ws://127.2:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"three-part IPv4", "ws://127.0.2:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"hex IPv4", "ws://0x7f000002:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"decimal IPv4", "ws://2130706434:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"octal IPv4", "ws://0177.0.0.2:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"mixed-base IPv4", "ws://0X7F.0.0.0x2:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"trailing dot", "ws://127.0.0.2.:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"leading zeros", "ws://127.000.000.002:" + denied + "/echo", nil, nil, codes.PermissionDenied, denyEntry},
		{"percent-encoded host", "ws://%31%32%37.0.0.2:" + denied + "/echo", nil, nil, codes.InvalidArgument, "invalid URL escape"},
		{"port 0", "ws://127.0.0.1:0/echo", nil, nil, codes.InvalidArgument, "1 to 65535"},
		{"port above 65535 (wraps onto the allowed server)", "ws://127.0.0.1:" + strconv.Itoa(ai+65536) + "/echo", nil, nil, codes.InvalidArgument, "1 to 65535"},
		{"port with a leading zero", "ws://127.0.0.1:0" + allowed + "/echo", nil, nil, codes.InvalidArgument, "leading zeros"},
		{"empty port", "ws://127.0.0.1:/echo", nil, nil, codes.InvalidArgument, "port"},
		{"two ports", "ws://127.0.0.1:" + allowed + ":" + allowed + "/echo", nil, nil, codes.InvalidArgument, "':'"},
		{"header with a control character", "ws://127.0.0.1:" + allowed + "/echo", map[string]string{"X-A": "a\x01b"}, nil, codes.InvalidArgument, "0x01"},
		{"header with an escape", "ws://127.0.0.1:" + allowed + "/echo", map[string]string{"X-A": "\x1b[2J"}, nil, codes.InvalidArgument, "0x1B"},
		{"header with DEL", "ws://127.0.0.1:" + allowed + "/echo", map[string]string{"X-A": "a\x7f"}, nil, codes.InvalidArgument, "0x7F"},
		{"header with a vertical tab", "ws://127.0.0.1:" + allowed + "/echo", map[string]string{"X-A": "a\vb"}, nil, codes.InvalidArgument, "0x0B"},
		{"header name with a control character", "ws://127.0.0.1:" + allowed + "/echo", map[string]string{"X-\x02": "v"}, nil, codes.InvalidArgument, "header name"},
		{"subprotocol with a control character", "ws://127.0.0.1:" + allowed + "/echo", nil, []string{"chat\x00"}, codes.InvalidArgument, "subprotocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "ssrf-forms-" + uuid.NewString()[:8]
			_, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: tt.url, ConnectionId: id, AutoReconnect: true,
				Headers: tt.headers, Subprotocols: tt.subproto})
			require.Equal(t, tt.code, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), tt.want)
			assert.Nil(t, find(t, id), "a refused Connect keeps nothing")
		})
	}
	assert.Zero(t, deniedSrv.accepted.Load(), "the server on the denied address was reached")
	assert.Zero(t, allowedSrv.accepted.Load(), "a refused request reached the allowed server")

	// The same decision as the canonical address: a zoned, mapped spelling of an allowed
	// address connects.
	resp, err := env.client.Connect(callCtx(t), &pb.ConnectRequest{Url: "ws://[::ffff:127.0.0.1%25lo]:" + allowed + "/echo"})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = env.client.Disconnect(context.Background(), &pb.DisconnectRequest{Id: resp.GetConnectionId()})
	})
	assert.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus())
	assert.EqualValues(t, 1, allowedSrv.accepted.Load())
}
