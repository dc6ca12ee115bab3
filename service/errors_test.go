package service

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
)

// Ensure every domain code has a gRPC code, so no failure turns into an accidental INTERNAL,
// and that a domain error reaches the caller with that code and its own message.
func TestEveryActorCodeIsMapped(t *testing.T) {
	assert.Len(t, codeOf, len(actors.Codes), "codeOf maps a code that actors.Codes does not list")
	for _, c := range actors.Codes {
		want, ok := codeOf[c]
		if !assert.True(t, ok, "actors.%s has no gRPC mapping", c) {
			continue
		}
		err := toStatus(zap.NewNop(), fmt.Errorf("context: %w", actors.Errorf(c, "message for %s", c)))
		assert.Equal(t, want, status.Code(err), "actors.%s", c)
		assert.Equal(t, "message for "+string(c), status.Convert(err).Message(), "actors.%s", c)
	}
}

func TestToStatus(t *testing.T) {
	peerAnswer := status.Error(codes.FailedPrecondition, "the connection is not open")
	tests := []struct {
		name string
		give error
		want codes.Code
		msg  string // "" : not checked
	}{
		{"actor not found", &actors.Error{Code: actors.CodeNotFound, Message: "x"}, codes.NotFound, "x"},
		{"wrapped actor error", fmt.Errorf("ctx: %w", &actors.Error{Code: actors.CodeUnavailable}), codes.Unavailable, ""},
		{"a cancelled local Send", actors.SessionError(context.Canceled).Err(), codes.Canceled, "the call was cancelled"},
		{"a Send past the call's deadline", actors.SessionError(context.DeadlineExceeded).Err(), codes.DeadlineExceeded, ""},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, msgDeadline},
		{"cancelled", context.Canceled, codes.Canceled, msgCanceled},
		{"wrapped cancel", fmt.Errorf("locate: %w", context.Canceled), codes.Canceled, msgCanceled},
		{"sidecar unavailable", fmt.Errorf("invoke: %w", status.Error(codes.Unavailable, "down")), codes.Unavailable, msgUnavailable},
		{"sidecar deadline", fmt.Errorf("invoke: %w", status.Error(codes.DeadlineExceeded, "late")), codes.DeadlineExceeded, msgDeadline},
		{"sidecar call cancelled by the caller", fmt.Errorf("invoke: %w", status.Error(codes.Canceled, "context canceled")), codes.Canceled, msgCanceled},
		{"no actor host yet", fmt.Errorf("invoke: %w", status.Error(codes.FailedPrecondition, "did not find address for actor")), codes.Unavailable, msgNoPlacement},
		{"actor method failed", fmt.Errorf("invoke: %w", status.Error(codes.Internal, "(500)")), codes.Internal, msgInternal},
		{"another instance's answer is kept", peerAnswer, codes.FailedPrecondition, "the connection is not open"},
		{"a status of a service beside ours is kept", status.Error(codes.NotFound, "unknown service"), codes.NotFound, "unknown service"},
		{"unknown domain code", actors.Errorf("NO_SUCH_CODE", "detail"), codes.Internal, msgInternal},
		{"anything else", errors.New("boom"), codes.Internal, msgInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := toStatus(zap.NewNop(), tt.give)
			assert.Equal(t, tt.want, status.Code(err))
			if tt.msg != "" {
				assert.Equal(t, tt.msg, status.Convert(err).Message())
			}
		})
	}
	assert.NoError(t, toStatus(zap.NewNop(), nil))
}

// Ensure statuses are made in one place: no other file of this package builds one (they
// return domain or plain errors, and the boundary maps them).
func TestStatusesAreMadeInOnePlace(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	makers := map[string]bool{"Error": true, "Errorf": true, "New": true, "Newf": true, "FromContextError": true}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "errors.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "status" && makers[sel.Sel.Name] {
				t.Errorf("%s: status.%s: return a domain error (actors.Errorf) instead; errors.go maps it", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
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
