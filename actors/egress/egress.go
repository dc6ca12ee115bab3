// Package egress owns how the service reaches WebSocket servers through the operator's HTTP
// CONNECT proxies (--egress-proxy, --egress-no-proxy), with the SSRF guard's decision made
// here, before the proxy is asked for anything.
package egress

import "context"

type routeKey struct{}

// WithProxy returns ctx carrying the name of the proxy a connection chose ("" = the default).
func WithProxy(ctx context.Context, name string) context.Context {
	if name == "" {
		return ctx
	}
	return context.WithValue(ctx, routeKey{}, name)
}

// ProxyFrom returns the proxy name carried by ctx ("" = the default).
func ProxyFrom(ctx context.Context) string {
	n, _ := ctx.Value(routeKey{}).(string)
	return n
}
