package credentials

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// DescribeTLSError returns a sentence a person understands for a TLS failure of a handshake
// with host (unknown authority, name mismatch, expired, client certificate refused, version),
// and false when err is not a TLS failure.
func DescribeTLSError(err error, host string) (string, bool) {
	if err == nil {
		return "", false
	}
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		noRoots     x509.SystemRootsError
		notTLS      tls.RecordHeaderError
		alertErr    tls.AlertError
		opErr       *net.OpError
		verifyError *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the TLS certificate of %s is signed by an authority this service does not trust%s: give that authority's certificate in tls.ca",
			host, issuerOf(unknownCA.Cert)), true
	case errors.As(err, &hostname):
		return fmt.Sprintf("the TLS certificate of the server is not valid for the name %q (%s): set tls.server_name to one of its names, or use a URL with one",
			hostname.Host, namesOf(hostname.Certificate)), true
	case errors.As(err, &invalid):
		return describeInvalid(invalid, host), true
	case errors.As(err, &noRoots):
		return fmt.Sprintf("the TLS certificate of %s cannot be verified: this machine has no system root certificates; give the server's authority in tls.ca", host), true
	case errors.As(err, &verifyError):
		return fmt.Sprintf("the TLS certificate of %s is not acceptable: %v", host, verifyError.Err), true
	case errors.As(err, &notTLS):
		return fmt.Sprintf("the server at %s does not speak TLS (its answer is no TLS record): use a ws:// URL or the server's TLS port", host), true
	case errors.As(err, &alertErr):
		return describeAlert(strings.TrimPrefix(alertErr.Error(), "tls: "), host), true
	case errors.As(err, &opErr) && opErr.Op == "remote error" && opErr.Err != nil && strings.HasPrefix(opErr.Err.Error(), "tls: "):
		// crypto/tls reports an alert the server sent as this net.OpError (its alert type is
		// not exported).
		return describeAlert(strings.TrimPrefix(opErr.Err.Error(), "tls: "), host), true
	}
	if v, ok := localVersionMismatch(err); ok {
		return fmt.Sprintf("the server at %s and this service have no TLS version in common (the server chose %s): check tls.min_version (1.3 needs a server that speaks TLS 1.3)", host, v), true
	}
	// Nothing else is described: a text search for "tls: " would also take a TLS failure
	// with an egress proxy, or a DNS error for a host ending in "tls", for the server's.
	return "", false
}

// localVersionMismatch recognises crypto/tls refusing the version a server chose (a server
// that ignores the versions offered, e.g. a TLS 1.2-only one when tls.min_version is 1.3).
// crypto/tls returns it untyped, so it is matched as the innermost error of the chain, which
// only crypto/tls creates with this text (a proxy's TLS failure is quoted, not wrapped).
func localVersionMismatch(err error) (string, bool) {
	root := err
	for {
		next := errors.Unwrap(root)
		if next == nil {
			break
		}
		root = next
	}
	const prefix = "tls: server selected unsupported protocol version "
	msg := root.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	switch v := strings.TrimPrefix(msg, prefix); v {
	case "300":
		return "SSL 3.0", true
	case "301":
		return "TLS 1.0", true
	case "302":
		return "TLS 1.1", true
	case "303":
		return "TLS 1.2", true
	case "304":
		return "TLS 1.3", true
	default:
		return "version 0x" + clip(v), true
	}
}

func describeInvalid(e x509.CertificateInvalidError, host string) string {
	switch e.Reason {
	case x509.Expired:
		if e.Cert != nil {
			if time.Now().Before(e.Cert.NotBefore) {
				return fmt.Sprintf("the TLS certificate of %s is not valid before %s: check the clocks of this service and of the server",
					host, e.Cert.NotBefore.UTC().Format(time.RFC3339))
			}
			return fmt.Sprintf("the TLS certificate of %s expired on %s: the server's operator must renew it",
				host, e.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("the TLS certificate of %s has expired or is not yet valid: the server's operator must renew it, or check the clocks", host)
	case x509.IncompatibleUsage:
		return fmt.Sprintf("the TLS certificate of %s is not meant for servers (its extended key usage): the server's operator must issue a server certificate", host)
	case x509.NotAuthorizedToSign:
		return fmt.Sprintf("the TLS certificate of %s is signed by a certificate that is not an authority: check the server's certificate chain, or the certificate in tls.ca", host)
	}
	return fmt.Sprintf("the TLS certificate of %s is not acceptable: %v", host, e)
}

// describeAlert explains an alert the server sent; alert is its text without "tls: ".
func describeAlert(alert, host string) string {
	switch alert {
	case "certificate required":
		// A client certificate the server's CertificateRequest does not accept is not sent
		// at all, so this is also the answer to a certificate from another authority.
		return fmt.Sprintf("the server at %s requires a TLS client certificate and was sent none it accepts (server said: %s): give one issued by an authority the server trusts in tls.client_certificate and tls.client_key", host, alert)
	case "bad certificate", "unknown certificate authority", "unknown certificate", "unsupported certificate", "access denied":
		return fmt.Sprintf("the server at %s refused the TLS client certificate, or requires one and none was given (server said: %s): give a certificate it trusts in tls.client_certificate and tls.client_key", host, alert)
	case "expired certificate":
		return fmt.Sprintf("the server at %s refused the TLS client certificate as expired: renew the certificate in tls.client_certificate", host)
	case "revoked certificate":
		return fmt.Sprintf("the server at %s refused the TLS client certificate as revoked: give another in tls.client_certificate and tls.client_key", host)
	case "protocol version not supported":
		return fmt.Sprintf("the server at %s and this service have no TLS version in common (server said: %s): check tls.min_version (1.3 needs a server that speaks TLS 1.3)", host, alert)
	case "handshake failure":
		// TLS 1.2 servers also answer a missing client certificate with this alert.
		return fmt.Sprintf("the server at %s refused the TLS handshake (server said: %s): it may require a client certificate it trusts (tls.client_certificate and tls.client_key), or support none of this service's TLS versions or cipher suites", host, alert)
	case "insufficient security level":
		return fmt.Sprintf("the server at %s refused the TLS handshake (server said: %s): it supports none of this service's TLS versions or cipher suites", host, alert)
	case "unrecognized name":
		return fmt.Sprintf("the server at %s does not know the TLS server name it was sent (server said: %s): set tls.server_name", host, alert)
	}
	return fmt.Sprintf("the server at %s ended the TLS handshake (server said: %s)", host, alert)
}

func issuerOf(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	name := c.Issuer.CommonName
	if name == "" {
		name = c.Issuer.String()
	}
	if name == "" {
		return ""
	}
	if c.Issuer.String() == c.Subject.String() {
		return fmt.Sprintf(" (it is self-signed: %q)", name)
	}
	return fmt.Sprintf(" (issuer %q)", name)
}

func namesOf(c *x509.Certificate) string {
	if c == nil {
		return "its names are unknown"
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "it names no host (no subject alternative names)"
	}
	const show = 8
	more := ""
	if len(names) > show {
		more = fmt.Sprintf(" and %d more", len(names)-show)
		names = names[:show]
	}
	return "it is for " + strings.Join(names, ", ") + more
}
