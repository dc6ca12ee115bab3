// Command wsconsumer is a small Dapr app that subscribes to a topic of the service's frames
// (and to its lifecycle topic) and prints each event it receives, a frame batch one line per
// frame. It is the consumer of the multi-app run (dapr.yaml).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
)

func main() {
	port := flag.String("port", envOr("APP_PORT", "5020"), "port daprd calls (the app port)")
	pubsub := flag.String("pubsub", "pubsub", "Dapr pub/sub component")
	topic := flag.String("topic", "frames", "topic of published frames")
	lifecycle := flag.String("lifecycle-topic", "websocketmanager.lifecycle", "lifecycle topic; empty: not subscribed")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, _ *http.Request) {
		subs := []map[string]string{{"pubsubname": *pubsub, "topic": *topic, "route": "/frames"}}
		if *lifecycle != "" {
			subs = append(subs, map[string]string{"pubsubname": *pubsub, "topic": *lifecycle, "route": "/lifecycle"})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(subs)
	})
	mux.HandleFunc("POST /frames", printFrames(os.Stdout, os.Stderr))
	mux.HandleFunc("POST /lifecycle", handle(func(ev event) {
		fmt.Printf("lifecycle %s %s\n", ev.Type, ev.Data)
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: "127.0.0.1:" + *port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stderr, "wsconsumer: subscribed to %s/%s on :%s\n", *pubsub, *topic, *port)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "wsconsumer:", err)
		os.Exit(1)
	}
}

type event struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func kind(f wsmclient.Frame) string {
	switch {
	case f.Binary:
		return "binary"
	case f.JSON:
		return "json"
	}
	return "text"
}

func payload(f wsmclient.Frame) string {
	if f.Binary {
		return fmt.Sprintf("<%d bytes>", len(f.Data))
	}
	return string(f.Data)
}

// printFrames prints every frame of a frame event (single or batch) to out, one line each.
func printFrames(out, errOut io.Writer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		frames, err := wsmclient.Frames(body)
		if err != nil {
			// Malformed: redelivering it would not help.
			fmt.Fprintln(errOut, "wsconsumer: dropped an event:", err)
			_, _ = w.Write([]byte(`{"status":"DROP"}`))
			return
		}
		for _, f := range frames {
			fmt.Fprintf(out, "frame connection=%s sequence=%d type=%s data=%s\n", f.ConnectionID, f.Sequence, kind(f), payload(f))
		}
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	}
}

func handle(f func(event)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ev event
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f(ev)
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
