// Package session owns the live outbound WebSocket connections of one process: dialing,
// the read and write pumps, keepalive pings, waiting for replies, and handing inbound frames
// to the publisher.
//
// # Ownership
//
// A [Registry] owns every [Session] of the process and the goroutines they run. The Dapr
// actor of a connection decides *whether* a session exists on this process; the registry
// only executes that decision. Nothing else closes a socket.
//
// # Concurrency
//
// Each session runs exactly three goroutines, started together and joined on close:
//   - the reader: the only caller of ReadMessage; it resolves waiting Sends and queues frames
//     for publishing;
//   - the writer: the only writer of data frames and pings (gorilla allows one concurrent
//     writer); close frames go through WriteControl, which gorilla allows concurrently;
//   - the publisher: drains the bounded publish queue in order, so a slow pub/sub component
//     never blocks the reader. When the queue is full the frame is dropped and counted.
//
// Send does not hold any lock while it waits for the reply, so many Sends may be in flight on
// one connection at once.
package session
