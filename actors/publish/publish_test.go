package publish

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameEnvelope(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		data     []byte
		binary   bool
		wantType string
		wantData string
	}{
		{"json object", []byte(`{"a":1}`), false, "application/json", `{"a":1}`},
		{"json number", []byte(`42`), false, "application/json", `42`},
		{"plain text", []byte(`hello`), false, "text/plain", `"hello"`},
		{"invalid utf-8 text travels as bytes", []byte{0xff, 'a'}, false, "application/octet-stream", ""},
		{"binary", []byte{0, 1, 2}, true, "application/octet-stream", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := FrameEnvelope(Message{ConnectionID: "c1", URL: "ws://h/", Data: tt.data, Binary: tt.binary, Seq: 7, ReceivedAt: at})
			var ce map[string]any
			require.NoError(t, json.Unmarshal(b, &ce))
			assert.Equal(t, tt.wantType, ce["datacontenttype"])
			assert.Equal(t, "c1", ce["connectionid"])
			assert.Equal(t, "ws://h/", ce["connectionurl"])
			assert.Equal(t, "7", ce["sequence"])
			assert.Equal(t, "2026-11-29T12:00:00Z", ce["receivedat"])
			assert.Equal(t, "1.0", ce["specversion"])
			if tt.wantType == "application/octet-stream" {
				assert.Equal(t, base64.StdEncoding.EncodeToString(tt.data), ce["data_base64"])
				return
			}
			raw, _ := json.Marshal(ce["data"])
			assert.JSONEq(t, tt.wantData, string(raw))
		})
	}
}

// Ensure a JSON frame is published byte for byte (whitespace and key order kept), without Go's
// HTML escaping, and text without HTML escaping either.
func TestFrameEnvelopeKeepsJSONAsSent(t *testing.T) {
	b := FrameEnvelope(Message{ConnectionID: "c", Data: []byte(" {\"q\": \"<b>&</b>\",\n \"a\": 1.50} ")})
	assert.Contains(t, string(b), "\"data\": {\"q\": \"<b>&</b>\",\n \"a\": 1.50} }")
	b = FrameEnvelope(Message{ConnectionID: "c", Data: []byte("<b>\"&\"</b>\x01")})
	assert.Contains(t, string(b), `"data":"<b>\"&\"</b>\u0001"`)
}

func TestEventType(t *testing.T) {
	assert.Equal(t, "websocketmanager.connection.connected", EventType("CONNECTED"))
	assert.Equal(t, "websocketmanager.connection.error", EventType("ERROR"))
}

// FuzzFrameEnvelope: any inbound frame becomes a valid CloudEvent whose data gives the frame
// back exactly.
func FuzzFrameEnvelope(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `plain`, "\xff\xfe", `[1,`, ``, `"str"`, `"&"`, `{"q":"<a href='x'>&amp;</a>"}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		b := FrameEnvelope(Message{ConnectionID: "c", Data: data, Binary: binary})
		var ce struct {
			DataContentType string          `json:"datacontenttype"`
			Data            json.RawMessage `json:"data"`
			DataBase64      string          `json:"data_base64"`
		}
		if err := json.Unmarshal(b, &ce); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		switch ce.DataContentType {
		case "application/octet-stream":
			got, err := base64.StdEncoding.DecodeString(ce.DataBase64)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("frame not byte for byte")
			}
		case "application/json":
			if binary || !bytes.Equal(ce.Data, bytes.TrimSpace(data)) {
				t.Fatalf("JSON frame changed: %q → %q", data, ce.Data)
			}
		case "text/plain":
			var s string
			if binary || json.Unmarshal(ce.Data, &s) != nil || s != string(data) {
				t.Fatalf("text frame changed: %q → %q", data, ce.Data)
			}
		default:
			t.Fatalf("content type %q", ce.DataContentType)
		}
	})
}
