package actors

import (
	"net/url"
	"slices"
	"strings"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// validateUpstream checks the secret headers, TLS and egress proxy of a Connect against what
// the operator allows on this instance.
func (d *Deps) validateUpstream(a *ConnectArgs) *ErrorInfo {
	if a.EgressProxy != "" && !slices.Contains(d.EgressProxies, a.EgressProxy) {
		if len(d.EgressProxies) == 0 {
			return errorf(CodeInvalidArgument, "egress_proxy %q: this service has no egress proxies (--egress-proxy)", a.EgressProxy)
		}
		return errorf(CodeInvalidArgument, "egress_proxy %q is not one of the service's egress proxies (%s)", a.EgressProxy, strings.Join(d.EgressProxies, ", "))
	}
	src := d.Credentials
	if src == nil {
		src = &credentials.Source{}
	}
	if err := src.Validate(a.SecretHeaders, a.Headers, a.TLS, isSecureURL(a.URL)); err != nil {
		return errorf(CodeInvalidArgument, "%v", err)
	}
	// URL credentials become the Authorization header at the dial, which a secret header of
	// that name would silently replace: the caller must choose one.
	for name := range a.SecretHeaders {
		if strings.EqualFold(name, "Authorization") && urlHasCredentials(a.URL) {
			return errorf(CodeInvalidArgument, "secret_headers[%q] and the credentials in the url (user:password@) both set the Authorization header: give only one of them (the secret header keeps the password out of the connection's spec)", name)
		}
	}
	return nil
}

func urlHasCredentials(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

func isSecureURL(u string) bool {
	return len(u) >= 6 && strings.EqualFold(u[:6], "wss://")
}

// credentialError maps a dial that failed on its secrets or key material to
// FAILED_PRECONDITION (the references are valid, but what they name is not there or not
// usable); ok is false for any other error.
func credentialError(err error) (*ErrorInfo, bool) {
	if credentials.IsCredentialError(err) {
		return errorf(CodeFailedPrecondition, "%v", err), true
	}
	return nil, false
}

// shownTLS is t without inline key material, for List.
func shownTLS(t *credentials.TLS) *credentials.TLS {
	if t == nil {
		return nil
	}
	c := *t
	c.CA, c.ClientCert, c.ClientKey = shownMaterial(t.CA), shownMaterial(t.ClientCert), shownMaterial(t.ClientKey)
	return &c
}

func shownMaterial(m *credentials.Material) *credentials.Material {
	if m == nil || m.InlinePEM == "" {
		return m
	}
	c := *m
	c.InlinePEM = ""
	return &c
}

// secretHeaderNames returns the names of the secret headers, sorted (never their values).
func secretHeaderNames(refs map[string]credentials.SecretRef) []string {
	if len(refs) == 0 {
		return nil
	}
	names := make([]string, 0, len(refs))
	for k := range refs {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
