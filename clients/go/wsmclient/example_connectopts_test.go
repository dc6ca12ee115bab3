package wsmclient_test

import (
	"context"
	"log"
	"os"

	"github.com/websocketmanager/websocketmanager/clients/go/wsmclient"
	pb "github.com/websocketmanager/websocketmanager/proto/websocketmanagerv1"
)

// Connect to `make run`'s wss:// demo server, which requires a client certificate: the CA,
// certificate and key come from the secret demo-client-tls of the secret store secretstore,
// a header value from the secret demo-api-token; with compression and a send rate limit.
// The service reads the secrets at every dial; they are never sent by the client or stored.
// (Compile-only: it needs `make run`.)
func ExampleTLSFromSecret() {
	c, err := wsmclient.New("127.0.0.1:5002", wsmclient.WithToken(os.Getenv("WSM_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	conn, err := c.Connect(context.Background(), &wsmclient.ConnectRequest{
		Url:               "wss://127.0.0.1:9443/echo",
		ConnectionId:      "secure-feed",
		AutoReconnect:     true,
		Tls:               wsmclient.TLSFromSecret("secretstore", "demo-client-tls"),
		SecretHeaders:     map[string]*wsmclient.SecretRef{"X-Api-Token": wsmclient.Secret("secretstore", "demo-api-token")},
		PermessageDeflate: true,
		DecodeBinary:      pb.FrameDecoding_FRAME_DECODING_AUTO,
		SendRate:          &wsmclient.SendRate{PerSecond: 20, Burst: 5},
	})
	if err != nil {
		log.Fatal(err) // FAILED_PRECONDITION: a secret is missing; UNAVAILABLE: e.g. the server's certificate is not trusted
	}
	log.Println(conn.GetConnectionId())
}
