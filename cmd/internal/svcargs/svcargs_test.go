package svcargs

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Zero values leave the service's defaults: no flag, no variable. (What each option means to
// the service is checked by cmd/wsmanager's TestServiceCommandLine with its own flag parser.)
func TestZeroOptionsAddNothing(t *testing.T) {
	assert.Empty(t, Options{}.Args())
	assert.Empty(t, Options{}.Environ())
	assert.Equal(t, []string{"--lifecycle-topic", ""}, Options{LifecycleTopic: "ignored", NoLifecycleEvents: true}.Args())
	assert.Equal(t, []string{"--grpc-port", "1", "--x"}, Options{GRPCPort: 1, Extra: []string{"--x"}}.Args(), "extra flags last")
}
