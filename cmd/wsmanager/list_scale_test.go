//go:build integration

package main_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// listPages follows next_page_token from req through instance in and returns every page.
func listPages(t *testing.T, in *instance, req *pb.ListRequest) [][]*pb.WebSocketConnection {
	t.Helper()
	var pages [][]*pb.WebSocketConnection
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := in.client.List(ctx, req)
		cancel()
		require.NoError(t, err)
		pages = append(pages, resp.GetConnections())
		if resp.GetNextPageToken() == "" {
			return pages
		}
		require.Less(t, len(pages), 1000, "paging does not end")
		req.PageToken = resp.GetNextPageToken()
	}
}

func flat(pages [][]*pb.WebSocketConnection) []string {
	var ids []string
	for _, p := range pages {
		for _, c := range p {
			ids = append(ids, c.GetId())
		}
	}
	return ids
}

// Ensure List on the real runtime with two instances: whole and in pages (every id exactly
// once, in id order), filtered by status and tags, invalid paging refused; that listing dials
// and activates nothing (no handshake at the server because of it, a Disconnected id never
// re-created); and that right after an instance is killed, List answers, showing its
// connections as held by no instance or already re-established.
func TestListScales(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")

	const n = 300
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, fmt.Sprintf("ls-%03d", i))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() { // assert, not require: not the test's goroutine
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := []*instance{a, b}[i%2].client.Connect(ctx, &pb.ConnectRequest{Url: ws.URL("/echo?cid=" + id), ConnectionId: id,
				AutoReconnect: true, Tags: map[string]string{"half": []string{"even", "odd"}[i%2]}})
			if assert.NoError(t, err, id) {
				assert.Equal(t, pb.ConnectionStatus_CONNECTED, resp.GetStatus(), id)
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed(), "every connection connected")
	// One connection that is gone: List must never bring it back.
	connectVia(t, a, &pb.ConnectRequest{Url: ws.URL("/echo?cid=ls-gone"), ConnectionId: "ls-gone"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err := b.client.Disconnect(ctx, &pb.DisconnectRequest{Id: "ls-gone"})
	cancel()
	require.NoError(t, err)

	handshakes := func() map[string]int {
		out := map[string]int{}
		for _, id := range append(slices.Clone(ids), "ls-gone") {
			out[id] = ws.Stats(id).Handshakes
		}
		return out
	}
	before := handshakes()

	// Whole, through either instance.
	whole := c.list("a")
	require.Len(t, whole, n)
	holders := map[string]int{}
	for _, conn := range whole {
		assert.Equal(t, pb.ConnectionStatus_CONNECTED, conn.GetStatus(), conn.GetId())
		holders[conn.GetInstanceId()]++
	}
	t.Logf("connections per instance: %v", holders)
	require.Len(t, holders, 2, "placement spreads the actors over both instances")
	fromB := c.list("b")
	for id, conn := range whole {
		assert.Equal(t, conn.GetInstanceId(), fromB[id].GetInstanceId(), id)
		assert.Equal(t, conn.GetTags(), fromB[id].GetTags(), id)
		assert.Equal(t, conn.GetUrl(), fromB[id].GetUrl(), id)
	}

	// Pages of 50: every id once, in id order.
	pages := listPages(t, b, &pb.ListRequest{PageSize: 50})
	assert.Len(t, pages, n/50)
	for _, p := range pages {
		assert.LessOrEqual(t, len(p), 50)
	}
	assert.Equal(t, ids, flat(pages))

	// Filters.
	assert.Len(t, flat(listPages(t, a, &pb.ListRequest{Status: pb.ConnectionStatus_CONNECTED, PageSize: 64})), n)
	assert.Empty(t, flat(listPages(t, a, &pb.ListRequest{Status: pb.ConnectionStatus_ERROR})))
	assert.Empty(t, flat(listPages(t, a, &pb.ListRequest{Status: pb.ConnectionStatus_CONNECTING, PageSize: 100})))
	even := flat(listPages(t, a, &pb.ListRequest{Tags: map[string]string{"half": "even"}, PageSize: 40}))
	require.Len(t, even, n/2)
	for _, id := range even {
		assert.Equal(t, "even", whole[id].GetTags()["half"], id)
	}
	assert.True(t, sort.StringsAreSorted(even))

	// Paging mistakes.
	for _, req := range []*pb.ListRequest{{PageSize: actors.MaxListPageSize + 1}, {PageSize: -1}, {PageSize: 10, PageToken: "not-a-token"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := a.client.List(ctx, req)
		cancel()
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v: %v", req, err)
	}
	assert.Equal(t, before, handshakes(), "listing dialed nothing")

	// --- Kill b: List answers at once, without dialing anything itself.
	victim := b.id
	onB := onInstance(whole, victim, true)
	require.NotEmpty(t, onB)
	c.kill("b")
	var first map[string]*pb.WebSocketConnection
	deadline := time.Now().Add(30 * time.Second)
	for first == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := a.client.List(ctx, &pb.ListRequest{})
		cancel()
		if err == nil {
			first = map[string]*pb.WebSocketConnection{}
			for _, conn := range resp.GetConnections() {
				first[conn.GetId()] = conn
			}
			break
		}
		// The directory shards b hosted move to a first (placement): List waits for them.
		t.Logf("List right after the kill: %v", err)
		require.True(t, time.Now().Before(deadline), "List did not answer after the kill: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
	require.Len(t, first, n)
	unheld := 0
	for _, id := range onB {
		conn := first[id]
		require.NotNil(t, conn, id)
		assert.NotEqual(t, victim, conn.GetInstanceId(), "%s: not listed as held by the dead instance", id)
		if conn.GetInstanceId() == "" {
			unheld++
			assert.Equal(t, pb.ConnectionStatus_CONNECTING, conn.GetStatus(), id)
			assert.Equal(t, actors.UnheldReason, conn.GetLastError(), id)
		}
	}
	t.Logf("right after the kill: %d of %d connections of the dead instance held by no instance", unheld, len(onB))

	// The watchdog brings them back; List keeps answering meanwhile.
	waitListed(t, c, "a", func(m map[string]*pb.WebSocketConnection) bool {
		for _, id := range onB {
			if m[id].GetStatus() != pb.ConnectionStatus_CONNECTED || m[id].GetInstanceId() != a.id {
				return false
			}
		}
		return len(m) == n
	})
	after := handshakes()
	for _, id := range ids {
		if slices.Contains(onB, id) {
			assert.GreaterOrEqual(t, after[id], before[id]+1, "%s re-established", id)
			continue
		}
		assert.Equal(t, before[id], after[id], "%s: held by a all along; no List dialed it", id)
	}
	assert.Equal(t, 1, after["ls-gone"], "a Disconnected connection is never re-created by List")
	assert.NotContains(t, c.list("a"), "ls-gone")
	oneSocket(t, ws, "list")
}
