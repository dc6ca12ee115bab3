package publish

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// batchEvent is a batch event as a consumer decodes it.
type batchEvent struct {
	Type          string `json:"type"`
	ConnectionID  string `json:"connectionid"`
	ConnectionURL string `json:"connectionurl"`
	First         string `json:"firstsequence"`
	Last          string `json:"lastsequence"`
	Count         int    `json:"count"`
	Data          []struct {
		Sequence   string          `json:"sequence"`
		ReceivedAt string          `json:"receivedat"`
		Data       json.RawMessage `json:"data"`
		DataBase64 *string         `json:"data_base64"`
	} `json:"data"`
}

// frameOf rebuilds a frame from a batch element: JSON as is, a string's text, or base64.
func frameOf(t testing.TB, data json.RawMessage, b64 *string) (payload []byte, binary bool) {
	if b64 != nil {
		p, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			t.Fatalf("bad base64: %v", err)
		}
		return p, true
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatalf("bad string: %v", err)
		}
		return []byte(s), false
	}
	return data, false
}

// Ensure a batch event carries its frames in order with their attributes, and every kind of
// frame comes back byte for byte: JSON as sent (spaces, key order, big numbers, HTML
// characters), a frame that is a JSON string or has spaces around it as text, other text,
// text that is not UTF-8 and binary as base64.
func TestBatchEvent(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 1000, time.UTC)
	frames := []struct {
		data   string
		binary bool
		kind   string // json, text, base64
	}{
		{`{"b": 2, "a":[1,  2], "n":12345678901234567890, "h":"<&>"}`, false, "json"},
		{`"a JSON string"`, false, "text"},
		{" {\"spaced\":1}\n", false, "text"},
		{"plain <b>text</b> \"quoted\" \\ \x01 ünï", false, "text"},
		{"\xff\xfebroken", false, "base64"},
		{"\x00\x01\x02", true, "base64"},
		{`42`, false, "json"},
		{``, false, "text"},
	}
	b := NewBatchBuilder(1 << 20)
	for i, f := range frames {
		require.True(t, b.Add(Message{ConnectionID: "feed-1", URL: "wss://h/x", Topic: "t", Data: []byte(f.data), Binary: f.binary,
			Seq: uint64(1<<60 + i), ReceivedAt: at.Add(time.Duration(i))}))
	}
	ev := b.Frames()
	assert.Equal(t, "t", ev.Topic)
	assert.Len(t, ev.Msgs, len(frames))
	var got batchEvent
	require.NoError(t, json.Unmarshal(ev.Body(), &got), "%s", ev.Body())
	assert.Equal(t, BatchEventType, got.Type)
	assert.Equal(t, "feed-1", got.ConnectionID)
	assert.Equal(t, "wss://h/x", got.ConnectionURL)
	assert.Equal(t, strconv.FormatUint(1<<60, 10), got.First)
	assert.Equal(t, strconv.FormatUint(1<<60+uint64(len(frames)-1), 10), got.Last)
	assert.Equal(t, len(frames), got.Count)
	require.Len(t, got.Data, len(frames))
	for i, f := range frames {
		e := got.Data[i]
		assert.Equal(t, strconv.FormatUint(1<<60+uint64(i), 10), e.Sequence)
		assert.Equal(t, at.Add(time.Duration(i)).Format(time.RFC3339Nano), e.ReceivedAt)
		payload, binary := frameOf(t, e.Data, e.DataBase64)
		assert.Equal(t, f.data, string(payload), "frame %d byte for byte", i)
		assert.Equal(t, f.kind == "base64", binary || f.binary)
		switch f.kind {
		case "json":
			assert.Equal(t, f.data, string(e.Data), "JSON embedded as sent")
		case "text":
			assert.Equal(t, byte('"'), e.Data[0], "travels as a string")
		}
	}
}

// Ensure Add refuses a frame that would take the data past the limit, except the first.
func TestBatchBuilderLimit(t *testing.T) {
	b := NewBatchBuilder(200)
	big := Message{Topic: "t", Data: bytes.Repeat([]byte("x"), 500)}
	require.True(t, b.Add(big), "the first frame is taken whatever its size")
	assert.False(t, b.Add(Message{Topic: "t", Data: []byte("y")}))
	assert.Equal(t, 1, b.Len())

	b = NewBatchBuilder(200)
	n := 0
	for b.Add(Message{Topic: "t", Seq: uint64(n), Data: []byte("0123456789")}) {
		n++
	}
	var got batchEvent
	body := b.Frames().Body()
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, n, got.Count)
	i, j := bytes.Index(body, []byte(`"data":[`)), bytes.LastIndexByte(body, ']')
	assert.LessOrEqual(t, j+1-(i+len(`"data":`)), 200, "the data array stays within the limit")
}

// FuzzBatchEvent: any frames make a valid batch event that gives every frame back byte for byte.
func FuzzBatchEvent(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `plain`, "\xff\xfe", `[1,`, ``, `"str"`, ` 1 `, `{"q":"<a href='x'>&amp;</a>"}`, "\u2028"} {
		f.Add([]byte(s), false, []byte(`"x"`), true)
	}
	f.Fuzz(func(t *testing.T, a []byte, aBinary bool, c []byte, cBinary bool) {
		b := NewBatchBuilder(1 << 20)
		in := []Message{{ConnectionID: "c\"\n", Topic: "t", Data: a, Binary: aBinary, Seq: 1}, {ConnectionID: "c\"\n", Topic: "t", Data: c, Binary: cBinary, Seq: 2}}
		for _, m := range in {
			if !b.Add(m) {
				t.Fatal("refused below the limit")
			}
		}
		var got batchEvent
		if err := json.Unmarshal(b.Frames().Body(), &got); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if got.Count != 2 || len(got.Data) != 2 || got.ConnectionID != "c\"\n" {
			t.Fatalf("count %d, elements %d, id %q", got.Count, len(got.Data), got.ConnectionID)
		}
		for i, m := range in {
			payload, _ := frameOf(t, got.Data[i].Data, got.Data[i].DataBase64)
			if !bytes.Equal(payload, m.Data) {
				t.Fatalf("frame %d changed: %q → %q", i, m.Data, payload)
			}
		}
	})
}
