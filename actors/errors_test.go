package actors

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/websocketmanager/websocketmanager/actors/correlation"
	"github.com/websocketmanager/websocketmanager/actors/session"
)

// Ensure every session failure a Send can meet has the code its caller should see; in
// particular a caller who cancels is told CANCELED, not DEADLINE_EXCEEDED.
func TestSessionError(t *testing.T) {
	tests := []struct {
		give error
		want Code
	}{
		{session.ErrTimeout, CodeDeadlineExceeded},
		{session.ErrShuttingDown, CodeUnavailable},
		{session.ErrConnecting, CodeUnavailable},
		{session.ErrDropped, CodeUnavailable},
		{session.ErrNotConnected, CodeFailedPrecondition},
		{session.ErrClosed, CodeFailedPrecondition},
		{fmt.Errorf("%w (1024)", session.ErrTooManyPending), CodeResourceExhausted},
		{session.ErrMessageTooLarge, CodeInvalidArgument},
		{session.ErrDuplicateID, CodeAlreadyExists},
		{correlation.ErrNoID, CodeInvalidArgument},
		{context.DeadlineExceeded, CodeDeadlineExceeded},
		{context.Canceled, CodeCanceled},
		{fmt.Errorf("wait for reply: %w", context.Canceled), CodeCanceled},
		{errors.New("something else"), CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.give.Error(), func(t *testing.T) {
			assert.Equal(t, tt.want, SessionError(tt.give).Code)
			assert.Equal(t, tt.want, CodeOf(SessionError(tt.give).Err()))
		})
	}
}

// Ensure Errorf makes an error whose code is found through wrapping.
func TestErrorf(t *testing.T) {
	err := fmt.Errorf("context: %w", Errorf(CodeUnauthenticated, "no token for %s", "x"))
	assert.Equal(t, CodeUnauthenticated, CodeOf(err))
	assert.EqualError(t, err, "context: UNAUTHENTICATED: no token for x")
	assert.Equal(t, Code(""), CodeOf(errors.New("plain")))
}
