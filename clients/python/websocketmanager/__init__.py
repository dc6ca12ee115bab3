"""Python client of WebSocket Manager: WebSocketManagerClient (asyncio, gRPC), builders of its
Connect options (secret_ref, tls_from_secret, ...), and frames_from_event for consumers of
published frame events (standard library only)."""

from .frames import FRAME_BATCH_EVENT_TYPE, FRAME_EVENT_TYPE, Frame, FrameEventError, frames_from_event

__all__ = ["WebSocketManagerClient", "status_name", "Frame", "FrameEventError", "frames_from_event",
           "FRAME_EVENT_TYPE", "FRAME_BATCH_EVENT_TYPE",
           "secret_ref", "from_secret", "from_file", "inline_pem", "upstream_tls", "tls_from_secret"]

# Builders of Connect options (websocketmanager.options; they need protobuf, not grpcio).
_OPTIONS = ("secret_ref", "from_secret", "from_file", "inline_pem", "upstream_tls", "tls_from_secret")


def __getattr__(name):
    # The gRPC client is imported on first use: a consumer of frame events needs no grpcio.
    if name == "WebSocketManagerClient":
        from .client import WebSocketManagerClient
        return WebSocketManagerClient
    if name == "status_name":
        from ._proto import status_name
        return status_name
    if name in _OPTIONS:
        from . import options
        return getattr(options, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
