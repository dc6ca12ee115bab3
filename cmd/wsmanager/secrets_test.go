//go:build integration

package main_test

// End-to-end tests of secret headers (issue 15 item 1) on the real Dapr runtime: a
// secretstores.local.file component over a JSON file this test writes and rewrites, the
// sidecar's secrets API, rotation through daprd's hot reload of components, and checks that a
// secret's value is stored, listed, published and logged nowhere.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// secretStack is one instance of the service with Redis actor state (so that the test can read
// what the actors stored) and a secret store named "secretstore" over a JSON file.
type secretStack struct {
	c   *cluster
	in  *instance
	dir string // the secrets files and the resources folder
	res string
	n   int // files written so far
}

// newSecretStack starts the stack with the secrets (JSON object) and extra service flags.
func newSecretStack(t *testing.T, secrets map[string]any, extra ...string) *secretStack {
	t.Helper()
	s := &secretStack{dir: t.TempDir()}
	file := s.writeSecrets(t, secrets)
	res, err := daprstack.WriteResources(filepath.Join(s.dir, "resources"),
		daprstack.RedisActorStore(daprstack.RedisAddr), daprstack.RedisPubsub(daprstack.RedisAddr, false),
		daprstack.LocalFileSecretStore("secretstore", file))
	require.NoError(t, err)
	s.res = res
	s.c = newClusterWith(t, res)
	s.c.extraArgs = append([]string{"--log-level", "debug"}, extra...)
	s.in = s.c.start("a")
	return s
}

// writeSecrets writes a new secrets file and returns its path.
func (s *secretStack) writeSecrets(t *testing.T, secrets map[string]any) string {
	t.Helper()
	s.n++
	b, err := json.Marshal(secrets)
	require.NoError(t, err)
	path := filepath.Join(s.dir, fmt.Sprintf("secrets-%d.json", s.n))
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// rotate points the secret store at a new file with secrets (the sidecar reloads a changed
// component by itself) and waits until the sidecar answers key as ready says.
func (s *secretStack) rotate(t *testing.T, secrets map[string]any, key string, ready func(status int, body map[string]string) bool) {
	t.Helper()
	file := s.writeSecrets(t, secrets)
	// component-2.yaml is the secret store (third document of WriteResources).
	require.NoError(t, os.WriteFile(filepath.Join(s.res, "component-2.yaml"), []byte(daprstack.LocalFileSecretStore("secretstore", file)), 0o644))
	var last string
	require.Eventually(t, func() bool {
		st, body := s.sidecarSecret(t, key)
		last = fmt.Sprint(st)
		return ready(st, body)
	}, 90*time.Second, 200*time.Millisecond, "the sidecar must reload the secret store (last status %s)", last)
}

// sidecarSecret reads a secret through the sidecar's HTTP API, as the service would.
func (s *secretStack) sidecarSecret(t *testing.T, key string) (int, map[string]string) {
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/secrets/secretstore/%s", s.in.daprd.HTTPPort, key)
	resp, err := http.Get(url) //nolint:noctx // bounded by the default client's dial to loopback
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]string
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func (s *secretStack) list(t *testing.T) (*pb.ListResponse, string) {
	t.Helper()
	resp, err := s.in.client.List(callCtx(t), &pb.ListRequest{})
	require.NoError(t, err)
	b, err := protojson.Marshal(resp)
	require.NoError(t, err)
	return resp, string(b)
}

func (s *secretStack) find(t *testing.T, id string) *pb.WebSocketConnection {
	resp, _ := s.list(t)
	for _, c := range resp.GetConnections() {
		if c.GetId() == id {
			return c
		}
	}
	return nil
}

// assertNoLeak checks that none of values appears in the actors' state in Redis, List, the
// lifecycle events, the service's log or the sidecar's log.
func (s *secretStack) assertNoLeak(t *testing.T, values ...string) {
	t.Helper()
	places := map[string]string{}
	_, places["List"] = s.list(t)
	places["lifecycle events"] = strings.Join(s.c.events.bodies(s.c.lifecycle), "\n")
	places["service log"] = s.in.svc.Log()
	places["daprd log"] = s.in.daprd.Log()
	places["actor state in Redis"] = redisState(t, s.c.appID)
	require.NotEmpty(t, places["actor state in Redis"], "the test must see the actors' state")
	for where, text := range places {
		for _, v := range values {
			assert.NotContains(t, text, v, "a secret value in the %s", where)
			assert.NotContains(t, text, base64.StdEncoding.EncodeToString([]byte(v)), "a secret value (base64) in the %s", where)
		}
	}
}

// redisState returns every key and value Dapr keeps in Redis for appID's actors.
func redisState(t *testing.T, appID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := redisstream.Dial(ctx, redisstream.Addr)
	require.NoError(t, err)
	defer rc.Close()
	var out strings.Builder
	cursor := "0"
	for {
		r, err := rc.Do(ctx, "SCAN", cursor, "MATCH", appID+"||*", "COUNT", "1000")
		require.NoError(t, err)
		require.Len(t, r.Elems, 2)
		for _, k := range r.Elems[1].Elems {
			out.WriteString(k.Str + "\n")
			typ, err := rc.Do(ctx, "TYPE", k.Str)
			require.NoError(t, err)
			cmd := []string{"GET", k.Str}
			if typ.Str == "hash" {
				cmd = []string{"HGETALL", k.Str}
			}
			v, err := rc.Do(ctx, cmd...)
			require.NoError(t, err)
			out.WriteString(v.Str)
			for _, e := range v.Elems {
				out.WriteString(e.Str + "\n")
			}
		}
		if cursor = r.Elems[0].Str; cursor == "0" {
			return out.String()
		}
	}
}

// Ensure a secret header's value is read from the secret store at Connect and sent in the
// handshake; a missing secret or unknown store fails Connect with FAILED_PRECONDITION naming
// the reference; the value is stored, listed, published and logged nowhere; a rotated secret
// is used by the next reconnect; a secret that disappears makes reconnects fail visibly (List,
// lifecycle events) until it is back.
func TestSecretHeadersEndToEnd(t *testing.T) {
	v1 := "Bearer v1-" + uuid.NewString()
	other := "other-" + uuid.NewString()
	// "forbidden" is in the store but not on --secret-allow; "no-such-*" and "no-such-store"
	// are allowed so that their absence is what fails.
	s := newSecretStack(t, map[string]any{"api-token": v1, "nested": map[string]string{"token": other, "unused": "x"}, "forbidden": other},
		"--secret-allow", "secretstore/api-token,secretstore/nested,secretstore/no-such-*,no-such-store")
	ws := sessiontest.NewServer(t, time.Hour)
	ref := func(key, field string) map[string]*pb.SecretRef {
		return map[string]*pb.SecretRef{"Authorization": {Store: "secretstore", Key: key, Field: field}}
	}

	resp, err := s.in.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo?cid=s1"), AutoReconnect: true,
		SecretHeaders: ref("api-token", ""), Reconnect: &pb.ReconnectPolicy{InitialBackoffMs: 100, MaxBackoffMs: 500}})
	require.NoError(t, err)
	require.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus())
	id := resp.GetConnectionId()
	t.Cleanup(func() { _, _ = s.in.client.Disconnect(context.Background(), &pb.DisconnectRequest{Id: id}) })
	assert.Equal(t, v1, ws.Stats("s1").Authorization, "the handshake carried the secret's value")
	r, err := s.in.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "hello", TimeoutMs: 5000})
	require.NoError(t, err)
	assert.Equal(t, "hello", r.GetResponse())
	c := s.find(t, id)
	require.NotNil(t, c)
	assert.Equal(t, []string{"Authorization"}, c.GetSecretHeaderNames(), "List names the secret header")

	// A field of a multi-valued secret.
	resp, err = s.in.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo?cid=s2"), SecretHeaders: ref("nested", "token")})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = s.in.client.Disconnect(context.Background(), &pb.DisconnectRequest{Id: resp.GetConnectionId()})
	})
	assert.Equal(t, other, ws.Stats("s2").Authorization)

	// What is not there fails Connect, naming the reference.
	for _, tc := range []struct {
		name string
		refs map[string]*pb.SecretRef
		want []string
	}{
		{"missing secret", ref("no-such-secret", ""), []string{"no-such-secret", "secretstore"}},
		{"unknown store", map[string]*pb.SecretRef{"Authorization": {Store: "no-such-store", Key: "api-token"}}, []string{"no-such-store", "api-token"}},
		{"missing field", ref("nested", "no-such-field"), []string{"no-such-field"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.in.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo"), SecretHeaders: tc.refs})
			require.Error(t, err)
			assert.Equal(t, codes.FailedPrecondition, code(err), "%v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), v1)
			assert.NotContains(t, err.Error(), other)
			t.Logf("%s: %v", tc.name, err)
		})
	}
	// A secret the operator does not list is refused before anything is read.
	_, err = s.in.client.Connect(callCtx(t), &pb.ConnectRequest{Url: ws.URL("/echo"), SecretHeaders: ref("forbidden", "")})
	require.Error(t, err)
	assert.Equal(t, codes.InvalidArgument, code(err), "%v", err)
	assert.Contains(t, err.Error(), `secret_headers["Authorization"]: secret store "secretstore" key "forbidden" is not one this service may read (--secret-allow)`)
	assert.NotContains(t, err.Error(), other)
	s.assertNoLeak(t, v1, other)

	// Rotation: the sidecar reloads the store; the next handshake carries the new value.
	v2 := "Bearer v2-" + uuid.NewString()
	s.rotate(t, map[string]any{"api-token": v2}, "api-token", func(st int, body map[string]string) bool {
		return st == http.StatusOK && body["api-token"] == v2
	})
	before := ws.Stats("s1").Handshakes
	ws.DropAll()
	require.Eventually(t, func() bool {
		st := ws.Stats("s1")
		return st.Handshakes > before && st.Authorization == v2
	}, waitFor, 20*time.Millisecond, "the reconnect must carry the rotated value; server saw %q", ws.Stats("s1").Authorization)

	// The secret disappears: reconnects fail, visibly, and keep being retried.
	s.rotate(t, map[string]any{"something-else": "x"}, "api-token", func(st int, _ map[string]string) bool {
		return st != http.StatusOK && st != 0
	})
	before = ws.Stats("s1").Handshakes
	ws.DropAll()
	var last *pb.WebSocketConnection
	require.Eventually(t, func() bool {
		last = s.find(t, id)
		return last != nil && last.GetStatus() != pb.ConnectionStatus_CONNECTED && strings.Contains(last.GetLastError(), "api-token")
	}, waitFor, 50*time.Millisecond, "List must show the failing secret; last seen %v", last)
	t.Logf("List while the secret is missing: status %v, last_error %q", last.GetStatus(), last.GetLastError())
	// Each failed attempt is a lifecycle event naming the secret (never its value), and is retried.
	require.Eventually(t, func() bool {
		n := 0
		for _, e := range lifecycleEvents(s.c.events, s.c.lifecycle, id) {
			if e.Status == "CONNECTING" && e.Attempt > 0 && strings.Contains(e.Error, `"api-token"`) {
				n++
			}
		}
		return n >= 2
	}, waitFor, 50*time.Millisecond, "each failed reconnect must be a lifecycle event naming the secret")
	assert.Equal(t, before, ws.Stats("s1").Handshakes, "no handshake without the secret")

	// It comes back: the connection recovers by itself.
	v3 := "Bearer v3-" + uuid.NewString()
	s.rotate(t, map[string]any{"api-token": v3}, "api-token", func(st int, body map[string]string) bool {
		return st == http.StatusOK && body["api-token"] == v3
	})
	require.Eventually(t, func() bool {
		c := s.find(t, id)
		return c != nil && c.GetStatus() == pb.ConnectionStatus_CONNECTED && ws.Stats("s1").Authorization == v3
	}, 60*time.Second, 50*time.Millisecond, "the connection must recover once the secret is back")
	r, err = s.in.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "again", TimeoutMs: 5000})
	require.NoError(t, err)
	assert.Equal(t, "again", r.GetResponse())

	s.assertNoLeak(t, v1, v2, v3, other)
}

// lifecycleEvent is the data of a lifecycle event.
type lifecycleEvent struct {
	ConnectionID string `json:"connection_id"`
	Status       string `json:"status"`
	Attempt      int    `json:"attempt"`
	Error        string `json:"error"`
}

// lifecycleEvents returns connection id's lifecycle events on topic, in arrival order.
func lifecycleEvents(sink *eventSink, topic, id string) []lifecycleEvent {
	var out []lifecycleEvent
	for _, ce := range sink.all(topic, "") {
		var e lifecycleEvent
		if json.Unmarshal(ce.Data, &e) == nil && e.ConnectionID == id {
			out = append(out, e)
		}
	}
	return out
}
