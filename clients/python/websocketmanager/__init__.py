"""Python client of WebSocket Manager: WebSocketManagerClient (asyncio, gRPC)."""

from ._proto import status_name
from .client import WebSocketManagerClient

__all__ = ["WebSocketManagerClient", "status_name"]
