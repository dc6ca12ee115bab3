"""WebSocketManagerClient.watch's resume logic against a fake service in this process (a
grpc.aio server whose WatchFrames plays a script); no real service needed:
PYTHONPATH=. /usr/bin/python3 -m unittest tests/test_watch.py (from clients/python). The real
service is tested by cmd/wsmanager/watch_clients_test.go."""

import asyncio
import unittest

import grpc

from websocketmanager import WebSocketManagerClient
from websocketmanager import _proto as pb

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
OK = grpc.StatusCode.OK


def text(seq, s, reply=False):
    return pb.Frame(connection_id="feed-1", sequence=seq, text=s, reply=reply)


def missing(a, b, reason):
    return pb.Frame(connection_id="feed-1", missing=pb.FrameGap(from_sequence=a, to_sequence=b, reason=reason))


def step(frames=(), code=OK, trailer=None, block=False):
    """What the fake service does on one call: send frames, then end with code (OK: end the
    stream without an error) and the resume trailer, or (block) stay open."""
    return dict(frames=frames, code=code, trailer=trailer, block=block)


def describe(f):
    if f.HasField("missing"):
        return f"missing {f.missing.from_sequence}-{f.missing.to_sequence} {f.missing.reason}"
    return f"{f.sequence} {f.text}" + (" (reply)" if f.reply else "")


class FakeService:
    def __init__(self, script):
        self.script = script
        self.calls = []  # (from_sequence or "live", include_replies, authorization)
        self.cancelled = 0

    async def watch_frames(self, request, context):
        md = dict(context.invocation_metadata())
        self.calls.append((request.from_sequence if request.HasField("from_sequence") else "live",
                           request.include_replies, md.get("authorization")))
        n = len(self.calls) - 1
        st = self.script[n] if n < len(self.script) else step(block=True)
        for f in st["frames"]:
            yield f
        if st["block"]:
            try:
                await asyncio.Event().wait()
            finally:
                self.cancelled += 1
        trailer = ((("wsm-resume-from", st["trailer"]),) if st["trailer"] is not None else ())
        if st["code"] != OK:
            await context.abort(st["code"], "scripted end", trailing_metadata=trailer)
        context.set_trailing_metadata(trailer)


class WatchTest(unittest.IsolatedAsyncioTestCase):
    async def serve(self, script):
        svc = FakeService(script)
        handler = grpc.unary_stream_rpc_method_handler(
            svc.watch_frames, request_deserializer=pb.WatchFramesRequest.FromString,
            response_serializer=lambda m: m.SerializeToString())
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(pb.SERVICE, {"WatchFrames": handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self.addAsyncCleanup(server.stop, None)
        client = WebSocketManagerClient(host="127.0.0.1", port=port, token="s3cret", timeout=0.01)
        self.addAsyncCleanup(client.close)
        self.waits = []

        async def record(d):
            self.waits.append(d)
        client._sleep = record
        return svc, client

    async def collect(self, watch, want):
        """Frames until want of them (then the loop stops) or the watch ends; and its error."""
        got = []
        try:
            async for f in watch:
                got.append(describe(f))
                if len(got) == want:
                    break
        except grpc.aio.AioRpcError as e:
            return got, e.code()
        finally:
            await watch.aclose()
        return got, None

    async def test_resumes(self):
        cases = [
            ("UNAVAILABLE with a trailer: watch again from the trailer", {},
             [step([text(1, "a"), text(2, "b")], UNAVAILABLE, "3"), step([text(3, "c")], block=True)],
             ["1 a", "2 b", "3 c"], ["live", 3], None),
            ("the trailer wins over the client's own position", {},
             [step([text(1, "a")], UNAVAILABLE, "9"), step([missing(9, 20, "moved"), text(21, "x")], block=True)],
             ["1 a", "missing 9-20 moved", "21 x"], ["live", 9], None),
            ("no trailer: from the sequence after the last frame that is not a reply", {"include_replies": True},
             [step([text(4, "a"), text(4, "r", reply=True)], UNAVAILABLE), step([text(5, "b")], block=True)],
             ["4 a", "4 r (reply)", "5 b"], ["live", 5], None),
            ("an unreadable trailer is ignored", {},
             [step([text(4, "a")], UNAVAILABLE, "soon"), step([text(5, "b")], block=True)],
             ["4 a", "5 b"], ["live", 5], None),
            ("a gap is yielded, and a resume starts after it", {"from_sequence": 1},
             [step([missing(1, 9, "not_retained")], UNAVAILABLE), step([text(10, "j")], block=True)],
             ["missing 1-9 not_retained", "10 j"], [1, 10], None),
            ("nothing received and no trailer: from_sequence is kept", {"from_sequence": 5},
             [step(code=UNAVAILABLE), step(code=UNAVAILABLE), step([text(5, "e")], block=True)],
             ["5 e"], [5, 5, 5], None),
            ("nothing known: live again", {},
             [step(code=UNAVAILABLE), step([text(8, "h")], block=True)], ["8 h"], ["live", "live"], None),
            ("a slow caller (RESOURCE_EXHAUSTED after frames) resumes from the trailer", {},
             [step([text(1, "a"), text(2, "b")], EXHAUSTED, "3"), step([text(3, "c")], block=True)],
             ["1 a", "2 b", "3 c"], ["live", 3], None),
            ("a stream ended without an error resumes", {},
             [step([text(1, "a")]), step([text(2, "b")], block=True)], ["1 a", "2 b"], ["live", 2], None),
            ("NOT_FOUND ends the watch", {}, [step(code=grpc.StatusCode.NOT_FOUND)], [], ["live"], grpc.StatusCode.NOT_FOUND),
            ("PERMISSION_DENIED ends the watch", {}, [step(code=grpc.StatusCode.PERMISSION_DENIED)], [], ["live"],
             grpc.StatusCode.PERMISSION_DENIED),
            ("INVALID_ARGUMENT ends the watch", {}, [step(code=grpc.StatusCode.INVALID_ARGUMENT)], [], ["live"],
             grpc.StatusCode.INVALID_ARGUMENT),
            ("RESOURCE_EXHAUSTED before any frame (a watcher limit) ends the watch", {"from_sequence": 2},
             [step(code=EXHAUSTED, trailer="2")], [], [2], EXHAUSTED),
            ("NOT_FOUND after a resume ends the watch", {},
             [step([text(1, "a")], UNAVAILABLE, "2"), step(code=grpc.StatusCode.NOT_FOUND)],
             ["1 a"], ["live", 2], grpc.StatusCode.NOT_FOUND),
        ]
        for name, kwargs, script, want, want_calls, want_code in cases:
            with self.subTest(name):
                svc, client = await self.serve(script)
                stop_after = len(want) if want_code is None else -1
                got, code = await asyncio.wait_for(self.collect(client.watch("feed-1", **kwargs), stop_after), 20)
                self.assertEqual(got, want)
                self.assertEqual(code, want_code)
                self.assertEqual([c[0] for c in svc.calls], want_calls)
                replies = kwargs.get("include_replies", False)
                self.assertEqual([c[1] for c in svc.calls], [replies] * len(svc.calls), "include_replies kept")
                # The watch has no deadline (the client's timeout is 10 ms) and carries the token.
                self.assertEqual({c[2] for c in svc.calls}, {"Bearer s3cret"})

    async def test_backoff(self):
        """The wait between attempts doubles from 0.1 s to at most 5 s while attempts bring
        nothing, and starts again at 0.1 s after one that brought a frame."""
        script = [step(code=UNAVAILABLE)] * 8 + [step([text(1, "a")], UNAVAILABLE), step(code=UNAVAILABLE),
                                                 step([text(2, "b")], block=True)]
        _, client = await self.serve(script)
        got, code = await asyncio.wait_for(self.collect(client.watch("feed-1"), 2), 20)
        self.assertEqual((got, code), (["1 a", "2 b"], None))
        self.assertEqual(self.waits, [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 0.1, 0.1])

    async def test_closing_the_watch_ends_the_call(self):
        svc, client = await self.serve([step([text(1, "a")], block=True)])
        got, code = await self.collect(client.watch("feed-1"), 1)
        self.assertEqual((got, code), (["1 a"], None))
        for _ in range(500):
            if svc.cancelled:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(svc.cancelled, 1, "the service sees the call end")
        self.assertEqual(len(svc.calls), 1)


if __name__ == "__main__":
    unittest.main()
