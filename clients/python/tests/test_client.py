"""Runs against a running service: WSM_HOST, WSM_PORT (gRPC), WSM_TOKEN, WS_URL (a WebSocket
echo server the service may reach). `make test` runs it with Debian's /usr/bin/python3."""

import asyncio
import contextlib
import io
import os
import unittest

import grpc

from websocketmanager import WebSocketManagerClient, status_name

HOST = os.environ.get("WSM_HOST", "localhost")
PORT = int(os.environ.get("WSM_PORT", "5002"))
WS_URL = os.environ.get("WS_URL", "ws://127.0.0.1:9001/echo")


class ClientTest(unittest.IsolatedAsyncioTestCase):
    async def test_the_api_reference_example(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            # The API reference's Python example, as written (the host, port and server URL
            # are this machine's; the token comes from WSM_TOKEN).
            from virtufin.websocketmanager.client import WebSocketManagerClient
            async with WebSocketManagerClient(host=HOST, port=PORT) as client:
                connection = await client.connect(WS_URL)
                print(f"Connected: {connection.connection_id}")
                response = await client.send(connection.connection_id, "Hello WebSocket!", timeout_ms=5000)
                print(f"Response: {response.response}")
                await client.disconnect(connection.connection_id)
        self.assertRegex(out.getvalue(), r"Connected: [0-9a-f-]{36}\nResponse: Hello WebSocket!\n")

    async def test_every_call_and_events(self):
        async with WebSocketManagerClient(host=HOST, port=PORT) as client:
            seen = []
            probed = asyncio.Event()

            async def watch():
                async for ev in client.watch_events():
                    if ev.connection_id == "py-probe":
                        probed.set()
                    if ev.connection_id == "py-1":
                        seen.append(status_name(ev.status))
                        if seen[-1] == "DISCONNECTED":
                            return

            watcher = asyncio.create_task(watch())
            # The watch is live once it reports a probe connection's events.
            for _ in range(100):
                await client.connect(WS_URL, connection_id="py-probe")
                await client.disconnect("py-probe")
                try:
                    await asyncio.wait_for(probed.wait(), 0.2)
                    break
                except asyncio.TimeoutError:
                    pass
            self.assertTrue(probed.is_set(), "the watch reports events")
            conn = await client.connect(WS_URL, connection_id="py-1", tags={"lang": "python"}, auto_reconnect=True)
            self.assertEqual(conn.connection_id, "py-1")
            self.assertEqual(status_name(conn.status), "CONNECTED")
            reply = await client.send("py-1", b"\x01\x02", timeout_ms=5000)
            self.assertTrue(reply.binary)
            self.assertEqual(reply.binary_response, b"\x01\x02")
            await client.send_raw("py-1", "raw")
            await client.start_publish("py-1", "py-topic")
            listed = await client.list({"lang": "python"})
            self.assertEqual([c.id for c in listed], ["py-1"])
            self.assertEqual(listed[0].topic, "py-topic")
            await client.stop_publish("py-1")
            await client.disconnect("py-1")
            await asyncio.wait_for(watcher, 20)
            self.assertEqual(seen[-1], "DISCONNECTED")
            self.assertIn("CONNECTED", seen)
            with self.assertRaises(grpc.aio.AioRpcError) as e:
                await client.disconnect("py-1")
            self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    async def test_wrong_token(self):
        async with WebSocketManagerClient(host=HOST, port=PORT, token="wrong") as client:
            with self.assertRaises(grpc.aio.AioRpcError) as e:
                await client.list()
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


if __name__ == "__main__":
    unittest.main()
