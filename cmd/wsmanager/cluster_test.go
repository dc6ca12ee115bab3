//go:build integration

package main_test

// A multi-instance stack for the scale-out tests: one placement and scheduler, N instances of
// the service (each with its own daprd, same app-id), the Redis components of components/, and
// a consumer daprd whose app is this test process.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

type cluster struct {
	t         *testing.T
	st        *daprstack.Stack
	rt        *daprstack.Runtime
	bin       string
	appID     string
	lifecycle string
	events    *eventSink

	mu        sync.Mutex
	instances map[string]*instance
	starts    int

	// resources is the components folder of the instances (default: the repository's Redis set);
	// extraArgs are added to every instance's command line, extraEnv to its environment.
	resources string
	extraArgs []string
	extraEnv  []string
}

type instance struct {
	name   string
	id     string // the instance_id List shows
	daprd  *daprstack.Daprd
	svc    *daprstack.Proc
	conn   *grpc.ClientConn
	client pb.WebSocketManagerClient
	// grpcAddr and httpAddr are the API ports (host:port).
	grpcAddr, httpAddr string
}

// newCluster starts placement, scheduler and a consumer subscribed to topics and the cluster's
// lifecycle topic. Everything stops when the test ends.
func newCluster(t *testing.T, topics ...string) *cluster {
	t.Helper()
	return newClusterWith(t, filepath.Join(env.root, "components"), topics...)
}

// newClusterWith is newCluster with the components (actor state store and pub/sub) in
// resources, for the instances and the consumer.
func newClusterWith(t *testing.T, resources string, topics ...string) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := uuid.NewString()[:8]
	st, err := daprstack.NewStack(filepath.Join(env.tmp, "cluster-"+run))
	require.NoError(t, err)
	t.Cleanup(st.Stop)
	bin := daprstack.BinDir(env.root)
	rt, err := st.StartRuntime(ctx, bin, 0, 0)
	require.NoError(t, err)
	c := &cluster{t: t, st: st, rt: rt, bin: bin, appID: "wsmanager-scale-" + run,
		lifecycle: "scale-" + run + "-lifecycle", events: newEventSink(), instances: map[string]*instance{},
		resources: resources}

	subscribed := append([]string{c.lifecycle}, topics...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: c.events.handler(subscribed), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	consumer, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{Name: "consumer", AppID: "consumer-" + run,
		AppPort: l.Addr().(*net.TCPAddr).Port, ResourcesPath: resources})
	require.NoError(t, err)
	require.NoError(t, consumer.WaitSubscriptions(ctx, len(subscribed)))
	return c
}

// start starts (or restarts) the instance called name and waits until it hosts actors. A free
// port can be taken by another process between choosing and binding it (the machine churns
// through ephemeral ports here), so a start whose sidecar exits at once is tried again.
func (c *cluster) start(name string) *instance {
	c.t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var in *instance
		if in, err = c.tryStart(name); err == nil {
			return in
		}
		c.t.Logf("starting instance %s, attempt %d: %v", name, attempt, err)
	}
	require.NoError(c.t, err)
	return nil
}

// clusterToken is the API token of the instances of a test cluster; clusterPeerKey their
// peer key.
const (
	clusterToken   = "cluster-token"
	clusterPeerKey = "cluster-peer-key"
)

func (c *cluster) tryStart(name string) (*instance, error) {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.mu.Lock()
	c.starts++
	n := c.starts
	c.mu.Unlock()
	ports, err := daprstack.FreePorts(3)
	if err != nil {
		return nil, err
	}
	in := &instance{name: name, id: fmt.Sprintf("%s-%d", name, n),
		grpcAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]), httpAddr: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	in.daprd, err = c.st.StartDaprd(c.bin, c.rt, daprstack.DaprdOptions{Name: fmt.Sprintf("daprd-%s-%d", name, n), AppID: c.appID,
		AppPort: ports[2], ResourcesPath: c.resources, AppHealthCheck: true})
	if err != nil {
		return nil, err
	}
	// The instances share an API token and a peer key (forwarded Sends, the watchdog's Held
	// calls and event following prove themselves with the key).
	o := svcargs.Options{
		GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: in.daprd.GRPCAddr(),
		InstanceID: in.id, LifecycleTopic: c.lifecycle,
		APITokens: []string{clusterToken}, PeerTokens: []string{clusterPeerKey},
		DialAllow:    svcargs.Loopback, // the tests' servers are on loopback, denied by default
		PingInterval: time.Second, PongTimeout: 2 * time.Second, ReconnectInitial: 100 * time.Millisecond, ReconnectMax: time.Second,
		Extra: c.extraArgs, Env: c.extraEnv,
	}
	in.svc, err = c.st.Start(fmt.Sprintf("wsmanager-%s-%d", name, n), o.Environ(), env.svcBin, o.Args()...)
	if err != nil {
		in.daprd.Kill()
		return nil, err
	}
	if err = in.daprd.WaitActorsReady(ctx); err == nil {
		// The sidecar probes the app's health before it routes actor calls to it.
		err = daprstack.WaitActorCall(ctx, in.daprd.Proc, in.daprd.HTTPPort, "WebSocketConnectionDirectory", "0", "ping")
	}
	if err != nil {
		in.svc.Kill()
		in.daprd.Kill()
		return nil, err
	}
	in.conn, err = grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", ports[0]), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearerCreds(clusterToken)))
	if err != nil {
		return nil, err
	}
	in.client = pb.NewWebSocketManagerClient(in.conn)
	c.mu.Lock()
	c.instances[name] = in
	c.mu.Unlock()
	t.Cleanup(func() { _ = in.conn.Close() })
	return in, nil
}

// kill ends the instance at once: SIGKILL to the service and its daprd, as a crash would.
func (c *cluster) kill(name string) {
	in := c.instance(name)
	in.svc.Kill()
	in.daprd.Kill()
}

// stop ends the instance as Kubernetes would: SIGTERM to the service and its daprd together.
func (c *cluster) stop(name string) {
	in := c.instance(name)
	var wg sync.WaitGroup
	wg.Go(func() { in.svc.Stop(30 * time.Second) })
	wg.Go(func() { in.daprd.Stop(30 * time.Second) })
	wg.Wait()
}

func (c *cluster) instance(name string) *instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.instances[name]
}

// list returns List as seen through instance name, by connection id.
func (c *cluster) list(name string) map[string]*pb.WebSocketConnection {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.instance(name).client.List(ctx, &pb.ListRequest{})
	require.NoError(c.t, err)
	out := map[string]*pb.WebSocketConnection{}
	for _, conn := range resp.GetConnections() {
		out[conn.GetId()] = conn
	}
	return out
}
