// Compile-only examples: they need a running service (`make run`), so they have no
// "// Output:" comment, and `go test` compiles them (a changed signature breaks the build)
// without running them. The examples that run are in example_test.go.
package wsmclient_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
)

// Connect to a server, send a message and wait for its reply, then disconnect.
func Example() {
	c, err := wsmclient.New("127.0.0.1:5002", wsmclient.WithToken(os.Getenv("WSM_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	conn, err := c.ConnectURL(ctx, "ws://127.0.0.1:9001/echo")
	if err != nil {
		log.Fatal(err)
	}
	reply, err := c.Send(ctx, conn.GetConnectionId(), "Hello WebSocket!", 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.GetResponse())
	_ = c.Disconnect(ctx, conn.GetConnectionId())
}

// Reach the service over TLS with a client certificate (mTLS), with a default timeout.
func ExampleWithTLSFiles() {
	c, err := wsmclient.New("wsmanager.example:5002",
		wsmclient.WithTLSFiles("ca.pem", "client.pem", "client-key.pem"),
		wsmclient.WithToken(os.Getenv("WSM_TOKEN")),
		wsmclient.WithTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Follow every connection's lifecycle events until the context ends.
func ExampleClient_WatchEvents() {
	c, err := wsmclient.New("127.0.0.1:5002")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = c.WatchEvents(ctx, "", func(ev *wsmclient.LifecycleEvent) error {
		fmt.Println(ev.GetConnectionId(), ev.GetPreviousStatus(), "→", ev.GetStatus(), ev.GetReason())
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Follow a connection's frames from sequence 1, resuming by itself after a failover; a gap
// notice says which frames will not come.
func ExampleClient_Watch() {
	c, err := wsmclient.New("127.0.0.1:5002", wsmclient.WithToken(os.Getenv("WSM_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for f, err := range c.Watch(context.Background(), "feed-1", wsmclient.WithFrom(1)) {
		if err != nil {
			log.Fatal(err)
		}
		if g := f.GetMissing(); g != nil {
			fmt.Printf("frames %d..%d missing (%s)\n", g.GetFromSequence(), g.GetToSequence(), g.GetReason())
			continue
		}
		fmt.Println(f.GetSequence(), f.GetText())
	}
}
