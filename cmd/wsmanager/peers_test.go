//go:build integration

package main_test

// Calls between instances: who may make them, where they may go, and the WatchEvents limits.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure the peer API refuses API callers (a token is not a peer credential), and that the
// forwarded marker from an API caller does not skip routing: a Send marked as forwarded to an
// instance that does not hold the socket still reaches it and gets the reply.
func TestPeerCallsNeedPeerCredential(t *testing.T) {
	ctx := callCtx(t)
	peer := pb.NewWebSocketManagerPeerClient(env.conn) // carries the API token
	_, err := peer.Held(ctx, &pb.HeldRequest{Ids: []string{"x"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "Held with an API token: %v", err)
	forged := metadata.AppendToOutgoingContext(ctx, "x-wsm-peer", "v1.1800000000.AAAA")
	_, err = peer.Held(forged, &pb.HeldRequest{Ids: []string{"x"}})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "Held with a forged peer proof: %v", err)
	_, err = env.client.List(forged, &pb.ListRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a forged peer proof is refused on the API too: %v", err)

	ws := sessiontest.NewServer(t, time.Hour)
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	for i := range 16 { // placement puts all 16 on one instance once in 32,768 runs
		connectVia(t, a, &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: fmt.Sprint("pm-", i)})
	}
	var onB string
	for id, conn := range c.list("a") {
		if conn.GetInstanceId() == b.id {
			onB = id
		}
	}
	require.NotEmpty(t, onB, "placement put one of 16 connections on b")
	marked := metadata.AppendToOutgoingContext(callCtx(t), "x-wsm-forwarded", "1")
	resp, err := a.client.Send(marked, &pb.SendRequest{Id: onB, Message: "marked", TimeoutMs: 5000})
	require.NoError(t, err, "a Send marked as forwarded by an API caller is routed like any other")
	assert.Equal(t, "marked", resp.GetResponse())
	_, err = a.client.SendRaw(marked, &pb.SendRawRequest{Id: onB, Message: "marked raw"})
	require.NoError(t, err)
	_, err = pb.NewWebSocketManagerPeerClient(a.conn).Held(callCtx(t), &pb.HeldRequest{Ids: []string{onB}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
}

// Ensure an instance address written into the directory that the peer policy does not allow
// is never dialed — neither by the failover watchdog (the holder of a member) nor by event
// following (an announced instance) — so no peer proof or payload goes there; the false
// record is corrected through the actors.
func TestPeerPolicyRefusesPublicAddress(t *testing.T) {
	// A listener that records every connection, on an address the instance's peer policy
	// does not allow (127.0.0.2 stands in for a public address: the machine has no other).
	rogue, dialed := sessiontest.CountingListener(t, "127.0.0.2:0")

	c := newCluster(t)
	c.extraArgs = []string{"--peer-deny", "127.0.0.2", "--watchdog-interval", "1s"}
	a := c.start("a")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Follow events (this makes the instance look for other instances every few seconds).
	st, err := a.client.WatchEvents(ctx, &pb.WatchEventsRequest{})
	require.NoError(t, err)
	go func() {
		for {
			if _, err := st.Recv(); err != nil {
				return
			}
		}
	}()

	ghost := "ghost-" + fmt.Sprint(time.Now().UnixNano())
	directory := func(shard, method, body string) {
		url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/actors/%s/%s/method/%s", a.daprd.HTTPPort, actors.DirectoryType, shard, method)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", method, out)
		require.NotContains(t, string(out), `"error"`, "%s: %s", method, out)
	}
	directory("0", actors.DirectoryMethodAnnounce, fmt.Sprintf(`{"addr":%q}`, rogue))
	directory(actors.DirectoryShard(ghost), actors.DirectoryMethodAdd, fmt.Sprintf(`{"id":%q,"holder":%q}`, ghost, rogue))

	require.Eventually(t, func() bool {
		return strings.Contains(a.svc.Log(), "the peer policy refuses it") && strings.Contains(a.svc.Log(), rogue)
	}, 30*time.Second, 100*time.Millisecond, "the instance considered the address and refused it")
	// The watchdog asked the ghost's actor instead: it does not exist, so it leaves the directory.
	require.Eventually(t, func() bool {
		ok := false
		for _, id := range membersOf(t, ctx, a, actors.DirectoryShard(ghost)) {
			ok = ok || id == ghost
		}
		return !ok
	}, 30*time.Second, 200*time.Millisecond, "the false member is removed through its actor")
	assert.Equal(t, int32(0), dialed.Load(), "nothing connected to the refused address")
	assert.Positive(t, scrape(t, "http://"+a.httpAddr)["wsmanager_peer_addresses_refused_total"], "the refusal is counted")
}

// membersOf returns the ids of a directory shard, read through instance in's sidecar.
func membersOf(t *testing.T, ctx context.Context, in *instance, shard string) []string {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/actors/%s/%s/method/%s", in.daprd.HTTPPort, actors.DirectoryType, shard, actors.DirectoryMethodMembers)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader("{}"))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r actors.MembersReply
	require.NoError(t, json.Unmarshal(body, &r), "%s", body)
	return r.IDs
}

// Ensure WatchEvents streams are bounded per caller and per instance (RESOURCE_EXHAUSTED
// beyond, naming the flag), and that a closed stream frees its place.
func TestWatchEventsLimits(t *testing.T) {
	ws := sessiontest.NewServer(t, time.Hour)
	c := newCluster(t)
	c.extraArgs = []string{"--max-watch-streams", "3", "--max-watch-streams-per-caller", "2",
		"--api-tokens", clusterToken + ",second-caller,third-caller"}
	a := c.start("a")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	as := func(ctx context.Context, token string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	conn, err := grpc.NewClient(a.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())) // a.conn sends clusterToken
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewWebSocketManagerClient(conn)
	// open starts a stream; it is served until its context ends, its events arrive on the
	// channel, which closes when the stream ends.
	open := func(token string) (<-chan *pb.LifecycleEvent, context.CancelFunc) {
		sctx, stop := context.WithCancel(ctx)
		st, err := client.WatchEvents(as(sctx, token), &pb.WatchEventsRequest{ThisInstanceOnly: true})
		require.NoError(t, err)
		events := make(chan *pb.LifecycleEvent, 64)
		go func() {
			defer close(events)
			for {
				ev, err := st.Recv()
				if err != nil {
					return
				}
				select {
				case events <- ev:
				default: // the test reads only probe events; others may go
				}
			}
		}()
		return events, stop
	}
	// sees connects and disconnects a probe connection and reports whether the stream saw its
	// event within 2 s, or ended.
	probes := 0
	sees := func(events <-chan *pb.LifecycleEvent) (seen, ended bool) {
		probes++
		id := fmt.Sprint("limit-probe-", probes)
		connectVia(t, a, &pb.ConnectRequest{Url: ws.URL("/echo"), ConnectionId: id})
		_, _ = a.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id})
		deadline := time.After(2 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return false, true
				}
				if ev.GetConnectionId() == id {
					return true, false
				}
			case <-deadline:
				return false, false
			}
		}
	}
	// served waits until every stream has seen a probe's event: the instance serves them all.
	// (Opening a stream returns before the instance counted it: on a loaded CI machine a probe
	// still being served made the stream opened after it the refused one.)
	served := func(streams ...<-chan *pb.LifecycleEvent) {
		t.Helper()
		for _, events := range streams {
			require.Eventually(t, func() bool {
				seen, ended := sees(events)
				require.False(t, ended, "a stream within the limits is served")
				return seen
			}, 30*time.Second, 10*time.Millisecond)
		}
	}
	// refused opens a stream and reports the limit that refused it ("" if served). A refusal
	// comes at once.
	refused := func(token string) string {
		pctx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		st, err := client.WatchEvents(as(pctx, token), &pb.WatchEventsRequest{ThisInstanceOnly: true})
		if err != nil {
			return ""
		}
		_, err = st.Recv()
		if status.Code(err) != codes.ResourceExhausted {
			return ""
		}
		return status.Convert(err).Message()
	}

	first, stopFirst := open("second-caller")
	second, stopSecond := open("second-caller")
	defer stopSecond()
	served(first, second)
	assert.Contains(t, refused("second-caller"), "--max-watch-streams-per-caller", "a third stream of one caller is refused")
	third, stopThird := open("third-caller")
	defer stopThird()
	served(third)
	assert.Contains(t, refused(clusterToken), "--max-watch-streams)", "a fourth stream on the instance is refused, whoever asks")

	// A closed stream frees its place: a new stream of that caller is served (it sees events).
	stopFirst()
	for range first { // ends when the stream has
	}
	require.Eventually(t, func() bool { // the instance may not have seen the close yet
		events, stop := open("second-caller")
		defer stop()
		seen, _ := sees(events)
		return seen
	}, 30*time.Second, 100*time.Millisecond)
}
