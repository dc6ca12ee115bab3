// Command wsbench is `make bench`: it starts the real stack (placement, scheduler, daprd, the
// service, its own WebSocket servers and a subscriber app), measures the service side by side
// with the floors it cannot beat, prints one table and writes it to bench/results/<date>.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

type options struct {
	rttN      int
	pipeFor   time.Duration
	publishN  int
	pubConns  int
	scale     []int
	failover  []int
	keep      bool
	outDir    string
	onlyParts string
	watchdog  time.Duration
	profile   bool
	name      string // results file <date>-<name>.md
	fleet     fleetOptions
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func run() error {
	// The fleet's upstream servers are this program re-executed (fleetup.go): a hidden mode.
	if len(os.Args) == 3 && os.Args[1] == upstreamFlag {
		return serveUpstream(os.Args[2])
	}
	var o options
	var scale, failover string
	flag.IntVar(&o.rttN, "rtt-n", 3000, "round trips per latency measurement")
	flag.DurationVar(&o.pipeFor, "pipeline-for", 3*time.Second, "duration of each pipelined-Send measurement")
	flag.IntVar(&o.publishN, "publish-n", 10000, "frames per publish measurement with batching off (batching on: 5× as many)")
	flag.IntVar(&o.pubConns, "publish-conns", 200, "connections of the many-connections publish measurements")
	flag.StringVar(&scale, "scale", "1000,10000", "connection counts for the one-instance scale measurement")
	flag.StringVar(&failover, "failover", "100,1000", "connection counts for the failover measurement")
	flag.StringVar(&o.outDir, "out", "bench/results", "folder for the results file")
	flag.StringVar(&o.onlyParts, "only", "", "comma-separated parts to run: rtt,pipeline,publish,scale,failover,fleet,dircost (default all but fleet and dircost, which are make bench-scale)")
	flag.StringVar(&o.name, "name", "", "results file bench/results/<date>-<name>.md instead of <date>.md")
	flag.BoolVar(&o.keep, "keep", false, "keep the run folder (logs) afterwards")
	flag.DurationVar(&o.watchdog, "watchdog-interval", 3*time.Second, "the service's --watchdog-interval")
	flag.BoolVar(&o.profile, "profile", false, "also take a CPU profile of the service during the largest scale run (written beside the results file)")
	fleetFlags(&o.fleet)
	flag.Parse()
	var err error
	if o.scale, err = parseInts(scale); err != nil {
		return fmt.Errorf("--scale: %w", err)
	}
	if o.failover, err = parseInts(failover); err != nil {
		return fmt.Errorf("--failover: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root, err := daprstack.RepoRoot()
	if err != nil {
		return err
	}
	if err := daprstack.EnsureBinaries(ctx, root, os.Stderr); err != nil {
		return err
	}
	if err := daprstack.EnsureRedis(ctx); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wsbench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "wsbench: run folder", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bins := filepath.Join(dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bins+"/", "./cmd/wsmanager", "./cmd/wsdemo")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	outDir := o.outDir
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(root, outDir)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	b := &bench{o: o, root: root, dir: dir, bins: bins, outDir: outDir}
	parts := map[string]func(context.Context) error{
		"rtt": b.rtt, "pipeline": b.pipeline, "publish": b.publish, "scale": b.scaleOut, "failover": b.failoverPart,
		"fleet": b.fleetPart, "dircost": b.dirCost,
	}
	order := []string{"rtt", "pipeline", "publish", "scale", "failover", "fleet", "dircost"}
	// fleet and dircost are `make bench-scale`: minutes each, they run only when --only names them.
	scaleOnly := map[string]bool{"fleet": true, "dircost": true}
	want := map[string]bool{}
	for _, p := range strings.Split(o.onlyParts, ",") {
		if p != "" {
			if parts[p] == nil {
				return fmt.Errorf("--only: no part %q (parts: %s)", p, strings.Join(order, ","))
			}
			want[p] = true
		}
	}
	started := time.Now()
	for _, name := range order {
		if len(want) > 0 && !want[name] || len(want) == 0 && scaleOnly[name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "wsbench: %s …\n", name)
		if err := parts[name](ctx); err != nil {
			b.fail(name, err)
		}
	}
	b.close()
	report := b.report(time.Since(started))
	fmt.Print(report)
	base := time.Now().UTC().Format("2006-01-02")
	if o.name != "" {
		base += "-" + o.name
	}
	out := filepath.Join(outDir, base+".md")
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "wsbench: written to", out)
	if len(b.failures) > 0 {
		return errors.New("some measurements failed; see the table")
	}
	return nil
}

// row is one line of the results table.
type row struct {
	section, what, value, target, verdict string
}

type bench struct {
	o               options
	root, dir, bins string
	outDir          string
	pprofAddr       string // the single stack's service profile address, with --profile
	daprdPprofAddr  string // and its sidecar's
	rows            []row
	failures        []string
	single          *singleStack
	singleStartErr  error
}

func (b *bench) add(section, what, value, target, verdict string) {
	b.rows = append(b.rows, row{section, what, value, target, verdict})
}

func (b *bench) fail(section string, err error) {
	b.failures = append(b.failures, section+": "+err.Error())
	b.add(section, "measurement failed", err.Error(), "", "FAILED")
}

func (b *bench) close() {
	if b.single != nil {
		b.single.stop()
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func (b *bench) report(took time.Duration) string {
	var w bytes.Buffer
	host, _ := os.Hostname()
	fmt.Fprintf(&w, "# WebSocket Manager benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&w, "Machine: %s, %d CPUs (%s/%s), %s; loopback; Dapr %s; every figure from this one run (%v).\n\n",
		host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), "1.18.2", took.Round(time.Second))
	fmt.Fprintln(&w, "| section | measurement | value | target | verdict |")
	fmt.Fprintln(&w, "|---|---|---|---|---|")
	for _, r := range b.rows {
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s |\n", r.section, r.what, r.value, r.target, r.verdict)
	}
	return w.String()
}

// percentiles returns p50 and p99 of d (sorted in place).
func percentiles(d []time.Duration) (time.Duration, time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
