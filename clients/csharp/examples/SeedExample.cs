// The API reference's C# example, as written; only the transport setting changed (the
// service's gRPC port speaks plaintext HTTP/2 unless it is given a certificate). make check
// (deploy/toolchain/check-csharp.sh) checks every name it uses against the generated code.
using Virtufin.WebSocketManager.Client;
using Grpc.Net.Client;
var channel = GrpcChannel.ForAddress("http://localhost:5002");
var client = new WebSocketManagerClient(channel);
var response = await client.ConnectAsync(new ConnectRequest
{
Url = "ws://echo.websocket.org",
AutoReconnect = true
});
Console.WriteLine($"Connected: {response.ConnectionId}");
await client.SendAsync(new SendRequest
{
Id = response.ConnectionId,
Message = "Hello WebSocket!",
TimeoutMs = 5000
});
