// Package actors owns the Dapr virtual actors of the service and their public contract.
//
// # The connection actor
//
// Each managed connection is one actor of type [ConnectionType] whose id is the connection
// id. The actor is the single authority over its connection: it persists what the caller asked
// for (url, options, topic) in the actor state store, and it decides whether this process holds
// the socket. The socket itself lives in the process-wide [session.Registry], because a Go
// actor instance can be dropped by the SDK at any time without a hook.
//
// Dapr runs one call at a time per actor, so every method here returns quickly: dialing is the
// longest turn (bounded by the handshake timeout). Waiting for a reply is done outside the
// turn: the facade asks the actor where the connection lives ([ConnectionMethodLocate]) and
// waits on the session directly. [ConnectionMethodSend] exists for Dapr apps that call the
// actor directly; it waits inside the turn and so serialises Sends on that connection.
//
// # Errors
//
// The Go SDK drops the text of an actor method's error (every failure reaches the caller as
// codes.Internal "(500)"), so every method returns a nil Go error and carries failures in
// its reply as an [ErrorInfo]. [Client] turns them back into [*Error].
//
// # The directory actor
//
// The actors of type [DirectoryType] (ids "0" … "63", see [DirectoryShard]) keep the set of connection ids, so
// that List can find every connection whichever instance holds it.
package actors
