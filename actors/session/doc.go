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
// One goroutine per connection, the supervisor: it reads the current socket (it is the only
// reader: it resolves waiting Sends and queues frames for publishing) and, when the socket
// ends, re-dials with backoff or settles in DISCONNECTED/ERROR. A new socket is dialed only
// after the old one's reader returned and no write is in progress on it: one socket at a time.
//
// Writers are the callers of Send and SendRaw, one at a time per connection (writeMu; gorilla
// allows one concurrent writer). Keepalive pings come from one registry-wide pinger through
// WriteControl, which gorilla allows concurrently with the writer. Close frames too.
//
// Publishing never blocks the reader: frames go to a bounded buffer drained, in order, by a
// publisher goroutine that runs only while frames wait. When the buffer is full the oldest frame
// is dropped and counted.
//
// Send holds no lock while it waits for its reply, so many Sends can be in flight on one
// connection. Lock order: writeMu before mu.
package session
