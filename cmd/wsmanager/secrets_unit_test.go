package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// fakeSidecar answers GetSecret as daprd does (its messages, codes; see the real-runtime
// test secrets_test.go for daprd itself).
type fakeSidecar struct {
	runtimev1pb.UnimplementedDaprServer
	hang chan struct{}
}

func (f *fakeSidecar) GetSecret(ctx context.Context, r *runtimev1pb.GetSecretRequest) (*runtimev1pb.GetSecretResponse, error) {
	switch r.GetStoreName() {
	case "hang":
		select {
		case <-ctx.Done():
		case <-f.hang:
		}
		return nil, ctx.Err()
	case "none":
		return nil, status.Error(codes.FailedPrecondition, "secret store is not configured")
	case "scoped":
		return nil, status.Errorf(codes.PermissionDenied, "access denied by policy to get %q from %q", r.GetKey(), r.GetStoreName())
	case "store":
	default:
		return nil, status.Errorf(codes.InvalidArgument, "failed finding secret store with key %s", r.GetStoreName())
	}
	switch r.GetKey() {
	case "token":
		return &runtimev1pb.GetSecretResponse{Data: map[string]string{"token": "s3cret-value"}}, nil
	case "empty":
		return &runtimev1pb.GetSecretResponse{}, nil
	}
	return nil, status.Errorf(codes.Internal, "failed getting secret with key %s from secret store %s: secret %s not found", r.GetKey(), r.GetStoreName(), r.GetKey())
}

func newFakeSidecar(t *testing.T) *daprSecrets {
	l := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	fake := &fakeSidecar{hang: make(chan struct{})}
	runtimev1pb.RegisterDaprServer(gs, fake)
	go func() { _ = gs.Serve(l) }()
	conn, err := grpc.NewClient("passthrough:///sidecar", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	require.NoError(t, err)
	t.Cleanup(func() { close(fake.hang); _ = conn.Close(); gs.Stop() })
	d := newDaprSecrets(conn)
	d.timeout = 200 * time.Millisecond
	return d
}

// Ensure every way a secret read fails wraps ErrUnavailable and says why in words, naming the
// store and key and never a value.
func TestDaprSecretsErrors(t *testing.T) {
	d := newFakeSidecar(t)
	got, err := d.GetSecret(context.Background(), "store", "token")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"token": "s3cret-value"}, got)

	for _, tc := range []struct {
		store, key string
		want       string
	}{
		{"store", "missing", `secret "missing" in store "store": not found`},
		{"nostore", "token", `the sidecar has no secret store component named "nostore"`},
		{"none", "token", "no secret store component at all"},
		{"scoped", "token", "secret scopes deny"},
		{"hang", "token", "did not answer in time"},
		{"store", "empty", `secret "empty" in store "store" is empty`},
		{"", "token", "needs a store and a key"},
	} {
		t.Run(tc.store+"/"+tc.key, func(t *testing.T) {
			_, err := d.GetSecret(context.Background(), tc.store, tc.key)
			require.Error(t, err)
			assert.True(t, errors.Is(err, credentials.ErrUnavailable), "%v", err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cret-value")
		})
	}
}

// Ensure --tls-files-dir takes absolute, clean, existing directories only, and
// --allow-inline-tls is off unless set.
func TestConfigTLSFilesDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.pem")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	other := t.TempDir()

	c, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Empty(t, c.tlsFilesDirs)
	assert.False(t, c.allowInlineTLS)

	c, err = parseConfig([]string{"--tls-files-dir", dir + "," + other, "--allow-inline-tls"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{dir, other}, c.tlsFilesDirs)
	assert.True(t, c.allowInlineTLS)

	for _, bad := range []string{"relative/dir", dir + "/", dir + "/../" + filepath.Base(dir), filepath.Join(dir, "missing"), file} {
		_, err := parseConfig([]string{"--tls-files-dir", bad}, noEnv, io.Discard)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "--tls-files-dir", bad)
	}
}
