package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
)

// Ensure every actor code has a gRPC code, so no failure turns into an accidental Internal.
func TestEveryActorCodeIsMapped(t *testing.T) {
	for _, c := range actors.Codes {
		_, ok := codeOf[c]
		assert.True(t, ok, "actors.%s has no gRPC mapping", c)
	}
}

func TestToStatus(t *testing.T) {
	tests := []struct {
		name string
		give error
		want codes.Code
	}{
		{"actor not found", &actors.Error{Code: actors.CodeNotFound, Message: "x"}, codes.NotFound},
		{"wrapped actor error", fmt.Errorf("ctx: %w", &actors.Error{Code: actors.CodeUnavailable}), codes.Unavailable},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded},
		{"cancelled", context.Canceled, codes.Canceled},
		{"sidecar unavailable", fmt.Errorf("invoke: %w", status.Error(codes.Unavailable, "down")), codes.Unavailable},
		{"no actor host yet", fmt.Errorf("invoke: %w", status.Error(codes.FailedPrecondition, "did not find address for actor")), codes.Unavailable},
		{"actor method failed", fmt.Errorf("invoke: %w", status.Error(codes.Internal, "(500)")), codes.Internal},
		{"anything else", errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := toStatus(zap.NewNop(), tt.give)
			assert.Equal(t, tt.want, status.Code(err))
		})
	}
	assert.NoError(t, toStatus(zap.NewNop(), nil))
}

// Ensure internal details do not reach the caller.
func TestToStatusHidesInternalDetail(t *testing.T) {
	err := toStatus(zap.NewNop(), errors.New("dial ws://user:secret@host"))
	assert.NotContains(t, status.Convert(err).Message(), "secret")
}

// Ensure a call without a deadline gets one, and a call with a deadline keeps its own.
func TestDefaultDeadline(t *testing.T) {
	ic := DefaultDeadline(time.Minute)
	var got time.Time
	handler := func(ctx context.Context, _ any) (any, error) {
		got, _ = ctx.Deadline()
		return nil, nil
	}
	_, _ = ic(context.Background(), nil, nil, handler)
	assert.WithinDuration(t, time.Now().Add(time.Minute), got, 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	_, _ = ic(ctx, nil, nil, handler)
	assert.Equal(t, want, got)
}
