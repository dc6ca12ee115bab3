package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Ensure --secret-allow (or WSM_SECRET_ALLOW) is read as a list, empty unless set, and that a
// malformed entry stops the start naming the flag.
func TestConfigSecretAllow(t *testing.T) {
	c, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Empty(t, c.secretAllow)

	c, err = parseConfig([]string{"--secret-allow", "secretstore/demo-*,vault/team/token", "--secret-allow", "kubernetes"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"secretstore/demo-*", "vault/team/token", "kubernetes"}, c.secretAllow)

	for _, bad := range []string{"s/a*b", "/key", "*"} {
		_, err := parseConfig([]string{"--secret-allow", bad}, noEnv, io.Discard)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "--secret-allow: entry ", bad)
	}

	t.Setenv("WSM_SECRET_ALLOW", "secretstore/api")
	c, err = parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"secretstore/api"}, c.secretAllow)
}
