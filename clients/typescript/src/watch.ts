// watch: follow a connection's frames with WatchFrames and resume by sequence by itself
// (docs/architecture.md, "WatchFrames"). It needs only @connectrpc/connect and the generated
// service, so a browser bundle that imports "@websocketmanager/client/watch" with connect-web
// does not pull in the Node transport.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { Frame, WebSocketManager } from "./generated/websocketmanager_pb.js";

/** The trailer of an ended WatchFrames stream that says which sequence to watch again from. */
export const RESUME_TRAILER = "wsm-resume-from";

/** A frame as WatchFrames streams it (the generated Frame message). */
export type WatchedFrame = Frame;

export interface WatchOptions {
  /** Start with the retained frames from this sequence on (default: live frames only). */
  fromSequence?: bigint;
  /** Also the frames that answered a Send (marked `reply`). */
  includeReplies?: boolean;
  /** Ends the watch: the iteration finishes without an error. */
  signal?: AbortSignal;
  /** First wait before watching again after a resumable end (default 100 ms); doubles each time. */
  initialBackoffMs?: number;
  /** Longest wait between attempts (default 5000 ms). */
  maxBackoffMs?: number;
  /**
   * How many times in a row to watch again without receiving a frame in between before the
   * last error is thrown (default: no limit).
   */
  maxRetries?: number;
  /** Called before each wait for a new attempt: the error that ended the stream and the resume point. */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  error: ConnectError | undefined; // undefined: the stream ended without an error
  attempt: number; // 1 for the first retry after progress
  delayMs: number;
  fromSequence: bigint | undefined; // undefined: live again (nothing seen, no trailer)
}

/**
 * Follows connection `id`'s inbound frames: an async iterable of the Frame messages
 * WatchFrames streams, in order. When the stream ends in a way that can be resumed — UNAVAILABLE
 * (the holder changed, the service restarted), RESOURCE_EXHAUSTED with a resume trailer (this
 * watcher fell behind), a network error, or an unexpected clean end — it watches again, after a
 * bounded backoff, from the trailer `wsm-resume-from` when the service sent one, else from the
 * sequence after the last frame it yielded. A gap is never hidden: frames that were asked for
 * and are no longer retained are yielded as a Frame with `payload.case === "missing"` (the
 * range in `payload.value`). Other errors (NOT_FOUND once the connection is gone,
 * UNAUTHENTICATED, a watcher limit, …) end the iteration by throwing. Aborting `signal`, or
 * leaving the loop, ends the watch quietly.
 *
 * A watch started live (no fromSequence) that breaks before its first frame and without a
 * trailer starts live again: frames in between are not seen, as with any live start.
 */
export async function* watch(
  client: Pick<Client<typeof WebSocketManager>, "watchFrames">,
  id: string,
  options: WatchOptions = {},
): AsyncGenerator<WatchedFrame, void, undefined> {
  const { includeReplies = false, signal, initialBackoffMs = 100, maxBackoffMs = 5000, maxRetries = Infinity, onRetry } = options;
  let next = options.fromSequence;
  let failures = 0;
  if (signal?.aborted) return;
  const stop = new AbortController(); // ends the call in flight when the caller leaves the loop
  const onAbort = () => stop.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      let progressed = false;
      let ended: ConnectError | undefined;
      // The header says where the watch starts: a live watch whose holder dies before its first
      // frame resumes from there rather than live again (which would skip frames untold).
      const onHeader = (h: Headers) => {
        const v = h.get(RESUME_TRAILER)?.trim();
        if (next === undefined && v && /^[0-9]+$/.test(v)) next = BigInt(v);
      };
      const stream = client.watchFrames({ id, fromSequence: next, includeReplies }, { signal: stop.signal, onHeader });
      const it = stream[Symbol.asyncIterator]();
      for (;;) {
        let r: IteratorResult<WatchedFrame>;
        try {
          r = await it.next();
        } catch (e) {
          if (stop.signal.aborted) return;
          ended = ConnectError.from(e);
          const resume = resumeTrailer(ended);
          if (!resumable(ended, resume !== undefined)) throw ended;
          // The trailer may move the resume point on (a live start), never back past what was yielded.
          if (resume !== undefined) next = max(next, resume);
          break;
        }
        if (r.done) break;
        const f = r.value;
        // Where a new watch would start so that nothing is repeated or lost: after a gap
        // notice, past its end; after a frame, the number after it. A reply carries the number
        // of the frame before it, so after a frame it moves nothing; first on a live watch, it
        // tells which frame was the last one before.
        if (f.payload.case === "missing") next = max(next, f.payload.value.toSequence + 1n);
        else next = max(next, f.sequence + 1n);
        progressed = true;
        yield f; // outside the try: what the caller throws into the generator is not a stream end
      }
      if (progressed) failures = 0;
      failures++;
      if (failures > maxRetries) {
        throw ended ?? new ConnectError(`the watch of ${id} ended ${maxRetries + 1} times without a frame`, Code.Unavailable);
      }
      const delayMs = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(failures - 1, 30));
      onRetry?.({ error: ended, attempt: failures, delayMs, fromSequence: next });
      if (!(await sleep(delayMs, stop.signal))) return;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop.abort();
  }
}

function max(a: bigint | undefined, b: bigint): bigint {
  return a === undefined || b > a ? b : a;
}

/** The sequence in the error's `wsm-resume-from` trailer (connect-es puts trailers in metadata). */
function resumeTrailer(err: ConnectError): bigint | undefined {
  const v = err.metadata.get(RESUME_TRAILER)?.trim();
  return v !== undefined && /^[0-9]{1,20}$/.test(v) ? BigInt(v) : undefined;
}

// resumable tells an end to watch again after from one to report. RESOURCE_EXHAUSTED without
// a trailer is a watcher limit (watching again would only be refused again); UNKNOWN or
// INTERNAL made on this side from a thrown error (fetch's "Failed to fetch", a body cut off
// mid-stream, a socket reset) is the network, not the service.
function resumable(err: ConnectError, hasTrailer: boolean): boolean {
  switch (err.code) {
    case Code.Unavailable:
      return true;
    case Code.ResourceExhausted:
      return hasTrailer;
    case Code.Unknown:
    case Code.Internal:
      return err.cause !== undefined && !(err.cause instanceof ConnectError);
  }
  return false;
}

// sleep waits ms, or less when signal aborts; it reports whether the time passed.
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", done);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
