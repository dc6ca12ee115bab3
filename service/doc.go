// Package service owns the public gRPC API: it validates requests, routes each call to the
// connection's actor through a [Connections] implementation, converts between the protobuf
// messages and the actor types, and maps every failure to a gRPC status in one place
// (errors.go).
package service
