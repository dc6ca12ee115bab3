package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Tokens are the bearer tokens the API accepts. The zero value (no tokens) accepts every call.
type Tokens struct {
	sums [][sha256.Size]byte
}

// NewTokens returns the accepted tokens; empty entries are ignored.
func NewTokens(list []string) *Tokens {
	t := &Tokens{}
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			t.sums = append(t.sums, sha256.Sum256([]byte(s)))
		}
	}
	return t
}

// Enabled reports whether calls must carry a token.
func (t *Tokens) Enabled() bool { return t != nil && len(t.sums) > 0 }

// Valid compares tok with every accepted token in constant time (hashing first, so neither
// the length nor the content of a token leaks through timing).
func (t *Tokens) Valid(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	ok := 0
	for i := range t.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], t.sums[i][:])
	}
	return ok == 1
}

// openMethods need no token: health checks (probes must work without secrets).
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// authorize checks the "authorization: Bearer <token>" metadata of a call.
func (t *Tokens) authorize(ctx context.Context, fullMethod string) error {
	if !t.Enabled() || openMethod(fullMethod) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return status.Error(codes.Unauthenticated, "this service requires a bearer token: send the header 'authorization: Bearer <token>'")
	}
	if !t.ValidAuthorization(vals[0]) {
		return status.Error(codes.Unauthenticated, "the bearer token is not valid for this service")
	}
	return nil
}

// ValidAuthorization reports whether an Authorization header value is "Bearer <token>" with an
// accepted token.
func (t *Tokens) ValidAuthorization(v string) bool {
	tok, found := strings.CutPrefix(v, "Bearer ")
	if !found {
		tok, found = strings.CutPrefix(v, "bearer ")
	}
	return found && t.Valid(strings.TrimSpace(tok))
}

// AuthUnary rejects calls without a valid bearer token with UNAUTHENTICATED.
func AuthUnary(t *Tokens) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := t.authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// AuthStream is AuthUnary for streaming calls (reflection, health watch).
func AuthStream(t *Tokens) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := t.authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// bearer adds the token to a call this instance makes to another instance.
func bearer(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// ClientCertUnary requires a verified client certificate (mTLS) on every call except health
// checks; the TLS layer verifies a certificate when one is presented.
func ClientCertUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := clientCert(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// ClientCertStream is ClientCertUnary for streaming calls.
func ClientCertStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := clientCert(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

func clientCert(ctx context.Context, fullMethod string) error {
	if openMethod(fullMethod) {
		return nil
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "this service requires a client certificate signed by its client CA (mTLS)")
}
