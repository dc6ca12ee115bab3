package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors"
)

// Ensure --directory-shards (or WSM_DIRECTORY_SHARDS) chooses the shard count, within bounds.
func TestConfigDirectoryShards(t *testing.T) {
	c, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, actors.DefaultDirectoryShards, c.directoryShards, "the count before the flag existed")

	t.Setenv("WSM_DIRECTORY_SHARDS", "256")
	c, err = parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 256, c.directoryShards)

	for _, bad := range []string{"0", "-1", "4097"} {
		_, err := parseConfig([]string{"--directory-shards", bad}, noEnv, io.Discard)
		if assert.Error(t, err, bad) {
			assert.Contains(t, err.Error(), "--directory-shards must be between 1 and 4096")
		}
	}
}
