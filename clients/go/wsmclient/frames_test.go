package wsmclient_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
)

// single is a single-frame event as the service writes it, with the given content type and
// data field(s).
func single(seq, ct, data string) string {
	return `{"specversion":"1.0","id":"5f0c…","source":"websocketmanager","type":"websocketmanager.frame",` +
		`"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"` + ct + `","connectionid":"feed-1",` +
		`"connectionurl":"wss://example.com/feed","receivedat":"2026-12-06T10:00:00.000001Z","sequence":"` + seq + `",` + data + `}`
}

// batchEvent is a batch event with the given attributes and data array.
func batchEvent(first, last, count, data string) string {
	return `{"specversion":"1.0","id":"9a1e…","source":"websocketmanager","type":"websocketmanager.frame.batch",` +
		`"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"application/json","connectionid":"feed-1",` +
		`"connectionurl":"wss://example.com/feed","firstsequence":"` + first + `","lastsequence":"` + last + `","count":` + count +
		`,"data":` + data + `}`
}

// The batch of docs/architecture.md.
const docBatch = `[{"sequence":"41","receivedat":"2026-12-06T10:00:00.000001Z","data":{"px":1.5}},
           {"sequence":"42","receivedat":"2026-12-06T10:00:00.000002Z","data":"hello"},
           {"sequence":"43","receivedat":"2026-12-06T10:00:00.000003Z","data_base64":"AAEC"}]`

func at(us int) time.Time { return time.Date(2026, 12, 6, 10, 0, 0, us*1000, time.UTC) }

func frame(seq uint64, us int, data string, binary, isJSON bool) wsmclient.Frame {
	return wsmclient.Frame{ConnectionID: "feed-1", Sequence: seq, ReceivedAt: at(us), Data: []byte(data), Binary: binary, JSON: isJSON}
}

func TestFrames(t *testing.T) {
	docFrames := []wsmclient.Frame{
		frame(41, 1, `{"px":1.5}`, false, true),
		frame(42, 2, "hello", false, false),
		frame(43, 3, "\x00\x01\x02", true, false),
	}
	// What a subscription with rawPayload receives: daprd's envelope around the event.
	rawPayload := `{"id":"x","specversion":"1.0","datacontenttype":"application/octet-stream","source":"Dapr",` +
		`"type":"com.dapr.event.sent","topic":"frames","pubsubname":"pubsub","data_base64":"` +
		base64.StdEncoding.EncodeToString([]byte(batchEvent("41", "43", "3", docBatch))) + `"}`
	quoted, _ := json.Marshal(single("7", "text/plain", `"data":"hi"`))
	stringData, _ := json.Marshal(docBatch)

	tests := []struct {
		name    string
		event   string
		want    []wsmclient.Frame
		wantErr string
	}{
		{
			name:  "JSON frame: keys, order and whitespace kept byte for byte",
			event: single("7", "application/json", `"data":{ "b" : 1,  "a":[1, 2.50], "c":"<&>" }`),
			want:  []wsmclient.Frame{frame(7, 1, `{ "b" : 1,  "a":[1, 2.50], "c":"<&>" }`, false, true)},
		},
		{
			name:  "JSON frame that is a JSON string",
			event: single("7", "application/json", `"data":"quoted"`),
			want:  []wsmclient.Frame{frame(7, 1, `"quoted"`, false, true)},
		},
		{
			name:  "JSON frame with a content type parameter",
			event: single("7", "application/json; charset=utf-8", `"data":[1]`),
			want:  []wsmclient.Frame{frame(7, 1, `[1]`, false, true)},
		},
		{
			name:  "text frame",
			event: single("8", "text/plain", `"data":"hello \"you\" <&> \u00e9\n"`),
			want:  []wsmclient.Frame{frame(8, 1, "hello \"you\" <&> é\n", false, false)},
		},
		{
			name:  "empty text frame",
			event: single("8", "text/plain", `"data":""`),
			want:  []wsmclient.Frame{frame(8, 1, "", false, false)},
		},
		{
			name:  "binary frame",
			event: single("9", "application/octet-stream", `"data_base64":"AAEC/w=="`),
			want:  []wsmclient.Frame{frame(9, 1, "\x00\x01\x02\xff", true, false)},
		},
		{
			name:  "text that is not UTF-8 travels as data_base64",
			event: single("10", "application/octet-stream", `"data_base64":"`+base64.StdEncoding.EncodeToString([]byte("caf\xe9"))+`"`),
			want:  []wsmclient.Frame{frame(10, 1, "caf\xe9", true, false)},
		},
		{
			name:  "empty binary frame without data_base64 (older services)",
			event: single("11", "application/octet-stream", `"x":1`),
			want:  []wsmclient.Frame{frame(11, 1, "", true, false)},
		},
		{
			name:  "sequence past 2^53",
			event: single("18446744073709551615", "text/plain", `"data":"x"`),
			want:  []wsmclient.Frame{frame(1<<64-1, 1, "x", false, false)},
		},
		{
			name:  "batch of mixed frames",
			event: batchEvent("41", "43", "3", docBatch),
			want:  docFrames,
		},
		{
			name:  "batch with a gap (dropped frames) between first and last",
			event: batchEvent("1", "5", "2", `[{"sequence":"1","receivedat":"2026-12-06T10:00:00.000001Z","data":null},{"sequence":"5","receivedat":"2026-12-06T10:00:00.000002Z","data":12}]`),
			want:  []wsmclient.Frame{frame(1, 1, "null", false, true), frame(5, 2, "12", false, true)},
		},
		{
			name:  "batch of one",
			event: batchEvent("3", "3", "1", `[{"sequence":"3","receivedat":"2026-12-06T10:00:00.000001Z","data_base64":""}]`),
			want:  []wsmclient.Frame{frame(3, 1, "", true, false)},
		},
		{
			name:  "rawPayload subscription: daprd's envelope is taken off",
			event: rawPayload,
			want:  docFrames,
		},
		{
			name:  "event serialised once more as a JSON string",
			event: string(quoted),
			want:  []wsmclient.Frame{frame(7, 1, "hi", false, false)},
		},
		{
			name:  "batch data serialised once more as a JSON string",
			event: batchEvent("41", "43", "3", string(stringData)),
			want:  docFrames,
		},
		{
			name: "re-serialised by daprd: keys sorted, attributes added, count and sequence as numbers",
			event: `{"connectionid":"feed-1","count":3,"data":[{"data":{"px":1.5},"receivedat":"2026-12-06T10:00:00.000001Z","sequence":41},` +
				`{"data":"hello","receivedat":"2026-12-06T10:00:00.000002Z","sequence":"42"},{"data_base64":"AAEC","receivedat":"2026-12-06T10:00:00.000003Z","sequence":"43"}],` +
				`"datacontenttype":"application/json","firstsequence":"41","id":"x","lastsequence":"43","pubsubname":"pubsub","source":"websocketmanager",` +
				`"specversion":"1.0","topic":"frames","traceid":"","type":"websocketmanager.frame.batch"}`,
			want: docFrames,
		},

		{name: "another event type", event: `{"type":"websocketmanager.connection.connected","data":{}}`, wantErr: `"websocketmanager.connection.connected" is not a frame event`},
		{name: "daprd envelope around another event", event: `{"type":"com.dapr.event.sent","data":{}}`, wantErr: `"com.dapr.event.sent" is not a frame event`},
		{name: "no type", event: `{"data":1}`, wantErr: "no type"},
		{name: "type not a string", event: `{"type":1}`, wantErr: "type is not a string"},
		{name: "not JSON", event: `{"type":`, wantErr: "unexpected end"},
		{name: "not an object", event: `[1]`, wantErr: "cannot unmarshal"},
		{name: "empty", event: ``, wantErr: "unexpected end"},
		{name: "nested too deep", event: `"\"{}\""`, wantErr: "nested too deep"},
		{name: "bad count", event: batchEvent("41", "43", "2", docBatch), wantErr: "count 2, but 3 frames"},
		{name: "count not a number", event: batchEvent("41", "43", `"three"`, docBatch), wantErr: "count"},
		{name: "negative count", event: batchEvent("41", "43", `-3`, docBatch), wantErr: "count"},
		{name: "empty batch", event: batchEvent("1", "1", "0", `[]`), wantErr: "count 0, but 0 frames"},
		{name: "batch data not an array", event: batchEvent("1", "1", "1", `{"sequence":"1"}`), wantErr: "not an array"},
		{name: "batch without data", event: `{"type":"websocketmanager.frame.batch","firstsequence":"1","lastsequence":"1","count":1}`, wantErr: "no data"},
		{name: "null element", event: batchEvent("1", "1", "1", `[null]`), wantErr: "frame 0 is null"},
		{
			name:    "sequences not ascending",
			event:   batchEvent("2", "1", "2", `[{"sequence":"2","receivedat":"2026-12-06T10:00:00Z","data":1},{"sequence":"1","receivedat":"2026-12-06T10:00:00Z","data":1}]`),
			wantErr: "do not ascend: 1 after 2",
		},
		{
			name:    "repeated sequence",
			event:   batchEvent("1", "1", "2", `[{"sequence":"1","receivedat":"2026-12-06T10:00:00Z","data":1},{"sequence":"1","receivedat":"2026-12-06T10:00:00Z","data":1}]`),
			wantErr: "do not ascend",
		},
		{name: "firstsequence does not match", event: batchEvent("40", "43", "3", docBatch), wantErr: "40/43, but its frames are 41..43"},
		{name: "lastsequence does not match", event: batchEvent("41", "44", "3", docBatch), wantErr: "41/44"},
		{name: "bad base64 in a batch", event: batchEvent("1", "1", "1", `[{"sequence":"1","receivedat":"2026-12-06T10:00:00Z","data_base64":"AA=A"}]`), wantErr: "batch frame 0: data_base64"},
		{name: "bad base64", event: single("1", "application/octet-stream", `"data_base64":"not base64!"`), wantErr: "data_base64: illegal base64"},
		{name: "base64 without padding", event: single("1", "application/octet-stream", `"data_base64":"AAE"`), wantErr: "data_base64"},
		{name: "base64 not a string", event: single("1", "application/octet-stream", `"data_base64":12`), wantErr: "data_base64 is not a string"},
		{name: "both data and data_base64", event: single("1", "text/plain", `"data":"a","data_base64":"AA=="`), wantErr: "both data and data_base64"},
		{name: "no data", event: single("1", "text/plain", `"x":1`), wantErr: "neither data nor data_base64"},
		{name: "batch element without data", event: batchEvent("1", "1", "1", `[{"sequence":"1","receivedat":"2026-12-06T10:00:00Z"}]`), wantErr: "frame 0 needs one of data and data_base64"},
		{name: "no sequence", event: `{"type":"websocketmanager.frame","receivedat":"2026-12-06T10:00:00Z","data":1}`, wantErr: "no sequence"},
		{name: "sequence not a number", event: single("x1", "text/plain", `"data":"a"`), wantErr: `sequence "x1" is not an unsigned integer`},
		{name: "negative sequence", event: single("-1", "text/plain", `"data":"a"`), wantErr: "sequence"},
		{name: "sequence past 2^64", event: single("18446744073709551616", "text/plain", `"data":"a"`), wantErr: "sequence"},
		{name: "fractional sequence", event: `{"type":"websocketmanager.frame","sequence":1.5,"receivedat":"2026-12-06T10:00:00Z","data":1}`, wantErr: "sequence 1.5"},
		{name: "bad receivedat", event: `{"type":"websocketmanager.frame","sequence":"1","receivedat":"yesterday","data":1}`, wantErr: `receivedat "yesterday"`},
		{name: "no receivedat", event: `{"type":"websocketmanager.frame","sequence":"1","data":1}`, wantErr: "no receivedat"},
		{name: "connectionid not a string", event: `{"type":"websocketmanager.frame","connectionid":1}`, wantErr: "connectionid is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wsmclient.Frames([]byte(tt.event))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.True(t, strings.HasPrefix(err.Error(), "wsmclient: "), err.Error())
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i := range tt.want {
				assert.Equal(t, tt.want[i].ConnectionID, got[i].ConnectionID, "frame %d", i)
				assert.Equal(t, tt.want[i].Sequence, got[i].Sequence, "frame %d", i)
				assert.True(t, tt.want[i].ReceivedAt.Equal(got[i].ReceivedAt), "frame %d: received at %v", i, got[i].ReceivedAt)
				assert.Equal(t, string(tt.want[i].Data), string(got[i].Data), "frame %d", i)
				assert.Equal(t, tt.want[i].Binary, got[i].Binary, "frame %d binary", i)
				assert.Equal(t, tt.want[i].JSON, got[i].JSON, "frame %d JSON", i)
				assert.Equal(t, tt.want[i].Reply, got[i].Reply, "frame %d reply", i)
			}
		})
	}
}

// FuzzFrames feeds events, taken apart and mutated, to Frames: it must never panic, and what
// it accepts must be frames in ascending sequence order (equal only for a reply).
func FuzzFrames(f *testing.F) {
	f.Add([]byte(batchEvent("41", "43", "3", docBatch)))
	f.Add([]byte(single("7", "application/json", `"data":{ "b" : 1 }`)))
	f.Add([]byte(single("8", "text/plain", `"data":"hello"`)))
	f.Add([]byte(single("9", "application/octet-stream", `"data_base64":"AAEC/w=="`)))
	f.Add([]byte(`"{\"type\":\"websocketmanager.frame\"}"`))
	f.Add([]byte(`{"type":"com.dapr.event.sent","data_base64":"e30="}`))
	f.Add([]byte(batchEvent("4", "5", "3", replyBatch)))
	f.Fuzz(func(t *testing.T, event []byte) {
		frames, err := wsmclient.Frames(event)
		if err != nil {
			if frames != nil {
				t.Fatalf("frames %v with error %v", frames, err)
			}
			return
		}
		if len(frames) == 0 {
			t.Fatal("no frames and no error")
		}
		for i := 1; i < len(frames); i++ {
			if frames[i].Sequence < frames[i-1].Sequence || frames[i].Sequence == frames[i-1].Sequence && !frames[i].Reply {
				t.Fatalf("sequence %d after %d", frames[i].Sequence, frames[i-1].Sequence)
			}
		}
		for _, fr := range frames {
			if fr.Binary && fr.JSON {
				t.Fatal("a frame both binary and JSON")
			}
			if fr.JSON && !json.Valid(fr.Data) {
				t.Fatalf("JSON frame %q is not valid JSON", fr.Data)
			}
		}
	})
}

// Print the frames of a published event, single or batch.
func ExampleFrames() {
	event := []byte(`{"specversion":"1.0","id":"1","source":"websocketmanager","type":"websocketmanager.frame.batch",
	 "time":"2026-12-06T10:00:00.000001Z","datacontenttype":"application/json","connectionid":"feed-1",
	 "connectionurl":"wss://example.com/feed","firstsequence":"41","lastsequence":"43","count":3,
	 "data":[{"sequence":"41","receivedat":"2026-12-06T10:00:00.000001Z","data":{"px":1.5}},
	         {"sequence":"42","receivedat":"2026-12-06T10:00:00.000002Z","data":"hello"},
	         {"sequence":"43","receivedat":"2026-12-06T10:00:00.000003Z","data_base64":"AAEC"}]}`)
	frames, err := wsmclient.Frames(event)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range frames {
		switch {
		case f.Binary:
			fmt.Printf("%s #%d binary % x\n", f.ConnectionID, f.Sequence, f.Data)
		case f.JSON:
			fmt.Printf("%s #%d JSON %s\n", f.ConnectionID, f.Sequence, f.Data)
		default:
			fmt.Printf("%s #%d text %q\n", f.ConnectionID, f.Sequence, f.Data)
		}
	}
	// Output:
	// feed-1 #41 JSON {"px":1.5}
	// feed-1 #42 text "hello"
	// feed-1 #43 binary 00 01 02
}
