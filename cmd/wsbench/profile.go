package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
)

// cpuSnapshot is the CPU time each process of a stack, and this bench process, has used so far.
type cpuSnapshot map[string]time.Duration

func snapshotCPU(st *daprstack.Stack) cpuSnapshot {
	out := cpuSnapshot{}
	for _, p := range st.Procs() {
		if p.Exited() {
			continue
		}
		if _, c, err := procStat(p.Pid()); err == nil {
			out[p.Name] += c
		}
	}
	if _, c, err := procStat(os.Getpid()); err == nil {
		out["wsbench (the clients)"] = c
	}
	return out
}

// cpuShares formats each process's CPU use between two snapshots as a share of one core,
// largest first: where the machine's two cores went during a phase.
func cpuShares(before, after cpuSnapshot, over time.Duration) string {
	type share struct {
		name string
		pct  float64
	}
	var all []share
	var total float64
	for name, c := range after {
		pct := 100 * float64(c-before[name]) / float64(over)
		if pct < 0.5 {
			continue
		}
		all = append(all, share{name, pct})
		total += pct
	}
	sort.Slice(all, func(i, j int) bool { return all[i].pct > all[j].pct })
	parts := make([]string, 0, len(all)+1)
	for _, s := range all {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", s.name, s.pct))
	}
	parts = append(parts, fmt.Sprintf("total %.0f%% of one core", total))
	return strings.Join(parts, ", ")
}

// cpuProfile takes CPU profiles of the service and, when it serves one, of its sidecar for d
// (at the same time) and writes `go tool pprof -top` of each: the service's to path, daprd's
// beside it with "-daprd" before the extension. It runs beside a measurement, so it only
// reports its own failure.
func (b *bench) cpuProfile(ctx context.Context, d time.Duration, path string) error {
	if b.pprofAddr == "" {
		return nil
	}
	daprdErr := make(chan error, 1)
	if b.daprdPprofAddr != "" {
		dpath := strings.TrimSuffix(path, filepath.Ext(path)) + "-daprd" + filepath.Ext(path)
		go func() {
			daprdErr <- profileTop(ctx, b.daprdPprofAddr, filepath.Join(daprstack.BinDir(b.root), "daprd"), b.dir, dpath, d)
		}()
	} else {
		daprdErr <- nil
	}
	err := profileTop(ctx, b.pprofAddr, filepath.Join(b.bins, "wsmanager"), b.dir, path, d)
	return errors.Join(err, <-daprdErr)
}

// profileTop takes a CPU profile for d from the pprof server at addr and writes `go tool pprof
// -top` of it (symbols from bin) to path; the raw profile stays in dir.
func profileTop(ctx context.Context, addr, bin, dir, path string, d time.Duration) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw := filepath.Join(dir, filepath.Base(path)+".pb.gz")
	f, err := os.Create(raw)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=40", bin, raw).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pprof: %w: %s", err, top)
	}
	if err := os.WriteFile(path, top, 0o644); err != nil {
		return err
	}
	// The cumulative view names the callers (which API, which component) that the flat one hides.
	cum, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=60", bin, raw).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pprof: %w: %s", err, cum)
	}
	return os.WriteFile(strings.TrimSuffix(path, filepath.Ext(path))+"-cum"+filepath.Ext(path), cum, 0o644)
}
