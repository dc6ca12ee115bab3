package service

import (
	"strings"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Secret headers, TLS and egress proxy: proto ↔ actor contract (issue 15).

func secretRefOf(r *pb.SecretRef) *credentials.SecretRef {
	if r == nil {
		return nil
	}
	return &credentials.SecretRef{Store: r.GetStore(), Key: r.GetKey(), Field: r.GetField()}
}

func secretHeadersOf(m map[string]*pb.SecretRef) map[string]credentials.SecretRef {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]credentials.SecretRef, len(m))
	for k, r := range m {
		if ref := secretRefOf(r); ref != nil {
			out[k] = *ref
		} else {
			out[k] = credentials.SecretRef{} // refused by validation, named
		}
	}
	return out
}

// materialOf keeps an unset source as an empty Material, which validation refuses by name.
func materialOf(m *pb.KeyMaterial) *credentials.Material {
	if m == nil {
		return nil
	}
	return &credentials.Material{Secret: secretRefOf(m.GetSecret()), File: m.GetFile(), InlinePEM: m.GetInlinePem()}
}

func tlsArgs(t *pb.UpstreamTLS) *credentials.TLS {
	if t == nil {
		return nil
	}
	out := &credentials.TLS{CA: materialOf(t.GetCa()), CAOnly: t.GetCaOnly(), ClientCert: materialOf(t.GetClientCertificate()),
		ClientKey: materialOf(t.GetClientKey()), ServerName: t.GetServerName()}
	switch v := t.GetMinVersion(); v {
	case pb.TLSVersion_TLS_VERSION_UNSPECIFIED:
	case pb.TLSVersion_TLS_VERSION_1_2:
		out.MinVersion = "1.2"
	case pb.TLSVersion_TLS_VERSION_1_3:
		out.MinVersion = "1.3"
	default:
		out.MinVersion = v.String() // an undefined number: refused by validation, named
	}
	return out
}

func pbSecretRef(r *credentials.SecretRef) *pb.SecretRef {
	if r == nil {
		return nil
	}
	return &pb.SecretRef{Store: r.Store, Key: r.Key, Field: r.Field}
}

func pbMaterial(m *credentials.Material) *pb.KeyMaterial {
	switch {
	case m == nil:
		return nil
	case m.Secret != nil:
		return &pb.KeyMaterial{Source: &pb.KeyMaterial_Secret{Secret: pbSecretRef(m.Secret)}}
	case m.File != "":
		return &pb.KeyMaterial{Source: &pb.KeyMaterial_File{File: m.File}}
	}
	return &pb.KeyMaterial{} // inline material is never returned
}

func pbTLS(t *credentials.TLS) *pb.UpstreamTLS {
	if t == nil {
		return nil
	}
	out := &pb.UpstreamTLS{Ca: pbMaterial(t.CA), CaOnly: t.CAOnly, ClientCertificate: pbMaterial(t.ClientCert),
		ClientKey: pbMaterial(t.ClientKey), ServerName: t.ServerName}
	switch strings.TrimSpace(t.MinVersion) {
	case "1.2":
		out.MinVersion = pb.TLSVersion_TLS_VERSION_1_2
	case "1.3":
		out.MinVersion = pb.TLSVersion_TLS_VERSION_1_3
	}
	return out
}
