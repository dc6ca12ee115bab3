package wsmclient

// SendOption adjusts a Send, SendBinary or SendRaw.
type SendOption func(*sendOptions)

type sendOptions struct{ failFast bool }

// FailFast makes a call over the connection's send_rate fail at once with
// RESOURCE_EXHAUSTED instead of waiting for the rate (within the call's deadline).
func FailFast() SendOption { return func(o *sendOptions) { o.failFast = true } }

func failFast(opts []SendOption) bool {
	var o sendOptions
	for _, f := range opts {
		f(&o)
	}
	return o.failFast
}
