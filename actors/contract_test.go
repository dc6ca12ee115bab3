package actors

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Ensure every documented actor method exists with the shape the Go SDK can dispatch:
// func(context.Context, *Args) (*Reply, error) — anything else fails or panics at call time.
func TestActorMethodsHaveDispatchableShape(t *testing.T) {
	tests := []struct {
		actor   any
		methods []string
	}{
		{&Connection{}, ConnectionMethods},
		{&Directory{}, DirectoryMethods},
	}
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	for _, tt := range tests {
		typ := reflect.TypeOf(tt.actor)
		for _, name := range tt.methods {
			t.Run(typ.Elem().Name()+"."+name, func(t *testing.T) {
				m, ok := typ.MethodByName(name)
				if !assert.True(t, ok, "method missing") {
					return
				}
				ft := m.Type
				assert.Equal(t, 3, ft.NumIn(), "receiver, ctx, one argument")
				assert.Equal(t, ctxType, ft.In(1))
				assert.Equal(t, reflect.Pointer, ft.In(2).Kind())
				assert.Equal(t, 2, ft.NumOut())
				assert.Equal(t, reflect.Pointer, ft.Out(0).Kind())
				assert.Equal(t, errType, ft.Out(1))
			})
		}
	}
}

// Ensure no exported method sneaks into the actor contract undocumented.
func TestNoUndocumentedActorMethods(t *testing.T) {
	sdk := map[string]bool{"Type": true, "ID": true, "SetID": true, "GetStateManager": true, "SetStateManager": true, "SaveState": true, "WithContext": true, "ReminderCall": true}
	for _, tt := range []struct {
		actor   any
		methods []string
	}{{&Connection{}, ConnectionMethods}, {&Directory{}, DirectoryMethods}} {
		documented := map[string]bool{}
		for _, m := range tt.methods {
			documented[m] = true
		}
		typ := reflect.TypeOf(tt.actor)
		for i := range typ.NumMethod() {
			name := typ.Method(i).Name
			if !sdk[name] {
				assert.True(t, documented[name], "exported method %s.%s is callable by any Dapr app; document it or unexport it", typ.Elem().Name(), name)
			}
		}
	}
}

// Ensure method names are matched without regard to case, as docs/actors.md promises.
func TestCanonicalMethod(t *testing.T) {
	for _, m := range append(append([]string{}, ConnectionMethods...), DirectoryMethods...) {
		assert.Equal(t, m, canonicalMethod(strings.ToLower(m)))
		assert.Equal(t, m, canonicalMethod(m))
	}
	assert.Equal(t, "Nope", canonicalMethod("Nope"))
}
