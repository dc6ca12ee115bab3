package service

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/websocketmanager/websocketmanager/actors"
)

// Ensure a connection listed from the directory (no creation time known) leaves created_at
// unset instead of showing 0001-01-01, and a known one is shown.
func TestConnectionOfCreatedAt(t *testing.T) {
	unheld := connectionOf(actors.ConnectionInfo{ID: "c1", Status: actors.StatusConnecting, LastError: actors.UnheldReason})
	assert.Nil(t, unheld.GetCreatedAt())

	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	held := connectionOf(actors.ConnectionInfo{ID: "c2", CreatedAt: t0})
	assert.Equal(t, t0, held.GetCreatedAt().AsTime())
}
