//go:build integration

package redisstream

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// Against the machine's Redis: entries written with XADD come back from XRANGE and XREVRANGE
// as written, in order, and DEL removes the stream.
func TestAgainstRedis(t *testing.T) {
	if c, err := net.DialTimeout("tcp", Addr, time.Second); err != nil {
		t.Skipf("no Redis at %s: %v", Addr, err)
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("redisstream-test-%d", time.Now().UnixNano())
	defer func() { _, _ = c.Del(context.Background(), key) }()
	const n = 25
	for i := range n {
		if _, err := c.Do(ctx, "XADD", key, "*", "data", fmt.Sprintf(`{"i":%d}`, i), "metadata", "{}"); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := c.XLen(ctx, key); err != nil || l != n {
		t.Fatalf("XLEN = %d, %v; want %d", l, err, n)
	}
	// Page through with exclusive starts, as the benchmark reads a growing stream.
	var got []Entry
	for start := "-"; ; {
		page, err := c.XRange(ctx, key, start, "+", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		start = "(" + page[len(page)-1].ID
	}
	if len(got) != n {
		t.Fatalf("read %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Fields["data"] != fmt.Sprintf(`{"i":%d}`, i) || e.Fields["metadata"] != "{}" {
			t.Fatalf("entry %d: %+v", i, e)
		}
		if at, err := e.Time(); err != nil || time.Since(at) > time.Minute {
			t.Fatalf("entry %d time %v, %v", i, at, err)
		}
	}
	last, err := c.XRevRange(ctx, key, "+", "-", 1)
	if err != nil || len(last) != 1 || last[0].ID != got[n-1].ID {
		t.Fatalf("XREVRANGE = %+v, %v", last, err)
	}
	if _, err := c.Do(ctx, "NOSUCHCOMMAND"); err == nil {
		t.Fatal("an unknown command did not fail")
	}
	if err := c.Ping(ctx); err != nil { // the connection is still in step after an error reply
		t.Fatal(err)
	}
	if d, err := c.Del(ctx, key); err != nil || d != 1 {
		t.Fatalf("DEL = %d, %v", d, err)
	}
	if l, err := c.XLen(ctx, key); err != nil || l != 0 {
		t.Fatalf("XLEN after DEL = %d, %v", l, err)
	}
}
