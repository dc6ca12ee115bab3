package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPrintFrames(t *testing.T) {
	tests := []struct {
		name       string
		event      string
		wantOut    string
		wantStatus string
		wantErr    string
	}{
		{
			name: "single frame",
			event: `{"specversion":"1.0","id":"1","source":"websocketmanager","type":"websocketmanager.frame","datacontenttype":"text/plain",` +
				`"connectionid":"feed-1","receivedat":"2026-12-06T10:00:00Z","sequence":"7","data":"hello"}`,
			wantOut:    "frame connection=feed-1 sequence=7 type=text data=hello\n",
			wantStatus: "SUCCESS",
		},
		{
			name: "batch: one line per frame",
			event: `{"specversion":"1.0","id":"2","source":"websocketmanager","type":"websocketmanager.frame.batch","datacontenttype":"application/json",` +
				`"connectionid":"feed-1","firstsequence":"41","lastsequence":"43","count":3,"data":[` +
				`{"sequence":"41","receivedat":"2026-12-06T10:00:00.000001Z","data":{"px":1.5}},` +
				`{"sequence":"42","receivedat":"2026-12-06T10:00:00.000002Z","data":"hello"},` +
				`{"sequence":"43","receivedat":"2026-12-06T10:00:00.000003Z","data_base64":"AAEC"}]}`,
			wantOut: "frame connection=feed-1 sequence=41 type=json data={\"px\":1.5}\n" +
				"frame connection=feed-1 sequence=42 type=text data=hello\n" +
				"frame connection=feed-1 sequence=43 type=binary data=<3 bytes>\n",
			wantStatus: "SUCCESS",
		},
		{
			name:       "malformed batch is dropped, not retried",
			event:      `{"type":"websocketmanager.frame.batch","connectionid":"feed-1","firstsequence":"1","lastsequence":"1","count":2,"data":[]}`,
			wantStatus: "DROP",
			wantErr:    "count 2, but 0 frames",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			rec := httptest.NewRecorder()
			printFrames(&out, &errOut)(rec, httptest.NewRequest(http.MethodPost, "/frames", strings.NewReader(tt.event)))
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.JSONEq(t, `{"status":"`+tt.wantStatus+`"}`, rec.Body.String())
			assert.Equal(t, tt.wantOut, out.String())
			assert.Contains(t, errOut.String(), tt.wantErr)
		})
	}
}
