// watch's resume logic against in-memory services (connect-es createRouterTransport) and a
// scripted fetch under connect-web; no service needed (node --test dist/test/watch.test.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  FrameSchema,
  WatchFramesRequestSchema,
  WebSocketManager,
  watch,
  RESUME_TRAILER,
  type RetryInfo,
  type WatchedFrame,
  type WatchFramesRequest,
  type WatchOptions,
} from "../src/index.js";

const fast = { initialBackoffMs: 1, maxBackoffMs: 4 } satisfies WatchOptions;
// A retry loop that never ends fails the test instead of hanging it.
const limit = { timeout: 10_000 };

const text = (seq: bigint, s: string, reply = false): WatchedFrame =>
  create(FrameSchema, { connectionId: "c1", sequence: seq, reply, payload: { case: "text", value: s } });
const gap = (from: bigint, to: bigint, reason = "not_retained"): WatchedFrame =>
  create(FrameSchema, { connectionId: "c1", payload: { case: "missing", value: { fromSequence: from, toSequence: to, reason } } });

// What one WatchFrames call of the fake service does: frames to send, then how it ends.
interface Attempt {
  frames: WatchedFrame[];
  end?: { code: Code; trailer?: string }; // absent: the stream ends OK
  hang?: boolean; // after the frames, wait until the caller goes away
}

// A service whose WatchFrames plays attempts in turn (the last one again when they run out);
// it records the requests and whether each call's context was ended.
function fakeService(attempts: Attempt[]) {
  const requests: WatchFramesRequest[] = [];
  const aborted: boolean[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(WebSocketManager, {
      async *watchFrames(req: WatchFramesRequest, ctx: HandlerContext) {
        const n = requests.length;
        requests.push(req);
        aborted.push(false);
        ctx.signal.addEventListener("abort", () => (aborted[n] = true));
        const a = attempts[Math.min(n, attempts.length - 1)]!;
        for (const f of a.frames) yield f;
        if (a.hang) await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        if (a.end) {
          if (a.end.trailer !== undefined) ctx.responseTrailer.set(RESUME_TRAILER, a.end.trailer);
          throw new ConnectError("ended by the fake service", a.end.code);
        }
      },
    });
  });
  return { client: createClient(WebSocketManager, transport), requests, aborted };
}

async function collect(it: AsyncIterable<WatchedFrame>, n: number): Promise<WatchedFrame[]> {
  const out: WatchedFrame[] = [];
  if (n === 0) return out;
  for await (const f of it) {
    out.push(f);
    if (out.length === n) break;
  }
  return out;
}

const from = (r: WatchFramesRequest) => r.fromSequence;
const describe = (f: WatchedFrame) =>
  f.payload.case === "missing" ? `gap ${f.payload.value.fromSequence}-${f.payload.value.toSequence}` : `${f.sequence}${f.reply ? "r" : ""}`;

const cases: {
  name: string;
  options?: WatchOptions;
  attempts: Attempt[];
  take: number;
  want: string[]; // the frames yielded, in order
  wantFrom: (bigint | undefined)[]; // fromSequence of each call
}[] = [
  {
    name: "UNAVAILABLE with a trailer: watches again from the trailer",
    attempts: [
      { frames: [text(1n, "a"), text(2n, "b")], end: { code: Code.Unavailable, trailer: "3" } },
      { frames: [text(3n, "c")], hang: true },
    ],
    take: 3,
    want: ["1", "2", "3"],
    wantFrom: [undefined, 3n],
  },
  {
    name: "the trailer moves the resume point on past frames not sent (a live start)",
    attempts: [{ frames: [], end: { code: Code.Unavailable, trailer: "42" } }, { frames: [text(42n, "x")], hang: true }],
    take: 1,
    want: ["42"],
    wantFrom: [undefined, 42n],
  },
  {
    name: "a trailer behind what was yielded never repeats frames",
    options: { fromSequence: 5n },
    attempts: [{ frames: [text(5n, "a"), text(6n, "b")], end: { code: Code.Unavailable, trailer: "5" } }, { frames: [text(7n, "c")], hang: true }],
    take: 3,
    want: ["5", "6", "7"],
    wantFrom: [5n, 7n],
  },
  {
    name: "UNAVAILABLE without a trailer: from after the last frame that was not a reply",
    options: { includeReplies: true },
    attempts: [
      { frames: [text(7n, "a"), text(8n, "b"), text(8n, "reply", true)], end: { code: Code.Unavailable } },
      { frames: [text(8n, "later reply", true), text(9n, "c")], hang: true },
    ],
    take: 5,
    want: ["7", "8", "8r", "8r", "9"],
    wantFrom: [undefined, 9n],
  },
  {
    name: "a reply first on a live watch: from after the frame it follows",
    options: { includeReplies: true },
    attempts: [{ frames: [text(8n, "reply", true)], end: { code: Code.Unavailable } }, { frames: [text(9n, "c")], hang: true }],
    take: 2,
    want: ["8r", "9"],
    wantFrom: [undefined, 9n],
  },
  {
    name: "gap notices are yielded, and a resume starts past them",
    options: { fromSequence: 1n },
    attempts: [
      { frames: [gap(1n, 9n)], end: { code: Code.Unavailable } },
      { frames: [gap(10n, 4294967296n, "moved"), text(4294967297n, "x")], hang: true },
    ],
    take: 3,
    want: ["gap 1-9", "gap 10-4294967296", "4294967297"],
    wantFrom: [1n, 10n],
  },
  {
    name: "RESOURCE_EXHAUSTED with a trailer (a slow watcher): watches again",
    attempts: [
      { frames: [text(1n, "a")], end: { code: Code.ResourceExhausted, trailer: "2" } },
      { frames: [text(2n, "b")], hang: true },
    ],
    take: 2,
    want: ["1", "2"],
    wantFrom: [undefined, 2n],
  },
  {
    name: "a stream that ends OK is watched again",
    attempts: [{ frames: [text(1n, "a")] }, { frames: [text(2n, "b")], hang: true }],
    take: 2,
    want: ["1", "2"],
    wantFrom: [undefined, 2n],
  },
  {
    name: "sequences past 2^53 stay exact",
    options: { fromSequence: 18446744073709551610n },
    attempts: [
      { frames: [text(18446744073709551610n, "a")], end: { code: Code.Unavailable } },
      { frames: [text(18446744073709551611n, "b")], hang: true },
    ],
    take: 2,
    want: ["18446744073709551610", "18446744073709551611"],
    wantFrom: [18446744073709551610n, 18446744073709551611n],
  },
];

for (const tt of cases) {
  test(`watch: ${tt.name}`, limit, async () => {
    const svc = fakeService(tt.attempts);
    const got = await collect(watch(svc.client, "c1", { ...fast, ...tt.options }), tt.take);
    assert.deepEqual(got.map(describe), tt.want);
    assert.deepEqual(svc.requests.map(from), tt.wantFrom);
    for (const r of svc.requests) {
      assert.equal(r.id, "c1");
      assert.equal(r.includeReplies, tt.options?.includeReplies ?? false);
    }
  });
}

const fatal: { name: string; attempts: Attempt[]; code: Code; frames: number }[] = [
  { name: "NOT_FOUND", attempts: [{ frames: [], end: { code: Code.NotFound } }], code: Code.NotFound, frames: 0 },
  {
    name: "NOT_FOUND after a resumable end (the connection was disconnected)",
    attempts: [{ frames: [text(1n, "a")], end: { code: Code.Unavailable, trailer: "2" } }, { frames: [], end: { code: Code.NotFound } }],
    code: Code.NotFound,
    frames: 1,
  },
  { name: "UNAUTHENTICATED", attempts: [{ frames: [], end: { code: Code.Unauthenticated } }], code: Code.Unauthenticated, frames: 0 },
  {
    name: "RESOURCE_EXHAUSTED without a trailer (a watcher limit)",
    attempts: [{ frames: [], end: { code: Code.ResourceExhausted } }],
    code: Code.ResourceExhausted,
    frames: 0,
  },
  { name: "INTERNAL sent by the service", attempts: [{ frames: [], end: { code: Code.Internal } }], code: Code.Internal, frames: 0 },
  { name: "UNKNOWN sent by the service", attempts: [{ frames: [], end: { code: Code.Unknown } }], code: Code.Unknown, frames: 0 },
];

for (const tt of fatal) {
  test(`watch ends with the error: ${tt.name}`, limit, async () => {
    const svc = fakeService(tt.attempts);
    const got: WatchedFrame[] = [];
    await assert.rejects(
      (async () => {
        for await (const f of watch(svc.client, "c1", fast)) got.push(f);
      })(),
      (e: unknown) => e instanceof ConnectError && e.code === tt.code,
    );
    assert.equal(got.length, tt.frames);
    assert.equal(svc.requests.length, tt.attempts.length, "no call after the error");
  });
}

test("watch: backoff doubles up to its bound, starts over after a frame, and maxRetries ends it", limit, async () => {
  const down = { frames: [], end: { code: Code.Unavailable } } satisfies Attempt;
  const svc = fakeService([down, down, down, { frames: [text(1n, "a")], end: { code: Code.Unavailable } }, down]);
  const retries: RetryInfo[] = [];
  const got: WatchedFrame[] = [];
  await assert.rejects(
    (async () => {
      const opts = { initialBackoffMs: 2, maxBackoffMs: 5, maxRetries: 3, onRetry: (r: RetryInfo) => retries.push(r) };
      for await (const f of watch(svc.client, "c1", opts)) got.push(f);
    })(),
    (e: unknown) => e instanceof ConnectError && e.code === Code.Unavailable,
  );
  assert.deepEqual(got.map(describe), ["1"]);
  assert.deepEqual(
    retries.map((r) => [r.attempt, r.delayMs]),
    [
      [1, 2],
      [2, 4],
      [3, 5],
      [1, 2], // the 4th call yielded a frame
      [2, 4],
      [3, 5],
    ],
  );
  // 3 retries after the first call; the 4th yields a frame, then 3 retries and the error.
  assert.equal(svc.requests.length, 7);
  assert.deepEqual(svc.requests.map(from), [undefined, undefined, undefined, undefined, 2n, 2n, 2n]);
  assert.ok(retries.every((r) => r.error?.code === Code.Unavailable));
});

test("watch: aborting the signal ends the iteration quietly and the call with it", limit, async () => {
  const svc = fakeService([{ frames: [text(1n, "a")], hang: true }]);
  const abort = new AbortController();
  const got: WatchedFrame[] = [];
  for await (const f of watch(svc.client, "c1", { ...fast, signal: abort.signal })) {
    got.push(f);
    abort.abort();
  }
  assert.deepEqual(got.map(describe), ["1"]);
  await until(() => svc.aborted[0] === true, "the service sees the call end");
});

test("watch: aborting during the backoff ends it at once", limit, async () => {
  const svc = fakeService([{ frames: [], end: { code: Code.Unavailable } }]);
  const abort = new AbortController();
  const start = Date.now();
  const opts = { initialBackoffMs: 60_000, signal: abort.signal, onRetry: () => abort.abort() };
  for await (const _ of watch(svc.client, "c1", opts)) assert.fail("no frames");
  assert.ok(Date.now() - start < 10_000, "did not wait out the backoff");
  assert.equal(svc.requests.length, 1);
});

test("watch: an already aborted signal makes no call", limit, async () => {
  const svc = fakeService([{ frames: [text(1n, "a")], hang: true }]);
  for await (const _ of watch(svc.client, "c1", { signal: AbortSignal.abort() })) assert.fail("no frames");
  assert.equal(svc.requests.length, 0);
});

test("watch: leaving the loop ends the call", limit, async () => {
  const svc = fakeService([{ frames: [text(1n, "a"), text(2n, "b")], hang: true }]);
  assert.deepEqual((await collect(watch(svc.client, "c1", fast), 1)).map(describe), ["1"]);
  await until(() => svc.aborted[0] === true, "the service sees the call end");
});

// connect-web over a scripted fetch: a body cut off mid-stream (the network) is resumed from
// the last frame; the browser transport hands trailers over as the router transport does.
test("watch over connect-web: a network error mid-stream is resumed from after the last frame", limit, async () => {
  const calls: WatchFramesRequest[] = [];
  const frame = (f: WatchedFrame) => envelope(0, toBinary(FrameSchema, f));
  // Each body: its chunks, then how it ends ("network": a TypeError as fetch gives for a cut
  // connection; "hang": open until the caller aborts).
  const bodies: { chunks: Uint8Array[]; then: "network" | "close" | "hang" }[] = [
    { chunks: [frame(text(1n, "a")), frame(text(2n, "b"))], then: "network" },
    {
      chunks: [
        frame(text(3n, "c")),
        envelope(2, new TextEncoder().encode(`{"error":{"code":"unavailable","message":"moved"},"metadata":{"${RESUME_TRAILER}":["4"]}}`)),
      ],
      then: "close",
    },
    { chunks: [frame(text(4n, "d"))], then: "hang" },
  ];
  const fetch = async (_url: unknown, init?: RequestInit) => {
    const body = new Uint8Array(init!.body as ArrayBuffer);
    calls.push(fromBinary(WatchFramesRequestSchema, body.subarray(5)));
    const script = bodies[Math.min(calls.length - 1, bodies.length - 1)]!;
    const chunks = [...script.chunks];
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        // As fetch does: the caller's abort errors the body.
        init?.signal?.addEventListener("abort", () => c.error(new DOMException("aborted", "AbortError")));
      },
      // Chunks one at a time, so that those before an error are read (an error discards queued ones).
      pull(c) {
        const next = chunks.shift();
        if (next) return c.enqueue(next);
        if (script.then === "network") c.error(new TypeError("network error"));
        else if (script.then === "close") c.close();
        else return new Promise(() => {});
      },
    });
    return new Response(stream, {
      status: 200,
      headers: { "content-type": "application/connect+proto" },
    });
  };
  const client = createClient(WebSocketManager, createConnectTransport({ baseUrl: "http://fake", useBinaryFormat: true, fetch: fetch as typeof globalThis.fetch }));
  const retries: RetryInfo[] = [];
  const got = await collect(watch(client, "c1", { ...fast, onRetry: (r) => retries.push(r) }), 4);
  assert.deepEqual(got.map(describe), ["1", "2", "3", "4"]);
  assert.deepEqual(calls.map(from), [undefined, 3n, 4n]);
  assert.equal(retries[0]!.error?.code, Code.Unknown, "fetch's TypeError, made a ConnectError on this side");
  assert.equal(retries[1]!.error?.code, Code.Unavailable);
});

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
