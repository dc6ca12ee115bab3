package service

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/websocketmanager/websocketmanager/actors"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Ensure send_rate travels from the ConnectRequest to the actor's arguments and back to List.
func TestSendRateConverts(t *testing.T) {
	cases := []struct {
		req  *pb.SendRate
		args *actors.SendRateArgs
	}{
		{req: nil, args: nil},
		{req: &pb.SendRate{PerSecond: 20, Burst: 5}, args: &actors.SendRateArgs{PerSecond: 20, Burst: 5}},
		{req: &pb.SendRate{}, args: &actors.SendRateArgs{}}, // set but zero: validation refuses it
	}
	for _, tc := range cases {
		a := connectArgs(&pb.ConnectRequest{Url: "ws://h/", SendRate: tc.req})
		assert.Equal(t, tc.args, a.SendRate)
	}
	c := connectionOf(actors.ConnectionInfo{SendRate: &actors.SendRateArgs{PerSecond: 0.5, Burst: 1}, ThrottledSends: 7})
	assert.Equal(t, 0.5, c.GetSendRate().GetPerSecond())
	assert.Equal(t, uint32(1), c.GetSendRate().GetBurst())
	assert.Equal(t, int64(7), c.GetThrottledSends())
	assert.Nil(t, connectionOf(actors.ConnectionInfo{}).GetSendRate())
}
