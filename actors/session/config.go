package session

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/publish"
)

// Config holds the limits and timings of every session of a registry.
type Config struct {
	// HandshakeTimeout bounds the TCP connect, TLS and HTTP upgrade of a dial. Default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one frame write. Default 10s.
	WriteTimeout time.Duration
	// PingInterval is the time between keepalive pings. Default 15s.
	PingInterval time.Duration
	// PongTimeout is how long after a ping the connection may stay silent before it is
	// considered dead. Default 10s.
	PongTimeout time.Duration
	// ReadLimit is the largest inbound frame in bytes. Default DefaultReadLimit: a binary frame
	// of that size is still publishable under the default publish limit.
	ReadLimit int64
	// PublishBuffer is the number of inbound frames of one connection that may wait for the
	// publisher; when it is full the oldest are dropped. Default 1024.
	PublishBuffer int
	// PublishBufferBytes bounds the bytes of one connection's waiting frames (and the one being
	// published); when a frame does not fit the oldest are dropped. Default 8 MiB.
	PublishBufferBytes int64
	// PublishBufferInstanceBytes bounds the bytes of the waiting frames of all sessions of the
	// registry together; when a frame does not fit, its own connection's oldest are dropped.
	// Default 256 MiB.
	PublishBufferInstanceBytes int64
	// PublishRetryFor bounds how long one frame's publish is retried; then the frame is dropped
	// (counted publish_failed) so that one frame a broker never takes cannot stop every later
	// one. Default 1m.
	PublishRetryFor time.Duration
	// RetainFrames and RetainBytes bound the inbound frames each connection keeps for its
	// watchers to resume from (a connection may ask for other bounds). Default 4096 and 4 MiB:
	// as many frames as a watcher's buffer, so that a watcher ended for falling behind can
	// usually resume from the ring.
	RetainFrames int
	RetainBytes  int64
	// RetainInstanceBytes bounds the retained frames of all connections together; a
	// connection that finds it full retains less. Default 256 MiB.
	RetainInstanceBytes int64
	// MaxWatchers bounds the frame watchers of the registry, MaxWatchersPerConnection those of
	// one connection. Default 1024 and 16.
	MaxWatchers              int
	MaxWatchersPerConnection int
	// WatchBuffer bounds the frames waiting for one watcher; a watcher that lets it overflow
	// is ended. Default 4096.
	WatchBuffer int
	// WatchBufferBytes bounds the bytes of the frames waiting for one watcher. Default 16 MiB.
	WatchBufferBytes int64
	// MaxPublishBytes is the largest publish request the pub/sub takes (the service sets
	// --max-publish-bytes); batch events are cut to fit it. Default publish.DefaultMaxRequestBytes.
	MaxPublishBytes int
	// ShutdownFlush bounds how long Shutdown publishes the frames left when its ctx has no
	// deadline. Default 15s (the service sets --shutdown-timeout).
	ShutdownFlush time.Duration
	// ReadBufferSize and WriteBufferSize are gorilla's I/O buffer sizes. Default 4096 each.
	ReadBufferSize  int
	WriteBufferSize int
	// CloseTimeout bounds the close handshake of a normal close. Default 2s.
	CloseTimeout time.Duration
	// MaxConnections bounds the sessions of a registry (sockets held by this instance); 0 = no
	// limit. Default 0 (the service sets --max-connections).
	MaxConnections int
	// MaxPendingSends bounds the Sends waiting for a reply on one connection. Default 1024.
	MaxPendingSends int
	// MaxMessageBytes bounds one outbound message (Send, SendRaw). Default 1 MiB.
	MaxMessageBytes int
	// Metrics records frames, bytes, reconnects and drops; nil records nothing.
	Metrics *metrics.Metrics
	// Dial opens the TCP connection of a handshake (addr is the URL's host:port); the service
	// sets the SSRF guard's dialer here. Nil dials directly.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Credentials resolves secret headers and TLS material at every dial; nil: a spec that
	// has any fails its dials with credentials.ErrUnavailable.
	Credentials *credentials.Source
}

// DefaultReadLimit is the default largest inbound frame: the largest binary frame whose
// event (base64, 4/3 of the frame, plus publish.EnvelopeReserve for its attributes) fits in
// publish.DefaultMaxRequestBytes, daprd's default limit. 3,096,576 bytes.
const DefaultReadLimit = (publish.DefaultMaxRequestBytes - publish.EnvelopeReserve) / 4 * 3

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout:           10 * time.Second,
		WriteTimeout:               10 * time.Second,
		PingInterval:               15 * time.Second,
		PongTimeout:                10 * time.Second,
		ReadLimit:                  DefaultReadLimit,
		PublishBuffer:              1024,
		PublishBufferBytes:         8 << 20,
		PublishBufferInstanceBytes: 256 << 20,
		ShutdownFlush:              15 * time.Second,
		PublishRetryFor:            time.Minute,
		MaxPublishBytes:            publish.DefaultMaxRequestBytes,
		RetainFrames:               4096,
		RetainBytes:                4 << 20,
		RetainInstanceBytes:        256 << 20,
		MaxWatchers:                1024,
		MaxWatchersPerConnection:   16,
		WatchBuffer:                4096,
		WatchBufferBytes:           16 << 20,
		ReadBufferSize:             4096,
		WriteBufferSize:            4096,
		CloseTimeout:               2 * time.Second,
		MaxPendingSends:            1024,
		MaxMessageBytes:            1 << 20,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.HandshakeTimeout <= 0:
		return errors.New("handshake timeout must be positive")
	case c.WriteTimeout <= 0:
		return errors.New("write timeout must be positive")
	case c.PingInterval <= 0:
		return errors.New("ping interval must be positive")
	case c.PongTimeout <= 0:
		return errors.New("pong timeout must be positive")
	case c.ReadLimit <= 0:
		return errors.New("read limit must be positive")
	case c.PublishBuffer <= 0:
		return errors.New("publish buffer must be positive")
	case c.PublishBufferBytes <= 0 || c.PublishBufferInstanceBytes <= 0:
		return errors.New("publish buffer byte limits must be positive")
	case c.RetainFrames < 0 || c.RetainBytes < 0 || c.RetainInstanceBytes < 0:
		return errors.New("retention bounds must not be negative")
	case c.MaxWatchers < 0 || c.MaxWatchersPerConnection < 0 || c.WatchBuffer <= 0 || c.WatchBufferBytes <= 0:
		return errors.New("watcher limits must not be negative, and the watch buffer positive")
	case c.MaxPublishBytes <= 0:
		return errors.New("max publish bytes must be positive")
	case c.PublishRetryFor <= 0:
		return errors.New("publish retry timeout must be positive")
	case c.ShutdownFlush <= 0:
		return errors.New("shutdown flush must be positive")
	case c.CloseTimeout <= 0:
		return errors.New("close timeout must be positive")
	case c.MaxConnections < 0:
		return errors.New("max connections must not be negative")
	case c.MaxPendingSends <= 0:
		return errors.New("max pending Sends must be positive")
	case c.MaxMessageBytes <= 0:
		return errors.New("max message size must be positive")
	}
	return nil
}
