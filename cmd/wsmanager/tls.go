package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// certFiles serves a certificate from files and re-reads them when they change (checked at
// most every 10 s), so that a rotated certificate (cert-manager, a mounted secret) is used
// without a restart.
type certFiles struct {
	cert, key string

	mu              sync.Mutex
	current         *tls.Certificate
	certMod, keyMod time.Time // of the files current was read from
	checked         time.Time
}

func newCertFiles(cert, key string) (*certFiles, error) {
	c := &certFiles{cert: cert, key: key}
	if _, err := c.get(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certFiles) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current != nil && time.Since(c.checked) < 10*time.Second {
		return c.current, nil
	}
	c.checked = time.Now()
	certMod, keyMod := modTime(c.cert), modTime(c.key)
	if c.current != nil && certMod.Equal(c.certMod) && keyMod.Equal(c.keyMod) {
		return c.current, nil
	}
	kp, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		if c.current != nil {
			return c.current, nil // keep serving the last good one while files are being replaced
		}
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	c.current, c.certMod, c.keyMod = &kp, certMod, keyMod
	return c.current, nil
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New(path + " holds no PEM certificate")
	}
	return pool, nil
}

// serverTLS is the TLS configuration of the gRPC and HTTP ports, or nil without TLS. With a
// client CA, a client certificate is verified when presented and required by the API
// (health checks excepted, see clientCertRequired), so that probes need no certificate.
func serverTLS(cfg config) (*tls.Config, *certFiles, error) {
	if cfg.tlsCert == "" {
		return nil, nil, nil
	}
	cf, err := newCertFiles(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, nil, err
	}
	t := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cf.get() },
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if cfg.tlsClientCA != "" {
		pool, err := loadPool(cfg.tlsClientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-client-ca-file: %w", err)
		}
		t.ClientCAs = pool
		t.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return t, cf, nil
}

// peerCreds is how this instance calls other instances (forwarded Sends, the watchdog's
// Held): plaintext without TLS (server nil); with TLS, verifying their certificate against
// the client CA of server (instances share it) or the system roots, and presenting this
// instance's certificate.
func peerCreds(cfg config, server *tls.Config, cf *certFiles) credentials.TransportCredentials {
	if server == nil {
		return nil
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:           tls.VersionTLS12,
		ServerName:           cfg.peerServerName, // empty: each peer's own host is verified
		RootCAs:              server.ClientCAs,   // nil: the system roots
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cf.get() },
	})
}
