// Command wsmctl drives WebSocket Manager from a terminal: connect, list, send, sendraw,
// publish start/stop, disconnect, events (follows lifecycle events live) and watch (follows a
// connection's inbound frames live, resuming by itself).
//
// Exit codes scripts can rely on: 0 success; 1 any other failure; 2 usage error or a request
// the service refused as invalid (INVALID_ARGUMENT, FAILED_PRECONDITION); 3 not found;
// 4 already exists; 5 not allowed (UNAUTHENTICATED, PERMISSION_DENIED); 6 try again later
// (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
	exitExists   = 4
	exitDenied   = 5
	exitRetry    = 6
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `wsmctl drives WebSocket Manager.

Usage: wsmctl [global flags] <command> [flags] [arguments]

Commands:
  connect <url>               open a connection; prints its id (wsmctl connect -h: every
                              flag: headers, secrets, TLS, proxy, compression, send rate)
  list                        the connections, as a table (--output json for JSON), fetched
                              in pages [--tag K=V] [--status S] [--page-size N]
                              [--watch [--interval 2s]]: redraw until Ctrl-C
  send <id> <message>         send a message and print the reply
  sendraw <id> <message>      send a message without waiting
  publish start <id> <topic>  publish every inbound frame to a Dapr pub/sub topic
                              [--batch-frames N --batch-bytes N --batch-delay D]
                              [--overflow drop_newest|drop_oldest|backpressure] [--include-replies]
  publish stop <id>           stop publishing
  disconnect <id>             close the connection and forget it
  events [--id <id>]          print lifecycle events as they happen, until Ctrl-C
  watch <id> [--from N] [--include-replies]
                              print the connection's inbound frames as they arrive, until
                              Ctrl-C, one a line: sequence, time, kind, text (or base64);
                              frames not retained any more as "missing A-B (reason)"

Global flags (also from the environment: WSMCTL_ADDR, WSMCTL_TOKEN):
`

type globals struct {
	addr, token, output string
	tls                 bool
	ca, cert, key       string
	timeout             time.Duration
	stdout, stderr      io.Writer
	client              *wsmclient.Client
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	g := &globals{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("wsmctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&g.addr, "addr", envOr(getenv, "WSMCTL_ADDR", "127.0.0.1:5002"), "the service's gRPC address")
	fs.StringVar(&g.token, "token", getenv("WSMCTL_TOKEN"), "bearer token (prefer WSMCTL_TOKEN: flags show in the process list)")
	fs.StringVar(&g.output, "output", "table", "output format: table or json")
	fs.BoolVar(&g.tls, "tls", false, "use TLS (implied by --ca-file, --cert-file)")
	fs.StringVar(&g.ca, "ca-file", "", "PEM CA to verify the service with (default: system roots)")
	fs.StringVar(&g.cert, "cert-file", "", "PEM client certificate (mTLS)")
	fs.StringVar(&g.key, "key-file", "", "PEM key of --cert-file")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "timeout of each call (events: none)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if g.output != "table" && g.output != "json" {
		fmt.Fprintf(stderr, "wsmctl: --output must be table or json, got %q\n", g.output)
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return exitUsage
	}
	opts := []wsmclient.Option{wsmclient.WithToken(g.token), wsmclient.WithTimeout(g.timeout)}
	if g.tls || g.ca != "" || g.cert != "" {
		opts = append(opts, wsmclient.WithTLSFiles(g.ca, g.cert, g.key))
	}
	c, err := wsmclient.New(g.addr, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "wsmctl:", err)
		return exitUsage
	}
	defer c.Close()
	g.client = c
	cmds := map[string]func(context.Context, []string) error{
		"connect": g.connect, "list": g.list, "send": g.send, "sendraw": g.sendraw,
		"publish": g.publish, "disconnect": g.disconnect, "events": g.events, "watch": g.watch,
	}
	cmd, ok := cmds[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "wsmctl: unknown command %q (wsmctl -h lists them)\n", rest[0])
		return exitUsage
	}
	return g.report(cmd(ctx, rest[1:]))
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// usageError is a mistake on the command line.
type usageError string

func (e usageError) Error() string { return string(e) }

// report prints err in plain words and returns the exit code for it.
func (g *globals) report(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(g.stderr, "wsmctl:", ue)
		return exitUsage
	}
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintln(g.stderr, "wsmctl:", err)
		return exitFailure
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if strings.Contains(msg, "connection refused") || strings.Contains(msg, "dial tcp") || strings.Contains(msg, "connection error") {
			msg = fmt.Sprintf("cannot reach the service at %s (is it running? is --addr right?): %s", g.addr, msg)
		}
	case codes.Unauthenticated:
		if g.token == "" {
			msg += " (set WSMCTL_TOKEN or --token)"
		}
	}
	fmt.Fprintf(g.stderr, "wsmctl: %s (%s)\n", msg, st.Code())
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return exitUsage
	case codes.NotFound:
		return exitNotFound
	case codes.AlreadyExists:
		return exitExists
	case codes.Unauthenticated, codes.PermissionDenied:
		return exitDenied
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return exitRetry
	}
	return exitFailure
}

// kv collects repeated key=value flags.
type kv map[string]string

func (m kv) String() string { return "" }
func (m kv) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	m[k] = v
	return nil
}

// list collects repeated flags.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func (g *globals) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("wsmctl "+name, flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	return fs
}

// parse parses a command's flags, which may come before or after its arguments.
func parse(fs *flag.FlagSet, args []string, want int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError(err.Error())
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != want {
		return nil, usageError(fmt.Sprintf("usage: %s %s", fs.Name(), what))
	}
	return pos, nil
}

func (g *globals) print(m proto.Message) {
	b, _ := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: false}.Marshal(m)
	fmt.Fprintln(g.stdout, string(b))
}

func (g *globals) connect(ctx context.Context, args []string) error {
	req, err := connectRequest(g.flags("connect"), args, os.ReadFile)
	if err != nil {
		return err
	}
	r, err := g.client.Connect(ctx, req)
	if err != nil {
		return err
	}
	if g.output == "json" {
		g.print(r)
		return nil
	}
	fmt.Fprintln(g.stdout, r.GetConnectionId())
	return nil
}

// connectRequest reads connect's arguments into a request; readFile reads the pem: files.
func connectRequest(fs *flag.FlagSet, args []string, readFile func(string) ([]byte, error)) (*pb.ConnectRequest, error) {
	headers, tags := kv{}, kv{}
	var subprotocols, onConnect list
	req := &pb.ConnectRequest{}
	fs.StringVar(&req.ConnectionId, "id", "", "connection id (default: a UUID)")
	fs.BoolVar(&req.AutoReconnect, "auto-reconnect", false, "reconnect after a drop")
	fs.Var(headers, "header", "handshake header key=value (repeatable)")
	fs.Var(tags, "tag", "tag key=value (repeatable)")
	fs.Var(&subprotocols, "subprotocol", "offered subprotocol (repeatable)")
	fs.Var(&onConnect, "on-connect", "message sent after every handshake (repeatable)")
	mode := fs.String("correlation", "", "reply correlation: auto, json_field, prefix or next")
	field := fs.String("field", "", "correlation field of json_field mode (default id)")
	sendRate := fs.Float64("send-rate", 0, "limit what is sent (Send, SendRaw, on-connect messages) to this many frames a second (0: no limit)")
	sendBurst := fs.Uint("send-burst", 0, "with --send-rate: frames that may go at once (0: 1)")
	up := upstreamFlags{readFile: readFile}
	up.register(fs)
	pos, err := parse(fs, args, 1, "<url> [--id ID] [--auto-reconnect] [--header K=V] [--secret-header K=store/key] [--tls-…] [--tag K=V] … (wsmctl connect -h lists them)")
	if err != nil {
		return nil, err
	}
	if *sendRate != 0 || *sendBurst != 0 {
		req.SendRate = &pb.SendRate{PerSecond: *sendRate, Burst: uint32(min(*sendBurst, math.MaxUint32))}
	}
	req.Url, req.Headers, req.Tags, req.Subprotocols, req.OnConnectMessages = pos[0], headers, tags, subprotocols, onConnect
	if *mode != "" || *field != "" {
		m, ok := pb.CorrelationMode_value["CORRELATION_MODE_"+strings.ToUpper(*mode)]
		if !ok && *mode != "" {
			return nil, usageError(fmt.Sprintf("--correlation must be auto, json_field, prefix or next, got %q", *mode))
		}
		req.Correlation = &pb.Correlation{Mode: pb.CorrelationMode(m), Field: *field}
	}
	if err := up.apply(req); err != nil {
		return nil, err
	}
	return req, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (g *globals) send(ctx context.Context, args []string) error {
	fs := g.flags("send")
	timeout := fs.Duration("reply-timeout", 0, "how long to wait for the reply (default: the service's)")
	fast := fs.Bool("fail-fast", false, "over the connection's send rate: fail at once instead of waiting")
	pos, err := parse(fs, args, 2, "<id> <message> [--reply-timeout 5s] [--fail-fast]")
	if err != nil {
		return err
	}
	r, err := g.client.Send(ctx, pos[0], pos[1], *timeout, sendOpts(*fast)...)
	if err != nil {
		return err
	}
	if g.output == "json" {
		g.print(r)
		return nil
	}
	if r.GetBinary() {
		_, err = g.stdout.Write(r.GetBinaryResponse())
		return err
	}
	fmt.Fprintln(g.stdout, r.GetResponse())
	return nil
}

func (g *globals) sendraw(ctx context.Context, args []string) error {
	fs := g.flags("sendraw")
	fast := fs.Bool("fail-fast", false, "over the connection's send rate: fail at once instead of waiting")
	pos, err := parse(fs, args, 2, "<id> <message> [--fail-fast]")
	if err != nil {
		return err
	}
	return g.client.SendRaw(ctx, pos[0], pos[1], sendOpts(*fast)...)
}

func sendOpts(failFast bool) []wsmclient.SendOption {
	if failFast {
		return []wsmclient.SendOption{wsmclient.FailFast()}
	}
	return nil
}

func (g *globals) publish(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "start" {
		fs := g.flags("publish start")
		frames := fs.Int("batch-frames", 0, "publish waiting frames together, at most this many per event (0 or 1: one event per frame)")
		bytes := fs.Int("batch-bytes", 0, "most bytes of a batch event's data (0: what the pub/sub accepts)")
		delay := fs.Duration("batch-delay", 0, "how long a partial batch may wait for more frames")
		overflow := fs.String("overflow", "drop_newest", "when the publish buffer is full: drop_newest, drop_oldest or backpressure")
		replies := fs.Bool("include-replies", false, "publish also the frames that answered a Send")
		pos, err := parse(fs, args[1:], 2, "[flags] <id> <topic>")
		if err != nil {
			return err
		}
		o, ok := pb.Overflow_value["OVERFLOW_"+strings.ToUpper(*overflow)]
		if !ok {
			return usageError(fmt.Sprintf("--overflow %q: use drop_newest, drop_oldest or backpressure", *overflow))
		}
		opts := []wsmclient.PublishOption{wsmclient.WithBatch(*frames, *bytes, *delay), wsmclient.WithOverflow(pb.Overflow(o))}
		if *replies {
			opts = append(opts, wsmclient.WithReplies())
		}
		return g.client.StartPublish(ctx, pos[0], pos[1], opts...)
	}
	if len(args) > 0 && args[0] == "stop" {
		pos, err := parse(g.flags("publish stop"), args[1:], 1, "<id>")
		if err != nil {
			return err
		}
		return g.client.StopPublish(ctx, pos[0])
	}
	return usageError("usage: wsmctl publish start <id> <topic> | wsmctl publish stop <id>")
}

func (g *globals) disconnect(ctx context.Context, args []string) error {
	pos, err := parse(g.flags("disconnect"), args, 1, "<id>")
	if err != nil {
		return err
	}
	return g.client.Disconnect(ctx, pos[0])
}

func (g *globals) events(ctx context.Context, args []string) error {
	fs := g.flags("events")
	id := fs.String("id", "", "only this connection's events")
	if _, err := parse(fs, args, 0, "[--id ID]"); err != nil {
		return err
	}
	enc := json.NewEncoder(g.stdout)
	return g.client.WatchEvents(ctx, *id, func(ev *pb.LifecycleEvent) error {
		if g.output == "json" {
			b, _ := protojson.Marshal(ev)
			return enc.Encode(json.RawMessage(b))
		}
		if ev.GetSkipped() > 0 {
			_, err := fmt.Fprintf(g.stdout, "… %d events skipped (this terminal fell behind)\n", ev.GetSkipped())
			return err
		}
		line := fmt.Sprintf("%s  %s  %s → %s  %s", ev.GetTime().AsTime().Local().Format("15:04:05.000"), ev.GetConnectionId(),
			ev.GetPreviousStatus(), ev.GetStatus(), ev.GetReason())
		if ev.GetError() != "" {
			line += "  error: " + ev.GetError()
		}
		if ev.GetInstanceId() != "" {
			line += "  [" + ev.GetInstanceId() + "]"
		}
		_, err := fmt.Fprintln(g.stdout, line)
		return err
	})
}

func (g *globals) watch(ctx context.Context, args []string) error {
	fs := g.flags("watch")
	from := fs.String("from", "", "start at this sequence: the retained frames from it first, then live ones (default: live)")
	replies := fs.Bool("include-replies", false, "also the frames that answered a Send")
	pos, err := parse(fs, args, 1, "<id> [--from N] [--include-replies]")
	if err != nil {
		return err
	}
	var opts []wsmclient.WatchOption
	if *from != "" {
		n, err := strconv.ParseUint(*from, 10, 64)
		if err != nil {
			return usageError(fmt.Sprintf("--from must be a sequence number, got %q", *from))
		}
		opts = append(opts, wsmclient.WithFrom(n))
	}
	if *replies {
		opts = append(opts, wsmclient.WithWatchReplies())
	}
	enc := json.NewEncoder(g.stdout)
	for f, err := range g.client.Watch(ctx, pos[0], opts...) {
		if err != nil {
			return err
		}
		if g.output == "json" {
			b, _ := protojson.Marshal(f)
			err = enc.Encode(json.RawMessage(b))
		} else {
			_, err = fmt.Fprintln(g.stdout, frameLine(f))
		}
		if err != nil {
			return err
		}
	}
	return nil // Ctrl-C
}

// frameLine is a watched frame on one line: "sequence time kind payload", kind being text or
// binary (base64), with ",reply" for a reply and ",quoted" for text that would not stay on
// one line as it is (then Go-quoted); a gap notice is "missing A-B (reason)".
func frameLine(f *wsmclient.WatchedFrame) string {
	if g := f.GetMissing(); g != nil {
		return fmt.Sprintf("missing %d-%d (%s)", g.GetFromSequence(), g.GetToSequence(), g.GetReason())
	}
	kind, payload := "text", f.GetText()
	if b, ok := f.GetPayload().(*pb.Frame_Binary); ok {
		kind, payload = "binary", base64.StdEncoding.EncodeToString(b.Binary)
	} else if strings.ContainsFunc(payload, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		kind, payload = "text,quoted", strconv.Quote(payload)
	}
	if f.GetReply() {
		kind += ",reply"
	}
	return fmt.Sprintf("%d %s %s %s", f.GetSequence(), f.GetReceivedAt().AsTime().UTC().Format(time.RFC3339Nano), kind, payload)
}
