package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// Ensure a Connect with credentials in the URL and an Authorization secret header is refused
// (the header would silently replace them at the dial), while either alone is accepted.
func TestValidateUpstreamURLCredentialsAndSecretAuthorization(t *testing.T) {
	allow, err := credentials.ParseSecretAllow([]string{"secretstore"})
	require.NoError(t, err)
	d := &Deps{Credentials: &credentials.Source{Allow: allow}}
	auth := map[string]credentials.SecretRef{"authorization": {Store: "secretstore", Key: "api"}}
	other := map[string]credentials.SecretRef{"X-Key": {Store: "secretstore", Key: "api"}}
	tests := []struct {
		name    string
		url     string
		headers map[string]credentials.SecretRef
		want    string
	}{
		{name: "both", url: "wss://user:pass@feed.example/ws", headers: auth,
			want: `secret_headers["authorization"] and the credentials in the url (user:password@) both set the Authorization header: give only one of them`},
		{name: "user only", url: "ws://user@feed.example/ws", headers: auth, want: "both set the Authorization header"},
		{name: "secret header only", url: "wss://feed.example/ws", headers: auth},
		{name: "url credentials with another secret header", url: "wss://user:pass@feed.example/ws", headers: other},
		{name: "url credentials only", url: "wss://user:pass@feed.example/ws"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := d.validateUpstream(&ConnectArgs{URL: tc.url, SecretHeaders: tc.headers})
			if tc.want == "" {
				assert.Nil(t, e)
				return
			}
			require.NotNil(t, e)
			assert.Equal(t, CodeInvalidArgument, e.Code)
			assert.Contains(t, e.Message, tc.want)
			assert.NotContains(t, e.Message, "pass@")
		})
	}
}
