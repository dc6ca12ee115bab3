//go:build unix

package credentials_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// Ensure a FIFO named as key material is refused at once rather than blocking the dial.
func TestTLSConfigFIFO(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(dir+"/ca.pem", 0o600))
	src := &credentials.Source{FileDirs: []string{dir}}
	_, err := src.TLSConfig(context.Background(), &credentials.TLS{CA: file(dir + "/ca.pem")})
	require.ErrorIs(t, err, credentials.ErrInvalidMaterial)
	assert.Contains(t, err.Error(), "is not a regular file")
}
