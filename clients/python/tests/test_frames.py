"""frames_from_event on events as the service writes them and as Dapr delivers them; no service
needed: PYTHONPATH=. /usr/bin/python3 -m unittest tests/test_frames.py (from clients/python)."""

import base64
import json
import random
import unittest

from websocketmanager import Frame, FrameEventError, frames_from_event


def single(seq, ct, data):
    return ('{"specversion":"1.0","id":"5f0c","source":"websocketmanager","type":"websocketmanager.frame",'
            f'"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"{ct}","connectionid":"feed-1",'
            f'"connectionurl":"wss://example.com/feed","receivedat":"2026-12-06T10:00:00.000001Z","sequence":"{seq}",{data}}}')


def batch_event(first, last, count, data):
    return ('{"specversion":"1.0","id":"9a1e","source":"websocketmanager","type":"websocketmanager.frame.batch",'
            '"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"application/json","connectionid":"feed-1",'
            f'"connectionurl":"wss://example.com/feed","firstsequence":"{first}","lastsequence":"{last}","count":{count},"data":{data}}}')


# The batch of docs/architecture.md.
DOC_BATCH = """[{"sequence":"41","receivedat":"2026-12-06T10:00:00.000001Z","data":{"px":1.5}},
           {"sequence":"42","receivedat":"2026-12-06T10:00:00.000002Z","data":"hello"},
           {"sequence":"43","receivedat":"2026-12-06T10:00:00.000003Z","data_base64":"AAEC"}]"""


def at(us):
    return f"2026-12-06T10:00:00.00000{us}Z"


def frame(seq, kind, data, raw=None, us=1):
    return Frame(connection_id="feed-1", sequence=seq, received_at=at(us), kind=kind, data=data, raw=raw)


DOC_FRAMES = [
    frame(41, "json", {"px": 1.5}, '{"px":1.5}', us=1),
    frame(42, "text", "hello", us=2),
    frame(43, "binary", b"\x00\x01\x02", us=3),
]


def b64(b):
    return base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()


def el(seq, rest='"data":1'):
    return f'{{"sequence":"{seq}","receivedat":"{at(1)}",{rest}}}'


class FramesTest(unittest.TestCase):
    def test_frames(self):
        cases = [
            ("JSON frame: keys, order and whitespace kept byte for byte in raw",
             single("7", "application/json", '"data":{ "b" : 1,  "a":[1, 2.50], "c":"<&>", "n":12345678901234567890 }'),
             [frame(7, "json", {"b": 1, "a": [1, 2.5], "c": "<&>", "n": 12345678901234567890},
                    '{ "b" : 1,  "a":[1, 2.50], "c":"<&>", "n":12345678901234567890 }')]),
            ("JSON frame that is a JSON string",
             single("7", "application/json", '"data":"quoted"'),
             [frame(7, "json", "quoted", '"quoted"')]),
            ("text frame",
             single("8", "text/plain", '"data":"hello \\"you\\" <&> \\u00e9\\n"'),
             [frame(8, "text", 'hello "you" <&> é\n')]),
            ("binary frame",
             single("9", "application/octet-stream", '"data_base64":"AAEC/w=="'),
             [frame(9, "binary", b"\x00\x01\x02\xff")]),
            ("text that is not UTF-8 travels as data_base64",
             single("10", "application/octet-stream", f'"data_base64":"{b64(b"caf" + bytes([0xE9]))}"'),
             [frame(10, "binary", b"caf\xe9")]),
            ("empty binary frame without data_base64 (older services)",
             single("11", "application/octet-stream", '"x":1'),
             [frame(11, "binary", b"")]),
            ("sequence past 2^53",
             single("18446744073709551615", "text/plain", '"data":"x"'),
             [frame(2**64 - 1, "text", "x")]),
            ("batch of mixed frames", batch_event("41", "43", "3", DOC_BATCH), DOC_FRAMES),
            ("batch as bytes", batch_event("41", "43", "3", DOC_BATCH).encode(), DOC_FRAMES),
            ("batch as a dict: raw is re-serialised",
             json.loads(batch_event("41", "43", "3", DOC_BATCH.replace('{"px":1.5}', '{ "px" : 1.5 }'))), DOC_FRAMES),
            ("batch with a gap between first and last",
             batch_event("1", "5", "2", f'[{el("1", chr(34) + "data" + chr(34) + ":null")},{el("5", chr(34) + "data" + chr(34) + ":12")}]'),
             [frame(1, "json", None, "null"), frame(5, "json", 12, "12")]),
            ("rawPayload subscription: daprd's envelope is taken off",
             '{"id":"x","specversion":"1.0","datacontenttype":"application/octet-stream","source":"Dapr",'
             '"type":"com.dapr.event.sent","topic":"frames","pubsubname":"pubsub",'
             f'"data_base64":"{b64(batch_event("41", "43", "3", DOC_BATCH))}"}}',
             DOC_FRAMES),
            ("event serialised once more as a JSON string",
             json.dumps(single("7", "text/plain", '"data":"hi"')), [frame(7, "text", "hi")]),
            ("batch data serialised once more as a JSON string",
             batch_event("41", "43", "3", json.dumps(DOC_BATCH)), DOC_FRAMES),
            ("re-serialised by daprd: keys sorted, attributes added, numbers for count and a sequence",
             f'{{"connectionid":"feed-1","count":3,"data":[{{"data":{{"px":1.5}},"receivedat":"{at(1)}","sequence":41}},'
             f'{{"data":"hello","receivedat":"{at(2)}","sequence":"42"}},{{"data_base64":"AAEC","receivedat":"{at(3)}","sequence":"43"}}],'
             '"datacontenttype":"application/json","firstsequence":"41","id":"x","lastsequence":"43","pubsubname":"pubsub",'
             '"source":"websocketmanager","specversion":"1.0","topic":"frames","traceid":"","type":"websocketmanager.frame.batch"}',
             DOC_FRAMES),
        ]
        for name, event, want in cases:
            with self.subTest(name):
                self.assertEqual(frames_from_event(event), want)

    def test_rejects(self):
        cases = [
            ("another event type", '{"type":"websocketmanager.connection.connected","data":{}}',
             '"websocketmanager.connection.connected" is not a frame event'),
            ("no type", '{"data":1}', "no type"),
            ("not JSON", '{"type":', "frames_from_event"),
            ("NaN is not JSON", '{"type":NaN}', "NaN"),
            ("not an object", "[1]", "not a JSON object"),
            ("None", None, "not a JSON object"),
            ("bytes that are not UTF-8", b"{\xff", "utf-8"),
            ("nested too deep", '"\\"{}\\""', "nested too deep"),
            ("deeply nested JSON", "[" * 100000 + "]" * 100000, "frames_from_event"),
            ("bad count", batch_event("41", "43", "2", DOC_BATCH), "count 2, but 3 frames"),
            ("count not a number", batch_event("41", "43", '"three"', DOC_BATCH), 'count "three"'),
            ("count a bool", batch_event("41", "43", "true", DOC_BATCH), "count true"),
            ("empty batch", batch_event("1", "1", "0", "[]"), "count 0, but 0 frames"),
            ("batch data not an array", batch_event("1", "1", "1", '{"sequence":"1"}'), "not an array"),
            ("null element", batch_event("1", "1", "1", "[null]"), "frame 0 is not an object"),
            ("sequences not ascending", batch_event("2", "1", "2", f'[{el("2")},{el("1")}]'), "do not ascend: 1 after 2"),
            ("repeated sequence", batch_event("1", "1", "2", f'[{el("1")},{el("1")}]'), "do not ascend"),
            ("firstsequence does not match", batch_event("40", "43", "3", DOC_BATCH), "40/43, but its frames are 41..43"),
            ("lastsequence does not match", batch_event("41", "44", "3", DOC_BATCH), "41/44"),
            ("bad base64 in a batch", batch_event("1", "1", "1", f'[{el("1", chr(34) + "data_base64" + chr(34) + ":" + chr(34) + "AA=A" + chr(34))}]'),
             "batch frame 0: data_base64"),
            ("bad base64", single("1", "application/octet-stream", '"data_base64":"not base64!"'), "data_base64 is not standard base64"),
            ("base64 without padding", single("1", "application/octet-stream", '"data_base64":"AAE"'), "base64"),
            ("base64 with bits past the data", single("1", "application/octet-stream", '"data_base64":"AB=="'), "base64"),
            ("both data and data_base64", single("1", "text/plain", '"data":"a","data_base64":"AA=="'), "both data and data_base64"),
            ("no data", single("1", "text/plain", '"x":1'), "neither data nor data_base64"),
            ("batch element without data", batch_event("1", "1", "1", f'[{{"sequence":"1","receivedat":"{at(1)}"}}]'),
             "frame 0: needs one of"),
            ("sequence not a number", single("x1", "text/plain", '"data":"a"'), 'sequence "x1" is not an unsigned integer'),
            ("negative sequence", single("-1", "text/plain", '"data":"a"'), "sequence"),
            ("sequence with non-ASCII digits", single("١", "text/plain", '"data":"a"'), "sequence"),
            ("sequence past 2^64", single("18446744073709551616", "text/plain", '"data":"a"'), "sequence"),
            ("fractional sequence", f'{{"type":"websocketmanager.frame","sequence":1.5,"receivedat":"{at(1)}","data":1}}', "sequence 1.5"),
            ("bad receivedat", '{"type":"websocketmanager.frame","sequence":"1","receivedat":"yesterday","data":1}', 'receivedat "yesterday"'),
            ("receivedat out of range", '{"type":"websocketmanager.frame","sequence":"1","receivedat":"2026-13-01T00:00:00Z","data":1}', "receivedat"),
            ("no receivedat", '{"type":"websocketmanager.frame","sequence":"1","data":1}', "no receivedat"),
        ]
        for name, event, err in cases:
            with self.subTest(name):
                with self.assertRaises(FrameEventError) as cm:
                    frames_from_event(event)
                self.assertTrue(str(cm.exception).startswith("frames_from_event: "), str(cm.exception))
                self.assertIn(err, str(cm.exception))
                self.assertIsInstance(cm.exception, ValueError)

    def test_mangled_events(self):
        """Untrusted input: whatever a mangled event holds, frames_from_event returns frames in
        ascending order or raises FrameEventError, nothing else."""
        rnd = random.Random(1)
        seeds = [batch_event("41", "43", "3", DOC_BATCH), single("7", "application/json", '"data":{ "b" : [1, "x"] }')]
        alphabet = '{}[]",:\\ 0123456789abcdefAZ=+/-.'
        for i in range(5000):
            s = seeds[i % len(seeds)]
            for _ in range(rnd.randint(1, 4)):
                p = rnd.randrange(len(s))
                op = rnd.randrange(3)
                c = rnd.choice(alphabet)
                s = s[:p] + s[p + 1:] if op == 0 else s[:p] + c + s[p:] if op == 1 else s[:p] + c + s[p + 1:]
            try:
                frames = frames_from_event(s)
            except FrameEventError:
                continue
            self.assertTrue(frames, s)
            for a, b in zip(frames, frames[1:]):
                self.assertLess(a.sequence, b.sequence, s)
            for f in frames:
                if f.kind == "json":
                    self.assertEqual(json.loads(f.raw), f.data, s)


if __name__ == "__main__":
    unittest.main()
