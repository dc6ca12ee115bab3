package wsmclient

import pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"

// The ConnectRequest fields for secrets, upstream TLS and compression, under shorter names.
type (
	// SecretRef names a value in a Dapr secret store (ConnectRequest.SecretHeaders, key material).
	SecretRef = pb.SecretRef
	// KeyMaterial is PEM data by reference: [FromSecret], [FromFile] or [InlinePEM].
	KeyMaterial = pb.KeyMaterial
	// UpstreamTLS is ConnectRequest.Tls, the TLS settings of a wss:// connection.
	UpstreamTLS = pb.UpstreamTLS
	// FrameDecoding is ConnectRequest.DecodeBinary (pb.FrameDecoding_FRAME_DECODING_GZIP, …).
	FrameDecoding = pb.FrameDecoding
	// TLSVersion is UpstreamTLS.MinVersion (pb.TLSVersion_TLS_VERSION_1_3, …).
	TLSVersion = pb.TLSVersion
)

// Secret names the secret key in the Dapr secret store component store; the service reads
// it at every dial (the secret's value named key, or its only value).
//
//	req.SecretHeaders = map[string]*wsmclient.SecretRef{"X-Api-Token": wsmclient.Secret("secretstore", "feed-token")}
func Secret(store, key string) *SecretRef { return &SecretRef{Store: store, Key: key} }

// SecretField names the value field of the secret key (stores return a map of values).
func SecretField(store, key, field string) *SecretRef {
	return &SecretRef{Store: store, Key: key, Field: field}
}

// FromSecret is key material read from a secret store at every dial.
func FromSecret(ref *SecretRef) *KeyMaterial {
	return &KeyMaterial{Source: &pb.KeyMaterial_Secret{Secret: ref}}
}

// FromFile is key material in a file on the service's machine, under a directory the operator
// allowed with --tls-files-dir (an absolute path), read at every dial.
func FromFile(path string) *KeyMaterial {
	return &KeyMaterial{Source: &pb.KeyMaterial_File{File: path}}
}

// InlinePEM is key material given in the request itself. The service refuses it unless the
// operator set --allow-inline-tls (it is then kept in the actor state store): prefer
// [FromSecret] or [FromFile].
func InlinePEM(pem string) *KeyMaterial {
	return &KeyMaterial{Source: &pb.KeyMaterial_InlinePem{InlinePem: pem}}
}

// TLSFromSecret is mutual TLS with everything in one secret of the secret store store: the
// fields "ca" (trusted besides the system roots), "cert" (the client certificate chain) and
// "key" (its private key), all PEM — the layout of `make run`'s secret demo-client-tls. Adjust
// the result as needed (set Ca to nil for a server with a public certificate, CaOnly, …).
func TLSFromSecret(store, key string) *UpstreamTLS {
	return &UpstreamTLS{
		Ca:                FromSecret(SecretField(store, key, "ca")),
		ClientCertificate: FromSecret(SecretField(store, key, "cert")),
		ClientKey:         FromSecret(SecretField(store, key, "key")),
	}
}
