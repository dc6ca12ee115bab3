"""The API's messages, built at import from the descriptor set buf generates from
proto/websocketmanager.proto (websocketmanager.binpb, checked fresh by `make proto-check`).

Building the classes from descriptors, instead of shipping protoc output, keeps the client
independent of the protoc version: it works with the protobuf runtime Debian ships.
"""

import os

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "websocketmanager.v1"
SERVICE = _PACKAGE + ".WebSocketManager"

_fds = descriptor_pb2.FileDescriptorSet()
with open(os.path.join(os.path.dirname(__file__), "websocketmanager.binpb"), "rb") as f:
    _fds.ParseFromString(f.read())
_pool = descriptor_pool.DescriptorPool()
for _file in _fds.file:  # buf writes them in dependency order
    # AddSerializedFile, as protoc's generated code calls it: every protobuf runtime has it.
    _pool.AddSerializedFile(_file.SerializeToString())
# protobuf >= 4.22 builds a message class with message_factory.GetMessageClass and removed
# MessageFactory.GetPrototype (5.x); Debian's 3.21/4.21 runtime has only GetPrototype.
_get_message_class = getattr(message_factory, "GetMessageClass", None)
if _get_message_class is None:
    _get_message_class = message_factory.MessageFactory(_pool).GetPrototype


def _message(name):
    return _get_message_class(_pool.FindMessageTypeByName(_PACKAGE + "." + name))


ConnectRequest = _message("ConnectRequest")
ConnectResponse = _message("ConnectResponse")
ListRequest = _message("ListRequest")
ListResponse = _message("ListResponse")
DisconnectRequest = _message("DisconnectRequest")
DisconnectResponse = _message("DisconnectResponse")
StartPublishRequest = _message("StartPublishRequest")
StartPublishResponse = _message("StartPublishResponse")
StopPublishRequest = _message("StopPublishRequest")
StopPublishResponse = _message("StopPublishResponse")
SendRequest = _message("SendRequest")
SendResponse = _message("SendResponse")
SendRawRequest = _message("SendRawRequest")
SendRawResponse = _message("SendRawResponse")
WatchEventsRequest = _message("WatchEventsRequest")
WatchFramesRequest = _message("WatchFramesRequest")
Frame = _message("Frame")
FrameGap = _message("FrameGap")
LifecycleEvent = _message("LifecycleEvent")
WebSocketConnection = _message("WebSocketConnection")
SecretRef = _message("SecretRef")
KeyMaterial = _message("KeyMaterial")
UpstreamTLS = _message("UpstreamTLS")
SendRate = _message("SendRate")

_status = _pool.FindEnumTypeByName(_PACKAGE + ".ConnectionStatus")


def status_name(value):
    """The name of a ConnectionStatus value ("CONNECTED", …)."""
    return _status.values_by_number[value].name


def enum_value(enum, name):
    """The number of value name of enum ("FrameDecoding", "FRAME_DECODING_GZIP")."""
    return _pool.FindEnumTypeByName(_PACKAGE + "." + enum).values_by_name[name].number
