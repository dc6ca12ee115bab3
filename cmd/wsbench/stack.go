package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// singleStack is one instance of the service with its sidecar, an upstream WebSocket server
// in its own process, and a subscriber app (this process) behind its own sidecar.
type singleStack struct {
	st       *daprstack.Stack
	svc      *daprstack.Proc
	upstream string // ws://host:port
	client   pb.WebSocketManagerClient
	conn     *grpc.ClientConn
	dapr     dapr.Client // the service's sidecar
	sink     *sink
	topics   map[string]string
	sinkSrv  *http.Server
	// lifecycle is the service's lifecycle topic: its stream is deleted with the stack.
	lifecycle string
}

func (s *singleStack) stop() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if s.dapr != nil {
		s.dapr.Close()
	}
	if s.sinkSrv != nil {
		_ = s.sinkSrv.Close()
	}
	s.st.Stop()
	// The streams Dapr created in the machine's Redis for this run's topics.
	var keys []string
	for _, t := range s.topics {
		keys = append(keys, t)
	}
	if s.lifecycle != "" {
		keys = append(keys, s.lifecycle)
	}
	delStreams(keys)
}

// delStreams deletes Redis streams (topics) the benchmark created; a failure is only reported.
func delStreams(keys []string) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := redisstream.Dial(ctx, redisstream.Addr)
	if err == nil {
		_, err = rc.Del(ctx, keys...)
		rc.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench: deleting the Redis streams", keys, err)
	}
}

// sink is the subscriber app: it records, per topic, the sequence numbers in arrival order.
type sink struct {
	mu    sync.Mutex
	seqs  map[string][]uint64
	count map[string]int
}

func (k *sink) handler(topics []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, _ *http.Request) {
		var subs []map[string]string
		for _, t := range topics {
			subs = append(subs, map[string]string{"pubsubname": "pubsub", "topic": t, "route": "/events/" + t})
		}
		_ = json.NewEncoder(w).Encode(subs)
	})
	mux.HandleFunc("POST /events/{topic}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Sequence string `json:"sequence"`
		}
		_ = json.Unmarshal(body, &ev)
		seq, _ := strconv.ParseUint(ev.Sequence, 10, 64)
		k.mu.Lock()
		t := r.PathValue("topic")
		k.count[t]++
		if seq > 0 {
			k.seqs[t] = append(k.seqs[t], seq)
		}
		k.mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	})
	return mux
}

func (k *sink) received(topic string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.count[topic]
}

func (k *sink) inOrder(topic string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.seqs[topic]
	for i := 1; i < len(s); i++ {
		if s[i] <= s[i-1] {
			return false
		}
	}
	return true
}

func writeResources(dir string, redisState bool) (string, error) {
	state := daprstack.InMemoryActorStore()
	if redisState {
		state = daprstack.RedisActorStore(daprstack.RedisAddr)
	}
	return daprstack.WriteResources(filepath.Join(dir, "resources-"+strconv.FormatBool(redisState)),
		daprstack.RedisPubsub(daprstack.RedisAddr, false), state)
}

// startSingle starts the single-instance stack once; later parts reuse it.
func (b *bench) startSingle(ctx context.Context) (*singleStack, error) {
	if b.single != nil || b.singleStartErr != nil {
		return b.single, b.singleStartErr
	}
	s, err := b.newSingle(ctx)
	if err != nil {
		b.singleStartErr = err
		return nil, err
	}
	b.single = s
	return s, nil
}

// startUpstream starts the upstream WebSocket server (wsdemo) of a stack on port and returns
// its ws:// base URL once it listens.
func (b *bench) startUpstream(ctx context.Context, st *daprstack.Stack, port int) (string, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	up, err := st.Start("upstream", nil, filepath.Join(b.bins, "wsdemo"), "--addr", addr)
	if err != nil {
		return "", err
	}
	if err := daprstack.WaitTCP(ctx, up, addr); err != nil {
		return "", err
	}
	return "ws://" + addr, nil
}

func (b *bench) newSingle(ctx context.Context) (*singleStack, error) {
	st, err := daprstack.NewStack(filepath.Join(b.dir, "single"))
	if err != nil {
		return nil, err
	}
	s := &singleStack{st: st, sink: &sink{seqs: map[string][]uint64{}, count: map[string]int{}}, topics: map[string]string{}}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	bin := daprstack.BinDir(b.root)
	rt, err := st.StartRuntime(ctx, bin, 0, 0)
	if err != nil {
		return nil, err
	}
	ports, err := daprstack.FreePorts(6)
	if err != nil {
		return nil, err
	}
	if s.upstream, err = b.startUpstream(ctx, st, ports[3]); err != nil {
		return nil, err
	}
	daprdProfile := 0
	if b.o.profile {
		b.pprofAddr = fmt.Sprintf("127.0.0.1:%d", ports[4])
		daprdProfile = ports[5]
		b.daprdPprofAddr = fmt.Sprintf("127.0.0.1:%d", ports[5])
	}
	res, err := writeResources(b.dir, false)
	if err != nil {
		return nil, err
	}

	run := uuid.NewString()[:8]
	// The subscriber takes only the end-to-end topic; the broker-side measurements read the
	// streams of topics nobody subscribes to, so no delivery competes with them.
	s.topics["publish"] = "bench-" + run + "-publish"
	s.lifecycle = "bench-" + run + "-lifecycle"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.sinkSrv = &http.Server{Handler: s.sink.handler([]string{s.topics["publish"]}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.sinkSrv.Serve(l) }()
	consumer, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{Name: "daprd-consumer", AppID: "bench-consumer-" + run,
		AppPort: l.Addr().(*net.TCPAddr).Port, ResourcesPath: res})
	if err != nil {
		return nil, err
	}

	d, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{AppID: "wsmanager-bench-" + run, AppPort: ports[2], ResourcesPath: res, AppHealthCheck: true,
		ProfilePort: daprdProfile})
	if err != nil {
		return nil, err
	}
	o := svcargs.Options{GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: d.GRPCAddr(),
		LogLevel: "warn", LifecycleTopic: s.lifecycle,
		DialAllow:     svcargs.Loopback, // the benchmark's servers are on loopback, denied by default
		PublishBuffer: publishBuffer(b.o.publishN),
		// Room in bytes for the largest burst too (the default 8 MiB holds about 150,000 of
		// the benchmark's small frames with their bookkeeping).
		Extra:            []string{"--publish-buffer-bytes", strconv.Itoa(64 << 20)},
		WatchdogInterval: b.o.watchdog, PprofAddress: b.pprofAddr}
	s.svc, err = st.Start("wsmanager", o.Environ(), filepath.Join(b.bins, "wsmanager"), o.Args()...)
	if err != nil {
		return nil, err
	}
	if err := d.WaitActorsReady(ctx); err != nil {
		return nil, err
	}
	if err := consumer.WaitSubscriptions(ctx, 1); err != nil {
		return nil, err
	}
	s.conn, err = grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", ports[0]), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	s.client = pb.NewWebSocketManagerClient(s.conn)
	s.dapr, err = dapr.NewClientWithAddressContext(context.Background(), d.GRPCAddr())
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// procStat reads a process's resident memory (bytes) and CPU time used so far.
func procStat(pid int) (rss int64, cpu time.Duration, err error) {
	if rss, err = daprstack.RSS(pid); err != nil {
		return 0, 0, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command (in parentheses): utime is the 14th field, stime the 15th.
	rest := string(stat)[strings.LastIndexByte(string(stat), ')')+2:]
	f := strings.Fields(rest)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	cpu = time.Duration(ut+stt) * time.Second / hz
	return rss, cpu, nil
}

// pubStack is a second, separate instance (its own placement and scheduler, so that no actor of
// the main stack moves to it) with a small publish buffer, for the backpressure measurement.
type pubStack struct {
	st       *daprstack.Stack
	upstream string
	client   pb.WebSocketManagerClient
	conn     *grpc.ClientConn
}

func (p *pubStack) stop() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.st.Stop()
}

func (b *bench) newPubStack(ctx context.Context, name string, publishBuffer int) (*pubStack, error) {
	st, err := daprstack.NewStack(filepath.Join(b.dir, name))
	if err != nil {
		return nil, err
	}
	p := &pubStack{st: st}
	ok := false
	defer func() {
		if !ok {
			p.stop()
		}
	}()
	bin := daprstack.BinDir(b.root)
	rt, err := st.StartRuntime(ctx, bin, 0, 0)
	if err != nil {
		return nil, err
	}
	ports, err := daprstack.FreePorts(4)
	if err != nil {
		return nil, err
	}
	if p.upstream, err = b.startUpstream(ctx, st, ports[3]); err != nil {
		return nil, err
	}
	res, err := writeResources(b.dir, false)
	if err != nil {
		return nil, err
	}
	d, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{AppID: "wsmanager-" + name + "-" + uuid.NewString()[:8], AppPort: ports[2], ResourcesPath: res, AppHealthCheck: true})
	if err != nil {
		return nil, err
	}
	o := svcargs.Options{GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: d.GRPCAddr(),
		LogLevel: "warn", NoLifecycleEvents: true, DialAllow: svcargs.Loopback,
		PublishBuffer: publishBuffer, WatchdogInterval: b.o.watchdog}
	if _, err := st.Start("wsmanager", o.Environ(), filepath.Join(b.bins, "wsmanager"), o.Args()...); err != nil {
		return nil, err
	}
	if err := d.WaitActorsReady(ctx); err != nil {
		return nil, err
	}
	if p.conn, err = grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", ports[0]), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, err
	}
	p.client = pb.NewWebSocketManagerClient(p.conn)
	ok = true
	return p, nil
}
