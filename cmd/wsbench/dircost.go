package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/google/uuid"

	"github.com/websocketmanager/websocketmanager/actors"
	"github.com/websocketmanager/websocketmanager/cmd/internal/daprstack"
	"github.com/websocketmanager/websocketmanager/cmd/internal/redisstream"
	"github.com/websocketmanager/websocketmanager/cmd/internal/svcargs"
)

// dirCostSizes is --dircost-sizes. It is registered here rather than in run() so that the
// part lives in this one file; run() parses it with the other flags.
var dirCostSizes = flag.String("dircost-sizes", "100,1000,10000", "entries in the measured directory shard, ascending, for the dircost part")

const (
	dirCostSection = "7 directory cost (real runtime)"
	// dirCostPairs is the number of Add/Remove pairs (and Pings) timed at each size.
	dirCostPairs = 300
	// dirCostInFlight is how many fill Adds are in flight: they queue on the one actor anyway,
	// a few in flight only hide the round trip.
	dirCostInFlight = 8
	// dirCostShard is the measured shard; any would do, "0" is also the one Ping calls.
	dirCostShard = "0"
	// dirCostFlat is the largest ratio of Add p50 at the largest size to the smallest that
	// still counts as "the same cost" (issue 16: an add or remove costs the same at 100 as at
	// 10,000 entries per shard).
	dirCostFlat = 1.5
)

// dirCost measures what adding and removing a directory entry costs on the real runtime as
// the shard grows (docs/scaling.md, "Measuring it on the real runtime"): one instance with the
// Redis actor state store, one shard filled to each size with made-up ids, then Add/Remove
// pairs of new ids timed beside a bare actor call (Ping) on the same shard.
func (b *bench) dirCost(ctx context.Context) error {
	sizes, err := parseInts(*dirCostSizes)
	if err != nil {
		return fmt.Errorf("--dircost-sizes: %w", err)
	}
	if len(sizes) == 0 || !slices.IsSorted(sizes) || sizes[0] < 1 {
		return fmt.Errorf("--dircost-sizes must be ascending positive counts, got %q", *dirCostSizes)
	}
	// A port taken between FreePorts and daprd's bind ends the start: start again on new ones.
	var s *dirCostStack
	for attempt := 1; ; attempt++ {
		if s, err = b.newDirCostStack(ctx); err == nil || attempt == 3 || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "wsbench: dircost: start failed (%v); starting again\n", err)
	}
	if err != nil {
		return err
	}
	defer s.stop() // also on failure: processes first, then the run's Redis keys
	ac := s.calls()

	// One-offs, timed apart from the measurement: the first call to the shard (it activates
	// the actor unless the service's first Announce did so already, and opens the call path),
	// and the first Add, which registers the shard's watchdog reminder with the scheduler. The
	// first Add's id stays in, as the first of the fill.
	t0 := time.Now()
	if err := ac.ping(ctx); err != nil {
		return fmt.Errorf("first Ping: %w", err)
	}
	b.add(dirCostSection, "first call to the shard (Ping; activation unless the service's Announce came first)", us(time.Since(t0)), "", "")
	if _, err := timeN(50, func() error { return ac.ping(ctx) }); err != nil { // warm the call path
		return fmt.Errorf("warm-up Ping: %w", err)
	}
	gen := &shardIDs{prefix: "dircost-" + s.run, shard: dirCostShard}
	t0 = time.Now()
	if err := ac.add(ctx, gen.next()); err != nil {
		return fmt.Errorf("first Add: %w", err)
	}
	b.add(dirCostSection, "first Add of the shard (registers its watchdog reminder)", us(time.Since(t0)), "", "")

	rc, err := redisstream.Dial(ctx, redisstream.Addr)
	if err != nil {
		return err
	}
	defer rc.Close()

	filled := 1
	addP50, perPing := map[int]time.Duration{}, map[int]float64{}
	for _, size := range sizes {
		if size > filled {
			ids := gen.take(size - filled)
			start := time.Now()
			if err := parallel(ids, dirCostInFlight, func(id string) error { return ac.add(ctx, id) }); err != nil {
				return fmt.Errorf("fill to %d: %w", size, err)
			}
			took := time.Since(start)
			b.add(dirCostSection, fmt.Sprintf("fill to %d: %d Adds, %d in flight", size, len(ids), dirCostInFlight),
				fmt.Sprintf("%.1f s (%.0f Adds/s)", took.Seconds(), float64(len(ids))/took.Seconds()), "", "")
			filled = size
		}
		n, err := s.shardLen(ctx)
		if err != nil {
			return fmt.Errorf("count shard %s: %w", dirCostShard, err)
		}
		if n != size {
			return fmt.Errorf("shard %s holds %d entries, want %d", dirCostShard, n, size)
		}
		state, err := readShardState(ctx, rc, s.shardKeys())
		if err != nil {
			return err
		}

		before, statsErr := commandStats(ctx, rc)
		m, err := measureDirCost(ctx, ac, gen, dirCostPairs)
		if err != nil {
			return fmt.Errorf("measure at %d: %w", size, err)
		}
		after, err := commandStats(ctx, rc)
		if statsErr == nil {
			statsErr = err
		}
		a50, a99 := percentiles(m.add)
		r50, r99 := percentiles(m.remove)
		p50, p99 := percentiles(m.ping)
		addP50[size], perPing[size] = a50, float64(a50)/float64(p50)
		what := func(s string) string { return fmt.Sprintf("shard of %d: %s", size, s) }
		b.add(dirCostSection, what("its state in Redis"), state.String(), "", "")
		b.add(dirCostSection, what("Add p50 / p99"), us(a50)+" / "+us(a99), "", "")
		b.add(dirCostSection, what("Remove p50 / p99"), us(r50)+" / "+us(r99), "", "")
		b.add(dirCostSection, what("Ping (bare actor call) p50 / p99"), us(p50)+" / "+us(p99), "", "")
		b.add(dirCostSection, what("Add p50 ÷ Ping p50"), fmt.Sprintf("%.2f×", perPing[size]), "", "")
		if statsErr != nil {
			b.add(dirCostSection, what("Redis commands per Add+Remove pair"), "not read: "+statsErr.Error(), "", "")
		} else {
			b.add(dirCostSection, what("Redis commands per Add+Remove pair (whole server, shared)"),
				formatStatsDelta(diffStats(before, after), dirCostPairs), "", "")
		}
	}
	if err := b.dirCostReactivated(ctx, s, ac, gen, filled); err != nil {
		b.add(dirCostSection, fmt.Sprintf("shard of %d after a restart of the service", filled), "failed: "+err.Error(), "", "")
	}
	if len(sizes) < 2 {
		return nil // one size: nothing to compare
	}
	lo, hi := sizes[0], sizes[len(sizes)-1]
	ratio := float64(addP50[hi]) / float64(addP50[lo])
	b.add(dirCostSection, fmt.Sprintf("Add p50 at %d ÷ at %d", hi, lo), fmt.Sprintf("%.2f×", ratio),
		fmt.Sprintf("≤ %.1f× (same cost at any size)", dirCostFlat), flatVerdict(ratio))
	// The same comparison with each size's Add in units of its own Ping: the sizes are measured
	// one after another, and on a shared machine the load can change in between.
	b.add(dirCostSection, fmt.Sprintf("(Add p50 ÷ Ping p50) at %d ÷ at %d", hi, lo), fmt.Sprintf("%.2f×", perPing[hi]/perPing[lo]), "", "")
	return nil
}

func flatVerdict(ratio float64) string {
	if ratio <= dirCostFlat {
		return "flat"
	}
	return "NOT flat"
}

// dirCostReactivated restarts the service, which deactivates the shard (the actor and its
// cached state live in the service), and times the first Add after that and then the usual
// pairs: a shard activated anew reads its header on the first call and each bucket when first
// needed, so these calls pay the reads the warm shard above did not.
func (b *bench) dirCostReactivated(ctx context.Context, s *dirCostStack, ac shardCalls, gen *shardIDs, size int) error {
	restarted := time.Now()
	svc, err := s.st.Restart(s.svc, 10*time.Second)
	if err != nil {
		return err
	}
	s.svc = svc
	// Wait on another shard, so that shard 0 is first called by the timed Add.
	probe := func() bool {
		_, err := s.dapr.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: actors.DirectoryType, ActorID: "1",
			Method: actors.DirectoryMethodPing, Data: []byte("{}")})
		return err == nil
	}
	for !probe() {
		if svc.Exited() {
			return fmt.Errorf("the service exited after its restart; its log is %s", svc.LogPath())
		}
		if time.Since(restarted) > time.Minute {
			return errors.New("the actor path did not come back within a minute of the restart")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	back := time.Since(restarted)
	t0 := time.Now()
	if err := ac.add(ctx, gen.next()); err != nil {
		return fmt.Errorf("first Add: %w", err)
	}
	first := time.Since(t0)
	size++ // that Add's id stays
	m, err := measureDirCost(ctx, ac, gen, dirCostPairs)
	if err != nil {
		return err
	}
	a50, a99 := percentiles(m.add)
	r50, r99 := percentiles(m.remove)
	p50, _ := percentiles(m.ping)
	what := fmt.Sprintf("shard of %d after a restart of the service (actor path back in %.1f s): ", size, back.Seconds())
	b.add(dirCostSection, what+"first Add (activation, header and one bucket read)", us(first), "", "")
	b.add(dirCostSection, what+"then Add p50 / p99, Remove p50 / p99 (buckets read when first needed)",
		us(a50)+" / "+us(a99)+", "+us(r50)+" / "+us(r99)+fmt.Sprintf(" (Ping p50 %s)", us(p50)), "", "")
	return nil
}

// dirCostSample is one size's timings.
type dirCostSample struct {
	add, remove, ping []time.Duration
}

// measureDirCost times n rounds of Ping, Add(new id), Remove(that id): interleaved, so that
// machine noise hits the three alike, and the shard's size is the same before every Add.
func measureDirCost(ctx context.Context, ac shardCalls, gen *shardIDs, n int) (dirCostSample, error) {
	m := dirCostSample{add: make([]time.Duration, 0, n), remove: make([]time.Duration, 0, n), ping: make([]time.Duration, 0, n)}
	for range n {
		t := time.Now()
		if err := ac.ping(ctx); err != nil {
			return m, fmt.Errorf("directory ping: %w", err)
		}
		m.ping = append(m.ping, time.Since(t))
		id := gen.next()
		t = time.Now()
		if err := ac.add(ctx, id); err != nil {
			return m, fmt.Errorf("directory add: %w", err)
		}
		m.add = append(m.add, time.Since(t))
		t = time.Now()
		if err := ac.remove(ctx, id); err != nil {
			return m, fmt.Errorf("directory remove: %w", err)
		}
		m.remove = append(m.remove, time.Since(t))
	}
	return m, nil
}

// shardCalls makes the measured calls through the sidecar's gRPC API.
type shardCalls struct {
	dapr   dapr.Client
	ac     *actors.Client
	holder string
}

// add calls the directory's Add method itself. Client.AddMember would gather concurrent Adds
// into one AddMany call (the Connect path): the fill would measure the batching, and a timed
// Add would be an AddMany of one; measured here is what one change costs.
func (c shardCalls) add(ctx context.Context, id string) error {
	return c.invoke(ctx, actors.DirectoryShard(id), actors.DirectoryMethodAdd, actors.MemberArgs{ID: id, Holder: c.holder})
}

func (c shardCalls) remove(ctx context.Context, id string) error { return c.ac.RemoveMember(ctx, id) }

// ping is the bare actor call, on shard "0" (the measured shard).
func (c shardCalls) ping(ctx context.Context) error { return c.ac.Ping(ctx) }

// invoke calls a directory method with a JSON argument and checks the reply's error.
func (c shardCalls) invoke(ctx context.Context, shard, method string, in any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.dapr.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: actors.DirectoryType, ActorID: shard, Method: method, Data: data})
	if err != nil {
		return err
	}
	var r actors.Reply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return fmt.Errorf("decode %s reply: %w", method, err)
	}
	if r.Error != nil {
		return &actors.Error{Code: r.Error.Code, Message: r.Error.Message, RetryAfterMS: r.Error.RetryAfterMS}
	}
	return nil
}

// shardIDs makes up connection ids that land in one directory shard (under this process's
// shard count, the service's default too): prefix-0, prefix-1, … skipping the others.
type shardIDs struct {
	prefix, shard string
	n             int
}

func (g *shardIDs) next() string {
	for {
		id := g.prefix + "-" + strconv.Itoa(g.n)
		g.n++
		if actors.DirectoryShard(id) == g.shard {
			return id
		}
	}
}

func (g *shardIDs) take(k int) []string {
	ids := make([]string, k)
	for i := range ids {
		ids[i] = g.next()
	}
	return ids
}

// dirCostStack is the part's own instance: placement, scheduler, one sidecar with the Redis
// actor state store under an app id of its own, and the service.
type dirCostStack struct {
	st     *daprstack.Stack
	svc    *daprstack.Proc
	run    string
	appID  string
	holder string // the service's gRPC address, recorded as the made-up ids' holder
	dapr   dapr.Client
}

func (b *bench) newDirCostStack(ctx context.Context) (*dirCostStack, error) {
	run := uuid.NewString()[:8]
	st, err := daprstack.NewStack(filepath.Join(b.dir, "dircost-"+run))
	if err != nil {
		return nil, err
	}
	s := &dirCostStack{st: st, run: run, appID: "wsmanager-dircost-" + run}
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
	res, err := writeResources(b.dir, true)
	if err != nil {
		return nil, err
	}
	ports, err := daprstack.FreePorts(3)
	if err != nil {
		return nil, err
	}
	d, err := st.StartDaprd(bin, rt, daprstack.DaprdOptions{AppID: s.appID, AppPort: ports[2], ResourcesPath: res,
		AppHealthCheck: true, LogLevel: "warn"})
	if err != nil {
		return nil, err
	}
	// A long watchdog period: the watchdog would locate the made-up ids, find no connection
	// and remove them while they are measured.
	o := svcargs.Options{GRPCPort: ports[0], HTTPPort: ports[1], ActorPort: ports[2], DaprGRPCAddress: d.GRPCAddr(),
		LogLevel: "warn", NoLifecycleEvents: true, WatchdogInterval: time.Hour}
	if s.svc, err = st.Start("wsmanager", o.Environ(), filepath.Join(b.bins, "wsmanager"), o.Args()...); err != nil {
		return nil, err
	}
	if err := d.WaitActorsReady(ctx); err != nil {
		return nil, err
	}
	s.holder = fmt.Sprintf("127.0.0.1:%d", ports[0])
	if s.dapr, err = dapr.NewClientWithAddressContext(ctx, d.GRPCAddr()); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// stop stops the processes, then deletes the run's actor state from Redis (a failure is only
// reported: the bench's figures stand without it).
func (s *dirCostStack) stop() {
	if s.dapr != nil {
		s.dapr.Close()
	}
	s.st.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := delKeys(ctx, s.appID+"||*"); err != nil {
		fmt.Fprintf(os.Stderr, "wsbench: deleting the Redis keys %s||*: %v\n", s.appID, err)
	}
}

// shardKeys is the Redis key pattern of the measured shard's actor state.
func (s *dirCostStack) shardKeys() string {
	return s.appID + "||" + actors.DirectoryType + "||" + dirCostShard + "||*"
}

func (s *dirCostStack) calls() shardCalls {
	return shardCalls{dapr: s.dapr, ac: actors.NewClient(s.dapr), holder: s.holder}
}

// shardLen asks the measured shard for its members, to check the fill.
func (s *dirCostStack) shardLen(ctx context.Context) (int, error) {
	resp, err := s.dapr.InvokeActor(ctx, &dapr.InvokeActorRequest{ActorType: actors.DirectoryType, ActorID: dirCostShard,
		Method: actors.DirectoryMethodMembers, Data: []byte("{}")})
	if err != nil {
		return 0, err
	}
	var r actors.MembersReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, err
	}
	if r.Error != nil {
		return 0, errors.New(r.Error.Message)
	}
	return len(r.IDs), nil
}

// scanKeys calls f with every batch of keys of the machine's Redis that match pattern.
func scanKeys(ctx context.Context, rc *redisstream.Client, pattern string, f func([]string) error) error {
	cursor := "0"
	for {
		r, err := rc.Do(ctx, "SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
		if err != nil {
			return err
		}
		if len(r.Elems) != 2 {
			return fmt.Errorf("SCAN answered %d elements, want 2", len(r.Elems))
		}
		keys := make([]string, 0, len(r.Elems[1].Elems))
		for _, k := range r.Elems[1].Elems {
			keys = append(keys, k.Str)
		}
		if len(keys) > 0 {
			if err := f(keys); err != nil {
				return err
			}
		}
		if cursor = r.Elems[0].Str; cursor == "0" {
			return nil
		}
	}
}

// shardState is what a shard's actor state looks like in Redis: its keys, and the sizes of
// its bucket values (a change rewrites one bucket, so their size is what a change writes).
type shardState struct {
	keys, buckets       int
	meanBytes, maxBytes int
}

func (s shardState) String() string {
	return fmt.Sprintf("%d keys; %d buckets, %d B mean, %d B largest", s.keys, s.buckets, s.meanBytes, s.maxBytes)
}

// readShardState reads the keys that match pattern (Dapr's Redis store keeps each actor state
// key as a hash whose "data" field is the value).
func readShardState(ctx context.Context, rc *redisstream.Client, pattern string) (shardState, error) {
	seen := map[string]bool{} // SCAN may return a key twice
	if err := scanKeys(ctx, rc, pattern, func(keys []string) error {
		for _, k := range keys {
			seen[k] = true
		}
		return nil
	}); err != nil {
		return shardState{}, err
	}
	st := shardState{keys: len(seen)}
	total := 0
	for k := range seen {
		// The state key is the last part of "<app id>||<type>||<actor id>||<key>"; bucket
		// keys are lhash.BucketKey(n), "b/<n>".
		if !strings.HasPrefix(k[strings.LastIndex(k, "||")+2:], "b/") {
			continue
		}
		r, err := rc.Do(ctx, "HSTRLEN", k, "data")
		if err != nil {
			return st, fmt.Errorf("HSTRLEN %s: %w", k, err)
		}
		st.buckets++
		total += int(r.Int)
		st.maxBytes = max(st.maxBytes, int(r.Int))
	}
	if st.buckets > 0 {
		st.meanBytes = total / st.buckets
	}
	return st, nil
}

// delKeys deletes every key of the machine's Redis that matches pattern (SCAN MATCH, then
// DEL) and returns how many it deleted: the actor state a run leaves behind under its app id,
// "<appid>||*". Keys written while it runs may survive it.
func delKeys(ctx context.Context, pattern string) (int, error) {
	rc, err := redisstream.Dial(ctx, redisstream.Addr)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	deleted := 0
	err = scanKeys(ctx, rc, pattern, func(keys []string) error {
		n, err := rc.Del(ctx, keys...)
		deleted += int(n)
		return err
	})
	return deleted, err
}

// cmdStat is one line of Redis's INFO commandstats.
type cmdStat struct {
	calls int64
	usec  int64
}

// commandStats reads Redis's per-command counters.
func commandStats(ctx context.Context, rc *redisstream.Client) (map[string]cmdStat, error) {
	r, err := rc.Do(ctx, "INFO", "commandstats")
	if err != nil {
		return nil, err
	}
	return parseCommandStats(r.Str), nil
}

// parseCommandStats parses the text of INFO commandstats: lines such as
// "cmdstat_evalsha:calls=12,usec=340,usec_per_call=28.33,rejected_calls=0,failed_calls=0".
func parseCommandStats(text string) map[string]cmdStat {
	out := map[string]cmdStat{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		name, fields, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var st cmdStat
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "calls":
				st.calls = n
			case "usec":
				st.usec = n
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = st
	}
	return out
}

// cmdDelta is one command's counters between two readings.
type cmdDelta struct {
	name string
	cmdStat
}

// diffStats returns the commands called between before and after, most called first.
func diffStats(before, after map[string]cmdStat) []cmdDelta {
	var out []cmdDelta
	for name, a := range after {
		b := before[name]
		if d := (cmdStat{calls: a.calls - b.calls, usec: a.usec - b.usec}); d.calls > 0 {
			out = append(out, cmdDelta{name, d})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].calls != out[j].calls {
			return out[i].calls > out[j].calls
		}
		return out[i].name < out[j].name
	})
	return out
}

// formatStatsDelta writes each command's calls per pair and µs per call; the INFO and SCAN
// of the measurement itself are left out.
func formatStatsDelta(d []cmdDelta, pairs int) string {
	var parts []string
	for _, c := range d {
		if c.name == "info" || c.name == "scan" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f/pair at %.1f µs", c.name, float64(c.calls)/float64(pairs), float64(c.usec)/float64(c.calls)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
