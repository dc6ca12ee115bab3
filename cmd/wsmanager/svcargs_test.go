package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
)

// Ensure the command line the tests, wsbench and devstack build (cmd/internal/svcargs) is one
// the service accepts and means what the options say: every option set, parsed by the
// service's own flags and environment.
func TestServiceCommandLine(t *testing.T) {
	o := svcargs.Options{
		GRPCPort: 6002, HTTPPort: 6001, ActorPort: 6003, DaprGRPCAddress: "127.0.0.1:7001", InstanceID: "i-1",
		LogLevel: "debug", LogFormat: "console", LifecycleTopic: "lc", DialAllow: svcargs.Loopback, DialDeny: []string{"127.0.0.9"},
		SecretAllow:  []string{"secretstore/demo-*", "vault"},
		PingInterval: 300 * time.Millisecond, PongTimeout: 500 * time.Millisecond,
		ReconnectInitial: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, WatchdogInterval: 2 * time.Second,
		PublishBuffer: 20, PprofAddress: "127.0.0.1:6060", OTLPEndpoint: "127.0.0.1:4317", OTLPInsecure: true,
		APITokens: []string{"a", "b"}, PeerTokens: []string{"p"}, AppAPIToken: "app", DaprAPIToken: "dapr",
		Extra: []string{"--max-pending-sends", "32"},
	}
	for _, kv := range o.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	for _, a := range o.Args() {
		assert.NotContains(t, []string{"a,b", "p", "app", "dapr"}, a, "no secret on the command line")
	}
	c, err := parseConfig(o.Args(), os.Getenv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 6002, c.grpcPort)
	assert.Equal(t, 6001, c.httpPort)
	assert.Equal(t, 6003, c.actorPort)
	assert.Equal(t, "127.0.0.1:7001", c.daprGRPCAddress)
	assert.Equal(t, "i-1", c.instanceID)
	assert.Equal(t, "debug", c.logLevel)
	assert.Equal(t, "console", c.logFormat)
	assert.Equal(t, "lc", c.lifecycleTopic)
	assert.Equal(t, []string{"127.0.0.0/8", "::1"}, c.dialAllow)
	assert.Equal(t, []string{"127.0.0.9"}, c.dialDeny)
	assert.Equal(t, []string{"secretstore/demo-*", "vault"}, c.secretAllow)
	assert.Equal(t, 300*time.Millisecond, c.pingInterval)
	assert.Equal(t, 500*time.Millisecond, c.pongTimeout)
	assert.Equal(t, 50*time.Millisecond, c.backoffInitial)
	assert.Equal(t, 200*time.Millisecond, c.backoffMax)
	assert.Equal(t, 2*time.Second, c.watchdog)
	assert.Equal(t, 20, c.publishBuffer)
	assert.Equal(t, "127.0.0.1:6060", c.pprofAddress)
	assert.Equal(t, "127.0.0.1:4317", c.otlpEndpoint)
	assert.True(t, c.otlpInsecure)
	assert.Equal(t, 32, c.maxPendingSends)
	assert.Equal(t, "app", c.appAPIToken)
	assert.Equal(t, "dapr", c.daprAPIToken)
	assert.Equal(t, []string{"a", "b"}, c.apiTokens)
	assert.Equal(t, []string{"p"}, c.peerTokens)

	t.Setenv("DAPR_GRPC_PORT", "")
	for _, kv := range (svcargs.Options{DaprGRPCPort: 50011, NoLifecycleEvents: true}).Environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err = parseConfig(svcargs.Options{DaprGRPCPort: 50011, NoLifecycleEvents: true}.Args(), os.Getenv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:50011", c.daprGRPCAddress, "the sidecar address from DAPR_GRPC_PORT")
	assert.Equal(t, "", c.lifecycleTopic, "lifecycle events off")
}
