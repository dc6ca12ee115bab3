// The client type the API reference's C# example writes, `new WebSocketManagerClient(channel)`
// with only `using Virtufin.WebSocketManager.Client;`: gRPC's C# generator nests the client as
// WebSocketManager.WebSocketManagerClient, which a using directive does not bring into scope,
// so this top-level class is that generated client under the example's name.
namespace Virtufin.WebSocketManager.Client
{
    /// <summary>A client of WebSocket Manager: ConnectAsync, ListAsync, SendAsync, WatchEvents, ….</summary>
    public class WebSocketManagerClient : global::Virtufin.WebSocketManager.Client.WebSocketManager.WebSocketManagerClient
    {
        /// <summary>A client on a channel, e.g. GrpcChannel.ForAddress("http://localhost:5002").</summary>
        public WebSocketManagerClient(global::Grpc.Core.ChannelBase channel) : base(channel) { }

        /// <summary>A client on a call invoker (interceptors, tests).</summary>
        public WebSocketManagerClient(global::Grpc.Core.CallInvoker callInvoker) : base(callInvoker) { }
    }
}
