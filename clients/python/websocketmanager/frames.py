"""Frames of published frame events (docs/architecture.md, "Publishing").

A single-frame event and a batch event give the same frames, so a consumer handles both alike:

    for frame in frames_from_event(request_body):
        print(frame.connection_id, frame.sequence, frame.kind, frame.data)

Only the standard library: a consumer needs no grpcio.
"""

import base64
import binascii
import datetime
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

FRAME_EVENT_TYPE = "websocketmanager.frame"
FRAME_BATCH_EVENT_TYPE = "websocketmanager.frame.batch"
# The envelope daprd puts around a message for a subscription with rawPayload.
_DAPR_RAW_EVENT_TYPE = "com.dapr.event.sent"


class FrameEventError(ValueError):
    """The event is not a frame event, or a malformed one."""


@dataclass(frozen=True)
class Frame:
    """One inbound frame of a connection, as published.

    sequence is the frame's number in the connection's sequence of pushed frames, from 1 (a
    gap: dropped frames; a repeat: a duplicate delivery). A reply (reply True: the frame
    answered a Send, published with include_replies) takes no number of its own: it carries
    the number of the frame before it. received_at is the RFC 3339 text of the event
    (nanoseconds kept). kind tells data:
      "json"   a text frame that is valid JSON: data is its parsed value, raw its JSON text as
               it is in the event (given a dict, raw is json.dumps(data));
      "text"   other text: data is the str;
      "binary" a binary frame (or text that was not valid UTF-8): data is its bytes.
    In a batch, a frame that is a JSON string (text '"…"') cannot be told from a text frame
    (its element has no content type): it comes out as "text".
    """

    connection_id: str
    sequence: int
    received_at: str
    kind: str
    data: Any
    raw: Optional[str] = None
    reply: bool = False


def frames_from_event(event) -> "list[Frame]":
    """The frames of a frame event, in sequence order (a reply has the number of the frame
    before it): one for a single-frame event, all of a batch. event is the CloudEvent as a Dapr
    subscriber receives it: its JSON text (str or bytes) or the parsed dict. daprd's envelope
    of a rawPayload subscription is taken off. Raises FrameEventError for an event of another
    type or a malformed one (a batch whose count, sequences or first/last sequence do not
    match its frames, bad base64, ...).
    """
    try:
        return _from_input(event, 0)
    except FrameEventError:
        raise
    except (ValueError, TypeError, RecursionError) as e:  # bad JSON, bad UTF-8, too deep
        raise FrameEventError(f"frames_from_event: {e}") from e


def _fail(msg):
    raise FrameEventError("frames_from_event: " + msg)


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _loads(text):
    return json.loads(text, parse_constant=_reject_constant)


def _from_input(event, depth):
    if depth > 1:
        _fail("frame event nested too deep")
    if isinstance(event, (bytes, bytearray, memoryview)):
        event = bytes(event).decode("utf-8")
    if isinstance(event, str):
        value = _loads(event)
        # An event serialised once more (a JSON string holding it) is unwrapped once.
        if isinstance(value, str):
            return _from_input(value, depth + 1)
        return _from_object(value, event, depth)
    return _from_object(event, None, depth)


def _from_object(ev, text, depth):
    """text, when known, is the JSON text of ev: the raw JSON frames are cut from it."""
    if not isinstance(ev, dict):
        _fail("the event is not a JSON object")
    typ = _str(ev, "type", True)
    if typ == FRAME_EVENT_TYPE:
        return [_single(ev, text)]
    if typ == FRAME_BATCH_EVENT_TYPE:
        return _batch(ev, text)
    if typ == _DAPR_RAW_EVENT_TYPE and "data_base64" in ev:
        return _from_input(_base64(ev["data_base64"]), depth + 1)
    _fail(f"event type {json.dumps(typ)} is not a frame event")


def _single(ev, text):
    base = dict(connection_id=_str(ev, "connectionid", False), sequence=_uint(ev, "sequence"),
                received_at=_time(ev, "receivedat"), reply=_bool(ev, "reply"))
    ct = _str(ev, "datacontenttype", False).split(";")[0].strip().lower()
    has_data, has_b64 = "data" in ev, "data_base64" in ev
    if has_data and has_b64:
        _fail("frame event has both data and data_base64")
    if has_b64:
        return Frame(**base, kind="binary", data=_base64(ev["data_base64"]))
    if not has_data:
        # An empty binary frame: older services left out an empty data_base64.
        if ct == "application/octet-stream":
            return Frame(**base, kind="binary", data=b"")
        _fail("frame event has neither data nor data_base64")
    # Here a JSON string is a JSON frame (the frame's text was '"…"'): the content type tells
    # it from a text frame.
    if ct == "application/json" or ct.endswith("+json"):
        return Frame(**base, kind="json", data=ev["data"], raw=_raw_member(text, ev, "data"))
    return _text_or_json(base, ev["data"], lambda: _raw_member(text, ev, "data"))


def _batch(ev, text):
    connection_id = _str(ev, "connectionid", False)
    first, last, count = _uint(ev, "firstsequence"), _uint(ev, "lastsequence"), _uint(ev, "count")
    if "data" not in ev:
        _fail("batch event has no data")
    data = ev["data"]
    data_text = None if text is None else _raw_member(text, ev, "data")
    # Data re-serialised as a JSON string holding the array.
    if isinstance(data, str):
        data_text, data = data, _loads(data)
    if not isinstance(data, list):
        _fail("batch data is not an array of frames")
    if count != len(data) or not data:
        _fail(f"batch count {count}, but {len(data)} frames")
    elem_texts = None if data_text is None else _array_elements(data_text)
    out = []
    for i, el in enumerate(data):
        if not isinstance(el, dict):
            _fail(f"batch frame {i} is not an object")
        try:
            base = dict(connection_id=connection_id, sequence=_uint(el, "sequence"),
                        received_at=_time(el, "receivedat"), reply=_bool(el, "reply"))
            # Sequences ascend; a reply repeats the number of the frame before it (or, when
            # that one was dropped, the dropped frame's).
            if out and (base["sequence"] < out[-1].sequence
                        or (base["sequence"] == out[-1].sequence and not base["reply"])):
                _fail(f"sequences do not ascend: {base['sequence']} after {out[-1].sequence}")
            has_data = "data" in el
            if has_data == ("data_base64" in el):
                _fail("needs one of data and data_base64")
            if has_data:
                # No content type per element: a JSON string is a text frame.
                el_text = None if elem_texts is None else elem_texts[i]
                out.append(_text_or_json(base, el["data"], lambda: _raw_member(el_text, el, "data")))
            else:
                out.append(Frame(**base, kind="binary", data=_base64(el["data_base64"])))
        except FrameEventError as e:
            _fail(f"batch frame {i}: {str(e).removeprefix('frames_from_event: ')}")
    if out[0].sequence != first or out[-1].sequence != last:
        _fail(f"batch firstsequence/lastsequence {first}/{last}, "
              f"but its frames are {out[0].sequence}..{out[-1].sequence}")
    return out


def _text_or_json(base, data, raw):
    if isinstance(data, str):
        return Frame(**base, kind="text", data=data)
    return Frame(**base, kind="json", data=data, raw=raw())


def _str(o, name, required):
    if name not in o:
        if required:
            _fail(f"event has no {name}")
        return ""
    v = o[name]
    if not isinstance(v, str):
        _fail(f"{name} is not a string")
    return v


def _bool(o, name):
    """An optional JSON boolean (absent: False)."""
    v = o.get(name, False)
    if not isinstance(v, bool):
        _fail(f"{name} is not a boolean")
    return v


_MAX_UINT64 = (1 << 64) - 1
_DIGITS = re.compile(r"[0-9]+")


def _uint(o, name):
    """A decimal string (how the service writes sequences) or a JSON integer."""
    if name not in o:
        _fail(f"event has no {name}")
    v = o[name]
    n = None
    if isinstance(v, str) and _DIGITS.fullmatch(v):
        n = int(v)
    elif isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        n = v
    if n is None or n > _MAX_UINT64:
        _fail(f"{name} {json.dumps(v)} is not an unsigned integer")
    return n


_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def _time(o, name):
    s = _str(o, name, True)
    m = _RFC3339.fullmatch(s)
    try:
        if not m:
            raise ValueError
        zone = "+00:00" if m.group(3) == "Z" else m.group(3)
        datetime.datetime.fromisoformat(m.group(1) + zone)  # checks the ranges
    except ValueError:
        _fail(f"{name} {json.dumps(s)} is not an RFC 3339 time")
    return s


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_SHAPE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _base64(v):
    """Standard base64, strictly: padded, and no bits set past the data (as Go's decoder checks)."""
    if not isinstance(v, str):
        _fail("data_base64 is not a string")
    ok = _B64_SHAPE.fullmatch(v) is not None
    if ok and v.endswith("=="):
        ok = _B64.index(v[-3]) & 0x0F == 0
    elif ok and v.endswith("="):
        ok = _B64.index(v[-2]) & 0x03 == 0
    if not ok:
        _fail("data_base64 is not standard base64")
    try:
        return base64.b64decode(v, validate=True)
    except binascii.Error:
        _fail("data_base64 is not standard base64")


def _raw_member(obj_text, obj, key):
    """The raw JSON text of obj[key], cut from obj_text (the object's JSON text) when known."""
    if obj_text is not None:
        span = _object_members(obj_text).get(key)
        if span:
            return obj_text[span[0]:span[1]]
    return json.dumps(obj[key], ensure_ascii=False, separators=(",", ":"))


# A minimal scanner over JSON text that json.loads has accepted: it finds where values start and
# end, so that a JSON frame can be handed out exactly as it is in the event.

_WS = " \t\n\r"


def _skip_ws(t, i):
    while i < len(t) and t[i] in _WS:
        i += 1
    return i


def _skip_string(t, i):
    i += 1
    while t[i] != '"':
        i += 2 if t[i] == "\\" else 1
    return i + 1


def _skip_value(t, i):
    """The end of the value starting at i; nesting is counted, not recursed into."""
    c = t[i]
    if c == '"':
        return _skip_string(t, i)
    if c in "{[":
        depth = 0
        while i < len(t):
            d = t[i]
            if d == '"':
                i = _skip_string(t, i)
                continue
            if d in "{[":
                depth += 1
            elif d in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return i
    while i < len(t) and t[i] not in ",]} \t\n\r":
        i += 1
    return i


def _object_members(t):
    """The spans of an object's members (the last of a repeated key, as json.loads keeps)."""
    out = {}
    i = _skip_ws(t, 0)
    if i >= len(t) or t[i] != "{":
        return out
    i = _skip_ws(t, i + 1)
    while i < len(t) and t[i] == '"':
        key_end = _skip_string(t, i)
        key = json.loads(t[i:key_end])
        start = _skip_ws(t, _skip_ws(t, key_end) + 1)  # past ':'
        end = _skip_value(t, start)
        out[key] = (start, end)
        i = _skip_ws(t, end)
        if i < len(t) and t[i] == ",":
            i = _skip_ws(t, i + 1)
    return out


def _array_elements(t):
    """The texts of an array's elements."""
    out = []
    i = _skip_ws(t, 0)
    if i >= len(t) or t[i] != "[":
        return out
    i = _skip_ws(t, i + 1)
    while i < len(t) and t[i] != "]":
        end = _skip_value(t, i)
        out.append(t[i:end])
        i = _skip_ws(t, end)
        if i < len(t) and t[i] == ",":
            i = _skip_ws(t, i + 1)
    return out
