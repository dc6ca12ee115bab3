package service

import (
	"context"
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

// UnaryInterceptor recovers from panics in handlers and logs each failed call once, with its
// method, code and duration. Successful calls are logged at debug level.
func UnaryInterceptor(log *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		ctx, ci := withCallInfo(ctx) // authentication (inside) fills it
		defer func() {
			if p := recover(); p != nil {
				log.Error("handler panic", zap.String(logkey.GRPCMethod, info.FullMethod), zap.Any("panic", p), zap.Stack("stack"))
				err = status.Error(codes.Internal, "internal error; see the service log")
			}
			code := status.Code(err)
			fields := []zap.Field{zap.String(logkey.GRPCMethod, info.FullMethod), zap.String(logkey.GRPCCode, code.String()),
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
		}()
		return handler(ctx, req)
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
// for it, and returned to the caller in the traceparent response header.
func TraceUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		p := tracing.FromIncoming(ctx)
		_ = grpc.SetHeader(ctx, metadata.Pairs(tracing.ParentHeader, p.String()))
		return handler(tracing.NewContext(ctx, p), req)
	}
}
