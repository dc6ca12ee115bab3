package main

// The demo of secret headers and upstream TLS (docs/security.md): a wss:// server that requires
// a client certificate, the certificates it and its clients need, generated at every start,
// and a Dapr secret store that holds the client's material and an API token.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// demoTLSAddr is where the wss:// demo server listens.
const demoTLSAddr = "127.0.0.1:9443"

// secretsFileName is the secret store's JSON file in the state folder (.tools/run); the
// secretstore component of components/ (make run-multi) points at the same file.
const secretsFileName = "secrets.json"

// demoPKI is what the demo generates at start: a CA, the server's certificate and a client's.
type demoPKI struct {
	caPEM                    []byte
	server                   tls.Certificate
	clientCert, clientKeyPEM []byte
	ca                       *x509.CertPool
}

func newDemoPKI() (*demoPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{CommonName: "wsmanager demo CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	issue := func(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = randSerial(), now.Add(-time.Hour), now.Add(30*24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
	}
	srvCert, srvKey, err := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, err
	}
	server, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		return nil, err
	}
	cliCert, cliKey, err := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "wsmanager demo client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &demoPKI{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), server: server,
		clientCert: cliCert, clientKeyPEM: cliKey, ca: pool}, nil
}

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// writeSecrets writes the secret store's file (readable by this user only): demo-client-tls
// with the client's ca, cert and key, and demo-api-token.
func writeSecrets(dir string, pki *demoPKI) (string, error) {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(map[string]any{
		"demo-client-tls": map[string]string{"ca": string(pki.caPEM), "cert": string(pki.clientCert), "key": string(pki.clientKeyPEM)},
		"demo-api-token":  hex.EncodeToString(tok),
	}, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, secretsFileName)
	return path, os.WriteFile(path, b, 0o600)
}

// secretStoreComponent is the secretstore component over the secrets file.
func secretStoreComponent(secretsFile string) string {
	return fmt.Sprintf(`# Written by devstack at every start: the demo's secrets (make run).
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: secretstore
spec:
  type: secretstores.local.file
  version: v1
  metadata:
    - name: secretsFile
      value: %q
    - name: multiValued
      value: "true"
`, secretsFile)
}

// withSecretStore makes a resources folder in dir holding the YAML files of resources and the
// secretstore component; the repository's folder stays as it is.
func withSecretStore(dir, resources, secretsFile string) (string, error) {
	out := filepath.Join(dir, "resources")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(resources)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(resources, e.Name()))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			return "", err
		}
	}
	return out, os.WriteFile(filepath.Join(out, "zz-secretstore.yaml"), []byte(secretStoreComponent(secretsFile)), 0o644)
}

// startDemoTLS serves the demo behaviours (sessiontest: /echo, /headers, …) over TLS on
// demoTLSAddr, requiring a client certificate signed by the demo CA. The returned stop closes
// it and its sockets.
func startDemoTLS(pki *demoPKI) (stop func(), err error) {
	l, err := net.Listen("tcp", demoTLSAddr)
	if err != nil {
		return nil, fmt.Errorf("demo wss:// server: %w", err)
	}
	h := sessiontest.NewHandler(time.Second)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pki.ca, MinVersion: tls.VersionTLS12,
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "devstack: demo wss:// server:", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		h.Close()
		<-done
	}, nil
}
