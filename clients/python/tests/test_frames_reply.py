"""frames_from_event on events with replies (include_replies); no service needed:
PYTHONPATH=. /usr/bin/python3 -m unittest tests/test_frames_reply.py (from clients/python)."""

import random
import unittest

from websocketmanager import Frame, FrameEventError, frames_from_event



def single(seq, ct, data):
    return ('{"specversion":"1.0","id":"5f0c","source":"websocketmanager","type":"websocketmanager.frame",'
            f'"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"{ct}","connectionid":"feed-1",'
            f'"receivedat":"2026-12-06T10:00:00.000001Z","sequence":"{seq}",{data}}}')


def batch_event(first, last, count, data):
    return ('{"specversion":"1.0","id":"9a1e","source":"websocketmanager","type":"websocketmanager.frame.batch",'
            '"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"application/json","connectionid":"feed-1",'
            f'"firstsequence":"{first}","lastsequence":"{last}","count":{count},"data":{data}}}')


def at(us):
    return f"2026-12-06T10:00:00.00000{us}Z"


def el(seq, rest='"data":1'):
    return f'{{"sequence":"{seq}","receivedat":"{at(1)}",{rest}}}'


# A reply carries the number of the frame before it.
REPLY_BATCH = (f'[{{"sequence":"4","receivedat":"{at(1)}","data":{{"px":1}}}},'
               f'{{"sequence":"4","receivedat":"{at(2)}","reply":true,"data":"pong"}},'
               f'{{"sequence":"5","receivedat":"{at(3)}","reply":false,"data":"hello"}}]')
REPLY_DATA = '"reply":true,"data":1'
NOT_BOOL = '"reply":"yes","data":1'


def frame(seq, kind, data, raw=None, reply=False, us=1):
    return Frame(connection_id="feed-1", sequence=seq, received_at=at(us), kind=kind, data=data, raw=raw, reply=reply)


class FramesWithRepliesTest(unittest.TestCase):
    def test_frames(self):
        one = frame(4, "json", 1, "1")
        cases = [
            ("a reply in a batch has the sequence of the frame before it", batch_event("4", "5", "3", REPLY_BATCH),
             [frame(4, "json", {"px": 1}, '{"px":1}'), frame(4, "text", "pong", reply=True, us=2),
              frame(5, "text", "hello", us=3)]),
            ("replies one after another",
             batch_event("4", "4", "3", f'[{el("4")},{el("4", REPLY_DATA)},{el("4", REPLY_DATA)}]'),
             [one, frame(4, "json", 1, "1", reply=True), frame(4, "json", 1, "1", reply=True)]),
            ("a batch that starts with a reply", batch_event("4", "5", "2", f'[{el("4", REPLY_DATA)},{el("5")}]'),
             [frame(4, "json", 1, "1", reply=True), frame(5, "json", 1, "1")]),
            ("a reply after a dropped frame carries the dropped frame's number",
             batch_event("4", "6", "2", f'[{el("4")},{el("6", REPLY_DATA)}]'),
             [one, frame(6, "json", 1, "1", reply=True)]),
            ("a reply before any frame is numbered 0", single("0", "text/plain", '"reply":true,"data":"pong"'),
             [Frame(connection_id="feed-1", sequence=0, received_at=at(1), kind="text", data="pong", reply=True)]),
            ("a single-frame event marked as a reply", single("7", "application/json", '"reply":true,"data":{"id":1}'),
             [frame(7, "json", {"id": 1}, '{"id":1}', reply=True)]),
            ("reply false is not a reply", single("7", "text/plain", '"reply":false,"data":"x"'),
             [frame(7, "text", "x")]),
        ]
        for name, event, want in cases:
            with self.subTest(name):
                self.assertEqual(frames_from_event(event), want)

    def test_rejects(self):
        cases = [
            ("a repeated sequence that is not a reply", batch_event("4", "4", "2", f'[{el("4", REPLY_DATA)},{el("4")}]'),
             "do not ascend: 4 after 4"),
            ("a reply numbered below the frame before it", batch_event("4", "3", "2", f'[{el("4")},{el("3", REPLY_DATA)}]'),
             "do not ascend: 3 after 4"),
            ("reply not a boolean in a batch", batch_event("4", "4", "1", f'[{el("4", NOT_BOOL)}]'),
             "batch frame 0: reply is not a boolean"),
            ("reply null", single("7", "text/plain", '"reply":null,"data":"x"'), "reply is not a boolean"),
            ("reply a number", single("7", "text/plain", '"reply":1,"data":"x"'), "reply is not a boolean"),
        ]
        for name, event, err in cases:
            with self.subTest(name):
                with self.assertRaises(FrameEventError) as cm:
                    frames_from_event(event)
                self.assertIn(err, str(cm.exception))

    def test_mangled_events(self):
        """Untrusted input: whatever a mangled event with replies holds, frames_from_event
        returns frames in order (a repeated sequence only for a reply) or raises
        FrameEventError, nothing else."""
        rnd = random.Random(2)
        seed = batch_event("4", "5", "3", REPLY_BATCH)
        alphabet = '{}[]",:\\ 0123456789truefalsy'
        for _ in range(5000):
            s = seed
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
                self.assertTrue(a.sequence < b.sequence or (a.sequence == b.sequence and b.reply), s)
            for f in frames:
                self.assertIsInstance(f.reply, bool, s)


if __name__ == "__main__":
    unittest.main()
