package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The fleet benchmark's upstream WebSocket servers run in processes of their own (this program
// re-executed with upstreamFlag): the machine allows 20,000 open files per process, so 100,000
// sockets need several server processes, and the servers' CPU is then measured apart from the
// clients'. Each server echoes, and counts per connection id (the cid query parameter) the
// sockets open now, the most ever open at once, and every handshake's time: the ground truth for
// duplicates (two sockets for one connection) and for when a connection came back after failover.

// upstreamFlag, as the first argument followed by an address, makes wsbench an upstream server.
const upstreamFlag = "--upstream-server"

// maxDuplicateIDs is how many duplicate ids the stats name (the count covers them all).
const maxDuplicateIDs = 10

// upstreamStats is the JSON answer of an upstream server's /stats endpoint.
type upstreamStats struct {
	// Live is the number of sockets open now; Handshakes the number accepted since the start.
	Live       int `json:"live"`
	Handshakes int `json:"handshakes"`
	// Duplicates counts ids that ever had two sockets open at once; DuplicateIDs names the first.
	Duplicates   int      `json:"duplicates"`
	DuplicateIDs []string `json:"duplicate_ids,omitempty"`
	// Since (with ?since=<unixnano>) maps each id to its first handshake (unix nanoseconds)
	// after that time, among the handshakes from index ?from= on (default 0).
	Since map[string]int64 `json:"since,omitempty"`
	// Next is the index to pass as ?from= next time, so a poll reads only newer handshakes.
	Next int `json:"next"`
}

// upID is the count of one connection id.
type upID struct {
	live, max int
}

// handshake is one accepted socket, in the server's log of them.
type handshake struct {
	id string
	at int64 // unix nanoseconds
}

// upstreamServer is the handler: /stats answers the counts, every other path is an echo socket.
type upstreamServer struct {
	upgrader websocket.Upgrader

	mu     sync.Mutex
	ids    map[string]*upID
	log    []handshake
	live   int
	dups   int
	dupIDs []string
}

func newUpstreamServer() *upstreamServer {
	return &upstreamServer{
		// Small buffers and one shared write-buffer pool: 12,500 idle sockets per process should
		// cost the server little, so that the fleet's memory is what the table shows.
		upgrader: websocket.Upgrader{ReadBufferSize: 256, WriteBufferSize: 256, WriteBufferPool: &sync.Pool{},
			CheckOrigin: func(*http.Request) bool { return true }},
		ids: map[string]*upID{},
	}
}

func (u *upstreamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/stats" {
		u.serveStats(w, r)
		return
	}
	c, err := u.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	id := r.URL.Query().Get("cid")
	u.opened(id)
	defer u.closed(id)
	defer c.Close()
	c.SetReadLimit(1 << 20)
	// Reading every socket is what answers the service's pings (gorilla's default ping handler
	// writes the pong) and notices a closed socket at once.
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

func (u *upstreamServer) opened(id string) {
	now := time.Now().UnixNano()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.live++
	u.log = append(u.log, handshake{id: id, at: now})
	e := u.ids[id]
	if e == nil {
		e = &upID{}
		u.ids[id] = e
	}
	e.live++
	if e.live > e.max {
		e.max = e.live
		if e.max == 2 { // the first time this id has two sockets: one more duplicate id
			u.dups++
			if len(u.dupIDs) < maxDuplicateIDs {
				u.dupIDs = append(u.dupIDs, id)
			}
		}
	}
}

func (u *upstreamServer) closed(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.live--
	u.ids[id].live--
}

// stats returns the counts; with since > 0 also the first handshake after since of every id,
// among the log entries from index from on.
func (u *upstreamServer) stats(since int64, from int) upstreamStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := upstreamStats{Live: u.live, Handshakes: len(u.log), Duplicates: u.dups,
		DuplicateIDs: append([]string(nil), u.dupIDs...), Next: len(u.log)}
	if since > 0 {
		s.Since = map[string]int64{}
		for _, h := range u.log[min(max(from, 0), len(u.log)):] {
			if _, seen := s.Since[h.id]; !seen && h.at > since {
				s.Since[h.id] = h.at
			}
		}
	}
	return s
}

func (u *upstreamServer) serveStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since int64
	var from int
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = strconv.ParseInt(v, 10, 64); err != nil {
			http.Error(w, "since: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("from"); v != "" {
		if from, err = strconv.Atoi(v); err != nil {
			http.Error(w, "from: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(u.stats(since, from))
}

// serveUpstream is the upstream server process's main: it serves addr until its parent dies.
func serveUpstream(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newUpstreamServer(), ReadHeaderTimeout: 10 * time.Second}
	// The process is started with Pdeathsig (daprstack), which the kernel ties to the thread
	// that forked it, not to the parent process; watching the parent id as well makes sure no
	// server outlives the benchmark. The goroutine lives as long as the process.
	parent := os.Getppid()
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() != parent {
				fmt.Fprintln(os.Stderr, "upstream server: the benchmark is gone; exiting")
				os.Exit(0)
			}
		}
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
