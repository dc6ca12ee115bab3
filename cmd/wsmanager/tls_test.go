//go:build integration

package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// testPKI is a CA with a server certificate for 127.0.0.1 (also usable as a client
// certificate, as the instances use it toward each other) and a client certificate.
type testPKI struct {
	dir                   string
	caFile                string
	serverCert, serverKey string
	pool                  *x509.CertPool
	client                tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wsm test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage []x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	der, key := issue("wsmanager", 2, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
	p.serverCert = p.write(t, "server.pem", "CERTIFICATE", der)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	p.serverKey = p.write(t, "server-key.pem", "EC PRIVATE KEY", kb)
	der, key = issue("a client", 3, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	p.client = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

func (p *testPKI) clientTLS(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{p.client}
	}
	return c
}

// Ensure TLS and client certificates (mTLS) on both API ports: calls need a certificate the
// client CA signed (health checks excepted), plaintext is refused, and instances forward Sends
// to each other over mutually authenticated TLS.
func TestTLSAndClientCertificates(t *testing.T) {
	pki := newPKI(t)
	ws := sessiontest.NewServer(t, time.Hour)
	c := newCluster(t)
	c.extraArgs = []string{"--tls-cert-file", pki.serverCert, "--tls-key-file", pki.serverKey, "--tls-client-ca-file", pki.caFile}
	a, b := c.start("a"), c.start("b")

	dial := func(in *instance, cfg *tls.Config) *grpc.ClientConn {
		creds := insecure.NewCredentials()
		if cfg != nil {
			creds = credentials.NewTLS(cfg)
		}
		conn, err := grpc.NewClient(in.grpcAddr, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearerCreds(clusterToken)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	viaA := pb.NewWebSocketManagerClient(dial(a, pki.clientTLS(true)))
	for i := range 16 { // placement puts all 16 on one instance once in 32,768 runs
		_, err := viaA.Connect(ctx, &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: fmt.Sprint("tls-", i)})
		require.NoError(t, err)
	}
	list, err := viaA.List(ctx, &pb.ListRequest{})
	require.NoError(t, err)
	var onB string
	for _, conn := range list.GetConnections() {
		if conn.GetInstanceId() == b.id {
			onB = conn.GetId()
		}
	}
	require.NotEmpty(t, onB, "placement put one of 16 connections on b")
	resp, err := viaA.Send(ctx, &pb.SendRequest{Id: onB, Message: "over mTLS", TimeoutMs: 5000})
	require.NoError(t, err, "a Send through a is forwarded to b over mutually authenticated TLS")
	assert.Equal(t, "over mTLS", resp.GetResponse())

	noCert := dial(a, pki.clientTLS(false))
	_, err = pb.NewWebSocketManagerClient(noCert).List(ctx, &pb.ListRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "client certificate")
	h, err := healthpb.NewHealthClient(noCert).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health checks need no client certificate")
	// Readiness follows the sidecar, which a loaded machine can make answer late for a moment:
	// what matters here is that the check is answered without a certificate.
	require.Eventually(t, func() bool {
		h, err = healthpb.NewHealthClient(noCert).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 20*time.Second, 100*time.Millisecond, "health answers SERVING without a client certificate")

	_, err = pb.NewWebSocketManagerClient(dial(a, nil)).List(ctx, &pb.ListRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "plaintext is refused: %v", err)

	rest := func(cfg *tls.Config, path string) int {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+a.httpAddr+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+clusterToken)
		r, err := hc.Do(req)
		require.NoError(t, err)
		r.Body.Close()
		return r.StatusCode
	}
	assert.Equal(t, http.StatusOK, rest(pki.clientTLS(true), "/v1/connections"))
	assert.Equal(t, http.StatusUnauthorized, rest(pki.clientTLS(false), "/v1/connections"))
	assert.Equal(t, http.StatusOK, rest(pki.clientTLS(false), "/healthz"))
}
