"""An asyncio client of WebSocket Manager over gRPC (grpc.aio).

    async with WebSocketManagerClient(host="localhost", port=5002) as client:
        connection = await client.connect("ws://echo.example/ws")
        response = await client.send(connection.connection_id, "Hello WebSocket!", timeout_ms=5000)
        print(response.response)

Failures raise grpc.aio.AioRpcError; its .code() is the gRPC status code (NOT_FOUND, …) and
.details() the service's message.
"""

import os

import grpc

from . import _proto as pb


class WebSocketManagerClient:
    """A client of one WebSocket Manager (any instance of it).

    token: bearer token sent on every call (default: the WSM_TOKEN environment variable).
    secure: use TLS; root_certificates, private_key and certificate_chain are PEM bytes for
    a private CA and client certificates (mTLS). timeout: seconds every call may take unless
    it says otherwise (a Send gets its own timeout plus this).
    """

    def __init__(self, host="localhost", port=5002, *, token=None, secure=False,
                 root_certificates=None, private_key=None, certificate_chain=None, timeout=30.0):
        self._target = f"{host}:{port}"
        token = os.environ.get("WSM_TOKEN", "") if token is None else token
        self._metadata = (("authorization", "Bearer " + token),) if token else ()
        self._timeout = timeout
        if secure or root_certificates or certificate_chain:
            creds = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self._channel = grpc.aio.secure_channel(self._target, creds)
        else:
            self._channel = grpc.aio.insecure_channel(self._target)
        self._calls = {}

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        """Closes the channel to the service."""
        await self._channel.close()

    def _unary(self, method, response):
        call = self._calls.get(method)
        if call is None:
            call = self._channel.unary_unary(f"/{pb.SERVICE}/{method}",
                                             request_serializer=lambda m: m.SerializeToString(),
                                             response_deserializer=response.FromString)
            self._calls[method] = call
        return call

    async def _call(self, method, request, response, timeout=None):
        return await self._unary(method, response)(request, timeout=timeout or self._timeout, metadata=self._metadata)

    async def connect(self, url, *, auto_reconnect=False, connection_id="", headers=None, subprotocols=None,
                      on_connect_messages=None, tags=None):
        """Opens a connection to url; returns once the handshake succeeded (.connection_id, .status)."""
        req = pb.ConnectRequest(url=url, auto_reconnect=auto_reconnect, connection_id=connection_id,
                                headers=headers or {}, subprotocols=subprotocols or [],
                                on_connect_messages=on_connect_messages or [], tags=tags or {})
        return await self._call("Connect", req, pb.ConnectResponse)

    async def send(self, connection_id, message, timeout_ms=0):
        """Sends a text (str) or binary (bytes) message and waits for the reply (.response,
        or .binary_response when .binary)."""
        req = pb.SendRequest(id=connection_id, timeout_ms=timeout_ms)
        if isinstance(message, (bytes, bytearray)):
            req.binary_message = bytes(message)
        else:
            req.message = message
        return await self._call("Send", req, pb.SendResponse, timeout=self._timeout + timeout_ms / 1000)

    async def send_raw(self, connection_id, message):
        """Sends a message without waiting for a reply."""
        req = pb.SendRawRequest(id=connection_id)
        if isinstance(message, (bytes, bytearray)):
            req.binary_message = bytes(message)
        else:
            req.message = message
        await self._call("SendRaw", req, pb.SendRawResponse)

    async def list(self, tags=None):
        """The connections (those whose tags include every pair of tags)."""
        resp = await self._call("List", pb.ListRequest(tags=tags or {}), pb.ListResponse)
        return list(resp.connections)

    async def disconnect(self, connection_id):
        """Closes the connection and forgets it."""
        await self._call("Disconnect", pb.DisconnectRequest(id=connection_id), pb.DisconnectResponse)

    async def start_publish(self, connection_id, topic):
        """Publishes every frame the connection receives to a Dapr pub/sub topic."""
        await self._call("StartPublish", pb.StartPublishRequest(id=connection_id, topic=topic), pb.StartPublishResponse)

    async def stop_publish(self, connection_id):
        """Stops publishing."""
        await self._call("StopPublish", pb.StopPublishRequest(id=connection_id), pb.StopPublishResponse)

    async def watch_events(self, connection_id=""):
        """Yields lifecycle events as they happen (of one connection, or of all), until the
        caller stops iterating."""
        stream = self._channel.unary_stream(f"/{pb.SERVICE}/WatchEvents",
                                            request_serializer=lambda m: m.SerializeToString(),
                                            response_deserializer=pb.LifecycleEvent.FromString)
        call = stream(pb.WatchEventsRequest(connection_id=connection_id), metadata=self._metadata)
        try:
            async for event in call:
                yield event
        finally:
            call.cancel()
