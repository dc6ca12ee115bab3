package service

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
)

// This file is the one place that makes the gRPC statuses callers see. Handlers and
// interceptors of this package return domain errors ([actors.Errorf], errors of the actor
// layer) or plain errors; the Statuses interceptors turn them into statuses with toStatus.
// REST, Connect and gRPC-Web calls pass through the same interceptors (in-process gRPC).

// codeOf maps every domain code to the gRPC code the caller sees (exhaustive: tested).
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
	actors.CodeCanceled:           codes.Canceled,
	actors.CodeUnauthenticated:    codes.Unauthenticated,
	actors.CodeUnimplemented:      codes.Unimplemented,
}

// Messages of the statuses made here rather than by the domain.
const (
	msgDeadline    = "the call's deadline passed before the connection answered"
	msgCanceled    = "the call was cancelled"
	msgUnavailable = "the Dapr sidecar or the instance holding the connection is unreachable; retry later"
	msgNoPlacement = "no instance is hosting connections yet (actor placement not ready); retry later"
	msgInternal    = "internal error; see the service log"
)

// grpcStatus is implemented by the errors of package status (and of grpc calls).
type grpcStatus interface{ GRPCStatus() *status.Status }

// toStatus turns any error into the status the caller sees, in this order:
//
//  1. a status returned as is (not wrapped) is already the caller's answer: another instance's
//     answer to a forwarded call (made by its own toStatus), gRPC's own (a stream to a caller
//     that left), or that of a service registered beside ours (health, reflection). Kept.
//  2. a domain error ([*actors.Error] anywhere in the chain): its code through codeOf, its
//     message as is (domain messages are written for the caller).
//  3. context errors: CANCELED when the caller cancelled, DEADLINE_EXCEEDED when its deadline
//     passed (whether our own context or the sidecar call reported it).
//  4. a status wrapped in the chain: a transport error of a call to the Dapr sidecar. Codes the
//     caller can act on keep their meaning (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELED;
//     FAILED_PRECONDITION is daprd's "no actor host yet" and becomes UNAVAILABLE), the rest is
//     INTERNAL.
//  5. anything else: INTERNAL with a generic message; the detail goes to the log only (it may
//     name hosts, URLs or state store errors).
func toStatus(log *zap.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(grpcStatus); ok {
		return err
	}
	var ae *actors.Error
	if errors.As(err, &ae) {
		if c, ok := codeOf[ae.Code]; ok {
			return status.Error(c, ae.Message)
		}
		log.Error("domain error without a gRPC code (add it to codeOf)", zap.Error(err))
		return status.Error(codes.Internal, msgInternal)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msgDeadline)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msgCanceled)
	}
	var se grpcStatus
	if errors.As(err, &se) {
		switch se.GRPCStatus().Code() {
		case codes.Unavailable:
			log.Warn("sidecar call unavailable", zap.Error(err))
			return status.Error(codes.Unavailable, msgUnavailable)
		case codes.DeadlineExceeded:
			return status.Error(codes.DeadlineExceeded, msgDeadline)
		case codes.Canceled: // gRPC reports a cancelled call as a status, not context.Canceled
			return status.Error(codes.Canceled, msgCanceled)
		case codes.FailedPrecondition:
			return status.Error(codes.Unavailable, msgNoPlacement)
		}
	}
	log.Error("internal error", zap.Error(err))
	return status.Error(codes.Internal, msgInternal)
}

// codeFor is the gRPC code the caller would see for err (for decisions on errors that have
// not reached the boundary yet).
func codeFor(err error) codes.Code {
	return status.Code(toStatus(zap.NewNop(), err))
}
