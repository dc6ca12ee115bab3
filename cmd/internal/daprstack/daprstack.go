// Package daprstack starts and stops the real Dapr runtime (placement, scheduler, daprd) and
// the processes beside it, for `make run`, the integration tests and the benchmarks. It owns
// every process it starts: Stop terminates them all and waits for them, and nothing it starts
// outlives it by design (children die with their parent process group on SIGKILL too).
package daprstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/websocketmanager/websocketmanager/actors/backoff"
)

// RepoRoot finds the repository root (the folder with go.mod) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// RuntimeDir is the project-local Dapr runtime folder (the CLI's --runtime-path): $WSM_DAPR_RUNTIME
// or <repo>/.tools.
func RuntimeDir(root string) string {
	if d := os.Getenv("WSM_DAPR_RUNTIME"); d != "" {
		return d
	}
	return filepath.Join(root, ".tools")
}

// BinDir is where daprd, placement, scheduler and dapr live.
func BinDir(root string) string { return filepath.Join(RuntimeDir(root), ".dapr", "bin") }

// EnsureBinaries builds the pinned Dapr toolchain if any binary is missing. The build prints
// its progress to w and takes minutes the first time.
func EnsureBinaries(ctx context.Context, root string, w io.Writer) error {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "deploy", "toolchain", "build-dapr.sh"), RuntimeDir(root))
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the Dapr toolchain (deploy/toolchain/build-dapr.sh): %w", err)
	}
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago (see [FreePorts]).
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct loopback TCP ports that were free a moment ago, for processes
// that must be told their ports. The port is closed before the process binds it, so something
// else could take it in between; there is no better way for these processes: daprd accepts
// port 0 but never says which port it got (it logs "running on port 0"), and a listener cannot
// be handed to daprd or placement. Two things make the gap harmless: the ports come from below
// the kernel's ephemeral range, so no outgoing connection and no other bind to port 0 can be
// given one (only a process that names the same port can), and the callers that start a
// sidecar and the service retry with new ports when a start fails.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	lo, hi := portRange()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0" // the kernel's choice when no port of [lo, hi) is free
		if hi-lo > 0 && tries < 100*n {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "127.0.0.1:0" {
				return nil, err
			}
			continue // taken: try another
		}
		ls = append(ls, l) // held until all n are chosen, so they are distinct
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portRange is where FreePorts looks: from 20000 up to the start of the kernel's ephemeral
// port range (Linux: /proc/sys/net/ipv4/ip_local_port_range, usually from 32768), or an empty
// range when that cannot be read or leaves too little room.
func portRange() (lo, hi int) {
	const floor = 20000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start-floor < 1000 {
		return 0, 0
	}
	return floor, start
}

// Proc is one child process.
type Proc struct {
	Name    string
	base    string // the name of the first start, for restarts
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file that holds the process's stdout and stderr.
func (p *Proc) LogPath() string { return p.logPath }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log returns what the process printed so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs, and waits for the exit.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stack is a set of processes stopped together, in reverse start order.
type Stack struct {
	Dir string // working folder: logs, scheduler data, configuration

	mu       sync.Mutex
	procs    []*Proc
	restarts int
	// Echo, when set, also receives the output of the processes named in EchoNames.
	Echo      io.Writer
	EchoNames []string
}

// NewStack returns an empty stack that keeps its files in dir.
func NewStack(dir string) (*Stack, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Stack{Dir: dir}, nil
}

// Start starts a process; env is added to this process's environment.
func (s *Stack) Start(name string, env []string, bin string, args ...string) (*Proc, error) {
	return s.start(name, name, append(os.Environ(), env...), bin, args)
}

// Restart stops p (SIGTERM, SIGKILL after grace) and starts the same command line with the
// same environment again, logging to <name>-r<n>.log. Ports and data folders stay the same.
func (s *Stack) Restart(p *Proc, grace time.Duration) (*Proc, error) {
	p.Stop(grace)
	return s.Relaunch(p)
}

// Relaunch starts an exited process's command line again (see Restart).
func (s *Stack) Relaunch(p *Proc) (*Proc, error) {
	s.mu.Lock()
	s.restarts++
	n := s.restarts
	s.mu.Unlock()
	return s.start(p.base, fmt.Sprintf("%s-r%d", p.base, n), p.cmd.Env, p.cmd.Path, p.cmd.Args[1:])
}

// start starts a process logging to <name>.log; base is the name it was first started under.
func (s *Stack) start(base, name string, env []string, bin string, args []string) (*Proc, error) {
	logPath := filepath.Join(s.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Env = env
	var out io.Writer = f
	if s.Echo != nil && slices.Contains(s.EchoNames, name) {
		out = io.MultiWriter(f, &prefixWriter{prefix: "[" + name + "] ", w: s.Echo})
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: if this process dies without cleaning up, the kernel ends the child too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, base: base, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// Procs returns the stack's processes in start order.
func (s *Stack) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// Stop stops every process, newest first.
func (s *Stack) Stop() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop(10 * time.Second)
	}
}

type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		_, _ = fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// WaitHTTP polls url until it answers 2xx, the process exits, or ctx ends.
func WaitHTTP(ctx context.Context, p *Proc, url string) error {
	return poll(ctx, p, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode/100 == 2
	}, "GET "+url)
}

// WaitTCP polls addr until it accepts a connection.
func WaitTCP(ctx context.Context, p *Proc, addr string) error {
	return poll(ctx, p, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "connect "+addr)
}

// pollEvery is how often the stack's waits look again.
var pollEvery = backoff.Schedule{Initial: 50 * time.Millisecond, Factor: 1}

func poll(ctx context.Context, p *Proc, ok func() bool, what string) error {
	var exited func() error
	if p != nil {
		exited = func() error {
			if p.Exited() {
				err := p.err
				if err == nil {
					err = errors.New("exit status 0")
				}
				return fmt.Errorf("%s exited while waiting for %s: %w; its log is %s", p.Name, what, err, p.logPath)
			}
			return nil
		}
	}
	err := backoff.Poll(ctx, pollEvery, ok, exited)
	if err == nil || ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
		return err // nil, or the process exited
	}
	if p != nil {
		return fmt.Errorf("%s: waiting for %s: %w; its log is %s", p.Name, what, err, p.logPath)
	}
	return fmt.Errorf("waiting for %s: %w", what, err)
}

// Runtime is a running placement and scheduler.
type Runtime struct {
	PlacementAddr string
	SchedulerAddr string
	// Placement and Scheduler are the processes (Stack.Restart restarts them on the same
	// ports; the scheduler keeps its data folder, so reminders survive).
	Placement, Scheduler *Proc
}

// StartRuntime starts placement and scheduler on the given ports (0 picks free ones) and
// waits until both are healthy. A start that fails (a port taken since FreePorts chose it) is
// tried again with new ports, up to three times.
func (s *Stack) StartRuntime(ctx context.Context, bin string, placementPort, schedulerPort int) (*Runtime, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var rt *Runtime
		if rt, err = s.startRuntime(ctx, bin, placementPort, schedulerPort, attempt); err == nil || ctx.Err() != nil {
			return rt, err
		}
	}
	return nil, err
}

func (s *Stack) startRuntime(ctx context.Context, bin string, placementPort, schedulerPort, attempt int) (rt *Runtime, err error) {
	suffix := "" // later attempts get their own logs and scheduler data
	if attempt > 1 {
		suffix = "-" + strconv.Itoa(attempt)
	}
	var started []*Proc
	defer func() {
		if err != nil {
			for _, p := range started {
				p.Kill()
			}
		}
	}()
	ports, err := FreePorts(7)
	if err != nil {
		return nil, err
	}
	if placementPort == 0 {
		placementPort = ports[0]
	}
	if schedulerPort == 0 {
		schedulerPort = ports[1]
	}
	pHealth, sHealth, etcdClient, etcdPeer := ports[2], ports[3], ports[4], ports[5]
	placement, err := s.Start("placement"+suffix, nil, filepath.Join(bin, "placement"),
		"--mode", "standalone", "--id", "dapr-placement-0",
		"--port", strconv.Itoa(placementPort), "--listen-address", "127.0.0.1",
		"--initial-cluster", "dapr-placement-0=127.0.0.1:"+strconv.Itoa(ports[6]),
		"--healthz-port", strconv.Itoa(pHealth), "--healthz-listen-address", "127.0.0.1",
		"--enable-metrics=false", "--tls-enabled=false", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	started = append(started, placement)
	scheduler, err := s.Start("scheduler"+suffix, nil, filepath.Join(bin, "scheduler"),
		"--mode", "standalone", "--id", "dapr-scheduler-server-0",
		"--port", strconv.Itoa(schedulerPort), "--listen-address", "127.0.0.1",
		"--healthz-port", strconv.Itoa(sHealth), "--healthz-listen-address", "127.0.0.1",
		"--enable-metrics=false", "--tls-enabled=false", "--log-level", "warn",
		"--etcd-data-dir", filepath.Join(s.Dir, "scheduler-data"+suffix),
		"--etcd-client-port", strconv.Itoa(etcdClient), "--etcd-client-listen-address", "127.0.0.1",
		"--etcd-initial-cluster", "dapr-scheduler-server-0=http://127.0.0.1:"+strconv.Itoa(etcdPeer))
	if err != nil {
		return nil, err
	}
	started = append(started, scheduler)
	if err := WaitHTTP(ctx, placement, fmt.Sprintf("http://127.0.0.1:%d/healthz", pHealth)); err != nil {
		return nil, err
	}
	if err := WaitHTTP(ctx, scheduler, fmt.Sprintf("http://127.0.0.1:%d/healthz", sHealth)); err != nil {
		return nil, err
	}
	return &Runtime{
		PlacementAddr: fmt.Sprintf("127.0.0.1:%d", placementPort),
		SchedulerAddr: fmt.Sprintf("127.0.0.1:%d", schedulerPort),
		Placement:     placement, Scheduler: scheduler,
	}, nil
}

// DaprdOptions configures one sidecar.
type DaprdOptions struct {
	Name          string // process name for logs; default "daprd"
	AppID         string
	AppPort       int // the service's actor host port
	HTTPPort      int // 0 picks a free port
	GRPCPort      int // 0 picks a free port
	ResourcesPath string
	LogLevel      string // default "warn"
	// AppHealthCheck makes daprd probe the app's /healthz and give up its actors when the app
	// stops answering (otherwise a dead app keeps its actors until daprd dies too).
	AppHealthCheck bool
	// APIToken protects the sidecar's API (DAPR_API_TOKEN); AppToken is what it sends to its
	// app (APP_API_TOKEN). Give the app the same values.
	APIToken, AppToken string
	// ProfilePort, when set, serves daprd's pprof endpoints on 127.0.0.1 at that port.
	ProfilePort int
}

// Daprd is a running sidecar.
type Daprd struct {
	*Proc
	HTTPPort int
	GRPCPort int
	APIToken string
}

// GRPCAddr is the sidecar's gRPC API address.
func (d *Daprd) GRPCAddr() string { return fmt.Sprintf("127.0.0.1:%d", d.GRPCPort) }

// StartDaprd starts a sidecar for the runtime rt. It does not wait: the sidecar becomes
// ready only once its app listens (see [Daprd.WaitActorsReady]).
func (s *Stack) StartDaprd(bin string, rt *Runtime, o DaprdOptions) (*Daprd, error) {
	ports, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = ports[0]
	}
	if o.GRPCPort == 0 {
		o.GRPCPort = ports[1]
	}
	if o.Name == "" {
		o.Name = "daprd"
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	cfgPath := filepath.Join(s.Dir, o.Name+"-config.yaml")
	// sqlite name resolution instead of the default mDNS, whose multicast leaves loopback.
	cfg := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: wsmanager
spec:
  nameResolution:
    component: sqlite
    version: v1
    configuration:
      connectionString: %q
`, filepath.Join(s.Dir, "nameresolution.db"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	args := []string{"--mode", "standalone", "--app-id", o.AppID,
		"--app-port", strconv.Itoa(o.AppPort), "--app-protocol", "http", "--app-channel-address", "127.0.0.1",
		"--dapr-http-port", strconv.Itoa(o.HTTPPort), "--dapr-grpc-port", strconv.Itoa(o.GRPCPort),
		"--dapr-listen-addresses", "127.0.0.1",
		"--dapr-internal-grpc-port", strconv.Itoa(ports[2]), "--dapr-internal-grpc-listen-address", "127.0.0.1",
		"--metrics-port", strconv.Itoa(ports[3]), "--metrics-listen-address", "127.0.0.1",
		"--placement-host-address", rt.PlacementAddr, "--scheduler-host-address", rt.SchedulerAddr,
		"--resources-path", o.ResourcesPath, "--config", cfgPath,
		"--log-level", o.LogLevel}
	if o.AppHealthCheck {
		// On SIGTERM daprd keeps its actors until the app stops answering /healthz (the app
		// closes its sockets first), so that no other instance opens them while they are open.
		args = append(args, "--enable-app-health-check", "--app-health-check-path", "/healthz",
			"--app-health-probe-interval", "1", "--app-health-threshold", "2",
			"--dapr-block-shutdown-duration", "10s")
	}
	if o.ProfilePort != 0 {
		args = append(args, "--enable-profiling", "--profile-port", strconv.Itoa(o.ProfilePort))
	}
	env := []string{"DAPR_HOST_IP=127.0.0.1"}
	if o.APIToken != "" {
		env = append(env, "DAPR_API_TOKEN="+o.APIToken)
	}
	if o.AppToken != "" {
		env = append(env, "APP_API_TOKEN="+o.AppToken)
	}
	p, err := s.Start(o.Name, env, filepath.Join(bin, "daprd"), args...)
	if err != nil {
		return nil, err
	}
	return &Daprd{Proc: p, HTTPPort: o.HTTPPort, GRPCPort: o.GRPCPort, APIToken: o.APIToken}, nil
}

// WaitActorsReady waits until the sidecar hosts actors and is connected to placement.
func (d *Daprd) WaitActorsReady(ctx context.Context) error {
	return waitActorsReady(ctx, d.Proc, d.HTTPPort, d.APIToken)
}

// getWithToken GETs url with Dapr's API token, if any.
func getWithToken(url, token string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("dapr-api-token", token)
	}
	return http.DefaultClient.Do(req)
}

// WaitActorsReady waits until the sidecar with that HTTP port hosts actors and is connected to
// placement; p (may be nil) is the process whose exit ends the wait.
func WaitActorsReady(ctx context.Context, p *Proc, httpPort int) error {
	return waitActorsReady(ctx, p, httpPort, "")
}

func waitActorsReady(ctx context.Context, p *Proc, httpPort int, token string) error {
	return poll(ctx, p, func() bool {
		a, err := actorRuntime(httpPort, token)
		return err == nil && a.RuntimeStatus == "RUNNING" && a.HostReady && a.Placement == "placement: connected" && len(a.ActiveActors) > 0
	}, fmt.Sprintf("actor runtime ready at http://127.0.0.1:%d/v1.0/metadata", httpPort))
}

// actorRuntimeInfo is the actor part of a sidecar's metadata.
type actorRuntimeInfo struct {
	RuntimeStatus string `json:"runtimeStatus"`
	HostReady     bool   `json:"hostReady"`
	Placement     string `json:"placement"`
	ActiveActors  []struct {
		Type  string `json:"type"`
		Count int    `json:"count"`
	} `json:"activeActors"`
}

// actorRuntime reads the actor part of the metadata of the sidecar with that HTTP port.
func actorRuntime(httpPort int, token string) (actorRuntimeInfo, error) {
	resp, err := getWithToken(fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata", httpPort), token)
	if err != nil {
		return actorRuntimeInfo{}, err
	}
	defer resp.Body.Close()
	var md struct {
		ActorRuntime actorRuntimeInfo `json:"actorRuntime"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		return actorRuntimeInfo{}, fmt.Errorf("sidecar metadata: %w", err)
	}
	return md.ActorRuntime, nil
}

// ActiveActors returns how many actors of actorType the sidecar has active.
func (d *Daprd) ActiveActors(actorType string) (int, error) {
	a, err := actorRuntime(d.HTTPPort, d.APIToken)
	if err != nil {
		return 0, err
	}
	for _, t := range a.ActiveActors {
		if t.Type == actorType {
			return t.Count, nil
		}
	}
	return 0, nil
}

// WaitSubscriptions waits until the sidecar has loaded at least n topic subscriptions of its app.
func (d *Daprd) WaitSubscriptions(ctx context.Context, n int) error {
	return waitSubscriptions(ctx, d.Proc, d.HTTPPort, d.APIToken, n)
}

// WaitSubscriptions waits until the sidecar with that HTTP port has loaded at least n topic
// subscriptions of its app; p (may be nil) is the process whose exit ends the wait.
func WaitSubscriptions(ctx context.Context, p *Proc, httpPort, n int) error {
	return waitSubscriptions(ctx, p, httpPort, "", n)
}

func waitSubscriptions(ctx context.Context, p *Proc, httpPort int, token string, n int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata", httpPort)
	return poll(ctx, p, func() bool {
		resp, err := getWithToken(url, token)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var md struct {
			Subscriptions []json.RawMessage `json:"subscriptions"`
		}
		return json.NewDecoder(resp.Body).Decode(&md) == nil && len(md.Subscriptions) >= n
	}, "subscriptions at "+url)
}

// RedisAddr is the Redis server the Redis components use.
const RedisAddr = "127.0.0.1:6379"

// EnsureRedis checks that Redis answers on [RedisAddr] and starts a non-persistent one if not.
// A Redis started here is left running, as the machine's services are.
func EnsureRedis(ctx context.Context) error {
	if c, err := net.DialTimeout("tcp", RedisAddr, time.Second); err == nil {
		c.Close()
		return nil
	}
	out, err := exec.CommandContext(ctx, "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
		"--port", "6379", "--save", "", "--appendonly", "no").CombinedOutput()
	if err != nil {
		return fmt.Errorf("no Redis answers at %s and redis-server could not start one (install it with apt-get install redis-server): %v: %s", RedisAddr, err, out)
	}
	return WaitTCP(ctx, nil, RedisAddr)
}

// StartRunFile runs `dapr run -f runFile --runtime-path <runtime>` with the project's Dapr CLI,
// its sidecars on loopback. Placement and scheduler must already run at the addresses the run
// file names. Stopping the returned process (SIGTERM) makes the CLI stop its apps and sidecars.
//
// Two gaps of CLI v1.12 (the only version the module proxy serves) are bridged through the
// environment the CLI passes on to daprd: it does not apply --runtime-path to the apps of a run
// file (it reads $DAPR_RUNTIME_PATH), and it predates the scheduler, so it never passes
// --scheduler-host-address (daprd then reads $DAPR_SCHEDULER_HOST_ADDRESS_DNS_A).
func StartRunFile(s *Stack, root, runFile, schedulerAddr string) (*Proc, error) {
	abs, err := filepath.Abs(runFile)
	if err != nil {
		return nil, err
	}
	env := []string{"DAPR_HOST_IP=127.0.0.1", "DAPR_RUNTIME_PATH=" + RuntimeDir(root), "DAPR_SCHEDULER_HOST_ADDRESS_DNS_A=" + schedulerAddr}
	return s.Start("dapr", env, filepath.Join(BinDir(root), "dapr"),
		"run", "-f", abs, "--runtime-path", RuntimeDir(root))
}

// WaitActorCall calls an actor method through the sidecar's HTTP API until it answers 200: the
// whole actor path (placement, app channel, app health) works.
func WaitActorCall(ctx context.Context, p *Proc, httpPort int, actorType, id, method string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/actors/%s/%s/method/%s", httpPort, actorType, id, method)
	return poll(ctx, p, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader("{}"))
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "PUT "+url)
}

// Component files for stacks that need their own resources folder.

// InMemoryActorStore is a state.in-memory actor state store named statestore.
func InMemoryActorStore() string {
	return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec:
  type: state.in-memory
  version: v1
  metadata:
    - {name: actorStateStore, value: "true"}
`
}

// RedisActorStore is a state.redis actor state store named statestore at addr.
func RedisActorStore(addr string) string {
	return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec:
  type: state.redis
  version: v1
  metadata:
    - {name: redisHost, value: "` + addr + `"}
    - {name: actorStateStore, value: "true"}
`
}

// RedisPubsub is a pubsub.redis component named pubsub at addr that delivers each topic in
// order (concurrency 1). With ignoreErrors a Redis that is not there leaves the component
// unloaded instead of stopping daprd.
func RedisPubsub(addr string, ignoreErrors bool) string {
	return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.redis
  version: v1
  ignoreErrors: ` + strconv.FormatBool(ignoreErrors) + `
  metadata:
    - {name: redisHost, value: "` + addr + `"}
    - {name: concurrency, value: "1"}
`
}

// LocalFileSecretStore is a secretstores.local.file component named name over the JSON file
// path, multi-valued: a secret is the object under its key (a string value gives {key: value}).
func LocalFileSecretStore(name, path string) string {
	return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: ` + name + `}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
    - {name: secretsFile, value: ` + strconv.Quote(path) + `}
    - {name: multiValued, value: "true"}
`
}

// WriteResources writes the component documents into dir (created if needed) and returns dir.
func WriteResources(dir string, docs ...string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for i, d := range docs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("component-%d.yaml", i)), []byte(d), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// RSS reads a process's resident memory in bytes (VmRSS in /proc/<pid>/status).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of process %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}
