package service

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
)

// codeOf maps every actor code to the gRPC code the caller sees.
var codeOf = map[actors.Code]codes.Code{
	actors.CodeInvalidArgument:    codes.InvalidArgument,
	actors.CodeNotFound:           codes.NotFound,
	actors.CodeAlreadyExists:      codes.AlreadyExists,
	actors.CodeFailedPrecondition: codes.FailedPrecondition,
	actors.CodeUnavailable:        codes.Unavailable,
	actors.CodeDeadlineExceeded:   codes.DeadlineExceeded,
	actors.CodeInternal:           codes.Internal,
	actors.CodeAborted:            codes.Aborted,
	actors.CodePermissionDenied:   codes.PermissionDenied,
	actors.CodeResourceExhausted:  codes.ResourceExhausted,
}

// toStatus is the only place that turns errors of the layers below into gRPC statuses.
// (Request validation creates its INVALID_ARGUMENT statuses directly.)
func toStatus(log *zap.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ae *actors.Error
	if errors.As(err, &ae) {
		if c, ok := codeOf[ae.Code]; ok {
			return status.Error(c, ae.Message)
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed before the connection answered")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was cancelled")
	}
	// Transport failures between us and the sidecar keep their code when the caller can act
	// on it; anything else is an internal error whose detail goes to the log only.
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable:
			log.Warn("sidecar call unavailable", zap.Error(err))
			return status.Error(codes.Unavailable, "the Dapr sidecar or the instance holding the connection is unreachable; retry later")
		case codes.DeadlineExceeded:
			return status.Error(codes.DeadlineExceeded, "the call's deadline passed before the connection answered")
		case codes.FailedPrecondition:
			return status.Error(codes.Unavailable, "no instance is hosting connections yet (actor placement not ready); retry later")
		}
	}
	log.Error("internal error", zap.Error(err))
	return status.Error(codes.Internal, "internal error; see the service log")
}
