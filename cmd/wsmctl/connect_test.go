package main

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

const testPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// fakeFiles stands for the local files `pem:` reads.
func fakeFiles(name string) ([]byte, error) {
	switch name {
	case "/home/me/ca.pem":
		return []byte(testPEM), nil
	case "/home/me/notes.txt":
		return []byte("not a certificate"), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func secretMaterial(store, key, field string) *pb.KeyMaterial {
	return &pb.KeyMaterial{Source: &pb.KeyMaterial_Secret{Secret: &pb.SecretRef{Store: store, Key: key, Field: field}}}
}

// What `wsmctl connect` sends for each flag of issue 15 (secrets, TLS, proxy, compression,
// send rate).
func TestConnectFlagsBuildTheRequest(t *testing.T) {
	const wss = "wss://127.0.0.1:9443/echo"
	tests := []struct {
		name string
		args []string
		want *pb.ConnectRequest
	}{
		{"url only", []string{"ws://h/x"}, &pb.ConnectRequest{Url: "ws://h/x", Headers: map[string]string{}, Tags: map[string]string{}}},
		{
			"secret headers, with and without a field",
			[]string{"ws://h/x", "--secret-header", "X-Api-Token=secretstore/demo-api-token", "--secret-header", "Authorization=vault/feed/bearer", "--header", "Origin=https://me"},
			&pb.ConnectRequest{Url: "ws://h/x", Headers: map[string]string{"Origin": "https://me"}, Tags: map[string]string{},
				SecretHeaders: map[string]*pb.SecretRef{
					"X-Api-Token":   {Store: "secretstore", Key: "demo-api-token"},
					"Authorization": {Store: "vault", Key: "feed", Field: "bearer"},
				}},
		},
		{
			"client certificate from the secret store",
			[]string{wss, "--tls-ca", "secret:secretstore/demo-client-tls/ca", "--tls-cert", "secret:secretstore/demo-client-tls/cert",
				"--tls-key", "secret:secretstore/demo-client-tls/key", "--tls-ca-only", "--tls-server-name", "feed.internal", "--tls-min-version", "1.3"},
			&pb.ConnectRequest{Url: wss, Headers: map[string]string{}, Tags: map[string]string{}, Tls: &pb.UpstreamTLS{
				Ca: secretMaterial("secretstore", "demo-client-tls", "ca"), CaOnly: true,
				ClientCertificate: secretMaterial("secretstore", "demo-client-tls", "cert"),
				ClientKey:         secretMaterial("secretstore", "demo-client-tls", "key"),
				ServerName:        "feed.internal", MinVersion: pb.TLSVersion_TLS_VERSION_1_3,
			}},
		},
		{
			"file on the service's machine and a local PEM sent inline",
			[]string{wss, "--tls-ca", "pem:/home/me/ca.pem", "--tls-cert", "file:/etc/wsm/tls/client.pem", "--tls-key", "file:/etc/wsm/tls/client.key", "--tls-min-version", "1.2"},
			&pb.ConnectRequest{Url: wss, Headers: map[string]string{}, Tags: map[string]string{}, Tls: &pb.UpstreamTLS{
				Ca:                &pb.KeyMaterial{Source: &pb.KeyMaterial_InlinePem{InlinePem: testPEM}},
				ClientCertificate: &pb.KeyMaterial{Source: &pb.KeyMaterial_File{File: "/etc/wsm/tls/client.pem"}},
				ClientKey:         &pb.KeyMaterial{Source: &pb.KeyMaterial_File{File: "/etc/wsm/tls/client.key"}},
				MinVersion:        pb.TLSVersion_TLS_VERSION_1_2,
			}},
		},
		{
			"server name alone, upper-case scheme",
			[]string{"WSS://h/x", "--tls-server-name", "other"},
			&pb.ConnectRequest{Url: "WSS://h/x", Headers: map[string]string{}, Tags: map[string]string{}, Tls: &pb.UpstreamTLS{ServerName: "other"}},
		},
		{
			"proxy, compression and send rate",
			[]string{"ws://h/x", "--egress-proxy", "corp", "--permessage-deflate", "--decode-binary", "gzip", "--max-decoded-bytes", "16777216", "--send-rate", "0.5", "--send-burst", "5"},
			&pb.ConnectRequest{Url: "ws://h/x", Headers: map[string]string{}, Tags: map[string]string{}, EgressProxy: "corp", PermessageDeflate: true,
				DecodeBinary: pb.FrameDecoding_FRAME_DECODING_GZIP, MaxDecodedBytes: 16 << 20, SendRate: &pb.SendRate{PerSecond: 0.5, Burst: 5}},
		},
		{
			"the README's example",
			[]string{"wss://127.0.0.1:9443/echo", "--id", "secure-feed", "--auto-reconnect",
				"--tls-ca", "secret:secretstore/demo-client-tls/ca", "--tls-cert", "secret:secretstore/demo-client-tls/cert",
				"--tls-key", "secret:secretstore/demo-client-tls/key", "--secret-header", "X-Api-Token=secretstore/demo-api-token",
				"--permessage-deflate", "--decode-binary", "auto", "--send-rate", "20", "--send-burst", "5"},
			&pb.ConnectRequest{Url: wss, ConnectionId: "secure-feed", AutoReconnect: true, Headers: map[string]string{}, Tags: map[string]string{},
				Tls: &pb.UpstreamTLS{
					Ca:                secretMaterial("secretstore", "demo-client-tls", "ca"),
					ClientCertificate: secretMaterial("secretstore", "demo-client-tls", "cert"),
					ClientKey:         secretMaterial("secretstore", "demo-client-tls", "key"),
				},
				SecretHeaders:     map[string]*pb.SecretRef{"X-Api-Token": {Store: "secretstore", Key: "demo-api-token"}},
				PermessageDeflate: true, DecodeBinary: pb.FrameDecoding_FRAME_DECODING_AUTO, SendRate: &pb.SendRate{PerSecond: 20, Burst: 5}},
		},
		{"decode auto, upper case", []string{"ws://h/x", "--decode-binary", "AUTO"}, &pb.ConnectRequest{Url: "ws://h/x", Headers: map[string]string{}, Tags: map[string]string{}, DecodeBinary: pb.FrameDecoding_FRAME_DECODING_AUTO}},
		{"decode none", []string{"ws://h/x", "--decode-binary", "none"}, &pb.ConnectRequest{Url: "ws://h/x", Headers: map[string]string{}, Tags: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			req, err := connectRequest(newConnectFlags(&stderr), tt.args, fakeFiles)
			require.NoError(t, err)
			assert.True(t, proto.Equal(tt.want, req), "want\n%s\ngot\n%s", prototext.Format(tt.want), prototext.Format(req))
		})
	}
}

// Every malformed value is refused before anything is sent, with a message naming the flag
// and what it wants.
func TestConnectFlagsRefuseMalformedValues(t *testing.T) {
	const wss = "wss://h/x"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"secret header without =", []string{"ws://h/x", "--secret-header", "X-Token"}, "want Name=store/key[/field]"},
		{"secret header without a key", []string{"ws://h/x", "--secret-header", "X-Token=secretstore"}, `header "X-Token": want store/key or store/key/field`},
		{"secret header with an empty part", []string{"ws://h/x", "--secret-header", "X-Token=secretstore//f"}, "want store/key or store/key/field"},
		{"secret header with too many parts", []string{"ws://h/x", "--secret-header", "X-Token=a/b/c/d"}, "want store/key or store/key/field"},
		{"secret header twice", []string{"ws://h/x", "--secret-header", "X-Token=a/b", "--secret-header", "x-token=a/c"}, `header "x-token" is given twice`},
		{"header both plain and secret", []string{"ws://h/x", "--header", "authorization=Bearer x", "--secret-header", "Authorization=a/b"}, "both by --header and --secret-header"},
		{"tls with ws://", []string{"ws://h/x", "--tls-ca", "secret:a/b"}, "need a wss:// URL"},
		{"unknown material kind", []string{wss, "--tls-ca", "/etc/ca.pem"}, `--tls-ca "/etc/ca.pem": want secret:store/key[/field], file:/abs/path`},
		{"bad secret material", []string{wss, "--tls-ca", "secret:onlystore"}, `--tls-ca "secret:onlystore": want store/key`},
		{"relative file", []string{wss, "--tls-ca", "file:ca.pem"}, "the path must be absolute"},
		{"pem without a path", []string{wss, "--tls-ca", "pem:"}, "name a local PEM file after pem:"},
		{"pem file missing", []string{wss, "--tls-ca", "pem:/home/me/nope.pem"}, "--tls-ca: open /home/me/nope.pem: file does not exist"},
		{"pem file not PEM", []string{wss, "--tls-ca", "pem:/home/me/notes.txt"}, "/home/me/notes.txt holds no PEM block"},
		{"cert without key", []string{wss, "--tls-cert", "secret:a/b/cert"}, "--tls-cert and --tls-key go together"},
		{"key without cert", []string{wss, "--tls-key", "secret:a/b/key"}, "--tls-cert and --tls-key go together"},
		{"ca-only without ca", []string{wss, "--tls-ca-only"}, "--tls-ca-only needs --tls-ca"},
		{"min version", []string{wss, "--tls-min-version", "1.1"}, `--tls-min-version must be 1.2 or 1.3, got "1.1"`},
		{"decode", []string{"ws://h/x", "--decode-binary", "brotli"}, `--decode-binary must be none, gzip, zlib, deflate or auto, got "brotli"`},
		{"decode enum name", []string{"ws://h/x", "--decode-binary", "FRAME_DECODING_GZIP"}, "--decode-binary must be none, gzip"},
		{"max decoded not a number", []string{"ws://h/x", "--max-decoded-bytes", "16MiB"}, "-max-decoded-bytes"},
		{"max decoded too large", []string{"ws://h/x", "--max-decoded-bytes", "5000000000"}, "--max-decoded-bytes 5000000000 is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := connectRequest(newConnectFlags(&stderr), tt.args, fakeFiles)
			require.Error(t, err)
			var ue usageError
			assert.True(t, errors.As(err, &ue), "a usage error (exit code 2): %v", err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// A local PEM's content is what is sent, and is never part of an error message.
func TestConnectFlagsPEMNotInErrors(t *testing.T) {
	secretKey := "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"
	read := func(string) ([]byte, error) { return []byte(secretKey), nil }
	var stderr bytes.Buffer
	_, err := connectRequest(newConnectFlags(&stderr), []string{"wss://h/x", "--tls-key", "pem:/k.pem"}, read)
	require.Error(t, err) // a key without a certificate
	assert.NotContains(t, err.Error(), "c2VjcmV0")
	assert.NotContains(t, stderr.String(), "c2VjcmV0")
}

// `wsmctl connect -h` lists the new flags.
func TestConnectHelpListsTheFlags(t *testing.T) {
	var stderr bytes.Buffer
	_, err := connectRequest(newConnectFlags(&stderr), []string{"-h"}, fakeFiles)
	require.Error(t, err)
	for _, f := range []string{"-secret-header", "-tls-ca", "-tls-ca-only", "-tls-cert", "-tls-key", "-tls-server-name", "-tls-min-version",
		"-egress-proxy", "-permessage-deflate", "-decode-binary", "-max-decoded-bytes", "-send-rate", "-send-burst"} {
		assert.Regexp(t, `(?m)^  `+f+`( |$)`, stderr.String())
	}
}

func newConnectFlags(stderr *bytes.Buffer) *flag.FlagSet {
	g := &globals{stderr: stderr}
	return g.flags("connect")
}
