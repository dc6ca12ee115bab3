package wsmclient

import (
	"context"
	"time"
)

// WithWatchSleep replaces the wait between watch attempts, so that tests see the backoff
// without waiting it out.
func WithWatchSleep(f func(ctx context.Context, d time.Duration) bool) WatchOption {
	return func(o *watchOptions) { o.sleep = f }
}
