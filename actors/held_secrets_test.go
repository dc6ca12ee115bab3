package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// Ensure the held copy List describes from keeps no secret: no header values, no on-connect
// messages, no inline TLS key material (where the PEM came from stays), and that the
// session's own spec keeps all of them.
func TestHeldCopyKeepsNoSecrets(t *testing.T) {
	tls := &credentials.TLS{CA: &credentials.Material{File: "/etc/ca.pem"},
		ClientCert: &credentials.Material{InlinePEM: "-----BEGIN CERTIFICATE-----"},
		ClientKey:  &credentials.Material{InlinePEM: "-----BEGIN PRIVATE KEY-----"}, ServerName: "example.com"}
	s := &spec{ConnectArgs: ConnectArgs{URL: "wss://example.com", Headers: map[string]string{"Authorization": "secret"},
		OnConnectMessages: []string{"hello"}, TLS: tls}}
	var h heldSpecs
	h.set("c1", s)
	entries := h.after("", nil, 0)
	require.Len(t, entries, 1)
	got := entries[0].spec
	assert.Nil(t, got.Headers)
	assert.Nil(t, got.OnConnectMessages)
	require.NotNil(t, got.TLS)
	assert.Empty(t, got.TLS.ClientCert.InlinePEM)
	assert.Empty(t, got.TLS.ClientKey.InlinePEM)
	assert.Equal(t, "/etc/ca.pem", got.TLS.CA.File)
	assert.Equal(t, "example.com", got.TLS.ServerName)

	assert.Equal(t, "-----BEGIN PRIVATE KEY-----", s.TLS.ClientKey.InlinePEM, "the session's spec is untouched")
	assert.Equal(t, "secret", s.Headers["Authorization"])
}
