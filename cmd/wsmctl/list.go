package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// defaultListPage is how many connections `wsmctl list` asks for per call: small enough that
// one response stays far below gRPC's message limit at any fleet size.
const defaultListPage = 500

// lister is the List call of the service's API (a fake in tests).
type lister interface {
	List(ctx context.Context, in *pb.ListRequest, opts ...grpc.CallOption) (*pb.ListResponse, error)
}

// listAll follows next_page_token until the last page and returns every connection req
// selects; each call gets its own timeout (0: none beyond ctx).
func listAll(ctx context.Context, api lister, req *pb.ListRequest, timeout time.Duration) ([]*pb.WebSocketConnection, error) {
	req = proto.CloneOf(req)
	var all []*pb.WebSocketConnection
	seen := map[string]bool{}
	for {
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, timeout)
		}
		r, err := api.List(cctx, req)
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, r.GetConnections()...)
		next := r.GetNextPageToken()
		if next == "" {
			return all, nil
		}
		// A service that hands out a token twice would page forever.
		if seen[next] || req.GetPageSize() == 0 {
			return nil, fmt.Errorf("the service returned page token %q again; list stopped", next)
		}
		seen[next] = true
		req.PageToken = next
	}
}

// statusFlag parses --status: a ConnectionStatus name in any case ("" or "any": every status).
func statusFlag(s string) (pb.ConnectionStatus, error) {
	up := strings.ToUpper(strings.TrimSpace(s))
	if up == "" || up == "ANY" {
		return pb.ConnectionStatus_UNKNOWN, nil
	}
	if v, ok := pb.ConnectionStatus_value[up]; ok && v != 0 {
		return pb.ConnectionStatus(v), nil
	}
	return 0, usageError(fmt.Sprintf("--status must be connecting, connected, disconnected or error, got %q", s))
}

func (g *globals) list(ctx context.Context, args []string) error {
	fs := g.flags("list")
	tags := kv{}
	fs.Var(tags, "tag", "only connections with this tag key=value (repeatable)")
	status := fs.String("status", "", "only connections in this status: connecting, connected, disconnected or error")
	pageSize := fs.Int("page-size", defaultListPage, "connections per call (1-5000; 0: all in one call)")
	watch := fs.Bool("watch", false, "redraw the list every --interval until Ctrl-C")
	interval := fs.Duration("interval", 2*time.Second, "how often --watch refreshes")
	if _, err := parse(fs, args, 0, "[--tag K=V] [--status S] [--page-size N] [--watch [--interval 2s]]"); err != nil {
		return err
	}
	st, err := statusFlag(*status)
	if err != nil {
		return err
	}
	if *pageSize < 0 || *pageSize > 5000 {
		return usageError(fmt.Sprintf("--page-size must be between 0 and 5000, got %d", *pageSize))
	}
	if *watch && *interval <= 0 {
		return usageError("--interval must be positive")
	}
	req := &pb.ListRequest{Tags: tags, Status: st, PageSize: int32(*pageSize)}
	once := func() error {
		conns, err := listAll(ctx, g.client.API(), req, g.timeout)
		if err != nil {
			return err
		}
		g.printList(conns)
		return nil
	}
	if !*watch {
		return once()
	}
	return watchList(ctx, *interval, g.stdout, g.output == "table", func() error {
		if err := once(); err != nil && ctx.Err() == nil {
			fmt.Fprintf(g.stdout, "wsmctl: %v (retrying every %s)\n", err, *interval)
		}
		return nil
	})
}

// watchList calls draw now and every interval until ctx ends (Ctrl-C), clearing the terminal
// before each table.
func watchList(ctx context.Context, interval time.Duration, out io.Writer, clear bool, draw func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if clear {
			fmt.Fprintf(out, "\x1b[H\x1b[2J%s, every %s (Ctrl-C stops)\n", time.Now().Format(time.TimeOnly), interval)
		}
		if err := draw(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// printList prints the connections oldest first (as List without pages returns them).
func (g *globals) printList(conns []*pb.WebSocketConnection) {
	slices.SortStableFunc(conns, func(a, b *pb.WebSocketConnection) int {
		if c := a.GetCreatedAt().AsTime().Compare(b.GetCreatedAt().AsTime()); c != 0 {
			return c
		}
		return strings.Compare(a.GetId(), b.GetId())
	})
	if g.output == "json" {
		g.print(&pb.ListResponse{Connections: conns})
		return
	}
	w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tINSTANCE\tURL\tTOPIC\tRECONNECTS\tAGE\tLAST ERROR")
	for _, c := range conns {
		age := "-"
		if c.GetCreatedAt() != nil && c.GetCreatedAt().GetSeconds() > 0 { // unset for a connection no instance holds
			age = time.Since(c.GetCreatedAt().AsTime()).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.GetId(), c.GetStatus(), orDash(c.GetInstanceId()), orDash(c.GetUrl()),
			orDash(c.GetTopic()), c.GetReconnectCount(), age, orDash(c.GetLastError()))
	}
	_ = w.Flush()
}
