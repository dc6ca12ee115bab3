package wsmclient_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/proto"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// The helpers build exactly the messages the API documents.
func TestConnectOptionHelpers(t *testing.T) {
	secret := func(store, key, field string) *pb.KeyMaterial {
		return &pb.KeyMaterial{Source: &pb.KeyMaterial_Secret{Secret: &pb.SecretRef{Store: store, Key: key, Field: field}}}
	}
	tests := []struct {
		name      string
		got, want proto.Message
	}{
		{"Secret", wsmclient.Secret("secretstore", "token"), &pb.SecretRef{Store: "secretstore", Key: "token"}},
		{"SecretField", wsmclient.SecretField("vault", "feed", "bearer"), &pb.SecretRef{Store: "vault", Key: "feed", Field: "bearer"}},
		{"FromSecret", wsmclient.FromSecret(wsmclient.SecretField("s", "k", "cert")), secret("s", "k", "cert")},
		{"FromFile", wsmclient.FromFile("/etc/wsm/tls/ca.pem"), &pb.KeyMaterial{Source: &pb.KeyMaterial_File{File: "/etc/wsm/tls/ca.pem"}}},
		{"InlinePEM", wsmclient.InlinePEM("-----BEGIN CERTIFICATE-----"), &pb.KeyMaterial{Source: &pb.KeyMaterial_InlinePem{InlinePem: "-----BEGIN CERTIFICATE-----"}}},
		{"TLSFromSecret", wsmclient.TLSFromSecret("secretstore", "demo-client-tls"), &pb.UpstreamTLS{
			Ca:                secret("secretstore", "demo-client-tls", "ca"),
			ClientCertificate: secret("secretstore", "demo-client-tls", "cert"),
			ClientKey:         secret("secretstore", "demo-client-tls", "key"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.True(t, proto.Equal(tt.want, tt.got), "want %v, got %v", tt.want, tt.got)
		})
	}
}
