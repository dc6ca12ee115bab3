package wsmclient_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
)

// A batch with a reply (include_replies): it carries the number of the frame before it.
const replyBatch = `[{"sequence":"4","receivedat":"2026-12-06T10:00:00.000001Z","data":{"px":1}},
	{"sequence":"4","receivedat":"2026-12-06T10:00:00.000002Z","reply":true,"data":"pong"},
	{"sequence":"5","receivedat":"2026-12-06T10:00:00.000003Z","reply":false,"data":"hello"}]`

func replyFrame(f wsmclient.Frame) wsmclient.Frame { f.Reply = true; return f }

// Frame events with replies, as the service writes them with include_replies.
func TestFramesWithReplies(t *testing.T) {
	el := func(seq, extra string) string {
		return `{"sequence":"` + seq + `","receivedat":"2026-12-06T10:00:00.000001Z",` + extra + `"data":1}`
	}
	tests := []struct {
		name    string
		event   string
		want    []wsmclient.Frame
		wantErr string
	}{
		{
			name:  "a reply in a batch has the sequence of the frame before it",
			event: batchEvent("4", "5", "3", replyBatch),
			want:  []wsmclient.Frame{frame(4, 1, `{"px":1}`, false, true), replyFrame(frame(4, 2, "pong", false, false)), frame(5, 3, "hello", false, false)},
		},
		{
			name:  "replies one after another",
			event: batchEvent("4", "4", "3", "["+el("4", "")+","+el("4", `"reply":true,`)+","+el("4", `"reply":true,`)+"]"),
			want:  []wsmclient.Frame{frame(4, 1, "1", false, true), replyFrame(frame(4, 1, "1", false, true)), replyFrame(frame(4, 1, "1", false, true))},
		},
		{
			name:  "a batch that starts with a reply (its frame was in the batch before)",
			event: batchEvent("4", "5", "2", "["+el("4", `"reply":true,`)+","+el("5", "")+"]"),
			want:  []wsmclient.Frame{replyFrame(frame(4, 1, "1", false, true)), frame(5, 1, "1", false, true)},
		},
		{
			name:  "a reply after a dropped frame carries the dropped frame's number",
			event: batchEvent("4", "6", "2", "["+el("4", "")+","+el("6", `"reply":true,`)+"]"),
			want:  []wsmclient.Frame{frame(4, 1, "1", false, true), replyFrame(frame(6, 1, "1", false, true))},
		},
		{
			name:  "a reply before any frame is numbered 0",
			event: single("0", "text/plain", `"reply":true,"data":"pong"`),
			want:  []wsmclient.Frame{replyFrame(frame(0, 1, "pong", false, false))},
		},
		{
			name:  "a single-frame event marked as a reply",
			event: single("7", "application/json", `"reply":true,"data":{"id":1}`),
			want:  []wsmclient.Frame{replyFrame(frame(7, 1, `{"id":1}`, false, true))},
		},
		{
			name:  "reply false is not a reply",
			event: single("7", "text/plain", `"reply":false,"data":"x"`),
			want:  []wsmclient.Frame{frame(7, 1, "x", false, false)},
		},

		{
			name:    "a repeated sequence that is not a reply",
			event:   batchEvent("4", "4", "2", "["+el("4", `"reply":true,`)+","+el("4", "")+"]"),
			wantErr: "do not ascend: 4 after 4",
		},
		{
			name:    "a reply numbered below the frame before it",
			event:   batchEvent("4", "3", "2", "["+el("4", "")+","+el("3", `"reply":true,`)+"]"),
			wantErr: "do not ascend: 3 after 4",
		},
		{name: "reply not a boolean in a batch", event: batchEvent("4", "4", "1", "["+el("4", `"reply":"yes",`)+"]"), wantErr: "batch frame 0: reply is not a boolean"},
		{name: "reply null", event: batchEvent("4", "4", "1", "["+el("4", `"reply":null,`)+"]"), wantErr: "reply is not a boolean"},
		{name: "reply a number", event: single("7", "text/plain", `"reply":1,"data":"x"`), wantErr: "reply is not a boolean"},
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
			for i, w := range tt.want {
				assert.Equal(t, w.Sequence, got[i].Sequence, "frame %d", i)
				assert.Equal(t, w.Reply, got[i].Reply, "frame %d reply", i)
				assert.Equal(t, string(w.Data), string(got[i].Data), "frame %d", i)
				assert.Equal(t, w.JSON, got[i].JSON, "frame %d JSON", i)
				assert.True(t, w.ReceivedAt.Equal(got[i].ReceivedAt), "frame %d: received at %v", i, got[i].ReceivedAt)
			}
		})
	}
}
