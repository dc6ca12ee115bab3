package wsmclient

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// The CloudEvent types of published frames (docs/architecture.md, "Publishing").
const (
	// FrameEventType is the type of an event that carries one frame.
	FrameEventType = "websocketmanager.frame"
	// FrameBatchEventType is the type of an event that carries several frames of one
	// connection (StartPublish with batch_max_frames above 1).
	FrameBatchEventType = "websocketmanager.frame.batch"
)

// daprRawEventType is the type of the envelope daprd wraps around a message for a
// subscription with rawPayload: the message (here: our event) is its data_base64.
const daprRawEventType = "com.dapr.event.sent"

// Frame is one inbound frame of a connection, as published.
type Frame struct {
	ConnectionID string
	// Sequence is the frame's number in the connection's sequence of pushed frames (from 1;
	// a gap is dropped frames, a repeat a duplicate delivery). A reply takes no number of its
	// own: it carries the number of the frame before it.
	Sequence uint64
	// Reply reports a frame that answered a Send (published with include_replies).
	Reply bool
	// ReceivedAt is when the service read the frame.
	ReceivedAt time.Time
	// Data is the frame's payload: for a JSON frame its JSON text as it is in the event (a
	// subscription without rawPayload receives it re-serialised by daprd), for a text frame
	// its text, for a binary frame its bytes.
	Data []byte
	// Binary reports a binary frame (or a text frame that was not valid UTF-8).
	Binary bool
	// JSON reports a text frame that is valid JSON. In a batch, a frame that is a JSON
	// string (text `"…"`) cannot be told from a text frame (its element has no content type):
	// it comes out as text.
	JSON bool
}

// Frames returns the frames of a frame event in sequence order (a reply, marked Reply, has
// the number of the frame before it): a single-frame event
// (FrameEventType) gives one, a batch (FrameBatchEventType) its frames. event is the
// CloudEvent's JSON as a Dapr subscriber receives it or as read from the broker; the envelope
// daprd puts around it for a rawPayload subscription is taken off. An event of another type,
// or a malformed one (a batch whose count, sequences or first/last sequence do not match its
// frames, bad base64, …), is an error.
func Frames(event []byte) ([]Frame, error) {
	f, err := frames(event, 0)
	if err != nil {
		return nil, fmt.Errorf("wsmclient: %w", err)
	}
	return f, nil
}

func frames(event []byte, depth int) ([]Frame, error) {
	if depth > 1 {
		return nil, errors.New("frame event nested too deep")
	}
	event = bytes.TrimSpace(event)
	// An event serialised once more (a JSON string holding it) is unwrapped once.
	if len(event) > 0 && event[0] == '"' {
		var s string
		if err := json.Unmarshal(event, &s); err != nil {
			return nil, fmt.Errorf("frame event: %w", err)
		}
		return frames([]byte(s), depth+1)
	}
	// A map, not a struct: its keys match exactly (a struct's match case-insensitively).
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, fmt.Errorf("frame event: %w", err)
	}
	typ, err := stringAttr(ev, "type", true)
	if err != nil {
		return nil, err
	}
	switch typ {
	case FrameEventType:
		f, err := single(ev)
		if err != nil {
			return nil, err
		}
		return []Frame{f}, nil
	case FrameBatchEventType:
		return batch(ev)
	case daprRawEventType:
		if b64, ok := ev["data_base64"]; ok {
			inner, err := decodeBase64(b64)
			if err != nil {
				return nil, err
			}
			return frames(inner, depth+1)
		}
	}
	return nil, fmt.Errorf("event type %q is not a frame event", typ)
}

func single(ev map[string]json.RawMessage) (Frame, error) {
	var f Frame
	var err error
	if f.ConnectionID, err = stringAttr(ev, "connectionid", false); err != nil {
		return f, err
	}
	if f.Sequence, err = uintAttr(ev, "sequence"); err != nil {
		return f, err
	}
	if f.ReceivedAt, err = timeAttr(ev, "receivedat"); err != nil {
		return f, err
	}
	if f.Reply, err = boolAttr(ev, "reply"); err != nil {
		return f, err
	}
	ct, err := stringAttr(ev, "datacontenttype", false)
	if err != nil {
		return f, err
	}
	data, hasData := ev["data"]
	b64, hasB64 := ev["data_base64"]
	switch {
	case hasData && hasB64:
		return f, errors.New("frame event has both data and data_base64")
	case hasB64:
		f.Binary = true
		f.Data, err = decodeBase64(b64)
		return f, err
	case !hasData:
		// An empty binary frame: older services left out an empty data_base64.
		if mediaType(ct) == "application/octet-stream" {
			f.Binary, f.Data = true, []byte{}
			return f, nil
		}
		return f, errors.New("frame event has neither data nor data_base64")
	case isJSONType(ct):
		// Here a JSON string is a JSON frame (the frame's text was `"…"`): the content type
		// tells it from a text frame.
		f.JSON, f.Data = true, data
		return f, nil
	}
	f.Data, f.JSON = textOrJSON(data)
	return f, nil
}

func batch(ev map[string]json.RawMessage) ([]Frame, error) {
	conn, err := stringAttr(ev, "connectionid", false)
	if err != nil {
		return nil, err
	}
	first, err := uintAttr(ev, "firstsequence")
	if err != nil {
		return nil, err
	}
	last, err := uintAttr(ev, "lastsequence")
	if err != nil {
		return nil, err
	}
	count, err := uintAttr(ev, "count")
	if err != nil {
		return nil, err
	}
	data, ok := ev["data"]
	if !ok {
		return nil, errors.New("batch event has no data")
	}
	// Data re-serialised as a JSON string holding the array.
	if data = bytes.TrimSpace(data); len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("batch data: %w", err)
		}
		data = []byte(s)
	}
	var elems []map[string]json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return nil, fmt.Errorf("batch data is not an array of frames: %w", err)
	}
	if uint64(len(elems)) != count || len(elems) == 0 {
		return nil, fmt.Errorf("batch count %d, but %d frames", count, len(elems))
	}
	out := make([]Frame, len(elems))
	for i, el := range elems {
		if el == nil {
			return nil, fmt.Errorf("batch frame %d is null", i)
		}
		f := Frame{ConnectionID: conn}
		if f.Sequence, err = uintAttr(el, "sequence"); err != nil {
			return nil, fmt.Errorf("batch frame %d: %w", i, err)
		}
		if f.Reply, err = boolAttr(el, "reply"); err != nil {
			return nil, fmt.Errorf("batch frame %d: %w", i, err)
		}
		// Sequences ascend; a reply repeats the number of the frame before it (or, when that
		// one was dropped, the dropped frame's).
		if i > 0 && (f.Sequence < out[i-1].Sequence || f.Sequence == out[i-1].Sequence && !f.Reply) {
			return nil, fmt.Errorf("batch sequences do not ascend: %d after %d", f.Sequence, out[i-1].Sequence)
		}
		if f.ReceivedAt, err = timeAttr(el, "receivedat"); err != nil {
			return nil, fmt.Errorf("batch frame %d: %w", i, err)
		}
		d, hasData := el["data"]
		b64, hasB64 := el["data_base64"]
		switch {
		case hasData == hasB64:
			return nil, fmt.Errorf("batch frame %d needs one of data and data_base64", i)
		case hasB64:
			f.Binary = true
			if f.Data, err = decodeBase64(b64); err != nil {
				return nil, fmt.Errorf("batch frame %d: %w", i, err)
			}
		default:
			// No content type per element: a JSON string is a text frame.
			f.Data, f.JSON = textOrJSON(d)
		}
		out[i] = f
	}
	if out[0].Sequence != first || out[len(out)-1].Sequence != last {
		return nil, fmt.Errorf("batch firstsequence/lastsequence %d/%d, but its frames are %d..%d",
			first, last, out[0].Sequence, out[len(out)-1].Sequence)
	}
	return out, nil
}

// textOrJSON returns a JSON string's text, or any other JSON value's text as it is.
func textOrJSON(data json.RawMessage) ([]byte, bool) {
	var s string
	if len(data) > 0 && data[0] == '"' && json.Unmarshal(data, &s) == nil {
		return []byte(s), false
	}
	return data, true
}

func stringAttr(m map[string]json.RawMessage, name string, required bool) (string, error) {
	raw, ok := m[name]
	if !ok {
		if required {
			return "", fmt.Errorf("event has no %s", name)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// boolAttr reads an optional JSON boolean (absent: false).
func boolAttr(m map[string]json.RawMessage, name string) (bool, error) {
	raw, ok := m[name]
	if !ok {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil || string(bytes.TrimSpace(raw)) == "null" {
		return false, fmt.Errorf("%s is not a boolean", name)
	}
	return b, nil
}

// uintAttr reads a decimal string (how the service writes sequences: they can pass 2^53) or
// a JSON integer.
func uintAttr(m map[string]json.RawMessage, name string) (uint64, error) {
	raw, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("event has no %s", name)
	}
	text := string(raw)
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	n, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %s is not an unsigned integer", name, raw)
	}
	return n, nil
}

func timeAttr(m map[string]json.RawMessage, name string) (time.Time, error) {
	s, err := stringAttr(m, name, true)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", name, s)
	}
	return t, nil
}

func decodeBase64(raw json.RawMessage) ([]byte, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("data_base64 is not a string")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("data_base64: %w", err)
	}
	return b, nil
}

func mediaType(ct string) string {
	t, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return t
}

func isJSONType(ct string) bool {
	t := mediaType(ct)
	return t == "application/json" || strings.HasSuffix(t, "+json")
}
