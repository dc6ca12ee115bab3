// Package correlation decides which inbound frame answers which Send. It is pure: no
// goroutines, no I/O; the session keeps the table of waiting Sends and asks this package how to
// mark an outgoing message and how to read an incoming frame.
package correlation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mode is a correlation strategy, chosen per connection.
type Mode int

// Modes. The zero value is not a mode; [Config.Normalize] turns it into [ModeAuto].
const (
	// ModeAuto matches a JSON object by its correlation field when the message has one, and
	// otherwise takes the next inbound frame not claimed by such a match.
	ModeAuto Mode = iota + 1
	// ModeJSONField matches by the correlation field only; messages must carry it.
	ModeJSONField
	// ModePrefix puts a fresh 16-byte UUID in front of the message; the server echoes it in
	// front of its reply, and it is stripped from the reply.
	ModePrefix
	// ModeNext takes the next inbound frame.
	ModeNext
)

var modeNames = map[Mode]string{ModeAuto: "auto", ModeJSONField: "json_field", ModePrefix: "prefix", ModeNext: "next"}

func (m Mode) String() string {
	if s, ok := modeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "auto", "json_field", "prefix" or "next".
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if name == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown correlation mode %q: use auto, json_field, prefix or next", s)
}

// DefaultField is the correlation field when none is configured.
const DefaultField = "id"

// PrefixLen is the length of the binary prefix of [ModePrefix].
const PrefixLen = 16

// Errors.
var (
	// ErrNoID means a json_field message is not a JSON object with the correlation field.
	ErrNoID = errors.New("message is not a JSON object with a string or number correlation field")
)

// Config is a connection's correlation setting.
type Config struct {
	Mode Mode `json:"mode"`
	// Field is the correlation field of the JSON modes, a dotted path such as "id" or "params.requestId".
	Field string `json:"field,omitempty"`
}

// Normalize fills in the defaults: mode auto, field "id".
func (c Config) Normalize() Config {
	if c.Mode == 0 {
		c.Mode = ModeAuto
	}
	if c.Field == "" && (c.Mode == ModeAuto || c.Mode == ModeJSONField) {
		c.Field = DefaultField
	}
	return c
}

// Validate reports a setting that cannot work. Call it on a normalized config.
func (c Config) Validate() error {
	if _, ok := modeNames[c.Mode]; !ok {
		return fmt.Errorf("unknown correlation mode %d", int(c.Mode))
	}
	if c.Mode != ModeAuto && c.Mode != ModeJSONField {
		return nil
	}
	if len(c.Field) > 256 {
		return errors.New("correlation field path is longer than 256 characters")
	}
	parts := strings.Split(c.Field, ".")
	if len(parts) > 16 {
		return errors.New("correlation field path has more than 16 segments")
	}
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("correlation field %q has an empty segment", c.Field)
		}
	}
	return nil
}

// Key names the reply a Send waits for. The empty key means "the next unclaimed frame".
type Key string

// Outbound prepares an outgoing message: the frame to write and the key its reply will carry.
// newPrefix supplies the 16 random bytes of [ModePrefix].
func (c Config) Outbound(msg []byte, binary bool, newPrefix func() [PrefixLen]byte) ([]byte, Key, error) {
	switch c.Mode {
	case ModePrefix:
		p := newPrefix()
		frame := make([]byte, 0, PrefixLen+len(msg))
		frame = append(append(frame, p[:]...), msg...)
		return frame, Key("p:" + string(p[:])), nil
	case ModeJSONField:
		k, ok := jsonKey(msg, c.Field)
		if !ok || binary {
			return nil, "", fmt.Errorf("%w (field %q)", ErrNoID, c.Field)
		}
		return msg, k, nil
	case ModeAuto:
		if binary {
			return msg, "", nil
		}
		k, _ := jsonKey(msg, c.Field)
		return msg, k, nil
	}
	return msg, "", nil
}

// Inbound reads an incoming frame: the key it answers ("" if it carries none) and the payload a
// waiting Send receives (the prefix stripped in [ModePrefix]).
func (c Config) Inbound(frame []byte, binary bool) (Key, []byte) {
	switch c.Mode {
	case ModePrefix:
		if len(frame) < PrefixLen {
			return "", frame
		}
		return Key("p:" + string(frame[:PrefixLen])), frame[PrefixLen:]
	case ModeJSONField, ModeAuto:
		if binary {
			return "", frame
		}
		k, _ := jsonKey(frame, c.Field)
		return k, frame
	}
	return "", frame
}

// TakesUnclaimed reports whether a frame that answers no keyed Send goes to the oldest Send
// waiting without a key.
func (c Config) TakesUnclaimed() bool { return c.Mode == ModeAuto || c.Mode == ModeNext }

// jsonKey extracts the correlation value at the dotted path of a JSON object. Only strings
// and numbers are ids; they never match each other ("1" is not 1). It runs on every inbound
// frame, so it scans instead of decoding: after a validity check (which allocates nothing) it
// walks the object's members and skips the values it does not need. For a key that appears
// twice, the last one counts, as encoding/json would have it.
func jsonKey(data []byte, path string) (Key, bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' || !json.Valid(data) {
		return "", false
	}
	raw := data
	for seg := range strings.SplitSeq(path, ".") {
		v, ok := member(raw, seg)
		if !ok {
			return "", false
		}
		raw = v
	}
	switch c := raw[0]; {
	case c == '"':
		s, ok := unquote(raw)
		if !ok {
			return "", false
		}
		return Key("s:" + s), true
	case c == '-' || (c >= '0' && c <= '9'):
		return Key("n:" + string(raw)), true
	}
	return "", false
}

// member returns the raw value of the last member named name of the object obj (valid JSON).
func member(obj []byte, name string) ([]byte, bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	var found []byte
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return found, found != nil
		}
		if obj[i] == ',' {
			i++
			continue
		}
		keyEnd := skipString(obj, i)
		key := obj[i:keyEnd]
		i = skipSpace(obj, keyEnd)
		i++ // ':'
		i = skipSpace(obj, i)
		valEnd := skipValue(obj, i)
		if keyEquals(key, name) {
			found = obj[i:valEnd]
		}
		i = valEnd
	}
}

// keyEquals compares a quoted JSON key with name, unescaping only when needed.
func keyEquals(quoted []byte, name string) bool {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner) == name
	}
	s, ok := unquote(quoted)
	return ok && s == name
}

// unquote decodes a JSON string as encoding/json does (escapes; invalid UTF-8 becomes U+FFFD),
// copying it as it is when there is nothing to decode.
func unquote(quoted []byte) (string, bool) {
	if inner := quoted[1 : len(quoted)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	return s, json.Unmarshal(quoted, &s) == nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
