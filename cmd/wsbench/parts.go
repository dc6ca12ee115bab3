package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/websocketmanager/websocketmanager/actors"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

func timeN(n int, f func() error) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// rtt measures the Send round trip beside its floors: a bare gRPC unary call, a bare gorilla
// WebSocket echo, and a bare Dapr actor call.
func (b *bench) rtt(ctx context.Context) error {
	s, err := b.startSingle(ctx)
	if err != nil {
		return err
	}
	n := b.o.rttN

	// Floor 1: a raw gRPC unary round trip on loopback (the standard health service).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()
	hc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer hc.Close()
	h := healthpb.NewHealthClient(hc)
	grpcCall := func() error { _, err := h.Check(ctx, &healthpb.HealthCheckRequest{}); return err }
	// The same raw unary call to another process: the service's own health service, which does
	// no work, so this is the gRPC hop every Send pays (client and server in two processes).
	svcHealth := healthpb.NewHealthClient(s.conn)
	grpcXCall := func() error { _, err := svcHealth.Check(ctx, &healthpb.HealthCheckRequest{}); return err }
	// Floor 2: a raw gorilla WebSocket echo round trip against the same upstream server.
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, s.upstream+"/echo", nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	wsCall := func() error {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("Hello WebSocket!")); err != nil {
			return err
		}
		_, _, err := ws.ReadMessage()
		return err
	}
	// A bare Dapr actor call to a no-op method through the service's sidecar.
	ac := actors.NewClient(s.dapr)
	actorCall := func() error { return ac.Ping(ctx) }
	// The service: Send through gRPC → service → the connection → echo → back.
	conn, err := s.client.Connect(ctx, &pb.ConnectRequest{Url: s.upstream + "/echo", ConnectionId: "bench-rtt"})
	if err != nil {
		return err
	}
	sendCall := func() error {
		_, err := s.client.Send(ctx, &pb.SendRequest{Id: conn.GetConnectionId(), Message: "Hello WebSocket!", TimeoutMs: 5000})
		return err
	}

	results := map[string][]time.Duration{}
	calls := []struct {
		name string
		f    func() error
	}{{"grpc", grpcCall}, {"grpcx", grpcXCall}, {"ws", wsCall}, {"actor", actorCall}, {"send", sendCall}}
	for _, c := range calls { // warm up
		if _, err := timeN(200, c.f); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	// Interleave in rounds so that machine noise hits every series alike.
	for round := 0; round < 5; round++ {
		for _, c := range calls {
			d, err := timeN(n/5, c.f)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			results[c.name] = append(results[c.name], d...)
		}
	}
	g50, g99 := percentiles(results["grpc"])
	x50, x99 := percentiles(results["grpcx"])
	w50, w99 := percentiles(results["ws"])
	a50, a99 := percentiles(results["actor"])
	s50, s99 := percentiles(results["send"])
	floor := g50 + w50
	ratio := float64(s50) / float64(floor)
	b.add("1 Send round trip", "floor: raw gRPC unary p50 / p99", us(g50)+" / "+us(g99), "", "")
	b.add("1 Send round trip", "raw gRPC unary to another process (the service's health service) p50 / p99", us(x50)+" / "+us(x99), "", "")
	b.add("1 Send round trip", "floor: raw WebSocket echo p50 / p99", us(w50)+" / "+us(w99), "", "")
	b.add("1 Send round trip", "floor: gRPC + WebSocket p50", us(floor), "", "")
	b.add("1 Send round trip", "gRPC to another process + WebSocket p50", us(x50+w50), "", "")
	b.add("1 Send round trip", "bare Dapr actor call (no-op) p50 / p99", us(a50)+" / "+us(a99), "", "")
	b.add("1 Send round trip", "Send p50 / p99", us(s50)+" / "+us(s99), "", "")
	b.add("1 Send round trip", "Send p50 ÷ floor p50", fmt.Sprintf("%.2f×", ratio), "≤ 2×", verdict(ratio <= 2))
	b.add("1 Send round trip", "Send p99", us(s99), "≤ 1 ms", verdict(s99 <= time.Millisecond))
	b.add("1 Send round trip", "Send p50 ÷ (gRPC to another process + WebSocket) p50", fmt.Sprintf("%.2f×", float64(s50)/float64(x50+w50)), "", "")
	b.add("1 Send round trip", "Send p50 ÷ bare actor call p50", fmt.Sprintf("%.2f×", float64(s50)/float64(a50)), "", "")
	// Where a Send's time goes: the service's own CPU per Send (the rest is waiting, mostly
	// for the processes on the path to be woken), and with --profile, a CPU profile of it.
	profiled := make(chan error, 1)
	profPath := ""
	if b.o.profile {
		profPath = filepath.Join(b.outDir, time.Now().UTC().Format("2006-01-02")+"-send-profile.txt")
		go func() { profiled <- b.cpuProfile(ctx, 5*time.Second, profPath) }()
	} else {
		profiled <- nil
	}
	_, cpu0, err := procStat(s.svc.Pid())
	if err != nil {
		return err
	}
	sends := 0
	for start := time.Now(); time.Since(start) < 5*time.Second; sends++ {
		if err := sendCall(); err != nil {
			return err
		}
	}
	_, cpu1, err := procStat(s.svc.Pid())
	if err != nil {
		return err
	}
	if perr := <-profiled; perr != nil {
		fmt.Fprintln(os.Stderr, "wsbench: profile:", perr)
	} else if profPath != "" {
		fmt.Fprintln(os.Stderr, "wsbench: service CPU profile of Sends written to", profPath)
	}
	b.add("1 Send round trip", "the service's CPU per Send (one at a time)", us((cpu1-cpu0)/time.Duration(sends)), "", "")
	_, err = s.client.Disconnect(ctx, &pb.DisconnectRequest{Id: conn.GetConnectionId()})
	return err
}

// pipeline measures Send throughput on one connection to a server that answers each JSON
// request by id after 20 ms, out of order, with 1, 16 and 64 Sends in flight.
func (b *bench) pipeline(ctx context.Context) error {
	s, err := b.startSingle(ctx)
	if err != nil {
		return err
	}
	conn, err := s.client.Connect(ctx, &pb.ConnectRequest{Url: s.upstream + "/jsonrpc", ConnectionId: "bench-pipeline"})
	if err != nil {
		return err
	}
	defer func() { _, _ = s.client.Disconnect(ctx, &pb.DisconnectRequest{Id: conn.GetConnectionId()}) }()
	rates := map[int]float64{}
	for _, inflight := range []int{1, 16, 64} {
		var done atomic.Int64
		var firstErr error
		var once sync.Once
		deadline := time.Now().Add(b.o.pipeFor)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range inflight {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline); i++ {
					// Random-ish delays around 20 ms so that replies come back out of order.
					delay := 15 + (w*7+i*13)%11
					msg := fmt.Sprintf(`{"id":"w%d-%d","delay_ms":%d}`, w, i, delay)
					if _, err := s.client.Send(ctx, &pb.SendRequest{Id: conn.GetConnectionId(), Message: msg, TimeoutMs: 5000}); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		rates[inflight] = float64(done.Load()) / time.Since(start).Seconds()
		b.add("2 pipelined Send, one connection", fmt.Sprintf("%d in flight", inflight), fmt.Sprintf("%.0f Sends/s", rates[inflight]), "", "")
	}
	x := rates[16] / rates[1]
	b.add("2 pipelined Send, one connection", "16 in flight ÷ 1 in flight", fmt.Sprintf("%.1f×", x), "≥ 10×", verdict(x >= 10))
	return nil
}

// publish is in publish.go.

// scaleOut measures connects per second, memory per connection and idle CPU on one instance.
func (b *bench) scaleOut(ctx context.Context) error {
	s, err := b.startSingle(ctx)
	if err != nil {
		return err
	}
	pid := s.svc.Pid()
	floor, err := b.actorCallRate(ctx, s)
	if err != nil {
		return err
	}
	for _, n := range b.o.scale {
		rss0, _, err := procStat(pid)
		if err != nil {
			return err
		}
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("scale-%d-%d", n, i)
		}
		profiled := make(chan error, 1)
		profPath := ""
		if b.o.profile && n == slices.Max(b.o.scale) {
			profPath = filepath.Join(b.outDir, fmt.Sprintf("%s-connect-%d-profile.txt", time.Now().UTC().Format("2006-01-02"), n))
			go func() { profiled <- b.cpuProfile(ctx, 10*time.Second, profPath) }()
		} else {
			profiled <- nil
		}
		cpuBefore := snapshotCPU(s.st)
		start := time.Now()
		err = parallel(ids, 64, func(id string) error {
			_, err := s.client.Connect(ctx, &pb.ConnectRequest{Url: s.upstream + "/echo?cid=" + id, ConnectionId: id})
			return err
		})
		took := time.Since(start)
		connectShares := cpuShares(cpuBefore, snapshotCPU(s.st), took)
		if perr := <-profiled; perr != nil {
			fmt.Fprintln(os.Stderr, "wsbench: profile:", perr)
		} else if profPath != "" {
			fmt.Fprintln(os.Stderr, "wsbench: service CPU profile of the connects written to", profPath)
		}
		if err != nil {
			b.add("4 scale, one instance", fmt.Sprintf("%d connections", n), "connect failed: "+err.Error(), "", "FAILED")
			_ = parallel(ids, 64, func(id string) error {
				_, _ = s.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id})
				return nil
			})
			continue
		}
		rate := float64(n) / took.Seconds()
		time.Sleep(5 * time.Second) // let the heap settle before reading memory (a measurement, not an assertion)
		rss1, cpu0, err := procStat(pid)
		if err != nil {
			return err
		}
		idleBefore := snapshotCPU(s.st)
		idle := 15 * time.Second
		time.Sleep(idle)
		_, cpu1, err := procStat(pid)
		if err != nil {
			return err
		}
		idleShares := cpuShares(idleBefore, snapshotCPU(s.st), idle)
		per := (rss1 - rss0) / int64(n)
		cpuPct := 100 * float64(cpu1-cpu0) / float64(idle)
		sec := "4 scale, one instance"
		b.add(sec, fmt.Sprintf("%d connections: connects/s", n), fmt.Sprintf("%.0f", rate), "≥ 500/s", verdict(rate >= 500))
		b.add(sec, fmt.Sprintf("%d connections: connects/s ÷ bare actor calls/s (same concurrency)", n), fmt.Sprintf("%.2f", rate/floor), "", "")
		b.add(sec, fmt.Sprintf("%d connections: RSS per connection", n), fmt.Sprintf("%.1f KB", float64(per)/1024), "≤ 64 KB", verdict(per <= 64*1024))
		b.add(sec, fmt.Sprintf("%d connections: CPU while idle (pings on)", n), fmt.Sprintf("%.1f%% of one core", cpuPct), "", "")
		b.add(sec, fmt.Sprintf("%d connections: CPU by process during the connects", n), connectShares, "", "")
		b.add(sec, fmt.Sprintf("%d connections: CPU by process while idle", n), idleShares, "", "")
		if err := parallel(ids, 64, func(id string) error {
			_, err := s.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id})
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// actorCallRate measures the floor of anything that goes through an actor: no-op actor calls
// (Ping on the 64 directory shards, so that turns do not queue on one actor) through the
// service's sidecar, 64 in flight as the Connects are, and the CPU they cost by process.
func (b *bench) actorCallRate(ctx context.Context, s *singleStack) (float64, error) {
	const n = 10000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(i % 64)
	}
	before := snapshotCPU(s.st)
	start := time.Now()
	err := parallel(ids, 64, func(shard string) error {
		_, err := s.dapr.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: actors.DirectoryType, ActorID: shard,
			Method: actors.DirectoryMethodPing, Data: []byte("{}")})
		return err
	})
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("actor call floor: %w", err)
	}
	rate := float64(n) / took.Seconds()
	sec := "4 scale, one instance"
	b.add(sec, "bare actor calls/s (no-op on 64 actors, 64 in flight): the floor of one actor call", fmt.Sprintf("%.0f", rate), "", "")
	b.add(sec, "bare actor calls: CPU by process", cpuShares(before, snapshotCPU(s.st), took), "", "")
	return rate, nil
}

// parallel runs f for every id with at most n at once and returns the first error.
func parallel(ids []string, n int, f func(string) error) error {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(id); err != nil {
				once.Do(func() { first = fmt.Errorf("%s: %w", id, err) })
			}
		})
	}
	wg.Wait()
	return first
}
