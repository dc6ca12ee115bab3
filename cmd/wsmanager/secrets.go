package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	runtimev1pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// secretReadTimeout bounds one secret read: the sidecar connection waits for a sidecar that is
// down (WaitForReady), and a dial must not hang on it.
const secretReadTimeout = 5 * time.Second

// daprSecrets is credentials.SecretStore over the sidecar's secrets API. Its errors wrap
// credentials.ErrUnavailable and say why in words; they never carry a secret's value.
type daprSecrets struct {
	api     runtimev1pb.DaprClient
	timeout time.Duration
}

func newDaprSecrets(conn grpc.ClientConnInterface) *daprSecrets {
	return &daprSecrets{api: runtimev1pb.NewDaprClient(conn), timeout: secretReadTimeout}
}

func (d *daprSecrets) GetSecret(ctx context.Context, store, key string) (map[string]string, error) {
	if store == "" || key == "" {
		return nil, unavailable("a secret reference needs a store and a key")
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	resp, err := d.api.GetSecret(ctx, &runtimev1pb.GetSecretRequest{StoreName: store, Key: key})
	if err != nil {
		return nil, unavailable(fmt.Sprintf("secret %q in store %q: %s", key, store, secretReadFailure(ctx, err, store)))
	}
	if len(resp.GetData()) == 0 {
		return nil, unavailable(fmt.Sprintf("secret %q in store %q is empty", key, store))
	}
	return resp.GetData(), nil
}

// unavailable is a failed secret read: it is credentials.ErrUnavailable, and reads as its
// reason alone (the callers already say what was being read).
type unavailable string

func (u unavailable) Error() string { return string(u) }
func (u unavailable) Unwrap() error { return credentials.ErrUnavailable }

// secretReadFailure says in words why the sidecar did not give a secret. The sidecar's
// messages name stores and keys, never values.
func secretReadFailure(ctx context.Context, err error, store string) string {
	st, _ := status.FromError(err)
	// gRPC's own deadline timer may fire just before ctx reports it: its status says so.
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || st.Code() == codes.DeadlineExceeded {
		return "the Dapr sidecar did not answer in time (is it running?)"
	}
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument:
		if strings.Contains(msg, "failed finding secret store") {
			return fmt.Sprintf("the sidecar has no secret store component named %q", store)
		}
	case codes.FailedPrecondition:
		if strings.Contains(msg, "not configured") {
			return "the sidecar has no secret store component at all"
		}
	case codes.PermissionDenied:
		return "the sidecar's secret scopes deny this app access to it"
	case codes.Unavailable:
		return "the Dapr sidecar is unreachable"
	case codes.Internal:
		if strings.Contains(strings.ToLower(msg), "not found") {
			return "not found"
		}
	}
	return fmt.Sprintf("the sidecar answered %s: %s", st.Code(), msg)
}
