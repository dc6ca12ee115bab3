//go:build integration

package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure an instance started with another --directory-shards than the directory recorded
// stops at start and says what to do, while the instance with the recorded count serves on.
func TestDirectoryShardCountMismatchStops(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// a records the count (64) with its first announcement.
	require.Eventually(t, func() bool {
		return slices.Contains(shardZeroHolders(t, ctx, a), a.grpcAddr)
	}, time.Minute, 200*time.Millisecond, "instance a announced itself")

	ports, err := daprstack.FreePorts(3)
	require.NoError(t, err)
	d, err := c.st.StartDaprd(c.bin, c.rt, daprstack.DaprdOptions{Name: "daprd-b-32", AppID: c.appID,
		AppPort: ports[2], ResourcesPath: c.resources, AppHealthCheck: true})
	require.NoError(t, err)
	o := svcargs.Options{GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: d.GRPCAddr(),
		InstanceID: "b-32", LifecycleTopic: c.lifecycle, APITokens: []string{clusterToken}, PeerTokens: []string{clusterPeerKey},
		DialAllow: svcargs.Loopback, Extra: []string{"--directory-shards", "32"}}
	b, err := c.st.Start("wsmanager-b-32", o.Environ(), env.svcBin, o.Args()...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Kill(); d.Kill() })
	require.Eventually(t, b.Exited, 2*time.Minute, 200*time.Millisecond, "the instance with 32 shards stops")
	assert.Contains(t, b.Log(), "runs with --directory-shards 32 but the directory in this state store was created with 64 shards")
	assert.Contains(t, b.Log(), "docs/scaling.md")

	// Its pod goes, sidecar included; placement moves the actors it briefly hosted back to a.
	d.Kill()
	assert.Eventually(t, func() bool {
		_, err := a.client.List(ctx, &pb.ListRequest{})
		return err == nil
	}, time.Minute, 200*time.Millisecond, "the instance with the recorded count serves on")
}

// shardZeroHolders returns the holders directory shard "0" reports (announced instances too).
func shardZeroHolders(t *testing.T, ctx context.Context, in *instance) []string {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/actors/%s/0/method/%s", in.daprd.HTTPPort, actors.DirectoryType, actors.DirectoryMethodMembers)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader("{}"))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r actors.MembersReply
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	return r.Holders
}
