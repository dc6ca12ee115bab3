"""An asyncio client of WebSocket Manager over gRPC (grpc.aio).

    async with WebSocketManagerClient(host="localhost", port=5002) as client:
        connection = await client.connect("ws://echo.example/ws")
        response = await client.send(connection.connection_id, "Hello WebSocket!", timeout_ms=5000)
        print(response.response)

Failures raise grpc.aio.AioRpcError; its .code() is the gRPC status code (NOT_FOUND, …) and
.details() the service's message.

Follow a connection's inbound frames, resuming by itself after a failover:

        async for frame in client.watch(connection_id, from_sequence=last + 1):
            if frame.HasField("missing"):
                ...  # frames missing.from_sequence..missing.to_sequence will not come
            else:
                print(frame.sequence, frame.text or frame.binary)
"""

# The trailer in which the service says, when a watch ends UNAVAILABLE or RESOURCE_EXHAUSTED,
# which sequence to watch again from.
RESUME_TRAILER = "wsm-resume-from"
# Bounds of the wait between two watch attempts, in seconds: it doubles while attempts bring
# nothing, and starts again from the lower bound after one that brought a frame.
_WATCH_BACKOFF_MIN = 0.1
_WATCH_BACKOFF_MAX = 5.0

import asyncio
import os

import grpc

from . import _proto as pb
from . import options as _options


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
        self._sleep = asyncio.sleep  # the wait between watch attempts (replaced in tests)

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
                      on_connect_messages=None, tags=None, secret_headers=None, tls=None, egress_proxy="",
                      permessage_deflate=False, decode_binary=None, max_decoded_bytes=0, send_rate=None):
        """Opens a connection to url; returns once the handshake succeeded (.connection_id, .status).

        secret_headers: {name: secret_ref(store, key[, field])}, handshake headers the service
        reads from a Dapr secret store at every dial. tls: the TLS of a wss:// URL, an
        UpstreamTLS (tls_from_secret, upstream_tls). egress_proxy: one of the service's
        --egress-proxy proxies by name. permessage_deflate: offer compression. decode_binary:
        "none", "gzip", "zlib", "deflate" or "auto". max_decoded_bytes: the largest decoded
        frame (0: the service's limit). send_rate: frames a second, or (per_second, burst), or
        a SendRate. See docs/configuration.md."""
        req = pb.ConnectRequest(url=url, auto_reconnect=auto_reconnect, connection_id=connection_id,
                                headers=headers or {}, subprotocols=subprotocols or [],
                                on_connect_messages=on_connect_messages or [], tags=tags or {},
                                egress_proxy=egress_proxy, permessage_deflate=permessage_deflate,
                                max_decoded_bytes=max_decoded_bytes)
        for name, ref in (secret_headers or {}).items():
            _options.copy_into(req.secret_headers[name], ref, f"secret_headers[{name!r}] must be a SecretRef (secret_ref(store, key))")
        if tls is not None:
            _options.copy_into(req.tls, tls, "tls must be an UpstreamTLS (tls_from_secret, upstream_tls)")
        if decode_binary is not None:
            req.decode_binary = _options.decoding(decode_binary)
        if send_rate is not None:
            _options.copy_into(req.send_rate, _options.send_rate(send_rate), "send_rate")
        return await self._call("Connect", req, pb.ConnectResponse)

    async def send(self, connection_id, message, timeout_ms=0, *, fail_fast=False):
        """Sends a text (str) or binary (bytes) message and waits for the reply (.response,
        or .binary_response when .binary). fail_fast: over the connection's send_rate, fail
        at once with RESOURCE_EXHAUSTED instead of waiting for the rate."""
        req = pb.SendRequest(id=connection_id, timeout_ms=timeout_ms, fail_fast=fail_fast)
        if isinstance(message, (bytes, bytearray)):
            req.binary_message = bytes(message)
        else:
            req.message = message
        return await self._call("Send", req, pb.SendResponse, timeout=self._timeout + timeout_ms / 1000)

    async def send_raw(self, connection_id, message, *, fail_fast=False):
        """Sends a message without waiting for a reply (fail_fast: as send)."""
        req = pb.SendRawRequest(id=connection_id, fail_fast=fail_fast)
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

    async def watch(self, connection_id, from_sequence=None, include_replies=False):
        """Yields the connection's inbound frames (Frame messages: .sequence, .received_at,
        .text or .binary, .reply) as they arrive, from whichever instance holds it, until the
        caller stops iterating.

        from_sequence: start with the retained frames from this sequence on, then live ones
        (None: the next live frame). include_replies: also the frames that answered a Send
        (they carry the sequence of the frame before them and have .reply set).

        Frames asked for that are no longer retained come as a Frame with .missing set
        (from_sequence, to_sequence, reason), never silently. When the stream ends because the
        instance holding the connection changed or went away (UNAVAILABLE, a transport error),
        or the caller fell behind (RESOURCE_EXHAUSTED after frames), it watches again from the
        sequence in the service's trailer wsm-resume-from, else from the one after the last
        frame it yielded, else live, waiting 0.1 s before the first retry and up to 5 s while
        retries fail. Any other failure (NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT,
        RESOURCE_EXHAUSTED before any frame, which is a watcher limit, ...) raises
        grpc.aio.AioRpcError. The watch has no deadline.
        """
        stream = self._channel.unary_stream(f"/{pb.SERVICE}/WatchFrames",
                                            request_serializer=lambda m: m.SerializeToString(),
                                            response_deserializer=pb.Frame.FromString)
        position = from_sequence  # where to (re)start; None: live
        delay = _WATCH_BACKOFF_MIN
        while True:
            req = pb.WatchFramesRequest(id=connection_id, include_replies=include_replies)
            if position is not None:
                req.from_sequence = position
            call = stream(req, metadata=self._metadata)
            received = False
            try:
                try:
                    async for frame in call:
                        received = True
                        if frame.HasField("missing"):
                            position = frame.missing.to_sequence + 1
                        elif not frame.reply:
                            # A reply carries the number of the frame before it.
                            position = frame.sequence + 1
                        yield frame
                    # The stream ended without an error: the service went away.
                    trailer = await call.trailing_metadata()
                except grpc.aio.AioRpcError as e:
                    code = e.code()
                    if not (code == grpc.StatusCode.UNAVAILABLE
                            or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and received)):
                        raise
                    trailer = e.trailing_metadata()
            finally:
                call.cancel()  # the caller stopped (or the call is over: a no-op)
            if position is None:
                # Where a live watch started (the header): a holder that died before the
                # first frame must not make the resume skip frames untold.
                try:
                    header = await call.initial_metadata()
                except Exception:  # no header came
                    header = None
                seq = _resume_from(header) if header else None
                if seq is not None:
                    position = seq
            seq = _resume_from(trailer)
            if seq is not None:
                position = seq
            if received:
                delay = _WATCH_BACKOFF_MIN
            await self._sleep(delay)
            if not received:
                delay = min(2 * delay, _WATCH_BACKOFF_MAX)


def _resume_from(metadata):
    """The sequence in the trailer wsm-resume-from, or None."""
    value = None
    for key, v in metadata or ():
        if key == RESUME_TRAILER:
            value = v
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) < 1 << 64:
        return int(value)
    return None
