package main

import (
	"encoding/pem"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// upstreamFlags are the connect flags for secret headers, upstream TLS, the egress proxy and
// compression. They only build the request: the service validates it again and has the last
// word (allowed directories, known proxies, existing secrets).
type upstreamFlags struct {
	secretHeaders                secretHeaderFlag
	tlsCA, tlsCert, tlsKey       string
	tlsCAOnly                    bool
	tlsServerName, tlsMinVersion string
	egressProxy                  string
	permessageDeflate            bool
	decodeBinary                 string
	maxDecodedBytes              uint64
	// readFile reads pem: files (os.ReadFile; replaced in tests).
	readFile func(string) ([]byte, error)
}

const materialForms = "secret:store/key[/field], file:/abs/path (on the service's machine) or pem:/local/path (read here and sent inline, which the service accepts only with --allow-inline-tls)"

func (u *upstreamFlags) register(fs *flag.FlagSet) {
	u.secretHeaders = secretHeaderFlag{}
	fs.Var(u.secretHeaders, "secret-header", "handshake header Name=store/key[/field] whose value the service reads from a Dapr secret store at every dial (repeatable)")
	fs.StringVar(&u.tlsCA, "tls-ca", "", "wss://: CA bundle to trust besides the system roots: "+materialForms)
	fs.BoolVar(&u.tlsCAOnly, "tls-ca-only", false, "wss://: trust only --tls-ca, not the system roots")
	fs.StringVar(&u.tlsCert, "tls-cert", "", "wss://: client certificate chain (mutual TLS), with --tls-key: "+materialForms)
	fs.StringVar(&u.tlsKey, "tls-key", "", "wss://: private key of --tls-cert: "+materialForms)
	fs.StringVar(&u.tlsServerName, "tls-server-name", "", "wss://: name to verify the server's certificate against and send as SNI (default: the URL's host)")
	fs.StringVar(&u.tlsMinVersion, "tls-min-version", "", "wss://: lowest TLS version accepted: 1.2 (default) or 1.3")
	fs.StringVar(&u.egressProxy, "egress-proxy", "", "dial through this one of the service's --egress-proxy proxies, by name (default: its unnamed proxy, if any)")
	fs.BoolVar(&u.permessageDeflate, "permessage-deflate", false, "offer permessage-deflate compression to the server (it may decline)")
	fs.StringVar(&u.decodeBinary, "decode-binary", "", "decode inbound binary frames: none, gzip, zlib, deflate or auto")
	fs.Uint64Var(&u.maxDecodedBytes, "max-decoded-bytes", 0, "largest decoded frame in bytes; larger closes the socket with 1009 (0: the service's --max-inbound-frame-bytes)")
}

// apply puts the flags into req; req.Url and req.Headers are already set.
func (u *upstreamFlags) apply(req *pb.ConnectRequest) error {
	if len(u.secretHeaders) > 0 {
		for name := range req.GetHeaders() {
			for sname := range u.secretHeaders {
				if strings.EqualFold(name, sname) {
					return usageError(fmt.Sprintf("header %q is given both by --header and --secret-header: keep one", sname))
				}
			}
		}
		req.SecretHeaders = u.secretHeaders
	}
	t, err := u.tls()
	if err != nil {
		return err
	}
	if t != nil {
		if !strings.HasPrefix(strings.ToLower(req.GetUrl()), "wss://") {
			return usageError(fmt.Sprintf("the --tls-… flags need a wss:// URL, got %q", req.GetUrl()))
		}
		req.Tls = t
	}
	req.EgressProxy = u.egressProxy
	req.PermessageDeflate = u.permessageDeflate
	if u.decodeBinary != "" {
		d, ok := pb.FrameDecoding_value["FRAME_DECODING_"+strings.ToUpper(u.decodeBinary)]
		if !ok {
			return usageError(fmt.Sprintf("--decode-binary must be none, gzip, zlib, deflate or auto, got %q", u.decodeBinary))
		}
		req.DecodeBinary = pb.FrameDecoding(d)
	}
	if u.maxDecodedBytes > math.MaxUint32 {
		return usageError(fmt.Sprintf("--max-decoded-bytes %d is too large (the service accepts at most 64 MiB, 67108864)", u.maxDecodedBytes))
	}
	req.MaxDecodedBytes = uint32(u.maxDecodedBytes)
	return nil
}

// tls returns the TLS settings the flags ask for, nil when no --tls-… flag is given.
func (u *upstreamFlags) tls() (*pb.UpstreamTLS, error) {
	if u.tlsCA == "" && !u.tlsCAOnly && u.tlsCert == "" && u.tlsKey == "" && u.tlsServerName == "" && u.tlsMinVersion == "" {
		return nil, nil
	}
	if u.tlsCAOnly && u.tlsCA == "" {
		return nil, usageError("--tls-ca-only needs --tls-ca (the CA to trust instead of the system roots)")
	}
	if (u.tlsCert == "") != (u.tlsKey == "") {
		return nil, usageError("--tls-cert and --tls-key go together (a client certificate and its private key)")
	}
	t := &pb.UpstreamTLS{CaOnly: u.tlsCAOnly, ServerName: u.tlsServerName}
	for _, m := range []struct {
		flag, value string
		dst         **pb.KeyMaterial
	}{{"--tls-ca", u.tlsCA, &t.Ca}, {"--tls-cert", u.tlsCert, &t.ClientCertificate}, {"--tls-key", u.tlsKey, &t.ClientKey}} {
		if m.value == "" {
			continue
		}
		km, err := u.material(m.flag, m.value)
		if err != nil {
			return nil, err
		}
		*m.dst = km
	}
	switch u.tlsMinVersion {
	case "":
	case "1.2":
		t.MinVersion = pb.TLSVersion_TLS_VERSION_1_2
	case "1.3":
		t.MinVersion = pb.TLSVersion_TLS_VERSION_1_3
	default:
		return nil, usageError(fmt.Sprintf("--tls-min-version must be 1.2 or 1.3, got %q", u.tlsMinVersion))
	}
	return t, nil
}

// material reads one key material flag: secret:store/key[/field], file:/abs/path or
// pem:/local/path.
func (u *upstreamFlags) material(flagName, v string) (*pb.KeyMaterial, error) {
	kind, rest, _ := strings.Cut(v, ":")
	switch kind {
	case "secret":
		ref, err := parseSecretRef(rest)
		if err != nil {
			return nil, usageError(fmt.Sprintf("%s %q: %v", flagName, v, err))
		}
		return &pb.KeyMaterial{Source: &pb.KeyMaterial_Secret{Secret: ref}}, nil
	case "file":
		// The service checks the path against its --tls-files-dir; a relative path can only be
		// a mistake, since it would be read relative to the service's directory.
		if !filepath.IsAbs(rest) {
			return nil, usageError(fmt.Sprintf("%s %q: the path must be absolute (a file on the service's machine, under its --tls-files-dir)", flagName, v))
		}
		return &pb.KeyMaterial{Source: &pb.KeyMaterial_File{File: rest}}, nil
	case "pem":
		if rest == "" {
			return nil, usageError(fmt.Sprintf("%s %q: name a local PEM file after pem:", flagName, v))
		}
		b, err := u.readFile(rest)
		if err != nil {
			return nil, usageError(fmt.Sprintf("%s: %v", flagName, err))
		}
		if blk, _ := pem.Decode(b); blk == nil {
			return nil, usageError(fmt.Sprintf("%s: %s holds no PEM block (-----BEGIN …-----)", flagName, rest))
		}
		return &pb.KeyMaterial{Source: &pb.KeyMaterial_InlinePem{InlinePem: string(b)}}, nil
	}
	return nil, usageError(fmt.Sprintf("%s %q: want %s", flagName, v, materialForms))
}

// parseSecretRef reads store/key[/field].
func parseSecretRef(s string) (*pb.SecretRef, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.ContainsFunc(parts, func(p string) bool { return strings.TrimSpace(p) == "" }) {
		return nil, fmt.Errorf("want store/key or store/key/field (the secret store component's name, the secret's name, optionally the value within it), got %q", s)
	}
	ref := &pb.SecretRef{Store: parts[0], Key: parts[1]}
	if len(parts) == 3 {
		ref.Field = parts[2]
	}
	return ref, nil
}

// secretHeaderFlag collects repeated --secret-header Name=store/key[/field].
type secretHeaderFlag map[string]*pb.SecretRef

func (m secretHeaderFlag) String() string { return "" }
func (m secretHeaderFlag) Set(s string) error {
	name, ref, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want Name=store/key[/field], got %q", s)
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return fmt.Errorf("header %q is given twice", name)
		}
	}
	r, err := parseSecretRef(ref)
	if err != nil {
		return fmt.Errorf("header %q: %w", name, err)
	}
	m[name] = r
	return nil
}
