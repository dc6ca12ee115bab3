// Frames of published frame events (docs/architecture.md, "Publishing"): a single-frame event
// and a batch event give the same frames, so a consumer handles both the same way.

/** The CloudEvent type of an event that carries one frame. */
export const FRAME_EVENT_TYPE = "websocketmanager.frame";
/** The CloudEvent type of an event that carries several frames of one connection. */
export const FRAME_BATCH_EVENT_TYPE = "websocketmanager.frame.batch";
// The envelope daprd puts around a message for a subscription with rawPayload.
const DAPR_RAW_EVENT_TYPE = "com.dapr.event.sent";

interface FrameBase {
  connectionId: string;
  /**
   * Numbers the frames the connection's server pushed, from 1 (docs/architecture.md,
   * "Sequence"): a gap means dropped frames, a repeat a duplicate delivery, except that a
   * reply (below) repeats the number of the frame before it. A bigint: sequences can pass
   * 2^53, which a number would round.
   */
  sequence: bigint;
  /**
   * When the service read the frame: the RFC 3339 text of the event (nanoseconds kept;
   * `new Date(receivedAt)` gives a Date, to the millisecond).
   */
  receivedAt: string;
  /**
   * Present (true) when the frame answered a Send (published with include_replies): it carries
   * the sequence of the frame before it, so the pushed frames stay numbered without gaps.
   */
  reply?: boolean;
}

/**
 * One inbound frame. `kind` tells the payload:
 * - `"json"`: a text frame that is valid JSON. `data` is its parsed value, `raw` its JSON text
 *   as it is in the event (when the event was given as text or bytes; given an object, `raw`
 *   is `JSON.stringify(data)`). Parse `raw` yourself to keep numbers past 2^53 exact.
 * - `"text"`: other text; `data` is the string.
 * - `"binary"`: a binary frame (or text that was not valid UTF-8); `data` is its bytes.
 * In a batch, a frame that is a JSON string (text `"…"`) cannot be told from a text frame (its
 * element has no content type): it comes out as `"text"`.
 */
export type Frame = FrameBase &
  ({ kind: "json"; data: unknown; raw: string } | { kind: "text"; data: string } | { kind: "binary"; data: Uint8Array });

/**
 * The frames of a frame event, in sequence order (non-decreasing: a reply may repeat the
 * sequence of the frame before it): one for a single-frame event, all of a batch.
 * `event` is the CloudEvent as a Dapr subscriber receives it: its JSON text, its bytes, or the
 * parsed object (then JSON frames' `raw` is re-serialised). daprd's envelope of a rawPayload
 * subscription is taken off. Throws an Error for an event of another type or a malformed one
 * (a batch whose count, sequences or first/last sequence do not match its frames, bad base64, …).
 */
export function framesFromEvent(event: unknown): Frame[] {
  try {
    return fromInput(event, 0);
  } catch (e) {
    throw new Error(`framesFromEvent: ${e instanceof Error ? e.message : String(e)}`);
  }
}

type Obj = Record<string, unknown>;

function fromInput(event: unknown, depth: number): Frame[] {
  if (depth > 1) throw new Error("frame event nested too deep");
  if (event instanceof Uint8Array) event = new TextDecoder("utf-8", { fatal: true }).decode(event);
  if (typeof event === "string") {
    const value: unknown = JSON.parse(event);
    // An event serialised once more (a JSON string holding it) is unwrapped once.
    if (typeof value === "string") return fromInput(value, depth + 1);
    return fromObject(value, event, depth);
  }
  return fromObject(event, undefined, depth);
}

// text, when known, is the JSON text of ev: the raw JSON frames are cut from it.
function fromObject(ev: unknown, text: string | undefined, depth: number): Frame[] {
  if (!isObj(ev)) throw new Error("the event is not a JSON object");
  const type = str(ev, "type", true);
  switch (type) {
    case FRAME_EVENT_TYPE:
      return [single(ev, text)];
    case FRAME_BATCH_EVENT_TYPE:
      return batch(ev, text);
    case DAPR_RAW_EVENT_TYPE:
      if (Object.hasOwn(ev, "data_base64")) return fromInput(base64(ev.data_base64), depth + 1);
  }
  throw new Error(`event type ${JSON.stringify(type)} is not a frame event`);
}

function single(ev: Obj, text: string | undefined): Frame {
  const base: FrameBase = {
    connectionId: str(ev, "connectionid", false),
    sequence: uint(ev, "sequence"),
    receivedAt: time(ev, "receivedat"),
  };
  if (reply(ev)) base.reply = true;
  const ct = mediaType(str(ev, "datacontenttype", false));
  const hasData = Object.hasOwn(ev, "data");
  const hasB64 = Object.hasOwn(ev, "data_base64");
  if (hasData && hasB64) throw new Error("frame event has both data and data_base64");
  if (hasB64) return { ...base, kind: "binary", data: base64(ev.data_base64) };
  if (!hasData) {
    // An empty binary frame: older services left out an empty data_base64.
    if (ct === "application/octet-stream") return { ...base, kind: "binary", data: new Uint8Array() };
    throw new Error("frame event has neither data nor data_base64");
  }
  const raw = () => rawMember(text, ev, "data");
  // Here a JSON string is a JSON frame (the frame's text was `"…"`): the content type tells it
  // from a text frame.
  if (ct === "application/json" || ct.endsWith("+json")) return { ...base, kind: "json", data: ev.data, raw: raw() };
  return textOrJSON(base, ev.data, raw);
}

function batch(ev: Obj, text: string | undefined): Frame[] {
  const connectionId = str(ev, "connectionid", false);
  const first = uint(ev, "firstsequence");
  const last = uint(ev, "lastsequence");
  const count = uint(ev, "count");
  if (!Object.hasOwn(ev, "data")) throw new Error("batch event has no data");
  let data = ev.data;
  let dataText = text === undefined ? undefined : rawMember(text, ev, "data");
  // Data re-serialised as a JSON string holding the array.
  if (typeof data === "string") {
    dataText = data;
    data = JSON.parse(data);
  }
  if (!Array.isArray(data)) throw new Error("batch data is not an array of frames");
  if (count !== BigInt(data.length) || data.length === 0) {
    throw new Error(`batch count ${count}, but ${data.length} frames`);
  }
  const elemTexts = dataText === undefined ? undefined : arrayElements(dataText);
  const out: Frame[] = [];
  data.forEach((el: unknown, i: number) => {
    if (!isObj(el)) throw new Error(`batch frame ${i} is not an object`);
    try {
      const base: FrameBase = { connectionId, sequence: uint(el, "sequence"), receivedAt: time(el, "receivedat") };
      if (reply(el)) base.reply = true;
      const prev = out[i - 1];
      // A reply carries the sequence of the frame before it: equal is allowed for a reply only.
      if (prev && (base.sequence < prev.sequence || (base.sequence === prev.sequence && !base.reply))) {
        throw new Error(`sequences do not ascend: ${base.sequence} after ${prev.sequence}`);
      }
      const hasData = Object.hasOwn(el, "data");
      if (hasData === Object.hasOwn(el, "data_base64")) throw new Error("needs one of data and data_base64");
      if (!hasData) {
        out.push({ ...base, kind: "binary", data: base64(el.data_base64) });
      } else {
        // No content type per element: a JSON string is a text frame.
        out.push(textOrJSON(base, el.data, () => rawMember(elemTexts?.[i], el, "data")));
      }
    } catch (e) {
      throw new Error(`batch frame ${i}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  const f = out[0]!.sequence;
  const l = out[out.length - 1]!.sequence;
  if (f !== first || l !== last) {
    throw new Error(`batch firstsequence/lastsequence ${first}/${last}, but its frames are ${f}..${l}`);
  }
  return out;
}

function textOrJSON(base: FrameBase, data: unknown, raw: () => string): Frame {
  if (typeof data === "string") return { ...base, kind: "text", data };
  return { ...base, kind: "json", data, raw: raw() };
}

// The optional "reply" attribute: true or false when present, nothing else.
function reply(o: Obj): boolean {
  if (!Object.hasOwn(o, "reply")) return false;
  if (typeof o.reply !== "boolean") throw new Error(`reply ${JSON.stringify(o.reply)} is not a boolean`);
  return o.reply;
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function str(o: Obj, name: string, required: boolean): string {
  if (!Object.hasOwn(o, name)) {
    if (required) throw new Error(`event has no ${name}`);
    return "";
  }
  const v = o[name];
  if (typeof v !== "string") throw new Error(`${name} is not a string`);
  return v;
}

const MAX_UINT64 = (1n << 64n) - 1n;

// A decimal string (how the service writes sequences: they can pass 2^53) or a JSON integer.
function uint(o: Obj, name: string): bigint {
  if (!Object.hasOwn(o, name)) throw new Error(`event has no ${name}`);
  const v = o[name];
  let n: bigint | undefined;
  if (typeof v === "string" && /^[0-9]+$/.test(v)) n = BigInt(v);
  else if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) n = BigInt(v);
  if (n === undefined || n > MAX_UINT64) throw new Error(`${name} ${JSON.stringify(v)} is not an unsigned integer`);
  return n;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function time(o: Obj, name: string): string {
  const s = str(o, name, true);
  if (!RFC3339.test(s) || Number.isNaN(Date.parse(s))) throw new Error(`${name} ${JSON.stringify(s)} is not an RFC 3339 time`);
  return s;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_SHAPE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// Standard base64, strictly: padded, and no bits set past the data (as Go's decoder checks).
function base64(v: unknown): Uint8Array {
  if (typeof v !== "string") throw new Error("data_base64 is not a string");
  let ok = B64_SHAPE.test(v);
  if (ok && v.endsWith("==")) ok = (B64.indexOf(v[v.length - 3]!) & 0x0f) === 0;
  else if (ok && v.endsWith("=")) ok = (B64.indexOf(v[v.length - 2]!) & 0x03) === 0;
  if (!ok) throw new Error("data_base64 is not standard base64");
  const bin = atob(v);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function mediaType(ct: string): string {
  return ct.split(";")[0]!.trim().toLowerCase();
}

// The raw JSON text of obj[key], cut from objText (the object's JSON text) when known.
function rawMember(objText: string | undefined, obj: Obj, key: string): string {
  if (objText !== undefined) {
    const span = objectMembers(objText).get(key);
    if (span) return objText.slice(span[0], span[1]);
  }
  return JSON.stringify(obj[key]) ?? "null";
}

// A minimal scanner over JSON text that JSON.parse has accepted: it finds where values start
// and end, so that a JSON frame can be handed out exactly as it is in the event.

function skipWS(t: string, i: number): number {
  while (i < t.length && (t[i] === " " || t[i] === "\t" || t[i] === "\n" || t[i] === "\r")) i++;
  return i;
}

function skipString(t: string, i: number): number {
  for (i++; t[i] !== '"'; i++) if (t[i] === "\\") i++;
  return i + 1;
}

// skipValue returns the end of the value starting at i; nesting is counted, not recursed into.
function skipValue(t: string, i: number): number {
  const c = t[i];
  if (c === '"') return skipString(t, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    while (i < t.length) {
      const d = t[i];
      if (d === '"') {
        i = skipString(t, i);
        continue;
      }
      if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return i;
  }
  while (i < t.length && !",]} \t\n\r".includes(t[i]!)) i++;
  return i;
}

// The spans of an object's members (the last of a repeated key, as JSON.parse keeps).
function objectMembers(t: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  let i = skipWS(t, 0);
  if (t[i] !== "{") return out;
  i = skipWS(t, i + 1);
  while (t[i] === '"') {
    const keyEnd = skipString(t, i);
    const key = JSON.parse(t.slice(i, keyEnd)) as string;
    const start = skipWS(t, skipWS(t, keyEnd) + 1); // past ':'
    const end = skipValue(t, start);
    out.set(key, [start, end]);
    i = skipWS(t, end);
    if (t[i] === ",") i = skipWS(t, i + 1);
  }
  return out;
}

// The texts of an array's elements.
function arrayElements(t: string): string[] {
  const out: string[] = [];
  let i = skipWS(t, 0);
  if (t[i] !== "[") return out;
  i = skipWS(t, i + 1);
  while (i < t.length && t[i] !== "]") {
    const end = skipValue(t, i);
    out.push(t.slice(i, end));
    i = skipWS(t, end);
    if (t[i] === ",") i = skipWS(t, i + 1);
  }
  return out;
}
