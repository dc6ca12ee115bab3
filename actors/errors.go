package actors

import (
	"errors"
	"fmt"
)

// Code classifies an actor failure. The names follow google.golang.org/grpc/codes; the
// service maps them to gRPC status codes in one place.
type Code string

// Codes an actor method may return.
const (
	CodeInvalidArgument    Code = "INVALID_ARGUMENT"
	CodeNotFound           Code = "NOT_FOUND"
	CodeAlreadyExists      Code = "ALREADY_EXISTS"
	CodeFailedPrecondition Code = "FAILED_PRECONDITION"
	CodeUnavailable        Code = "UNAVAILABLE"
	CodeDeadlineExceeded   Code = "DEADLINE_EXCEEDED"
	CodeInternal           Code = "INTERNAL"
	// CodePermissionDenied: the SSRF guard refused the target (the message names the rule).
	CodePermissionDenied Code = "PERMISSION_DENIED"
	// CodeResourceExhausted: a limit of the service (connections per instance, Sends waiting
	// on one connection) is reached.
	CodeResourceExhausted Code = "RESOURCE_EXHAUSTED"
	// CodeAborted: a Send forwarded to the instance that held the socket found it gone there
	// (the connection moved); the sender retries through the actor.
	CodeAborted Code = "ABORTED"
	// CodeCanceled: the caller cancelled the call (not a deadline: nothing timed out).
	CodeCanceled Code = "CANCELED"
	// CodeUnauthenticated and CodeUnimplemented are the API's own refusals (no valid token or
	// peer proof; a feature this instance does not serve); actors do not return them.
	CodeUnauthenticated Code = "UNAUTHENTICATED"
	CodeUnimplemented   Code = "UNIMPLEMENTED"
)

// Codes lists every code, for exhaustive tests of mappings.
var Codes = []Code{CodeInvalidArgument, CodeNotFound, CodeAlreadyExists, CodeFailedPrecondition,
	CodeUnavailable, CodeDeadlineExceeded, CodeInternal, CodeAborted, CodePermissionDenied, CodeResourceExhausted,
	CodeCanceled, CodeUnauthenticated, CodeUnimplemented}

// ErrorInfo is a failure as it travels in an actor reply.
type ErrorInfo struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// RetryAfterMS: a Send or SendRaw the actor refused for the send rate may go after this
	// long (see SendArgs.FailFast).
	RetryAfterMS int64 `json:"retryAfterMs,omitempty"`
}

// Error is a failure reported by an actor.
type Error struct {
	Code         Code
	Message      string
	RetryAfterMS int64 // see ErrorInfo
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// CodeOf returns the code of an [*Error] in err's chain, or "" if there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Errorf returns an [*Error] with code and a message for the caller. Layers above the actors
// (the API) use it too, so that every failure carries a code and only one place turns codes
// into protocol statuses.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func errorf(code Code, format string, args ...any) *ErrorInfo {
	return &ErrorInfo{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Err returns e as an error (nil for a nil e).
func (e *ErrorInfo) Err() error {
	if e == nil {
		return nil
	}
	return &Error{Code: e.Code, Message: e.Message, RetryAfterMS: e.RetryAfterMS}
}
