package publish

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzEventsAreJSON: every event written by hand is valid JSON whatever the connection id, URL
// and frame, and the id and URL come back as encoding/json would decode them.
func FuzzEventsAreJSON(f *testing.F) {
	f.Add("c", "wss://h/p?a=\"b\"\\", []byte(`{"a":1}`), false, int64(0))
	f.Add("\xff\x00\u2028", "\x7f<>&", []byte(" 1 "), false, int64(-1))
	f.Fuzz(func(t *testing.T, id, url string, data []byte, binary bool, nanos int64) {
		m := Message{ConnectionID: id, URL: url, Topic: "t", Data: data, Binary: binary, Seq: 1<<64 - 1, ReceivedAt: time.Unix(0, nanos)}
		var ev struct {
			ConnectionID  string `json:"connectionid"`
			ConnectionURL string `json:"connectionurl"`
		}
		b := NewBatchBuilder(1 << 20)
		b.Add(m)
		m2 := m
		m2.Seq--
		b.Add(m2)
		for _, body := range [][]byte{FrameEnvelope(m), b.Frames().Body()} {
			if !json.Valid(body) {
				t.Fatalf("not JSON: %q", body)
			}
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatal(err)
			}
			wantID, _ := json.Marshal(id)
			var want string
			_ = json.Unmarshal(wantID, &want)
			if ev.ConnectionID != want {
				t.Fatalf("id %q → %q", id, ev.ConnectionID)
			}
		}
	})
}
