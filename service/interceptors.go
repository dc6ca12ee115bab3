package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
	"github.com/websocketmanager/websocketmanager/actors/metrics"
	"github.com/websocketmanager/websocketmanager/actors/tracing"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// InterceptorConfig is what the API's interceptor chains need.
type InterceptorConfig struct {
	// Log receives one line per failed call (debug for successful ones) and every panic.
	Log *zap.Logger
	// Metrics counts calls; nil counts nothing.
	Metrics *metrics.Metrics
	// Auth authenticates calls; nil: none.
	Auth *Auth
	// DefaultDeadline is given to unary calls that arrive without a deadline; 0: none.
	DefaultDeadline time.Duration
}

// Interceptors returns the API's interceptor chains, outermost first: a default deadline
// (unary calls only: a stream lasts as long as its caller wants), tracing, logging, metrics,
// the status boundary (panic recovery and toStatus), then authentication. Streams get the same
// interceptors as unary calls, each the very same code run around the whole stream
// ([StreamOf]). Logging and metrics are outside the boundary, so that they see the code the
// caller sees; authentication is inside, so that its refusals are mapped like every other
// error, and so is anything appended to the chains (the client certificate check).
func Interceptors(c InterceptorConfig) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	shared := []grpc.UnaryServerInterceptor{TraceUnary(), UnaryInterceptor(c.Log), MetricsUnary(c.Metrics), StatusUnary(c.Log)}
	var unary []grpc.UnaryServerInterceptor
	if c.DefaultDeadline > 0 {
		unary = append(unary, DefaultDeadline(c.DefaultDeadline))
	}
	unary = append(unary, shared...)
	var stream []grpc.StreamServerInterceptor
	for _, u := range shared {
		stream = append(stream, StreamOf(u))
	}
	if c.Auth != nil {
		unary = append(unary, c.Auth.Unary())
		stream = append(stream, c.Auth.Stream())
	}
	return unary, stream
}

// StreamOf runs a unary interceptor around a whole streaming call: the stream's context goes
// in (the interceptor's changes to it reach the handler through the stream), the stream's
// error comes out. The request is nil: it suits interceptors that look only at the context,
// the method and the error (all of the API's do).
func StreamOf(u grpc.UnaryServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		_, err := u(ss.Context(), nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: info.FullMethod},
			func(ctx context.Context, _ any) (any, error) {
				return nil, handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
			})
		return err
	}
}

// StatusUnary is the API's boundary: it recovers from panics in the handler and in the
// interceptors inside it, and turns every error into the status the caller sees (toStatus,
// the only place statuses are made).
func StatusUnary(log *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, panicked(log, info.FullMethod, p)
			}
			err = toStatus(log, err)
		}()
		return handler(ctx, req)
	}
}

// panicked logs a recovered panic with its stack; the caller gets INTERNAL (a plain error:
// toStatus hides the detail).
func panicked(log *zap.Logger, method string, p any) error {
	log.Error("handler panic", zap.String(logkey.GRPCMethod, method), zap.Any("panic", p), zap.Stack("stack"))
	return errors.New("handler panic")
}

// UnaryInterceptor logs each failed call once, with its method, code and duration; successful
// calls are logged at debug level. It also recovers from panics in the interceptors inside it
// (StatusUnary recovers those of handlers, so that metrics see them as INTERNAL).
func UnaryInterceptor(log *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		ctx, ci := withCallInfo(ctx) // authentication (inside) fills it
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, toStatus(log, panicked(log, info.FullMethod, p))
			}
			logCall(ctx, log, info.FullMethod, ci, start, err)
		}()
		return handler(ctx, req)
	}
}

func logCall(ctx context.Context, log *zap.Logger, method string, ci *callInfo, start time.Time, err error) {
	code := status.Code(err)
	fields := []zap.Field{zap.String(logkey.GRPCMethod, method), zap.String(logkey.GRPCCode, code.String()),
		zap.Duration("duration", time.Since(start)), tracing.Field(ctx)}
	if ci.peer {
		fields = append(fields, zap.Bool("from_peer", true))
	}
	switch code {
	case codes.OK:
		if ce := log.Check(zap.DebugLevel, "rpc"); ce != nil {
			ce.Write(fields...)
		}
	case codes.Internal, codes.Unknown:
		log.Error("rpc failed", append(fields, zap.String("message", status.Convert(err).Message()))...)
	default:
		log.Info("rpc failed", append(fields, zap.String("message", status.Convert(err).Message()))...)
	}
}

// DefaultDeadline gives calls that arrive without a deadline the deadline d, so that no call
// waits forever (for example on a sidecar that is down).
func DefaultDeadline(d time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return handler(ctx, req)
	}
}

// MetricsUnary records every API call (gRPC and REST) by method and code — calls from other
// instances too — and Sends as their callers see them (a Send another instance forwarded,
// proved by its peer proof, is counted there, not again here). Health checks are not counted.
// A stream (through [StreamOf]) is counted when it ends; its duration is its lifetime, in its
// method's own series.
func MetricsUnary(m *metrics.Metrics) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if openMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		start := time.Now()
		ctx, _ = withCallInfo(ctx) // authentication (inside) says whether a peer forwarded the call
		resp, err := handler(ctx, req)
		d := time.Since(start)
		code := status.Code(err).String()
		m.API(info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:], code, d)
		if info.FullMethod == pb.WebSocketManager_Send_FullMethodName && !isForwarded(ctx) {
			m.Sent(d, code)
		}
		return resp, err
	}
}

// TraceUnary continues the caller's W3C trace context (traceparent, tracestate) — or starts
// one — for the call: it is in the logs of the call, on every Dapr call and forwarded call made
// for it, and returned to the caller in the traceparent response header. When spans are
// exported (--otlp-endpoint) the call is a server span of that trace.
func TraceUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, span := tracing.StartRPC(ctx, nil, info.FullMethod)
		_ = grpc.SetHeader(ctx, metadata.Pairs(tracing.ParentHeader, tracing.Traceparent(ctx)))
		resp, err := handler(ctx, req)
		tracing.EndRPC(span, status.Code(err))
		return resp, err
	}
}
