package actors

import (
	"time"

	"github.com/websocketmanager/websocketmanager/actors/credentials"
)

// Actor types and ids.
const (
	// ConnectionType is the actor type of a connection; the actor id is the connection id.
	ConnectionType = "WebSocketConnection"
	// DirectoryType is the actor type of the directory of connection ids. The directory is
	// split into DirectoryShardCount() actors (ids "0" … "63" by default) by a hash of the
	// connection id, so that Connect and Disconnect do not all queue on one actor.
	DirectoryType = "WebSocketConnectionDirectory"
	// DefaultDirectoryShards is the number of directory actors unless --directory-shards
	// says otherwise; MaxDirectoryShards bounds it (List and the watchdog call every shard).
	DefaultDirectoryShards = 64
	MaxDirectoryShards     = 4096
)

// ContractVersion is the version of the actor contract documented in docs/actors.md.
const ContractVersion = 1

// Methods of the connection actor (contract version 1). Each takes a JSON body of the named
// argument type and answers with the JSON of the named reply type; failures come back in the
// reply's "error". Method names are matched without regard to case ("get" calls Get).
const (
	// ConnectionMethodConnect dials the server and records the connection. ConnectArgs → InfoReply.
	// ALREADY_EXISTS if the id is taken; UNAVAILABLE (and nothing kept) if the handshake fails.
	ConnectionMethodConnect = "Connect"
	// ConnectionMethodDisconnect closes the socket with a normal close frame and forgets the
	// connection. Empty → Reply.
	ConnectionMethodDisconnect = "Disconnect"
	// ConnectionMethodGet describes the connection. Empty → InfoReply.
	ConnectionMethodGet = "Get"
	// ConnectionMethodLocate makes sure the socket is held and says which instance holds it.
	// Empty → InfoReply. Used by the service's own router.
	ConnectionMethodLocate = "Locate"
	// ConnectionMethodStartPublish publishes every inbound frame to a topic. PublishArgs → Reply.
	ConnectionMethodStartPublish = "StartPublish"
	// ConnectionMethodStopPublish stops publishing. Empty → Reply.
	ConnectionMethodStopPublish = "StopPublish"
	// ConnectionMethodSend writes a message and waits for the reply inside the actor's turn.
	// SendArgs → SendReply.
	ConnectionMethodSend = "Send"
	// ConnectionMethodSendRaw writes a message without waiting. SendArgs → Reply.
	ConnectionMethodSendRaw = "SendRaw"
)

// ConnectionMethods lists the connection actor's methods.
var ConnectionMethods = []string{ConnectionMethodConnect, ConnectionMethodDisconnect, ConnectionMethodGet,
	ConnectionMethodLocate, ConnectionMethodStartPublish, ConnectionMethodStopPublish, ConnectionMethodSend, ConnectionMethodSendRaw}

// Methods of the directory actor.
const (
	// DirectoryMethodAdd adds an id. MemberArgs → Reply.
	DirectoryMethodAdd = "Add"
	// DirectoryMethodRemove removes an id. MemberArgs → Reply.
	DirectoryMethodRemove = "Remove"
	// DirectoryMethodMembers lists the ids, or with a limit only the first ids after a given
	// one (a List page needs no more of any shard). MembersArgs (or Empty) → MembersReply.
	DirectoryMethodMembers = "Members"
	// DirectoryMethodPing does nothing: a probe of the actor path (and the benchmark's bare
	// actor call). Empty → Reply.
	DirectoryMethodPing = "Ping"
	// DirectoryMethodSetHolders records which instance holds members' sockets (ids that are
	// not members are ignored). HoldersArgs → Reply. Used by the failover watchdog.
	DirectoryMethodSetHolders = "SetHolders"
	// DirectoryMethodAnnounce records that an instance is up (on shard "0"), so that event
	// watches follow it before it holds a connection, and checks its shard count.
	// AnnounceArgs → Reply (FAILED_PRECONDITION: the directory has another shard count).
	DirectoryMethodAnnounce = "Announce"
	// DirectoryMethodHas says whether an id is a member, without activating its connection
	// actor: the service asks it before calling the actor of an id it does not hold, so that
	// calls for unknown ids leave no actor behind. MemberArgs → HasReply.
	DirectoryMethodHas = "Has"
	// DirectoryMethodAddMany adds ids with their holders in one turn (at most
	// [MaxAddMany], so that one transaction stays well under the sidecar's 4 MiB): the service gathers the Adds its Connects make to one shard at the same
	// time into one call. HoldersArgs → Reply.
	DirectoryMethodAddMany = "AddMany"
)

// MaxAddMany is the most ids one [DirectoryMethodAddMany] call may add.
const MaxAddMany = 128

// DirectoryMethods lists the directory actor's methods.
var DirectoryMethods = []string{DirectoryMethodAdd, DirectoryMethodRemove, DirectoryMethodMembers, DirectoryMethodPing,
	DirectoryMethodSetHolders, DirectoryMethodAnnounce, DirectoryMethodHas, DirectoryMethodAddMany}

// AnnounceArgs names an instance by its gRPC address. Shards, when set, is the instance's
// directory shard count: shard "0" records the first one it sees and answers
// FAILED_PRECONDITION to an instance that counts differently.
type AnnounceArgs struct {
	Addr   string `json:"addr"`
	Shards int    `json:"shards,omitempty"`
}

// Status names as they appear in [ConnectionInfo.Status].
const (
	StatusConnecting   = "CONNECTING"
	StatusConnected    = "CONNECTED"
	StatusDisconnected = "DISCONNECTED"
	StatusError        = "ERROR"
)

// Empty is the argument of methods that take none.
type Empty struct{}

// Reply is the reply of methods that return nothing but success or failure.
type Reply struct {
	Error *ErrorInfo `json:"error,omitempty"`
}

func (r *Reply) errorInfo() *ErrorInfo { return r.Error }

// CorrelationArgs is a connection's correlation setting.
type CorrelationArgs struct {
	// Mode is "auto" (default), "json_field", "prefix" or "next".
	Mode string `json:"mode,omitempty"`
	// Field is the correlation field of the JSON modes (default "id"), a dotted path.
	Field string `json:"field,omitempty"`
}

// ReconnectArgs is a connection's reconnect backoff; zero values take the service defaults.
type ReconnectArgs struct {
	InitialBackoffMS int `json:"initialBackoffMs,omitempty"`
	MaxBackoffMS     int `json:"maxBackoffMs,omitempty"`
	MaxAttempts      int `json:"maxAttempts,omitempty"`
}

// ConnectArgs says what to connect to and how. It is also what the actor persists.
type ConnectArgs struct {
	URL               string            `json:"url"`
	AutoReconnect     bool              `json:"autoReconnect,omitempty"`
	Headers           map[string]string `json:"headers,omitempty"`
	Subprotocols      []string          `json:"subprotocols,omitempty"`
	OnConnectMessages []string          `json:"onConnectMessages,omitempty"`
	Correlation       CorrelationArgs   `json:"correlation,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Reconnect         ReconnectArgs     `json:"reconnect,omitempty"`
	IdleTimeoutMS     int               `json:"idleTimeoutMs,omitempty"`
	// RetainFrames and RetainBytes bound the frames kept for WatchFrames resume (0: the
	// service's --retain-frames / --retain-bytes).
	RetainFrames int       `json:"retainFrames,omitempty"`
	RetainBytes  int64     `json:"retainBytes,omitempty"`
	CreatedAt    time.Time `json:"createdAt,omitempty"`
	// SendRate limits Sends, SendRaws and on-connect messages (nil: no limit).
	SendRate *SendRateArgs `json:"sendRate,omitempty"`
	// PermessageDeflate asks the server for permessage-deflate. DecodeBinary decodes inbound
	// binary frames: "" (NONE), "GZIP", "ZLIB", "DEFLATE" or "AUTO". MaxDecodedBytes bounds
	// a decoded (or inflated) frame (0: the service's --max-inbound-frame-bytes).
	PermessageDeflate bool   `json:"permessageDeflate,omitempty"`
	DecodeBinary      string `json:"decodeBinary,omitempty"`
	MaxDecodedBytes   int64  `json:"maxDecodedBytes,omitempty"`
	// SecretHeaders are handshake headers read from a Dapr secret store at every dial (only
	// the references are persisted). TLS is the wss:// setting. EgressProxy names one of the
	// operator's egress proxies ("" = default).
	SecretHeaders map[string]credentials.SecretRef `json:"secretHeaders,omitempty"`
	TLS           *credentials.TLS                 `json:"tls,omitempty"`
	EgressProxy   string                           `json:"egressProxy,omitempty"`
}

// ConnectionInfo describes a connection. Headers are never part of it.
type ConnectionInfo struct {
	ID             string            `json:"id"`
	URL            string            `json:"url"`
	AutoReconnect  bool              `json:"autoReconnect"`
	Status         string            `json:"status"`
	InstanceID     string            `json:"instanceId"`
	InstanceAddr   string            `json:"instanceAddr,omitempty"`
	Topic          string            `json:"topic,omitempty"`
	CreatedAt      time.Time         `json:"createdAt"`
	LastError      string            `json:"lastError,omitempty"`
	ReconnectCount int               `json:"reconnectCount"`
	ConnectedSince *time.Time        `json:"connectedSince,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Subprotocol    string            `json:"subprotocol,omitempty"`
	Correlation    CorrelationArgs   `json:"correlation"`
	DroppedFrames  uint64            `json:"droppedFrames,omitempty"`
	// DroppedFramesByReason splits DroppedFrames by reason: buffer_full, instance_budget,
	// too_large, closed.
	DroppedFramesByReason map[string]uint64 `json:"droppedFramesByReason,omitempty"`
	// Publish is the publish settings in effect (nil when not publishing).
	Publish *PublishSettings `json:"publish,omitempty"`
	// PublishPausedSince is set while the connection does not read its socket because its
	// publish buffer is full (BACKPRESSURE); PublishPausedMS is the time paused in all on
	// this instance, the current pause included.
	PublishPausedSince *time.Time `json:"publishPausedSince,omitempty"`
	PublishPausedMS    int64      `json:"publishPausedMs,omitempty"`
	// SendRate is the send rate limit in effect (nil: none); ThrottledSends counts the Sends
	// and SendRaws that waited for it or were refused by it on the holding instance.
	SendRate       *SendRateArgs `json:"sendRate,omitempty"`
	ThrottledSends uint64        `json:"throttledSends,omitempty"`
	// Compression: permessage-deflate was negotiated on the current socket. DecodeRefused
	// counts the inbound frames refused by decoding on the holding instance.
	Compression   bool   `json:"compression,omitempty"`
	DecodeRefused uint64 `json:"decodeRefused,omitempty"`
	// TLS is the TLS setting without inline key material; EgressProxy the chosen proxy;
	// SecretHeaderNames the names of the secret headers (never values).
	TLS               *credentials.TLS `json:"tls,omitempty"`
	EgressProxy       string           `json:"egressProxy,omitempty"`
	SecretHeaderNames []string         `json:"secretHeaderNames,omitempty"`
}

// InfoReply carries a [ConnectionInfo].
type InfoReply struct {
	Reply
	Connection ConnectionInfo `json:"connection"`
}

// PublishArgs names the topic and how frames are published (see StartPublishRequest in the
// proto for each field; zero values are the defaults).
type PublishArgs struct {
	Topic string `json:"topic"`
	PublishSettings
}

// PublishSettings are a connection's publish settings besides the topic.
type PublishSettings struct {
	// BatchMaxFrames above 1 publishes batch events of at most this many frames.
	BatchMaxFrames int `json:"batchMaxFrames,omitempty"`
	// BatchMaxBytes bounds a batch event's data (0: what the pub/sub accepts).
	BatchMaxBytes int `json:"batchMaxBytes,omitempty"`
	// BatchMaxDelayMS is how long a partial batch may wait for more frames.
	BatchMaxDelayMS int `json:"batchMaxDelayMs,omitempty"`
	// IncludeReplies publishes the frames that answered a Send too.
	IncludeReplies bool `json:"includeReplies,omitempty"`
	// Overflow is "DROP_NEWEST" (default, also ""), "DROP_OLDEST" or "BACKPRESSURE".
	Overflow string `json:"overflow,omitempty"`
}

// Overflow policies of [PublishSettings].
const (
	OverflowDropNewest   = "DROP_NEWEST"
	OverflowDropOldest   = "DROP_OLDEST"
	OverflowBackpressure = "BACKPRESSURE"
)

// Limits of a connection's retention (ConnectArgs.RetainFrames, RetainBytes).
const (
	MaxRetainFrames = 1000000
	MaxRetainBytes  = 1 << 30
)

// Limits of [PublishSettings].
const (
	MaxBatchFrames  = 100000
	MaxBatchDelayMS = 10000
	MaxBatchBytes   = 64 << 20
)

// SendArgs carries a message: text in Message, or a binary frame in BinaryMessage (base64 in
// JSON). TimeoutMS applies to Send only (0: the service default).
type SendArgs struct {
	Message       string `json:"message,omitempty"`
	BinaryMessage []byte `json:"binaryMessage,omitempty"`
	TimeoutMS     int64  `json:"timeoutMs,omitempty"`
	// FailFast refuses a call over the connection's send rate at once (RESOURCE_EXHAUSTED)
	// instead of waiting. Without it the actor still never waits in its turn: it refuses with
	// error.retryAfterMs, and the caller waits that long and calls again with RateRetry set
	// (the call was counted as throttled already).
	FailFast  bool `json:"failFast,omitempty"`
	RateRetry bool `json:"rateRetry,omitempty"`
}

// SendReply carries the server's reply: text in Response, or a binary frame in BinaryResponse.
type SendReply struct {
	Reply
	Response       string `json:"response,omitempty"`
	BinaryResponse []byte `json:"binaryResponse,omitempty"`
	Binary         bool   `json:"binary,omitempty"`
}

// MemberArgs names a connection id and, for Add, the gRPC address of the instance that holds
// its socket (the failover watchdog asks that instance whether it still does).
type MemberArgs struct {
	ID     string `json:"id"`
	Holder string `json:"holder,omitempty"`
}

// HasReply says whether an id is a member of the directory.
type HasReply struct {
	Reply
	Member bool `json:"member"`
}

// MembersArgs selects the ids [DirectoryMethodMembers] lists: with Limit > 0 only the Limit
// smallest ids greater than After; else all of them.
type MembersArgs struct {
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// HoldersArgs maps connection ids to the gRPC address of the instance holding their socket.
type HoldersArgs struct {
	Holders map[string]string `json:"holders"`
}

// MembersReply lists connection ids, and the distinct gRPC addresses of the instances
// recorded as holding them.
type MembersReply struct {
	Reply
	IDs     []string `json:"ids"`
	Holders []string `json:"holders,omitempty"`
}
