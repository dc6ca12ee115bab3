package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// The fleet part is `make bench-scale` (issue 16): several instances of one Dapr app id on
// loopback holding many idle connections, measured for connects per second, memory per
// connection, idle CPU, List (whole and paged, beside a bare actor call) and the failover of the
// instance holding the most connections. Every process belongs to one daprstack.Stack, which is
// stopped on every way out (return, failure, SIGINT/SIGTERM), and the run's actor state is then
// deleted from Redis.

// fleetOptions are the fleet part's flags.
type fleetOptions struct {
	timeout      time.Duration
	instances    int
	conns        int
	upstreams    int
	concurrency  int
	watchdog     time.Duration
	revive       int
	failoverWait time.Duration
	cap          int
}

func fleetFlags(o *fleetOptions) {
	flag.DurationVar(&o.timeout, "fleet-timeout", 9*time.Minute, "bound of the whole fleet part")
	flag.IntVar(&o.instances, "fleet-instances", 5, "instances (daprd + wsmanager) of the fleet")
	flag.IntVar(&o.conns, "fleet-conns", 100000, "connections the fleet opens")
	flag.IntVar(&o.upstreams, "fleet-upstreams", 8, "upstream server processes (each process may open 20,000 files on this machine)")
	flag.IntVar(&o.concurrency, "fleet-concurrency", 128, "Connects in flight at once")
	flag.DurationVar(&o.watchdog, "fleet-watchdog", 2*time.Second, "the services' --watchdog-interval (failover detection)")
	flag.IntVar(&o.revive, "fleet-revive", 32, "the services' --revive-concurrency")
	flag.DurationVar(&o.failoverWait, "fleet-failover-wait", time.Minute, "longest wait for the killed instance's connections to come back")
	flag.IntVar(&o.cap, "fleet-cap", 0, "the services' --max-connections (0: the open-file limit minus 500); a small cap tries the cap's paths with few connections")
}

const (
	// fdReserve is the part of the open-file limit an instance keeps for everything but
	// upstream sockets (its sidecar channel, gRPC clients, peers, logs).
	fdReserve = 500
	// fleetPageSize is the page of the paged List.
	fleetPageSize = 500
	// fleetActorCalls is the number of bare actor calls timed beside List.
	fleetActorCalls = 300
	// fleetIdle is the window the idle CPU is measured over.
	fleetIdle = 20 * time.Second
	// fleetRoom is the share of the survivors' capacity the fleet may fill before the kill, so
	// that an uneven spread of the dead instance's connections still fits under every cap
	// (placement's spread over 5 instances varied by ±12 %: at 0.9 one run left 180 connections
	// over a survivor's cap).
	fleetRoom = 0.8
)

// fleetInst is one instance: a sidecar and a service.
type fleetInst struct {
	id     string // --instance-id, as List reports it
	svc    *daprstack.Proc
	daprd  *daprstack.Daprd
	conn   *grpc.ClientConn
	client pb.WebSocketManagerClient
	dead   bool
	// RSS before the connect phase.
	svcRSS0, daprdRSS0 int64
}

type fleet struct {
	b     *bench
	o     fleetOptions
	st    *daprstack.Stack
	run   string
	appID string
	cap   int // per-instance --max-connections; 0: the service's default
	insts []*fleetInst
	ups   []string // upstream addresses host:port
	held  []string // ids whose Connect succeeded and that were not disconnected since
	// pprofAddr is instance 0's profile address, with --profile; daprdPprofAddr its sidecar's.
	pprofAddr, daprdPprofAddr string
	// phases are the phase durations, in order, for the log row.
	phases []string
}

func (f *fleet) sec(s string) string { return "6 fleet: " + s }

// phase runs one phase and records its duration.
func (f *fleet) phase(name string, fn func() error) error {
	fmt.Fprintf(os.Stderr, "wsbench: fleet: %s …\n", name)
	start := time.Now()
	err := fn()
	took := time.Since(start)
	f.phases = append(f.phases, fmt.Sprintf("%s %.1f s", name, took.Seconds()))
	fmt.Fprintf(os.Stderr, "wsbench: fleet: %s took %.1f s\n", name, took.Seconds())
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// fleetPart runs the fleet benchmark within its own time bound.
func (b *bench) fleetPart(ctx context.Context) error {
	o := b.o.fleet
	if o.instances < 2 || o.conns < 1 || o.upstreams < 1 || o.concurrency < 1 {
		return fmt.Errorf("the fleet needs at least 2 instances, 1 connection, 1 upstream and 1 Connect in flight")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	// Ctrl-C or a SIGTERM ends the part the ordinary way, so the deferred cleanup still stops
	// every process and deletes the run's Redis keys.
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	run := uuid.NewString()[:8]
	st, err := daprstack.NewStack(filepath.Join(b.dir, "fleet-"+run))
	if err != nil {
		return err
	}
	f := &fleet{b: b, o: o, st: st, run: run, appID: "wsm-scale-" + run}
	defer f.cleanup()

	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	// Go raises a process's soft limit to the hard one, so the hard limit is what each service
	// gets; it cannot hold more sockets than open files, so the cap says so with
	// RESOURCE_EXHAUSTED instead of failing dials.
	capText := "the service's default"
	switch {
	case o.cap > 0:
		f.cap = o.cap
		capText = fmt.Sprintf("--max-connections %d per instance (--fleet-cap)", f.cap)
	case rl.Max > fdReserve && rl.Max <= 1<<20:
		f.cap = int(rl.Max) - fdReserve
		capText = fmt.Sprintf("--max-connections %d per instance (the limit − %d)", f.cap, fdReserve)
	}
	// Each upstream process holds its share of the sockets, one file each.
	if per := (o.conns + o.upstreams - 1) / o.upstreams; rl.Max <= 1<<20 && per > int(rl.Max)-100 {
		return fmt.Errorf("%d connections per upstream server exceed the open-file limit %d: raise --fleet-upstreams", per, rl.Max)
	}
	b.add(f.sec("setup"), "open files per process (soft / hard)", fmt.Sprintf("%d / %d; %s", rl.Cur, rl.Max, capText), "", "")
	b.add(f.sec("setup"), "fleet", fmt.Sprintf("%d instances of app id %s (Redis actor state), %d upstream server processes, %d connections, %d Connects in flight, --watchdog-interval %v, --revive-concurrency %d",
		o.instances, f.appID, o.upstreams, o.conns, o.concurrency, o.watchdog, o.revive), "", "")

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"start", f.start}, {"connect", f.connect}, {"idle", f.idle}, {"list", f.list}, {"failover", f.failover},
	}
	for _, s := range steps {
		if err := f.phase(s.name, func() error { return s.fn(ctx) }); err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
			}
			return err
		}
	}
	return nil
}

// start starts placement, scheduler, the upstream servers and the instances, and waits until
// every sidecar hosts actors.
func (f *fleet) start(ctx context.Context) error {
	bin := daprstack.BinDir(f.b.root)
	rt, err := f.st.StartRuntime(ctx, bin, 0, 0)
	if err != nil {
		return err
	}
	res, err := writeResources(f.b.dir, true)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ports, err := daprstack.FreePorts(f.o.upstreams)
	if err != nil {
		return err
	}
	upProcs := make([]*daprstack.Proc, len(ports))
	for i, port := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if upProcs[i], err = f.st.Start(fmt.Sprintf("upstream-%d", i), nil, exe, upstreamFlag, addr); err != nil {
			return err
		}
		f.ups = append(f.ups, addr)
	}
	for i, p := range upProcs {
		if err := daprstack.WaitTCP(ctx, p, f.ups[i]); err != nil {
			return err
		}
	}
	extra := []string{"--revive-concurrency", strconv.Itoa(f.o.revive)}
	if f.cap > 0 {
		extra = append(extra, "--max-connections", strconv.Itoa(f.cap))
	}
	// All instances start at once and are waited for together: the sidecars' start-up is
	// mostly waiting (placement, app channel), so it overlaps. An instance whose sidecar or
	// service exits on the way (a port daprstack.FreePorts chose was taken before the process
	// bound it: daprd binds its gRPC port only after seconds) starts again with new ports.
	f.insts = make([]*fleetInst, f.o.instances)
	for i := range f.insts {
		if f.insts[i], err = f.startInst(rt, res, extra, i, 1); err != nil {
			return err
		}
	}
	for i := range f.insts {
		for attempt := 2; ; attempt++ {
			in := f.insts[i]
			err := f.waitReady(ctx, in)
			if err == nil {
				break
			}
			if ctx.Err() != nil || attempt > 3 || !in.svc.Exited() && !in.daprd.Exited() {
				return err
			}
			fmt.Fprintf(os.Stderr, "wsbench: fleet: instance %s did not start (%v); again with new ports\n", in.id, err)
			in.close()
			if f.insts[i], err = f.startInst(rt, res, extra, i, attempt); err != nil {
				return err
			}
		}
	}
	for _, in := range f.insts {
		var err error
		if in.svcRSS0, _, err = procStat(in.svc.Pid()); err != nil {
			return err
		}
		if in.daprdRSS0, _, err = procStat(in.daprd.Pid()); err != nil {
			return err
		}
	}
	return nil
}

// startInst starts instance i (its sidecar and its service) on new ports; attempt > 1 names
// the processes apart from the earlier attempt's.
func (f *fleet) startInst(rt *daprstack.Runtime, res string, extra []string, i, attempt int) (*fleetInst, error) {
	ports, err := daprstack.FreePorts(5)
	if err != nil {
		return nil, err
	}
	suffix := ""
	if attempt > 1 {
		suffix = fmt.Sprintf("-r%d", attempt)
	}
	in := &fleetInst{id: fmt.Sprintf("i%d", i)}
	pprof, daprdProfile := "", 0
	if i == 0 && f.b.o.profile {
		pprof = fmt.Sprintf("127.0.0.1:%d", ports[3])
		f.pprofAddr = pprof
		daprdProfile = ports[4]
		f.daprdPprofAddr = fmt.Sprintf("127.0.0.1:%d", ports[4])
	}
	if in.daprd, err = f.st.StartDaprd(daprstack.BinDir(f.b.root), rt, daprstack.DaprdOptions{Name: fmt.Sprintf("daprd-%d%s", i, suffix),
		AppID: f.appID, AppPort: ports[2], ResourcesPath: res, AppHealthCheck: true, ProfilePort: daprdProfile}); err != nil {
		return nil, err
	}
	// A peer key shared by every instance: List asks each instance what it holds, and the
	// watchdogs ask each other.
	so := svcargs.Options{GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: in.daprd.GRPCAddr(),
		InstanceID: in.id, LogLevel: "warn", NoLifecycleEvents: true, PeerTokens: []string{"fleet-" + f.run},
		DialAllow:        svcargs.Loopback, // the upstream servers are on loopback, denied by default
		WatchdogInterval: f.o.watchdog, PprofAddress: pprof, Extra: extra}
	if in.svc, err = f.st.Start(fmt.Sprintf("wsmanager-%d%s", i, suffix), so.Environ(), filepath.Join(f.b.bins, "wsmanager"), so.Args()...); err != nil {
		in.close()
		return nil, err
	}
	// A whole List of 100,000 connections is about 15 MB, beyond gRPC's default 4 MB.
	if in.conn, err = grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", ports[0]), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30))); err != nil {
		in.close()
		return nil, err
	}
	in.client = pb.NewWebSocketManagerClient(in.conn)
	return in, nil
}

// waitReady waits until the instance's sidecar hosts actors, or its sidecar or service exits.
func (f *fleet) waitReady(ctx context.Context, in *fleetInst) error {
	// The sidecar's wait sees only the sidecar exit; the watch sees the service. It ends with
	// the wait: cancel runs before Wait (deferred calls run last first).
	var watch sync.WaitGroup
	defer watch.Wait()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watch.Go(func() {
		for ctx.Err() == nil {
			if in.svc.Exited() {
				cancel(fmt.Errorf("%s exited; its log is %s", in.svc.Name, in.svc.LogPath()))
				return
			}
			_ = sleepCtx(ctx, 100*time.Millisecond)
		}
	})
	if err := in.daprd.WaitActorsReady(ctx); err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, ctx.Err()) {
			return c
		}
		return err
	}
	return nil
}

// close kills the instance's processes and closes its client.
func (in *fleetInst) close() {
	if in.conn != nil {
		_ = in.conn.Close()
	}
	in.kill()
}

// kill ends the service and its sidecar at once (SIGKILL), as a machine that dies loses both.
func (in *fleetInst) kill() {
	var kills sync.WaitGroup
	if in.svc != nil {
		kills.Go(in.svc.Kill)
	}
	if in.daprd != nil {
		kills.Go(in.daprd.Kill)
	}
	kills.Wait()
}

// connect opens the connections, spread round robin over the instances' APIs and the
// upstream servers.
func (f *fleet) connect(ctx context.Context) error {
	n := f.o.conns
	ids := make([]string, n)
	index := make(map[string]int, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("sc-%s-%d", f.run, i)
		index[ids[i]] = i
	}
	var (
		mu       sync.Mutex
		byCode   = map[codes.Code]int{}
		firstErr = map[codes.Code]error{}
		held     = make([]string, 0, n)
		done     atomic.Int64
	)
	// Progress every 10 s; the goroutine ends with the phase.
	start := time.Now()
	stopProgress := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				mu.Lock()
				ok, failed := len(held), int(done.Load())-len(held)
				mu.Unlock()
				fmt.Fprintf(os.Stderr, "wsbench: fleet: %d of %d Connects done (%d failed), %.0f/s\n",
					ok+failed, n, failed, float64(ok+failed)/time.Since(start).Seconds())
			}
		}
	})
	profiled := make(chan string, 1)
	if f.pprofAddr != "" {
		go func() { profiled <- f.profile(ctx, "connect") }()
	} else {
		profiled <- ""
	}
	cpu0 := snapshotCPU(f.st)
	_ = parallel(ids, f.o.concurrency, func(id string) error {
		i := index[id]
		in := f.insts[i%len(f.insts)]
		_, err := in.client.Connect(ctx, &pb.ConnectRequest{ConnectionId: id, AutoReconnect: true,
			Url: "ws://" + f.ups[i%len(f.ups)] + "/echo?cid=" + id})
		done.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			c := status.Code(err)
			byCode[c]++
			if firstErr[c] == nil {
				firstErr[c] = fmt.Errorf("%s via %s: %w", id, in.id, err)
			}
			return nil // counted: every Connect is tried
		}
		held = append(held, id)
		return nil
	})
	took := time.Since(start)
	cpu1 := snapshotCPU(f.st)
	close(stopProgress)
	progress.Wait()
	if p := <-profiled; p != "" {
		f.b.add(f.sec("connects"), "CPU profile of instance 0's service (and its daprd: -daprd) during the connects", p, "", "")
	}
	// The rows are written also when the part's time ran out or it was interrupted: the
	// Connects done so far are a measurement too.
	f.held = held
	sec := f.sec("connects")
	rate := float64(len(held)) / took.Seconds()
	per := rate / float64(len(f.insts))
	b := f.b
	b.add(sec, fmt.Sprintf("%d Connects (%d in flight) over %d instances: wall time", n, f.o.concurrency, len(f.insts)),
		fmt.Sprintf("%.1f s, %d held", took.Seconds(), len(held)), "", "")
	b.add(sec, "connects/s: fleet / per instance", fmt.Sprintf("%.0f / %.0f", rate, per), "≥ 1,500/s per instance", verdict(per >= 1500))
	b.add(sec, "CPU by process during the connects", cpuShares(cpu0, cpu1, took), "", "")
	b.add(sec, "CPU by kind during the connects", cpuGroups(cpu0, cpu1, took), "", "")
	exhausted, other := byCode[codes.ResourceExhausted], 0
	var otherText []string
	for c, k := range byCode {
		if c != codes.ResourceExhausted {
			other += k
			otherText = append(otherText, fmt.Sprintf("%s × %d (first: %v)", c, k, firstErr[c]))
		}
	}
	sort.Strings(otherText)
	exText := fmt.Sprintf("%d", exhausted)
	if exhausted > 0 {
		exText += fmt.Sprintf(" (expected where placement gives an instance more than its cap of %d; first: %v)", f.cap, firstErr[codes.ResourceExhausted])
	}
	b.add(sec, "RESOURCE_EXHAUSTED (the per-instance cap)", exText, "", "")
	otherValue := "0"
	if other > 0 {
		otherValue = fmt.Sprintf("%d: %s", other, strings.Join(otherText, "; "))
	}
	b.add(sec, "other Connect failures", otherValue, "0", verdict(other == 0))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped with %d of %d connections held: %w", len(held), n, err)
	}
	if len(held) == 0 {
		return errors.New("no Connect succeeded")
	}
	return nil
}

// profile takes a 10 s CPU profile of instance 0's service and its sidecar and returns where
// the service's top is written, the sidecar's beside it (or why not).
func (f *fleet) profile(ctx context.Context, what string) string {
	path := filepath.Join(f.b.outDir, fmt.Sprintf("%s-fleet-%s-profile.txt", time.Now().UTC().Format("2006-01-02"), what))
	// cpuProfile profiles the bench's one pprof address; the fleet parts run alone, so it is
	// pointed at instance 0 for the call and restored.
	saved, savedDaprd := f.b.pprofAddr, f.b.daprdPprofAddr
	f.b.pprofAddr, f.b.daprdPprofAddr = f.pprofAddr, f.daprdPprofAddr
	defer func() { f.b.pprofAddr, f.b.daprdPprofAddr = saved, savedDaprd }()
	if err := f.b.cpuProfile(ctx, 10*time.Second, path); err != nil {
		return "failed: " + err.Error()
	}
	return path
}

// cpuGroups sums the CPU use between two snapshots by kind of process: services, sidecars,
// placement, scheduler, upstream servers and this process (the clients), with the total.
func cpuGroups(before, after cpuSnapshot, over time.Duration) string {
	kinds := []struct{ label, prefix string }{
		{"services", "wsmanager"}, {"daprds", "daprd"}, {"placement", "placement"}, {"scheduler", "scheduler"},
		{"upstreams", "upstream"}, {"wsbench", "wsbench"},
	}
	sums := make([]float64, len(kinds))
	var total float64
	for name, c := range after {
		pct := 100 * float64(c-before[name]) / float64(over)
		total += pct
		for i, k := range kinds {
			if strings.HasPrefix(name, k.prefix) {
				sums[i] += pct
				break
			}
		}
	}
	parts := make([]string, 0, len(kinds)+1)
	for i, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", k.label, sums[i]))
	}
	parts = append(parts, fmt.Sprintf("total %.1f%% of one core", total))
	return strings.Join(parts, ", ")
}

// upStats reads every upstream server's stats; since > 0 asks for the handshakes after since
// from the log index from[i] on (from may be nil).
func (f *fleet) upStats(ctx context.Context, since int64, from []int) ([]upstreamStats, error) {
	out := make([]upstreamStats, len(f.ups))
	for i, addr := range f.ups {
		url := "http://" + addr + "/stats"
		if since > 0 {
			url += "?since=" + strconv.FormatInt(since, 10)
			if from != nil {
				url += "&from=" + strconv.Itoa(from[i])
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		err = json.NewDecoder(resp.Body).Decode(&out[i])
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("stats of upstream %s: %w", addr, err)
		}
	}
	return out, nil
}

func liveTotal(s []upstreamStats) (live, dups int, dupIDs []string) {
	for _, x := range s {
		live += x.Live
		dups += x.Duplicates
		dupIDs = append(dupIDs, x.DuplicateIDs...)
	}
	return live, dups, dupIDs[:min(len(dupIDs), maxDuplicateIDs)]
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// holders lists every connection through in and returns the ids by instance id.
func holders(ctx context.Context, in *fleetInst) (map[string][]string, int, error) {
	r, err := in.client.List(ctx, &pb.ListRequest{})
	if err != nil {
		return nil, 0, err
	}
	out := map[string][]string{}
	for _, c := range r.GetConnections() {
		out[c.GetInstanceId()] = append(out[c.GetInstanceId()], c.GetId())
	}
	return out, len(r.GetConnections()), nil
}

// idle measures the fleet at rest: CPU over fleetIdle, memory per connection per instance.
func (f *fleet) idle(ctx context.Context) error {
	sec := f.sec("idle")
	waitStart := time.Now()
	live := 0
	for time.Since(waitStart) < 20*time.Second {
		s, err := f.upStats(ctx, 0, nil)
		if err != nil {
			return err
		}
		if live, _, _ = liveTotal(s); live == len(f.held) {
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	f.b.add(sec, "sockets open at the upstream servers / connections held", fmt.Sprintf("%d / %d (after %.1f s)", live, len(f.held), time.Since(waitStart).Seconds()),
		"equal", verdict(live == len(f.held)))
	cpu0 := snapshotCPU(f.st)
	if err := sleepCtx(ctx, fleetIdle); err != nil {
		return err
	}
	cpu1 := snapshotCPU(f.st)
	f.b.add(sec, fmt.Sprintf("CPU of the whole fleet over %v (pings on)", fleetIdle), cpuGroups(cpu0, cpu1, fleetIdle), "", "")
	f.b.add(sec, "CPU by process", cpuShares(cpu0, cpu1, fleetIdle), "", "")

	by, _, err := holders(ctx, f.insts[0])
	if err != nil {
		return fmt.Errorf("listing the holders: %w", err)
	}
	var svcText, daprdText []string
	svcPer, daprdPer := []float64{}, []float64{}
	for _, in := range f.insts {
		rs, _, err := procStat(in.svc.Pid())
		if err != nil {
			return err
		}
		rd, _, err := procStat(in.daprd.Pid())
		if err != nil {
			return err
		}
		k := len(by[in.id])
		svcText = append(svcText, fmt.Sprintf("%s %.0f MB (%d held)", in.id, mb(rs), k))
		daprdText = append(daprdText, fmt.Sprintf("%s %.0f MB", in.id, mb(rd)))
		if k > 0 {
			svcPer = append(svcPer, float64(rs-in.svcRSS0)/float64(k)/1024)
			daprdPer = append(daprdPer, float64(rd-in.daprdRSS0)/float64(k)/1024)
		}
	}
	f.b.add(sec, "RSS of each service", strings.Join(svcText, ", "), "", "")
	f.b.add(sec, "RSS of each daprd", strings.Join(daprdText, ", "), "", "")
	if len(svcPer) > 0 {
		f.b.add(sec, "service RSS per connection, min / max over instances (RSS growth ÷ connections held)",
			fmt.Sprintf("%.1f / %.1f KB", slices.Min(svcPer), slices.Max(svcPer)), "≤ 64 KB", verdict(slices.Max(svcPer) <= 64))
		f.b.add(sec, "daprd RSS per connection, min / max over instances",
			fmt.Sprintf("%.1f / %.1f KB", slices.Min(daprdPer), slices.Max(daprdPer)), "", "")
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// list times List through instance 0, whole and paged, beside a bare actor call through its
// sidecar.
func (f *fleet) list(ctx context.Context) error {
	sec := f.sec("List")
	in := f.insts[0]
	want := map[string]bool{}
	for _, id := range f.held {
		want[id] = true
	}
	var whole []time.Duration
	counts := []int{}
	for range 3 {
		t0 := time.Now()
		r, err := in.client.List(ctx, &pb.ListRequest{})
		if err != nil {
			return fmt.Errorf("whole List: %w", err)
		}
		whole = append(whole, time.Since(t0))
		counts = append(counts, len(r.GetConnections()))
	}
	countsOK := true
	for _, c := range counts {
		countsOK = countsOK && c == len(f.held)
	}
	w50, _ := percentiles(whole)
	f.b.add(sec, fmt.Sprintf("whole List of %d connections, 3 times: p50 / max", len(f.held)), ms(w50)+" / "+ms(slices.Max(whole)), "≤ 2 s", verdict(w50 <= 2*time.Second))
	f.b.add(sec, "whole List: connections returned / held", fmt.Sprintf("%v / %d", counts, len(f.held)), "equal", verdict(countsOK))

	// The walk takes longer than the profile: the profile sees pages only.
	pageProfile := make(chan string, 1)
	if f.pprofAddr != "" {
		go func() { pageProfile <- f.profile(ctx, "list-pages") }()
	} else {
		pageProfile <- ""
	}
	var pages []time.Duration
	seen := map[string]int{}
	sorted := true
	last := ""
	token := ""
	for {
		t0 := time.Now()
		r, err := in.client.List(ctx, &pb.ListRequest{PageSize: fleetPageSize, PageToken: token})
		if err != nil {
			return fmt.Errorf("page %d: %w", len(pages)+1, err)
		}
		pages = append(pages, time.Since(t0))
		for _, c := range r.GetConnections() {
			seen[c.GetId()]++
			sorted = sorted && c.GetId() > last
			last = c.GetId()
		}
		if token = r.GetNextPageToken(); token == "" {
			break
		}
		if len(pages) > 2*len(f.held)/fleetPageSize+10 {
			return fmt.Errorf("paged List did not end after %d pages", len(pages))
		}
	}
	once, twice, notHeld, notListed := 0, 0, 0, 0
	for id, k := range seen {
		if k == 1 {
			once++
		} else {
			twice++
		}
		if !want[id] {
			notHeld++
		}
	}
	for id := range want {
		if seen[id] == 0 {
			notListed++
		}
	}
	pageMax := slices.Max(pages)
	p50, p99 := percentiles(pages)
	f.b.add(sec, fmt.Sprintf("paged List, page_size %d: %d pages, p50 / p99 / max", fleetPageSize, len(pages)),
		ms(p50)+" / "+ms(p99)+" / "+ms(pageMax), "≤ 50 ms", verdict(p99 <= 50*time.Millisecond))
	if p := <-pageProfile; p != "" {
		f.b.add(sec, "CPU profile of instance 0's service (and its daprd: -daprd) during the pages", p, "", "")
	}
	pagedOK := twice == 0 && notHeld == 0 && notListed == 0 && sorted
	f.b.add(sec, "paged List: every held id exactly once, in id order",
		fmt.Sprintf("%d once, %d more than once, %d listed but not held, %d held but not listed, in order: %v", once, twice, notHeld, notListed, sorted),
		"all once, in order", verdict(pagedOK))

	dc, err := dapr.NewClientWithAddressContext(ctx, in.daprd.GRPCAddr())
	if err != nil {
		return err
	}
	defer dc.Close()
	ac := actors.NewClient(dc)
	ping := func() error { return ac.Ping(ctx) }
	if _, err := timeN(30, ping); err != nil { // warm the call path
		return fmt.Errorf("actor call: %w", err)
	}
	calls, err := timeN(fleetActorCalls, ping)
	if err != nil {
		return fmt.Errorf("actor call: %w", err)
	}
	a50, a99 := percentiles(calls)
	f.b.add(sec, fmt.Sprintf("bare Dapr actor call (%s %q Ping) through instance 0's sidecar, %d calls: p50 / p99", actors.DirectoryType, "0", fleetActorCalls),
		us(a50)+" / "+us(a99), "", "")
	f.b.add(sec, "page p50 ÷ actor call p50", fmt.Sprintf("%.1f×", float64(p50)/float64(a50)), "", "")
	return nil
}

// alive returns the instances not killed.
func (f *fleet) alive() []*fleetInst {
	var out []*fleetInst
	for _, in := range f.insts {
		if !in.dead {
			out = append(out, in)
		}
	}
	return out
}

// failover makes room on the survivors, kills the instance holding the most connections
// (service and sidecar, SIGKILL) and waits for its connections' new handshakes.
func (f *fleet) failover(ctx context.Context) error {
	sec := f.sec("failover")
	n := len(f.insts)
	if f.cap > 0 {
		limit := int(float64((n-1)*f.cap) * fleetRoom)
		if extra := len(f.held) - limit; extra > 0 {
			rand.Shuffle(len(f.held), func(i, j int) { f.held[i], f.held[j] = f.held[j], f.held[i] })
			drop := f.held[:extra]
			start := time.Now()
			var k atomic.Int64
			err := parallel(drop, f.o.concurrency, func(id string) error {
				in := f.insts[int(k.Add(1))%n]
				_, err := in.client.Disconnect(ctx, &pb.DisconnectRequest{Id: id})
				return err
			})
			if err != nil {
				return fmt.Errorf("making room: %w", err)
			}
			f.b.add(sec, "disconnected first, to make room on the survivors",
				fmt.Sprintf("%d random connections in %.1f s: %d held > (%d−1) × cap %d × %.1f = %d (an instance cannot hold more sockets than open files)",
					extra, time.Since(start).Seconds(), len(f.held), n, f.cap, fleetRoom, limit), "", "")
			f.held = slices.Clone(f.held[extra:])
		}
	}
	by, _, err := holders(ctx, f.insts[0])
	if err != nil {
		return fmt.Errorf("listing before the kill: %w", err)
	}
	victim := f.insts[0]
	for _, in := range f.insts {
		if len(by[in.id]) > len(by[victim.id]) {
			victim = in
		}
	}
	lost := by[victim.id]
	if len(lost) == 0 {
		return errors.New("no instance holds a connection")
	}
	pre, err := f.upStats(ctx, 0, nil)
	if err != nil {
		return err
	}
	from := make([]int, len(pre))
	for i, s := range pre {
		from[i] = s.Next
	}

	// A survivor's profile while it re-establishes connections (instance 0, unless it is the one
	// killed).
	failoverProfile := make(chan string, 1)
	if f.pprofAddr != "" && victim != f.insts[0] {
		defer func() {
			if p := <-failoverProfile; p != "" {
				f.b.add(sec, "CPU profile of survivor i0's service (and its daprd: -daprd) for 10 s from the kill", p, "", "")
			}
		}()
		go func() { failoverProfile <- f.profile(ctx, "failover") }()
	}
	killed := time.Now()
	victim.dead = true
	victim.kill()
	fmt.Fprintf(os.Stderr, "wsbench: fleet: killed %s holding %d connections\n", victim.id, len(lost))

	back := make(map[string]time.Duration, len(lost))
	want := make(map[string]bool, len(lost))
	for _, id := range lost {
		want[id] = true
	}
	lastProgress := time.Now()
	for time.Since(killed) < f.o.failoverWait && len(back) < len(lost) {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		s, err := f.upStats(ctx, killed.UnixNano(), from)
		if err != nil {
			return err
		}
		for i, x := range s {
			from[i] = x.Next
			for id, at := range x.Since {
				if _, done := back[id]; want[id] && !done {
					back[id] = time.Unix(0, at).Sub(killed)
				}
			}
		}
		if time.Since(lastProgress) >= 5*time.Second {
			lastProgress = time.Now()
			fmt.Fprintf(os.Stderr, "wsbench: fleet: %d of %d back after %.0f s\n", len(back), len(lost), time.Since(killed).Seconds())
		}
	}
	allBack := time.Since(killed)
	d := make([]time.Duration, 0, len(back))
	for _, v := range back {
		d = append(d, v)
	}
	p50, maxD := time.Duration(0), time.Duration(0)
	if len(d) > 0 {
		p50, _ = percentiles(d)
		maxD = slices.Max(d)
	}
	notBack := len(lost) - len(back)
	f.b.add(sec, fmt.Sprintf("kill -9 of %s (service and daprd), which held %d of %d connections: kill → new handshake p50 / max", victim.id, len(lost), len(f.held)),
		ms(p50)+" / "+ms(maxD), "p50 ≤ 5 s, max ≤ 10 s", verdict(notBack == 0 && p50 <= 5*time.Second && maxD <= 10*time.Second))
	f.b.add(sec, fmt.Sprintf("not back after %v", f.o.failoverWait), strconv.Itoa(notBack), "0", verdict(notBack == 0))

	s, err := f.upStats(ctx, 0, nil)
	if err != nil {
		return err
	}
	live, dups, dupIDs := liveTotal(s)
	dupText := strconv.Itoa(dups)
	if dups > 0 {
		dupText += " (" + strings.Join(dupIDs, ", ") + ")"
	}
	f.b.add(sec, "duplicates: ids with two sockets open at once at the upstream, whole run", dupText, "0", verdict(dups == 0))
	if notBack > 0 {
		f.b.add(sec, "sockets open at the upstream servers / held", fmt.Sprintf("%d / %d (%.1f s after the kill)", live, len(f.held), allBack.Seconds()), "", "")
		return nil
	}
	lister := f.alive()[0]
	after, total, err := holders(ctx, lister)
	if err != nil {
		return fmt.Errorf("listing after the failover: %w", err)
	}
	var spread []string
	var counts []int
	for _, in := range f.alive() {
		counts = append(counts, len(after[in.id]))
		spread = append(spread, fmt.Sprintf("%s %d", in.id, len(after[in.id])))
	}
	if k := len(after[victim.id]); k > 0 {
		spread = append(spread, fmt.Sprintf("still listed on %s: %d", victim.id, k))
	}
	f.b.add(sec, "spread after the failover (List per surviving instance): min / max",
		fmt.Sprintf("%d / %d (%s; %d listed, %d sockets open at the upstreams, %d held)", slices.Min(counts), slices.Max(counts), strings.Join(spread, ", "), total, live, len(f.held)), "", "")
	return nil
}

// cleanup stops every process, then deletes the run's actor state from Redis; it runs on every
// way out of the part.
func (f *fleet) cleanup() {
	fmt.Fprintln(os.Stderr, "wsbench: fleet: cleanup …")
	start := time.Now()
	// The instances die together first (SIGKILL, as their state is deleted next anyway): a
	// graceful stop one at a time would hand each one's connections to the next one to stop.
	var kills sync.WaitGroup
	for _, in := range f.insts {
		if in != nil {
			kills.Go(in.close)
		}
	}
	kills.Wait()
	f.st.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deleted, err := delKeys(ctx, f.appID+"||*")
	value := strconv.Itoa(deleted)
	if err != nil {
		value += "; failed: " + err.Error()
		fmt.Fprintf(os.Stderr, "wsbench: deleting the Redis keys %s||*: %v\n", f.appID, err)
	}
	f.phases = append(f.phases, fmt.Sprintf("cleanup %.1f s", time.Since(start).Seconds()))
	f.b.add(f.sec("cleanup"), fmt.Sprintf("Redis keys of the run deleted (%s||*)", f.appID), value, "", "")
	f.b.add(f.sec("cleanup"), "phase durations", strings.Join(f.phases, ", "), "", "")
}
