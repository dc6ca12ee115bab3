package actors

import "time"

// Actor types and ids.
const (
	// ConnectionType is the actor type of a connection; the actor id is the connection id.
	ConnectionType = "WebSocketConnection"
	// DirectoryType is the actor type of the directory of connection ids.
	DirectoryType = "WebSocketConnectionDirectory"
	// DirectoryID is the id of the one directory actor.
	DirectoryID = "all"
)

// Methods of the connection actor. Each takes a JSON body of the named argument type and
// answers with the JSON of the named reply type; failures come back in the reply's "error".
const (
	// ConnectionMethodOpen dials the server and records the connection. OpenArgs → InfoReply.
	// ALREADY_EXISTS if the id is taken; UNAVAILABLE (and nothing kept) if the handshake fails.
	ConnectionMethodOpen = "Open"
	// ConnectionMethodClose closes the socket with a normal close frame and forgets the
	// connection. Empty → Reply.
	ConnectionMethodClose = "Close"
	// ConnectionMethodInfo describes the connection. Empty → InfoReply.
	ConnectionMethodInfo = "Info"
	// ConnectionMethodLocate makes sure the socket is held and says which instance holds it.
	// Empty → InfoReply.
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

// Methods of the directory actor.
const (
	// DirectoryMethodAdd adds an id. MemberArgs → Reply.
	DirectoryMethodAdd = "Add"
	// DirectoryMethodRemove removes an id. MemberArgs → Reply.
	DirectoryMethodRemove = "Remove"
	// DirectoryMethodMembers lists the ids. Empty → MembersReply.
	DirectoryMethodMembers = "Members"
)

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

// OpenArgs says what to connect to.
type OpenArgs struct {
	URL           string    `json:"url"`
	AutoReconnect bool      `json:"autoReconnect"`
	CreatedAt     time.Time `json:"createdAt"`
}

// ConnectionInfo describes a connection.
type ConnectionInfo struct {
	ID            string    `json:"id"`
	URL           string    `json:"url"`
	AutoReconnect bool      `json:"autoReconnect"`
	Status        string    `json:"status"`
	InstanceID    string    `json:"instanceId"`
	Topic         string    `json:"topic,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	LastError     string    `json:"lastError,omitempty"`
}

// InfoReply carries a [ConnectionInfo].
type InfoReply struct {
	Reply
	Connection ConnectionInfo `json:"connection"`
}

// PublishArgs names the topic.
type PublishArgs struct {
	Topic string `json:"topic"`
}

// SendArgs carries a message. TimeoutMS applies to Send only.
type SendArgs struct {
	Message   string `json:"message"`
	TimeoutMS int64  `json:"timeoutMs,omitempty"`
}

// SendReply carries the server's reply.
type SendReply struct {
	Reply
	Response string `json:"response"`
}

// MemberArgs names a connection id.
type MemberArgs struct {
	ID string `json:"id"`
}

// MembersReply lists connection ids.
type MembersReply struct {
	Reply
	IDs []string `json:"ids"`
}
