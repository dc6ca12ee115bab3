"""The import path the API reference's examples use; the client is websocketmanager.client."""

from websocketmanager.client import WebSocketManagerClient

__all__ = ["WebSocketManagerClient"]
