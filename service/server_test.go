package service

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
)

func TestSendTimeout(t *testing.T) {
	s := New(DefaultConfig(), nil, nil)
	tests := []struct {
		name string
		give int32
		want time.Duration
		code codes.Code
	}{
		{"zero means default", 0, 10 * time.Second, codes.OK},
		{"negative means default", -5, 10 * time.Second, codes.OK},
		{"given", 5000, 5 * time.Second, codes.OK},
		{"maximum", 300000, 5 * time.Minute, codes.OK},
		{"above maximum", 300001, 0, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.sendTimeout(tt.give)
			assert.Equal(t, tt.code, codeFor(err))
			assert.Equal(t, tt.want, got)
		})
	}
}
