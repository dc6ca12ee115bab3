"""Python client of WebSocket Manager: WebSocketManagerClient (asyncio, gRPC), and
frames_from_event for consumers of published frame events (standard library only)."""

from .frames import FRAME_BATCH_EVENT_TYPE, FRAME_EVENT_TYPE, Frame, FrameEventError, frames_from_event

__all__ = ["WebSocketManagerClient", "status_name", "Frame", "FrameEventError", "frames_from_event",
           "FRAME_EVENT_TYPE", "FRAME_BATCH_EVENT_TYPE"]


def __getattr__(name):
    # The gRPC client is imported on first use: a consumer of frame events needs no grpcio.
    if name == "WebSocketManagerClient":
        from .client import WebSocketManagerClient
        return WebSocketManagerClient
    if name == "status_name":
        from ._proto import status_name
        return status_name
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
