package actors

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// olderShards is a directory of an earlier version: it has Add but no AddMany.
type olderShards struct {
	mu      sync.Mutex
	methods []string
}

func (o *olderShards) InvokeActor(_ context.Context, in *dapr.InvokeActorRequest) (*dapr.InvokeActorResponse, error) {
	o.mu.Lock()
	o.methods = append(o.methods, in.Method)
	o.mu.Unlock()
	if in.Method == DirectoryMethodAddMany {
		return nil, errors.New("rpc error: code = Internal desc = method AddMany not found")
	}
	data, _ := json.Marshal(Reply{})
	return &dapr.InvokeActorResponse{Data: data}, nil
}

// During a rolling upgrade a shard may run on an instance without AddMany: the Add is made
// alone instead of failing the Connect. A refusal by the shard itself is not retried.
func TestAddMemberFallsBackToAdd(t *testing.T) {
	o := &olderShards{}
	require.NoError(t, NewClient(o).AddMember(context.Background(), "c-1", "10.0.0.1:5002"))
	assert.Equal(t, []string{DirectoryMethodAddMany, DirectoryMethodAdd}, o.methods)

	refused := NewClient(invokerFunc(func(in *dapr.InvokeActorRequest) ([]byte, error) {
		return json.Marshal(Reply{Error: &ErrorInfo{Code: CodeUnavailable, Message: "no scheduler"}})
	}))
	err := refused.AddMember(context.Background(), "c-2", "10.0.0.1:5002")
	assert.Equal(t, CodeUnavailable, CodeOf(err))
}

type invokerFunc func(in *dapr.InvokeActorRequest) ([]byte, error)

func (f invokerFunc) InvokeActor(_ context.Context, in *dapr.InvokeActorRequest) (*dapr.InvokeActorResponse, error) {
	data, err := f(in)
	if err != nil {
		return nil, err
	}
	return &dapr.InvokeActorResponse{Data: data}, nil
}
