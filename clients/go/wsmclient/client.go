// Package wsmclient is the Go client of WebSocket Manager: a typed wrapper of its gRPC API
// with the options every caller needs (address, bearer token, TLS, a default timeout).
//
//	c, err := wsmclient.New("127.0.0.1:5002", wsmclient.WithToken(os.Getenv("WSM_TOKEN")))
//	conn, err := c.Connect(ctx, &wsmclient.ConnectRequest{Url: "wss://feed.example/ws"})
//	reply, err := c.Send(ctx, conn.GetConnectionId(), `{"id":1,"op":"ping"}`, 5*time.Second)
//
// Errors are gRPC status errors; [Code] gives their code (codes.NotFound, …).
package wsmclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// The API's messages, under shorter names.
type (
	ConnectRequest  = pb.ConnectRequest
	ConnectResponse = pb.ConnectResponse
	Connection      = pb.WebSocketConnection
	SendResponse    = pb.SendResponse
	LifecycleEvent  = pb.LifecycleEvent
	// SendRate is ConnectRequest.SendRate: a token bucket for what the service sends.
	SendRate = pb.SendRate
)

// Client calls one WebSocket Manager (any instance of it). It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	api     pb.WebSocketManagerClient
	timeout time.Duration
}

type options struct {
	token    string
	tls      *tls.Config
	tlsErr   error
	timeout  time.Duration
	dialOpts []grpc.DialOption
}

// Option configures a Client.
type Option func(*options)

// WithToken sends "authorization: Bearer <token>" on every call (no-op when empty).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects over TLS with this configuration (nil: the system roots).
func WithTLS(c *tls.Config) Option {
	return func(o *options) {
		if c == nil {
			c = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = c
	}
}

// WithTLSFiles connects over TLS, trusting the CA in caFile (empty: the system roots) and, for
// client-certificate authentication, presenting certFile and keyFile (both empty: none).
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return func(o *options) {
		c := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			b, err := os.ReadFile(caFile)
			if err != nil {
				o.tlsErr = fmt.Errorf("read CA file: %w", err)
				return
			}
			c.RootCAs = x509.NewCertPool()
			if !c.RootCAs.AppendCertsFromPEM(b) {
				o.tlsErr = fmt.Errorf("%s holds no PEM certificate", caFile)
				return
			}
		}
		if certFile != "" || keyFile != "" {
			kp, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				o.tlsErr = fmt.Errorf("load client certificate: %w", err)
				return
			}
			c.Certificates = []tls.Certificate{kp}
		}
		o.tls = c
	}
}

// WithTimeout bounds every call made with a context that has no deadline (default 30 s).
// WatchEvents is not bounded.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// New returns a client of the service at addr (host:port of its gRPC port). It does not
// connect until the first call.
func New(addr string, opts ...Option) (*Client, error) {
	o := options{timeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.tlsErr != nil {
		return nil, o.tlsErr
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, o.dialOpts...)
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(o.token)))
	}
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("wsmclient: %w", err)
	}
	return &Client{conn: conn, api: pb.NewWebSocketManagerClient(conn), timeout: o.timeout}, nil
}

// Close releases the connection to the service.
func (c *Client) Close() error { return c.conn.Close() }

// API returns the generated gRPC client, for what this package does not wrap.
func (c *Client) API() pb.WebSocketManagerClient { return c.api }

func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// Connect opens a connection; it returns once the handshake succeeded.
func (c *Client) Connect(ctx context.Context, req *ConnectRequest) (*ConnectResponse, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.api.Connect(ctx, req)
}

// ConnectURL opens a connection to url with the service's defaults.
func (c *Client) ConnectURL(ctx context.Context, url string) (*ConnectResponse, error) {
	return c.Connect(ctx, &ConnectRequest{Url: url})
}

// List returns the connections whose tags include every pair of tags (nil: all).
func (c *Client) List(ctx context.Context, tags map[string]string) ([]*Connection, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r, err := c.api.List(ctx, &pb.ListRequest{Tags: tags})
	return r.GetConnections(), err
}

// Disconnect closes a connection and forgets it.
func (c *Client) Disconnect(ctx context.Context, id string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	_, err := c.api.Disconnect(ctx, &pb.DisconnectRequest{Id: id})
	return err
}

// Send sends a text message and waits up to timeout (0: the service default) for the reply.
func (c *Client) Send(ctx context.Context, id, message string, timeout time.Duration, opts ...SendOption) (*SendResponse, error) {
	return c.send(ctx, &pb.SendRequest{Id: id, Message: message, TimeoutMs: int32(timeout.Milliseconds()), FailFast: failFast(opts)})
}

// SendBinary sends a binary frame and waits up to timeout for the reply.
func (c *Client) SendBinary(ctx context.Context, id string, message []byte, timeout time.Duration, opts ...SendOption) (*SendResponse, error) {
	return c.send(ctx, &pb.SendRequest{Id: id, BinaryMessage: message, TimeoutMs: int32(timeout.Milliseconds()), FailFast: failFast(opts)})
}

func (c *Client) send(ctx context.Context, req *pb.SendRequest) (*SendResponse, error) {
	if _, ok := ctx.Deadline(); !ok && req.TimeoutMs > 0 {
		// The call must outlive the Send's own timeout, whatever the client default.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMs)*time.Millisecond+c.timeout)
		defer cancel()
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.api.Send(ctx, req)
}

// SendRaw sends a text message without waiting for a reply.
func (c *Client) SendRaw(ctx context.Context, id, message string, opts ...SendOption) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	_, err := c.api.SendRaw(ctx, &pb.SendRawRequest{Id: id, Message: message, FailFast: failFast(opts)})
	return err
}

// StartPublish publishes every frame the connection receives to topic, one event per frame
// unless options say otherwise ([WithBatch], [WithOverflow], [WithReplies]). [Frames] turns
// either kind of event back into frames.
func (c *Client) StartPublish(ctx context.Context, id, topic string, opts ...PublishOption) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	req := &pb.StartPublishRequest{Id: id, Topic: topic}
	for _, o := range opts {
		o(req)
	}
	_, err := c.api.StartPublish(ctx, req)
	return err
}

// PublishOption sets a StartPublish setting.
type PublishOption func(*pb.StartPublishRequest)

// WithBatch publishes waiting frames together, as websocketmanager.frame.batch events of at
// most maxFrames frames and maxBytes bytes of data (0: what the pub/sub accepts), a partial
// batch waiting at most maxDelay for more frames (0: not at all).
func WithBatch(maxFrames, maxBytes int, maxDelay time.Duration) PublishOption {
	return func(r *pb.StartPublishRequest) {
		r.BatchMaxFrames, r.BatchMaxBytes = uint32(maxFrames), uint32(maxBytes)
		r.BatchMaxDelayMs = uint32(maxDelay.Milliseconds())
	}
}

// WithOverflow sets what happens when the connection's publish buffer is full.
func WithOverflow(o pb.Overflow) PublishOption {
	return func(r *pb.StartPublishRequest) { r.Overflow = o }
}

// WithReplies publishes also the frames that answered a Send.
func WithReplies() PublishOption {
	return func(r *pb.StartPublishRequest) { r.IncludeReplies = true }
}

// StopPublish stops publishing.
func (c *Client) StopPublish(ctx context.Context, id string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	_, err := c.api.StopPublish(ctx, &pb.StopPublishRequest{Id: id})
	return err
}

// WatchEvents calls fn with every lifecycle event (of connection id, or of all when empty) as
// it happens, until ctx ends (then it returns nil), fn returns an error, or the stream fails.
func (c *Client) WatchEvents(ctx context.Context, id string, fn func(*LifecycleEvent) error) error {
	st, err := c.api.WatchEvents(ctx, &pb.WatchEventsRequest{ConnectionId: id})
	if err != nil {
		return err
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil //nolint:nilerr // documented: the end of ctx ends the watch without an error
			}
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// Code returns the gRPC code of an error of this package (codes.OK for nil, codes.Unknown for
// errors that carry none).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return status.Code(err)
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that a token also works on loopback without TLS; use
// TLS whenever the service is reached over a network.
func (b bearer) RequireTransportSecurity() bool { return false }
