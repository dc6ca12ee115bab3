// The API reference's TypeScript example, as written; only the transport set-up is added
// (and the server URL comes from WS_URL: the example's public echo server is not reachable
// from every machine, and the service refuses private addresses unless allowed).
import { createGrpcTransport } from "@connectrpc/connect-node";
import { bearer } from "./index.js";
const transport = createGrpcTransport({
  baseUrl: process.env.WSM_GRPC_URL ?? "http://127.0.0.1:5002",
  interceptors: [bearer(process.env.WSM_TOKEN)],
});
const echoURL = process.env.WS_URL ?? "ws://echo.websocket.org";

import { createClient } from "@connectrpc/connect";
import { WebSocketManager } from "./generated/websocketmanager_pb.js";
const client = createClient(WebSocketManager, transport);
const response = await client.connect({
  url: echoURL,
  autoReconnect: true
});
console.log(`Connected: ${response.connectionId}`);
const sendResponse = await client.send({
  id: response.connectionId,
  message: "Hello WebSocket!",
  timeoutMs: 5000
});

console.log(`Response: ${sendResponse.response}`); // added: what the example received
await client.disconnect({ id: response.connectionId });
