// Package credtest makes throwaway certificate authorities and leaf certificates for tests
// of TLS dials (servers requiring client certificates, expired or misnamed server
// certificates). Nothing here is for production use.
package credtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// CA is a self-signed certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is Cert in PEM form (what a client is given as its trusted CA).
	PEM []byte
}

// Leaf describes a certificate to issue.
type Leaf struct {
	DNSNames []string
	IPs      []net.IP
	// Client makes a client-authentication certificate; otherwise a server certificate.
	Client bool
	// NotBefore and NotAfter: zero means now-1m and now+1h.
	NotBefore, NotAfter time.Time
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("credtest: generate key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("credtest: serial: %v", err)
	}
	return n
}

// NewCA makes a CA whose subject common name is name, valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"credtest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("credtest: create CA %q: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("credtest: parse CA %q: %v", name, err)
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue signs a leaf certificate (ECDSA P-256); the chain holds the leaf only.
func (ca *CA) Issue(t testing.TB, l Leaf) (certPEM, keyPEM []byte, cert tls.Certificate) {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	nb, na := l.NotBefore, l.NotAfter
	if nb.IsZero() {
		nb = now.Add(-time.Minute)
	}
	if na.IsZero() {
		na = now.Add(time.Hour)
	}
	cn := "credtest leaf"
	if len(l.DNSNames) > 0 {
		cn = l.DNSNames[0]
	}
	usage := x509.ExtKeyUsageServerAuth
	if l.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"credtest"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("credtest: issue leaf: %v", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("credtest: marshal key: %v", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("credtest: key pair: %v", err)
	}
	return certPEM, keyPEM, cert
}

// Secrets is an in-memory credentials.SecretStore for tests of packages that read secrets
// (the sidecar's API itself is exercised by the integration tests). Keys are "store/key".
type Secrets struct {
	mu sync.Mutex
	m  map[string]map[string]string
}

// NewSecrets returns a store holding m ("store/key" → the secret's values).
func NewSecrets(m map[string]map[string]string) *Secrets {
	if m == nil {
		m = map[string]map[string]string{}
	}
	return &Secrets{m: m}
}

// GetSecret implements credentials.SecretStore.
func (s *Secrets) GetSecret(_ context.Context, store, key string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[store+"/"+key]
	if !ok {
		return nil, errors.New("secret not found")
	}
	return v, nil
}

// Set replaces the secret at "store/key" (a rotation).
func (s *Secrets) Set(storeKey string, v map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[storeKey] = v
}
