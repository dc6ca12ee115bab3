package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func noEnv(string) string { return "" }

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 5002, c.grpcPort)
	assert.Equal(t, 5001, c.httpPort)
	assert.Equal(t, "127.0.0.1", c.actorHost)
	assert.Equal(t, "pubsub", c.pubsub)
	assert.Equal(t, "127.0.0.1:50001", c.daprGRPCAddress)
	assert.Equal(t, 10*time.Second, c.handshakeTimeout)
}

// Ensure the environment configures and a flag on the command line wins over it.
func TestConfigEnvAndFlags(t *testing.T) {
	t.Setenv("WSM_GRPC_PORT", "6002")
	t.Setenv("WSM_PUBSUB", "events")
	c, err := parseConfig([]string{"--pubsub", "frames"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 6002, c.grpcPort)
	assert.Equal(t, "frames", c.pubsub)
}

func TestConfigDaprPortFromEnvironment(t *testing.T) {
	c, err := parseConfig(nil, func(k string) string {
		if k == "DAPR_GRPC_PORT" {
			return "50011"
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:50011", c.daprGRPCAddress)
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"port out of range", []string{"--grpc-port", "70000"}},
		{"same ports", []string{"--grpc-port", "5001"}},
		{"empty pubsub", []string{"--pubsub", ""}},
		{"bad log format", []string{"--log-format", "xml"}},
		{"unknown flag", []string{"--nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, noEnv, io.Discard)
			assert.Error(t, err)
		})
	}
}

// Ensure docs/configuration.md lists every flag (and so its WSM_ variable) with its default.
func TestEveryFlagIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	var c config
	fs := flagSet(&c, noEnv, io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		assert.True(t, strings.Contains(string(doc), "`--"+f.Name+"`"), "docs/configuration.md does not describe --%s", f.Name)
	})
	assert.Greater(t, n, 30)
}
