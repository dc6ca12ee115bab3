//go:build integration

package main_test

// End-to-end tests of upstream TLS (issue 15 item 2) on the real Dapr runtime: a wss:// server
// that requires client certificates from a test CA, and key material from the secret store,
// from files under --tls-files-dir and inline (--allow-inline-tls).

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/websocketmanager/websocketmanager/actors/credentials/credtest"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// mtlsServer is a wss:// server (the sessiontest behaviours) with a certificate for 127.0.0.1
// and, for the SNI name otherName, one for that name; it requires a client certificate signed
// by clientCA.
func mtlsServer(t *testing.T, serverCA, clientCA *credtest.CA, otherName string) *httptest.Server {
	t.Helper()
	_, _, ipCert := serverCA.Issue(t, credtest.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	_, _, nameCert := serverCA.Issue(t, credtest.Leaf{DNSNames: []string{otherName}})
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.Cert)
	h := sessiontest.NewHandler(time.Hour)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{ipCert},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == otherName {
				return &nameCert, nil
			}
			return nil, nil // the IP certificate
		},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	}
	srv.StartTLS()
	t.Cleanup(func() { h.Close(); srv.Close() })
	return srv
}

func secretMaterial(key, field string) *pb.KeyMaterial {
	return &pb.KeyMaterial{Source: &pb.KeyMaterial_Secret{Secret: &pb.SecretRef{Store: "secretstore", Key: key, Field: field}}}
}

func fileMaterial(path string) *pb.KeyMaterial {
	return &pb.KeyMaterial{Source: &pb.KeyMaterial_File{File: path}}
}

func inlineMaterial(pem []byte) *pb.KeyMaterial {
	return &pb.KeyMaterial{Source: &pb.KeyMaterial_InlinePem{InlinePem: string(pem)}}
}

// Ensure on the real runtime: client certificate, key and CA from the secret store, from
// allowed files and inline (when allowed) connect and echo; a file outside the allowed
// directories, inline material on a service that does not allow it, and tls on a ws:// URL
// are INVALID_ARGUMENT; a client certificate from another CA, none at all, and a server whose
// CA is not given are UNAVAILABLE with a reason a person understands; server_name selects a
// certificate for another name; List never shows inline PEM.
func TestUpstreamTLSEndToEnd(t *testing.T) {
	serverCA := credtest.NewCA(t, "upstream server CA")
	clientCA := credtest.NewCA(t, "upstream client CA")
	rogueCA := credtest.NewCA(t, "rogue CA")
	cliCert, cliKey, _ := clientCA.Issue(t, credtest.Leaf{Client: true, DNSNames: []string{"wsmanager client"}})
	rogueCert, rogueKey, _ := rogueCA.Issue(t, credtest.Leaf{Client: true, DNSNames: []string{"rogue client"}})
	const otherName = "upstream.test"
	srv := mtlsServer(t, serverCA, clientCA, otherName)
	wss := "wss" + strings.TrimPrefix(srv.URL, "https") + "/echo"

	// Files: some under the allowed directory, one outside it.
	allowed := filepath.Join(t.TempDir(), "tls")
	outside := t.TempDir()
	require.NoError(t, os.Mkdir(allowed, 0o700))
	for name, b := range map[string][]byte{"ca.pem": serverCA.PEM, "client.pem": cliCert, "client.key": cliKey} {
		require.NoError(t, os.WriteFile(filepath.Join(allowed, name), b, 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(outside, "ca.pem"), serverCA.PEM, 0o600))

	// Two stacks (actors of one type share a placement whatever their app id): "strict" allows
	// files only, "inline" also inline PEM.
	secrets := map[string]any{
		"client-tls": map[string]string{"ca": string(serverCA.PEM), "cert": string(cliCert), "key": string(cliKey)},
		"rogue-tls":  map[string]string{"cert": string(rogueCert), "key": string(rogueKey)},
		// In the store, but not on --secret-allow: no caller may name it.
		"operator-only": map[string]string{"ca": string(serverCA.PEM)},
	}
	const allowSecrets = "secretstore/client-tls,secretstore/rogue-*"
	strict := newSecretStack(t, secrets, "--tls-files-dir", allowed, "--secret-allow", allowSecrets).in
	inline := newSecretStack(t, secrets, "--tls-files-dir", allowed, "--allow-inline-tls", "--secret-allow", allowSecrets).in

	fromSecrets := &pb.UpstreamTLS{Ca: secretMaterial("client-tls", "ca"),
		ClientCertificate: secretMaterial("client-tls", "cert"), ClientKey: secretMaterial("client-tls", "key")}
	fromFiles := &pb.UpstreamTLS{Ca: fileMaterial(filepath.Join(allowed, "ca.pem")),
		ClientCertificate: fileMaterial(filepath.Join(allowed, "client.pem")), ClientKey: fileMaterial(filepath.Join(allowed, "client.key"))}
	inlined := &pb.UpstreamTLS{Ca: inlineMaterial(serverCA.PEM), ClientCertificate: inlineMaterial(cliCert), ClientKey: inlineMaterial(cliKey)}
	withName := &pb.UpstreamTLS{Ca: secretMaterial("client-tls", "ca"), ServerName: otherName,
		ClientCertificate: secretMaterial("client-tls", "cert"), ClientKey: secretMaterial("client-tls", "key")}

	cases := []struct {
		name string
		in   *instance
		url  string
		tls  *pb.UpstreamTLS
		code codes.Code // OK: connects and echoes
		want []string   // in the error message
	}{
		{name: "secret store", in: strict, url: wss, tls: fromSecrets},
		{name: "files under --tls-files-dir", in: strict, url: wss, tls: fromFiles},
		{name: "file outside --tls-files-dir", in: strict, url: wss,
			tls:  &pb.UpstreamTLS{Ca: fileMaterial(filepath.Join(outside, "ca.pem")), ClientCertificate: fromFiles.ClientCertificate, ClientKey: fromFiles.ClientKey},
			code: codes.InvalidArgument, want: []string{"tls.ca", "not under the directories"}},
		{name: "secret outside --secret-allow", in: strict, url: wss,
			tls:  &pb.UpstreamTLS{Ca: secretMaterial("operator-only", "ca"), ClientCertificate: fromSecrets.ClientCertificate, ClientKey: fromSecrets.ClientKey},
			code: codes.InvalidArgument, want: []string{`tls.ca: secret store "secretstore" key "operator-only" is not one this service may read (--secret-allow)`}},
		{name: "inline without --allow-inline-tls", in: strict, url: wss, tls: inlined,
			code: codes.InvalidArgument, want: []string{"inline"}},
		{name: "inline with --allow-inline-tls", in: inline, url: wss, tls: inlined},
		{name: "client certificate of another CA", in: strict, url: wss,
			tls:  &pb.UpstreamTLS{Ca: fromSecrets.Ca, ClientCertificate: secretMaterial("rogue-tls", "cert"), ClientKey: secretMaterial("rogue-tls", "key")},
			code: codes.Unavailable, want: []string{"client certificate"}},
		{name: "no client certificate", in: strict, url: wss, tls: &pb.UpstreamTLS{Ca: fromSecrets.Ca},
			code: codes.Unavailable, want: []string{"client certificate"}},
		{name: "server CA not given", in: strict, url: wss,
			tls:  &pb.UpstreamTLS{ClientCertificate: fromSecrets.ClientCertificate, ClientKey: fromSecrets.ClientKey},
			code: codes.Unavailable, want: []string{"authority", "does not trust"}},
		{name: "server_name override", in: strict, url: wss, tls: withName},
		{name: "tls with ws://", in: strict, url: "ws" + strings.TrimPrefix(wss, "wss"), tls: fromSecrets,
			code: codes.InvalidArgument, want: []string{"wss://"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.in.client.Connect(callCtx(t), &pb.ConnectRequest{Url: tc.url, Tls: tc.tls})
			if tc.code != codes.OK {
				require.Error(t, err)
				assert.Equal(t, tc.code, code(err), "%v", err)
				for _, w := range tc.want {
					assert.Contains(t, err.Error(), w)
				}
				assert.NotContains(t, err.Error(), "PRIVATE KEY")
				t.Logf("%s: %v", tc.name, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus())
			id := resp.GetConnectionId()
			t.Cleanup(func() { _, _ = tc.in.client.Disconnect(callCtx(t), &pb.DisconnectRequest{Id: id}) })
			r, err := tc.in.client.Send(callCtx(t), &pb.SendRequest{Id: id, Message: "over mTLS", TimeoutMs: 5000})
			require.NoError(t, err)
			assert.Equal(t, "over mTLS", r.GetResponse())

			list, err := tc.in.client.List(callCtx(t), &pb.ListRequest{})
			require.NoError(t, err)
			var c *pb.WebSocketConnection
			for _, x := range list.GetConnections() {
				if x.GetId() == id {
					c = x
				}
			}
			require.NotNil(t, c)
			require.NotNil(t, c.GetTls(), "List shows the TLS settings")
			assert.Equal(t, tc.tls.GetServerName(), c.GetTls().GetServerName())
			b, err := protojson.Marshal(list)
			require.NoError(t, err)
			for _, pem := range [][]byte{cliKey, cliCert, serverCA.PEM} {
				assert.NotContains(t, string(b), strings.TrimSpace(string(pem)), "List must never return PEM")
			}
			assert.NotContains(t, string(b), "BEGIN")
		})
	}
	// Key material is logged nowhere.
	for _, in := range []*instance{strict, inline} {
		for where, log := range map[string]string{"service log": in.svc.Log(), "daprd log": in.daprd.Log()} {
			assert.NotContains(t, log, "PRIVATE KEY", "%s of %s", where, in.name)
			assert.NotContains(t, log, strings.Split(strings.TrimSpace(string(cliKey)), "\n")[1], "%s of %s", where, in.name)
		}
	}
}
