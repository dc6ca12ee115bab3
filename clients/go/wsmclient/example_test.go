package wsmclient_test

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
)

// Tell a missing connection from other failures: every error of the client carries a gRPC code,
// also when wrapped. (Disconnect of an unknown id returns NOT_FOUND as err here.)
func ExampleCode() {
	for _, err := range []error{
		status.Error(codes.NotFound, "connection feed-1 not found"),
		fmt.Errorf("stop feed-1: %w", status.Error(codes.Unavailable, "no instance reachable")),
		errors.New("not from the service"),
		nil,
	} {
		switch wsmclient.Code(err) {
		case codes.OK:
			fmt.Println("done")
		case codes.NotFound:
			fmt.Println("already gone")
		case codes.Unavailable:
			fmt.Println("retry later")
		default:
			fmt.Println("failed:", wsmclient.Code(err))
		}
	}
	// Output:
	// already gone
	// retry later
	// failed: Unknown
	// done
}
