package credentials_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/credentials/credtest"
)

// Ensure only TLS failures of the server's handshake are described as such: a DNS error for a
// host whose name ends in "tls" and an egress proxy's TLS failure (quoted in its own error)
// are left to the caller; a server choosing a version this service refuses is described.
func TestDescribeTLSErrorOnlyTyped(t *testing.T) {
	dns := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "feed.mtls", IsNotFound: true}}
	for _, err := range []error{
		dns,
		fmt.Errorf("dial: %w", dns),
		errors.New(`egress proxy "corp" (proxy.example:3128): TLS to the proxy failed: tls: failed to verify certificate: x509: certificate signed by unknown authority`),
		errors.New(`egress proxy "corp" (proxy.example:3128): TLS to the proxy failed: tls: server selected unsupported protocol version 301`),
		errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: tls: something else"),
	} {
		msg, ok := credentials.DescribeTLSError(err, "feed.mtls")
		assert.False(t, ok, "%v described as %q", err, msg)
	}

	// crypto/tls returns this one untyped (a server that ignores the versions offered).
	for v, name := range map[string]string{"303": "TLS 1.2", "302": "TLS 1.1", "7f1c": "version 0x7f1c"} {
		err := fmt.Errorf("websocket: %w", errors.New("tls: server selected unsupported protocol version "+v))
		msg, ok := credentials.DescribeTLSError(err, "api.example")
		require.True(t, ok, "%v", err)
		assert.Equal(t, "the server at api.example and this service have no TLS version in common (the server chose "+name+"): check tls.min_version (1.3 needs a server that speaks TLS 1.3)", msg)
	}
}

// Ensure a symbolic link with an absolute target inside the allowed directory is refused with
// a message saying to use a relative link (os.Root follows only relative ones), also when the
// target is inside, and that a relative link to the same file works.
func TestTLSConfigAbsoluteLink(t *testing.T) {
	dir := t.TempDir()
	ca := credtest.NewCA(t, "ca")
	writeFile(t, dir+"/real/ca.pem", ca.PEM)
	require.NoError(t, os.Symlink(dir+"/real/ca.pem", dir+"/abs.pem"))
	require.NoError(t, os.Symlink(dir+"/real", dir+"/absdir"))
	require.NoError(t, os.Symlink("real/ca.pem", dir+"/rel.pem"))
	src := &credentials.Source{FileDirs: []string{dir}}

	_, err := src.TLSConfig(context.Background(), &credentials.TLS{CA: file(dir + "/rel.pem")})
	require.NoError(t, err)

	_, err = src.TLSConfig(context.Background(), &credentials.TLS{CA: file(dir + "/abs.pem")})
	require.ErrorIs(t, err, credentials.ErrInvalidMaterial)
	assert.Equal(t, `tls.ca: file "`+dir+`/abs.pem" is a symbolic link with an absolute target; use a relative link or the file itself`, err.Error())

	_, err = src.TLSConfig(context.Background(), &credentials.TLS{CA: file(dir + "/absdir/ca.pem")})
	require.ErrorIs(t, err, credentials.ErrInvalidMaterial)
	assert.Equal(t, `tls.ca: file "`+dir+`/absdir/ca.pem": "`+dir+`/absdir" is a symbolic link with an absolute target; use a relative link or the file itself`, err.Error())
}

// Ensure a fully qualified server name (trailing dot) is accepted, and the three inline PEMs
// together are bounded like one.
func TestValidateServerNameAndInlineTotal(t *testing.T) {
	src := &credentials.Source{AllowInline: true}
	for _, n := range []string{"api.example.com.", "localhost."} {
		assert.NoError(t, src.Validate(nil, nil, &credentials.TLS{ServerName: n}, true), n)
	}
	for _, n := range []string{".", "a..", "..", "a.b.."} {
		assert.Error(t, src.Validate(nil, nil, &credentials.TLS{ServerName: n}, true), n)
	}

	third := somePEM + strings.Repeat("x", credentials.MaxMaterialBytes/3)
	spec := &credentials.TLS{CA: inline([]byte(third)), ClientCert: inline([]byte(third)), ClientKey: inline([]byte(third))}
	err := src.Validate(nil, nil, spec, true)
	require.Error(t, err)
	assert.Equal(t, "tls: the inline_pem of tls.ca, tls.client_certificate and tls.client_key together are larger than 1048576 bytes; give the larger ones as secrets", err.Error())
	spec.ClientKey = inline([]byte(somePEM))
	require.NoError(t, src.Validate(nil, nil, spec, true))
}

// Ensure a CA added to the system roots fails the dial as unavailable when the system roots
// cannot be loaded, instead of trusting only the CA; with ca_only it is not needed. The roots
// are loaded once per process, so this runs in a child process with a broken root store.
func TestTLSConfigSystemRootsUnavailable(t *testing.T) {
	ca := credtest.NewCA(t, "ca")
	if os.Getenv("WSM_TEST_BROKEN_ROOTS") == "1" {
		src := &credentials.Source{AllowInline: true}
		_, err := src.TLSConfig(context.Background(), &credentials.TLS{CA: inline(ca.PEM)})
		require.ErrorIs(t, err, credentials.ErrUnavailable)
		assert.Contains(t, err.Error(), "tls.ca: the system root certificates cannot be loaded to add the CA to")
		assert.Contains(t, err.Error(), "or set tls.ca_only to trust only tls.ca")
		cfg, err := src.TLSConfig(context.Background(), &credentials.TLS{CA: inline(ca.PEM), CAOnly: true})
		require.NoError(t, err)
		assert.NotNil(t, cfg.RootCAs)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTLSConfigSystemRootsUnavailable$", "-test.count=1")
	// A directory as the certificate file is a read error other than "does not exist".
	cmd.Env = append(os.Environ(), "WSM_TEST_BROKEN_ROOTS=1", "SSL_CERT_FILE="+t.TempDir(), "SSL_CERT_DIR="+t.TempDir()+"/none")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "PASS")
}
