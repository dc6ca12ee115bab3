package credentials_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/credentials/credtest"
)

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func file(p string) *credentials.Material { return &credentials.Material{File: p} }

func pool(t *testing.T, system bool, cas ...*credtest.CA) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if system {
		if sys, err := x509.SystemCertPool(); err == nil {
			p = sys.Clone()
		}
	}
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// Ensure TLSConfig builds the client configuration from files under the allowed directory:
// trusted authorities (system plus CA, or CA only), the client certificate, server name and
// minimum version.
func TestTLSConfigFiles(t *testing.T) {
	dir := t.TempDir()
	ca := credtest.NewCA(t, "upstream CA")
	certPEM, keyPEM, cert := ca.Issue(t, credtest.Leaf{Client: true, DNSNames: []string{"client"}})
	writeFile(t, dir+"/ca.pem", ca.PEM)
	writeFile(t, dir+"/client/cert.pem", certPEM)
	writeFile(t, dir+"/client/key.pem", keyPEM)
	src := &credentials.Source{FileDirs: []string{dir}}
	spec := &credentials.TLS{CA: file(dir + "/ca.pem"), ClientCert: file(dir + "/client/cert.pem"), ClientKey: file(dir + "/client/key.pem"),
		ServerName: "api.example.com"}
	require.NoError(t, src.Validate(nil, nil, spec, true))

	cfg, err := src.TLSConfig(context.Background(), spec)
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	assert.Equal(t, "api.example.com", cfg.ServerName)
	assert.True(t, cfg.RootCAs.Equal(pool(t, true, ca)), "system roots plus the CA")
	require.Len(t, cfg.Certificates, 1)
	assert.Equal(t, cert.Certificate, cfg.Certificates[0].Certificate)

	spec.CAOnly, spec.MinVersion = true, "1.3"
	cfg, err = src.TLSConfig(context.Background(), spec)
	require.NoError(t, err)
	assert.True(t, cfg.RootCAs.Equal(pool(t, false, ca)), "the CA only")
	assert.Equal(t, uint16(tls.VersionTLS13), cfg.MinVersion)

	cfg, err = src.TLSConfig(context.Background(), nil)
	require.NoError(t, err)
	assert.Nil(t, cfg, "no TLS settings: the dialer's defaults")
}

// Ensure a changed file is read at the next call (rotation), and that symbolic links inside
// the directory are followed (as Kubernetes mounts secrets) while links leading outside are
// refused, at read time.
func TestTLSConfigFileRotationAndLinks(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	ca1, ca2 := credtest.NewCA(t, "first"), credtest.NewCA(t, "second")
	src := &credentials.Source{FileDirs: []string{dir}}
	spec := &credentials.TLS{CA: file(dir + "/ca.pem"), CAOnly: true}

	writeFile(t, dir+"/ca.pem", ca1.PEM)
	cfg, err := src.TLSConfig(context.Background(), spec)
	require.NoError(t, err)
	assert.True(t, cfg.RootCAs.Equal(pool(t, false, ca1)))
	writeFile(t, dir+"/ca.pem", ca2.PEM)
	cfg, err = src.TLSConfig(context.Background(), spec)
	require.NoError(t, err)
	assert.True(t, cfg.RootCAs.Equal(pool(t, false, ca2)), "the rotated file is read")

	// A Kubernetes-style mount: ca.pem -> ..data/ca.pem, ..data -> ..2026_01.
	writeFile(t, dir+"/..2026_01/ca.pem", ca1.PEM)
	require.NoError(t, os.Symlink("..2026_01", dir+"/..data"))
	require.NoError(t, os.Symlink("..data/ca.pem", dir+"/linked.pem"))
	cfg, err = src.TLSConfig(context.Background(), &credentials.TLS{CA: file(dir + "/linked.pem"), CAOnly: true})
	require.NoError(t, err)
	assert.True(t, cfg.RootCAs.Equal(pool(t, false, ca1)))

	writeFile(t, outside+"/ca.pem", ca1.PEM)
	require.NoError(t, os.Symlink(outside+"/ca.pem", dir+"/escape.pem"))
	require.NoError(t, os.Symlink(outside, dir+"/escapedir"))
	for _, p := range []string{dir + "/escape.pem", dir + "/escapedir/ca.pem"} {
		spec := &credentials.TLS{CA: file(p)}
		require.NoError(t, src.Validate(nil, nil, spec, true), "the path itself is inside")
		_, err = src.TLSConfig(context.Background(), spec)
		require.ErrorIs(t, err, credentials.ErrInvalidMaterial, p)
		assert.Contains(t, err.Error(), "leads (through a symbolic link) outside the directories the service allows")
	}
}

// Ensure material that cannot be read or used fails with the right error kind and a sentence
// naming the field and the source, never quoting key material.
func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca, other := credtest.NewCA(t, "ca"), credtest.NewCA(t, "other")
	certPEM, keyPEM, _ := ca.Issue(t, credtest.Leaf{Client: true})
	_, otherKey, _ := other.Issue(t, credtest.Leaf{Client: true})
	writeFile(t, dir+"/ca.pem", ca.PEM)
	writeFile(t, dir+"/cert.pem", certPEM)
	writeFile(t, dir+"/key.pem", keyPEM)
	writeFile(t, dir+"/other-key.pem", otherKey)
	writeFile(t, dir+"/notpem.txt", []byte("hello"))
	writeFile(t, dir+"/big.pem", append(append([]byte{}, ca.PEM...), make([]byte, credentials.MaxMaterialBytes)...))
	require.NoError(t, os.Mkdir(dir+"/adir", 0o700))
	store := &fakeStore{}
	store.set("s", "tls", map[string]string{"ca": string(ca.PEM), "cert": string(certPEM), "key": string(keyPEM)})

	src := &credentials.Source{FileDirs: []string{dir}, Secrets: store, AllowInline: true, Allow: allowed(t, "s/tls")}
	tests := []struct {
		name string
		src  *credentials.Source
		tls  *credentials.TLS
		kind error
		want string
	}{
		{name: "missing file", tls: &credentials.TLS{CA: file(dir + "/nope.pem")}, kind: credentials.ErrUnavailable,
			want: `tls.ca: file "` + dir + `/nope.pem" does not exist`},
		{name: "not PEM", tls: &credentials.TLS{CA: file(dir + "/notpem.txt")}, kind: credentials.ErrInvalidMaterial,
			want: `tls.ca (file "` + dir + `/notpem.txt"): no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)`},
		{name: "key as CA", tls: &credentials.TLS{CA: file(dir + "/key.pem")}, kind: credentials.ErrInvalidMaterial,
			want: "no PEM certificate in it, but a private key (are certificate and key swapped?)"},
		{name: "too large", tls: &credentials.TLS{CA: file(dir + "/big.pem")}, kind: credentials.ErrInvalidMaterial, want: "is larger than 1048576 bytes"},
		{name: "directory", tls: &credentials.TLS{CA: file(dir + "/adir")}, kind: credentials.ErrInvalidMaterial, want: "is not a regular file"},
		{name: "swapped", tls: &credentials.TLS{ClientCert: file(dir + "/key.pem"), ClientKey: file(dir + "/cert.pem")}, kind: credentials.ErrInvalidMaterial,
			want: "tls.client_certificate (file \"" + dir + "/key.pem\"): no PEM certificate in it, but a private key (are certificate and key swapped?)"},
		{name: "key of another certificate", tls: &credentials.TLS{ClientCert: file(dir + "/cert.pem"), ClientKey: file(dir + "/other-key.pem")},
			kind: credentials.ErrInvalidMaterial,
			want: `tls.client_key (file "` + dir + `/other-key.pem") with tls.client_certificate (file "` + dir + `/cert.pem"): the key is not the private key of the certificate (they do not match)`},
		{name: "key not PEM", tls: &credentials.TLS{ClientCert: file(dir + "/cert.pem"), ClientKey: file(dir + "/notpem.txt")}, kind: credentials.ErrInvalidMaterial,
			want: "tls.client_key (file \"" + dir + "/notpem.txt\"): no PEM private key in it"},
		{name: "secret field missing", tls: &credentials.TLS{CA: secretMat("s", "tls", "chain")}, kind: credentials.ErrUnavailable,
			want: `tls.ca: secret store "s" key "tls" field "chain": not found (the secret has the fields ca, cert, key)`},
		{name: "secret not PEM", tls: &credentials.TLS{ClientCert: secretMat("s", "tls", "cert"), ClientKey: secretMat("s", "tls", "ca")}, kind: credentials.ErrInvalidMaterial,
			want: `tls.client_key (secret store "s" key "tls" field "ca"): no PEM private key in it`},
		{name: "inline withdrawn", src: &credentials.Source{}, tls: &credentials.TLS{CA: &credentials.Material{InlinePEM: string(ca.PEM)}}, kind: credentials.ErrUnavailable,
			want: "tls.ca: this service no longer accepts inline key material (--allow-inline-tls)"},
		{name: "files withdrawn", src: &credentials.Source{}, tls: &credentials.TLS{CA: file(dir + "/ca.pem")}, kind: credentials.ErrUnavailable,
			want: "this service accepts no key material files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := src
			if tc.src != nil {
				s = tc.src
			}
			_, err := s.TLSConfig(context.Background(), tc.tls)
			require.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "PRIVATE KEY-----\n")
			assert.NotContains(t, err.Error(), strings.Split(string(keyPEM), "\n")[1])
		})
	}
}

// Ensure material from one secret with several fields (ca, cert, key) is read with one read
// per call, and inline material is used when allowed.
func TestTLSConfigSecretsAndInline(t *testing.T) {
	ca := credtest.NewCA(t, "ca")
	certPEM, keyPEM, cert := ca.Issue(t, credtest.Leaf{Client: true})
	store := &fakeStore{}
	store.set("s", "tls", map[string]string{"ca": string(ca.PEM), "cert": string(certPEM), "key": string(keyPEM)})
	src := &credentials.Source{Secrets: store, AllowInline: true, Allow: allowed(t, "s/tls")}

	cfg, err := src.TLSConfig(context.Background(), &credentials.TLS{CA: secretMat("s", "tls", "ca"), CAOnly: true,
		ClientCert: secretMat("s", "tls", "cert"), ClientKey: secretMat("s", "tls", "key")})
	require.NoError(t, err)
	assert.True(t, cfg.RootCAs.Equal(pool(t, false, ca)))
	assert.Equal(t, cert.Certificate, cfg.Certificates[0].Certificate)
	assert.Equal(t, 1, store.readsOf("s", "tls"))

	cfg, err = src.TLSConfig(context.Background(), &credentials.TLS{CA: &credentials.Material{InlinePEM: string(ca.PEM)}, CAOnly: true,
		ClientCert: &credentials.Material{InlinePEM: string(certPEM)}, ClientKey: &credentials.Material{InlinePEM: string(keyPEM)}})
	require.NoError(t, err)
	assert.True(t, cfg.RootCAs.Equal(pool(t, false, ca)))
	assert.Equal(t, cert.Certificate, cfg.Certificates[0].Certificate)
}
