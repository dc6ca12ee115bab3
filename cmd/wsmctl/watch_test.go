package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// How `wsmctl watch` prints each kind of frame: one line each, whatever the payload.
func TestFrameLine(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 12, 6, 10, 0, 0, 1000, time.UTC))
	tests := []struct {
		name  string
		frame *pb.Frame
		want  string
	}{
		{"text", &pb.Frame{Sequence: 41, ReceivedAt: at, Payload: &pb.Frame_Text{Text: `{"px":1.5} é`}}, `41 2026-12-06T10:00:00.000001Z text {"px":1.5} é`},
		{"empty text", &pb.Frame{Sequence: 1, ReceivedAt: at, Payload: &pb.Frame_Text{}}, `1 2026-12-06T10:00:00.000001Z text `},
		{"text on several lines is quoted", &pb.Frame{Sequence: 2, ReceivedAt: at, Payload: &pb.Frame_Text{Text: "a\nb\t\"c\""}}, `2 2026-12-06T10:00:00.000001Z text,quoted "a\nb\t\"c\""`},
		{"binary as base64", &pb.Frame{Sequence: 3, ReceivedAt: at, Payload: &pb.Frame_Binary{Binary: []byte{0, 1, 2, 0xff}}}, `3 2026-12-06T10:00:00.000001Z binary AAEC/w==`},
		{"a reply", &pb.Frame{Sequence: 3, ReceivedAt: at, Reply: true, Payload: &pb.Frame_Text{Text: "pong"}}, `3 2026-12-06T10:00:00.000001Z text,reply pong`},
		{"a binary reply", &pb.Frame{Sequence: 3, ReceivedAt: at, Reply: true, Payload: &pb.Frame_Binary{}}, `3 2026-12-06T10:00:00.000001Z binary,reply `},
		{"a gap", &pb.Frame{Payload: &pb.Frame_Missing{Missing: &pb.FrameGap{FromSequence: 1, ToSequence: 40, Reason: "not_retained"}}}, `missing 1-40 (not_retained)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, frameLine(tt.frame))
		})
	}
}
