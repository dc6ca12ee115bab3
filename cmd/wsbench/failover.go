package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// failoverPart measures, for each size, how long the connections of a killed instance take to
// come back on the surviving one: two instances with the Redis state store, SIGKILL of one
// (service and sidecar), time from the kill to each connection's new handshake at the server.
func (b *bench) failoverPart(ctx context.Context) error {
	for _, n := range b.o.failover {
		if err := b.failoverOnce(ctx, n); err != nil {
			b.add("5 failover", fmt.Sprintf("%d connections", n), "failed: "+err.Error(), "", "FAILED")
		}
	}
	return nil
}

func (b *bench) failoverOnce(ctx context.Context, n int) error {
	run := uuid.NewString()[:8]
	st, err := daprstack.NewStack(filepath.Join(b.dir, "failover-"+run))
	if err != nil {
		return err
	}
	defer st.Stop()
	bin := daprstack.BinDir(b.root)
	rt, err := st.StartRuntime(ctx, bin, 0, 0)
	if err != nil {
		return err
	}
	res, err := writeResources(b.dir, true)
	if err != nil {
		return err
	}
	h := sessiontest.NewHandler(time.Hour)
	srv := httptest.NewServer(h)
	defer func() { h.Close(); srv.Close() }()
	upstream := "ws" + strings.TrimPrefix(srv.URL, "http")

	type inst struct {
		svc, daprd *daprstack.Proc
		client     pb.WebSocketManagerClient
		id         string
	}
	start := func(name string) (*inst, error) {
		ports, err := daprstack.FreePorts(3)
		if err != nil {
			return nil, err
		}
		d, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{Name: "daprd-" + name, AppID: "wsmanager-failover-" + run, AppPort: ports[2], ResourcesPath: res, AppHealthCheck: true})
		if err != nil {
			return nil, err
		}
		// A peer key shared by both instances: the watchdog asks the other instance what it holds.
		o := svcargs.Options{GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: d.GRPCAddr(),
			InstanceID: name, LogLevel: "warn", NoLifecycleEvents: true, PeerTokens: []string{"failover-" + run},
			DialAllow: svcargs.Loopback} // the benchmark's servers are on loopback, denied by default
		svc, err := st.Start("wsmanager-"+name, o.Environ(), filepath.Join(b.bins, "wsmanager"), o.Args()...)
		if err != nil {
			return nil, err
		}
		if err := d.WaitActorsReady(ctx); err != nil {
			return nil, err
		}
		conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", ports[0]), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		return &inst{svc: svc, daprd: d.Proc, client: pb.NewWebSocketManagerClient(conn), id: name}, nil
	}
	a, err := start("a")
	if err != nil {
		return err
	}
	bb, err := start("b")
	if err != nil {
		return err
	}
	ids := make([]string, 2*n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fo-%d", i)
	}
	if err := parallel(ids, 32, func(id string) error {
		_, err := a.client.Connect(ctx, &pb.ConnectRequest{Url: upstream + "/echo?cid=" + id, ConnectionId: id, AutoReconnect: true})
		return err
	}); err != nil {
		return err
	}
	list, err := a.client.List(ctx, &pb.ListRequest{})
	if err != nil {
		return err
	}
	var lost []string
	for _, c := range list.GetConnections() {
		if c.GetInstanceId() == "b" {
			lost = append(lost, c.GetId())
		}
	}
	if len(lost) > n {
		lost = lost[:n]
	}
	killed := time.Now()
	bb.svc.Kill()
	bb.daprd.Kill()
	back := map[string]time.Duration{}
	for time.Since(killed) < 2*time.Minute && len(back) < len(lost) {
		for _, id := range lost {
			if _, ok := back[id]; ok {
				continue
			}
			for _, t := range h.Stats(id).Handshake {
				if t.After(killed) {
					back[id] = t.Sub(killed)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(back) < len(lost) {
		return fmt.Errorf("%d of %d connections back after 2 minutes", len(back), len(lost))
	}
	d := make([]time.Duration, 0, len(back))
	for _, v := range back {
		d = append(d, v)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	p50, maxD := d[len(d)/2], d[len(d)-1]
	b.add("5 failover (SIGKILL)", fmt.Sprintf("%d connections of the killed instance: p50 / max", len(lost)), ms(p50)+" / "+ms(maxD), "max ≤ 10 s", verdict(maxD <= 10*time.Second))
	return nil
}
