package service

import (
	"context"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors/logkey"
)

// UnaryInterceptor recovers from panics in handlers and logs each failed call once, with its
// method, code and duration. Successful calls are logged at debug level.
func UnaryInterceptor(log *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				log.Error("handler panic", zap.String(logkey.GRPCMethod, info.FullMethod), zap.Any("panic", p), zap.Stack("stack"))
				err = status.Error(codes.Internal, "internal error; see the service log")
			}
			code := status.Code(err)
			fields := []zap.Field{zap.String(logkey.GRPCMethod, info.FullMethod), zap.String(logkey.GRPCCode, code.String()), zap.Duration("duration", time.Since(start))}
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
