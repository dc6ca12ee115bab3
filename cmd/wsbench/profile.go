package main

import (
	"context"
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

// cpuProfile takes a CPU profile of the service for d and writes `go tool pprof -top` of it to
// path. It runs beside a measurement, so it only reports its own failure.
func (b *bench) cpuProfile(ctx context.Context, d time.Duration, path string) error {
	if b.pprofAddr == "" {
		return nil
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.pprofAddr, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw := filepath.Join(b.dir, filepath.Base(path)+".pb.gz")
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
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=40",
		filepath.Join(b.bins, "wsmanager"), raw).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pprof: %w: %s", err, top)
	}
	return os.WriteFile(path, top, 0o644)
}
