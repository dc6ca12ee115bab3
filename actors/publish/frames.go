package publish

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// BatchEventType is the CloudEvent type of several inbound frames of one connection published
// as one event (StartPublish with batch_max_frames above 1).
const BatchEventType = "websocketmanager.frame.batch"

// Frames is one event's worth of inbound frames of one connection, for one topic: a single
// frame as a FrameEventType event, or several (in sequence order) as a BatchEventType event.
// The event is encoded once, when built, so that every retry of its publish sends the same
// event (the same id): a consumer can drop a duplicate by id.
type Frames struct {
	// Topic is the pub/sub topic of every frame in it.
	Topic string
	// Msgs are the frames, in sequence order.
	Msgs []Message
	body []byte
}

// Body is the event as published: an application/cloudevents+json document.
func (f *Frames) Body() []byte { return f.body }

// Single builds the single-frame event of m.
func Single(m Message) *Frames {
	return &Frames{Topic: m.Topic, Msgs: []Message{m}, body: FrameEnvelope(m)}
}

// FrameEnvelope builds the CloudEvent of a frame: a text frame that is valid JSON travels as
// JSON (application/json) byte for byte as the server sent it, other text as a JSON string
// (text/plain), binary as data_base64 (application/octet-stream). A text frame that is not
// valid UTF-8 (a broken or hostile server) travels as binary: a JSON string would silently
// replace its bytes. Written by hand: it is the per-frame hot path.
func FrameEnvelope(m Message) []byte {
	at := m.ReceivedAt.UTC()
	b := make([]byte, 0, len(m.Data)*4/3+len(m.URL)+len(m.ConnectionID)+320)
	b = append(b, `{"specversion":"1.0","id":"`...)
	b = appendUUID(b)
	b = append(b, `","source":"`+Source+`","type":"`+FrameEventType+`","time":"`...)
	b = at.AppendFormat(b, time.RFC3339Nano)
	kind, _ := classify(m)
	b = append(b, `","datacontenttype":"`...)
	b = append(b, [...]string{"application/json", "text/plain", "application/octet-stream"}[kind]...)
	b = append(b, `","connectionid":`...)
	b = appendString(b, m.ConnectionID)
	if m.URL != "" {
		b = append(b, `,"connectionurl":`...)
		b = appendString(b, m.URL)
	}
	b = append(b, `,"receivedat":"`...)
	b = at.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","sequence":"`...)
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, '"', ',')
	if m.Reply {
		b = append(b, `"reply":true,`...)
	}
	b = appendData(b, m, kind)
	return append(b, '}')
}

// frame kinds, by how their payload travels.
const (
	kindJSON   = iota // valid JSON text: embedded as is
	kindText          // other valid UTF-8 text: a JSON string
	kindBinary        // binary, or text that is not UTF-8: base64
)

func classify(m Message) (int, bool) {
	switch {
	case m.Binary || !utf8.Valid(m.Data):
		return kindBinary, true
	case json.Valid(m.Data):
		return kindJSON, false
	}
	return kindText, false
}

// bareJSON reports whether valid JSON data is an object, array, number, true, false or null
// with no whitespace around it: what a batch element embeds as JSON.
func bareJSON(data []byte) bool {
	first, last := data[0], data[len(data)-1]
	return first != '"' && !isSpace(first) && !isSpace(last)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendData appends `"data":…` or `"data_base64":"…"` for m.
func appendData(b []byte, m Message, kind int) []byte {
	switch kind {
	case kindBinary:
		b = append(b, `"data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.Data)
		return append(b, '"')
	case kindJSON:
		b = append(b, `"data":`...)
		return append(b, m.Data...)
	}
	b = append(b, `"data":`...)
	return appendString(b, string(m.Data))
}

// BatchBuilder collects consecutive frames of one connection into a batch event whose data (the
// JSON array) stays within a byte limit. Use [BatchBuilder.Add] for each frame in order, then
// [BatchBuilder.Frames].
type BatchBuilder struct {
	limit int
	data  []byte // the array's elements so far, comma-separated
	msgs  []Message
}

// NewBatchBuilder returns a builder whose data array holds at most limit bytes (a first frame
// larger than that is still taken: it travels alone, and the pub/sub's own limit decides).
func NewBatchBuilder(limit int) *BatchBuilder { return &BatchBuilder{limit: limit} }

// Add appends m's element to the batch, or reports false (and leaves the batch as it was) when
// the data would then exceed the limit.
func (b *BatchBuilder) Add(m Message) bool {
	n := len(b.data)
	if n > 0 {
		b.data = append(b.data, ',')
	}
	b.data = append(b.data, `{"sequence":"`...)
	b.data = strconv.AppendUint(b.data, m.Seq, 10)
	b.data = append(b.data, `","receivedat":"`...)
	b.data = m.ReceivedAt.UTC().AppendFormat(b.data, time.RFC3339Nano)
	b.data = append(b.data, '"', ',')
	if m.Reply {
		b.data = append(b.data, `"reply":true,`...)
	}
	kind, _ := classify(m)
	if kind == kindJSON && !bareJSON(m.Data) {
		// In a batch there is no content type: a JSON string element must mean text, and a
		// parser drops whitespace around a value. Such frames travel as strings, byte for byte.
		kind = kindText
	}
	b.data = appendData(b.data, m, kind)
	b.data = append(b.data, '}')
	if len(b.msgs) > 0 && len(b.data)+2 > b.limit {
		b.data = b.data[:n]
		return false
	}
	b.msgs = append(b.msgs, m)
	return true
}

// Len is the number of frames added.
func (b *BatchBuilder) Len() int { return len(b.msgs) }

// Frames builds the batch event of the frames added (at least one).
func (b *BatchBuilder) Frames() *Frames {
	first, last := b.msgs[0], b.msgs[len(b.msgs)-1]
	out := make([]byte, 0, len(b.data)+len(first.URL)+len(first.ConnectionID)+360)
	out = append(out, `{"specversion":"1.0","id":"`...)
	out = appendUUID(out)
	out = append(out, `","source":"`+Source+`","type":"`+BatchEventType+`","time":"`...)
	out = first.ReceivedAt.UTC().AppendFormat(out, time.RFC3339Nano)
	out = append(out, `","datacontenttype":"application/json","connectionid":`...)
	out = appendString(out, first.ConnectionID)
	if first.URL != "" {
		out = append(out, `,"connectionurl":`...)
		out = appendString(out, first.URL)
	}
	out = append(out, `,"firstsequence":"`...)
	out = strconv.AppendUint(out, first.Seq, 10)
	out = append(out, `","lastsequence":"`...)
	out = strconv.AppendUint(out, last.Seq, 10)
	out = append(out, `","count":`...)
	out = strconv.AppendInt(out, int64(len(b.msgs)), 10)
	out = append(out, `,"data":[`...)
	out = append(out, b.data...)
	out = append(out, ']', '}')
	return &Frames{Topic: first.Topic, Msgs: b.msgs, body: out}
}

func appendUUID(b []byte) []byte {
	u := uuid.New()
	var s [36]byte
	hex := "0123456789abcdef"
	j := 0
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hex[x>>4], hex[x&0xf]
		j += 2
	}
	return append(b, s[:]...)
}

// appendString appends s as a JSON string. Only '"', '\\' and control characters are escaped
// (no HTML escaping: a text frame travels as sent); invalid UTF-8 becomes U+FFFD, as
// encoding/json does (frames that are not UTF-8 never come here: they travel as base64).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
