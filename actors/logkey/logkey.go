// Package logkey holds the zap field names every package logs with, so that one name means
// one thing across the service's logs.
package logkey

// Field names.
const (
	ConnectionID = "connection_id"
	InstanceID   = "instance_id"
	URLHost      = "url_host"
	Topic        = "topic"
	ActorMethod  = "actor_method"
	GRPCMethod   = "grpc_method"
	GRPCCode     = "grpc_code"
	CloseCode    = "close_code"
)
