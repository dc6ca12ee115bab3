package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/websocketmanager/websocketmanager/actors/session"
	"github.com/websocketmanager/websocketmanager/actors/session/sessiontest"
)

// Ensure a frame that answers a Send is published only with include_replies, and still
// answers the Send either way; unsolicited frames are published in both cases. A reply takes
// no number of its own (it carries the number of the frame before it, and is marked), so the
// pushed frames are numbered 1, 2, … whether or not replies are published.
func TestIncludeReplies(t *testing.T) {
	for _, tt := range []struct {
		name    string
		include bool
		want    []string
		seqs    []uint64
		replies []bool
	}{
		{"replies left out (default)", false, []string{"unsolicited"}, []uint64{1}, []bool{false}},
		{"replies included", true, []string{`{"id":1}`, "plain", "unsolicited"}, []uint64{0, 0, 1}, []bool{true, true, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ws := sessiontest.NewServer(t, time.Hour)
			r, rec := newRegistry(t, testConfig())
			s := open(t, r, session.Spec{URL: ws.URL("/jsonrpc"), Publish: session.PublishOptions{Topic: "t", IncludeReplies: tt.include}})
			got, err := s.Send(context.Background(), text(`{"id":1}`), time.Second)
			require.NoError(t, err)
			assert.Contains(t, string(got.Data), `"id":1`)
			got, err = s.Send(context.Background(), text("plain"), time.Second)
			require.NoError(t, err)
			assert.Equal(t, "plain", string(got.Data))
			require.NoError(t, s.SendRaw(context.Background(), text("unsolicited")))
			require.Eventually(t, func() bool { return len(rec.frames()) == len(tt.want) }, waitFor, 5*time.Millisecond)
			for i, f := range rec.frames() {
				assert.Equal(t, tt.seqs[i], f.Seq)
				assert.Equal(t, tt.replies[i], f.Reply)
				if tt.want[i][0] == '{' {
					assert.Contains(t, string(f.Data), `"id":1`)
					continue
				}
				assert.Equal(t, tt.want[i], string(f.Data))
			}
		})
	}
}
