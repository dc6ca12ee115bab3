// Runs against a running service: WSM_GRPC_URL (gRPC port), WSM_HTTP_URL (HTTP port),
// WSM_TOKEN, WS_URL (a WebSocket echo server the service may reach). `make test` runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { ConnectError, Code } from "@connectrpc/connect";
import { createWebSocketManagerClient, grpcTransport, connectTransport, ConnectionStatus } from "../src/index.js";

const grpcURL = process.env.WSM_GRPC_URL ?? "http://127.0.0.1:5002";
const httpURL = process.env.WSM_HTTP_URL ?? "http://127.0.0.1:5001";
const token = process.env.WSM_TOKEN;
const wsURL = process.env.WS_URL ?? "ws://127.0.0.1:9001/echo";

test("the API reference's example runs as written", async () => {
  const script = fileURLToPath(new URL("../src/seed-example.js", import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script], { env: process.env });
  assert.match(stdout, /^Connected: [0-9a-f-]{36}$/m);
  assert.match(stdout, /^Response: Hello WebSocket!$/m);
});

test("gRPC from Node: connect, send, list, events, errors", async () => {
  const client = createWebSocketManagerClient(grpcTransport(grpcURL, token));
  const abort = new AbortController();
  const events: string[] = [];
  let probed = false;
  const watching = (async () => {
    try {
      for await (const ev of client.watchEvents({}, { signal: abort.signal })) {
        if (ev.connectionId === "ts-probe") probed = true;
        if (ev.connectionId === "ts-grpc") events.push(ConnectionStatus[ev.status]);
      }
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    }
  })();
  // The watch is live once it reports a probe connection's events.
  for (let i = 0; i < 100 && !probed; i++) {
    await client.connect({ url: wsURL, connectionId: "ts-probe" });
    await client.disconnect({ id: "ts-probe" });
    for (let j = 0; j < 10 && !probed; j++) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(probed, "the watch reports events");
  const conn = await client.connect({ url: wsURL, connectionId: "ts-grpc" });
  const reply = await client.send({ id: conn.connectionId, message: "from TypeScript", timeoutMs: 5000 });
  assert.equal(reply.response, "from TypeScript");
  const list = await client.list({});
  assert.ok(list.connections.some((c) => c.id === "ts-grpc" && c.status === ConnectionStatus.CONNECTED));
  await client.disconnect({ id: "ts-grpc" });
  await assert.rejects(client.disconnect({ id: "ts-grpc" }), (e: unknown) => ConnectError.from(e).code === Code.NotFound);
  for (let i = 0; i < 100 && !events.includes("DISCONNECTED"); i++) await new Promise((r) => setTimeout(r, 50));
  abort.abort();
  await watching;
  assert.deepEqual(events.filter((s) => s === "CONNECTED" || s === "DISCONNECTED"), ["CONNECTED", "DISCONNECTED"]);
});

test("Connect protocol on the HTTP port, with the browser library (connect-web)", async () => {
  const client = createWebSocketManagerClient(connectTransport(httpURL, token));
  const conn = await client.connect({ url: wsURL, connectionId: "ts-web" });
  const reply = await client.send({ id: conn.connectionId, message: "from connect-web", timeoutMs: 5000 });
  assert.equal(reply.response, "from connect-web");
  await client.disconnect({ id: "ts-web" });
  const anonymous = createWebSocketManagerClient(connectTransport(httpURL));
  await assert.rejects(anonymous.list({}), (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated);
});
