// framesFromEvent on events as the service writes them and as Dapr delivers them; no service
// needed (node --test dist/test/frames.test.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { framesFromEvent, type Frame } from "../src/index.js";

function single(seq: string, ct: string, data: string): string {
  return (
    `{"specversion":"1.0","id":"5f0c","source":"websocketmanager","type":"websocketmanager.frame",` +
    `"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"${ct}","connectionid":"feed-1",` +
    `"connectionurl":"wss://example.com/feed","receivedat":"2026-12-06T10:00:00.000001Z","sequence":"${seq}",${data}}`
  );
}

function batchEvent(first: string, last: string, count: string, data: string): string {
  return (
    `{"specversion":"1.0","id":"9a1e","source":"websocketmanager","type":"websocketmanager.frame.batch",` +
    `"time":"2026-12-06T10:00:00.000001Z","datacontenttype":"application/json","connectionid":"feed-1",` +
    `"connectionurl":"wss://example.com/feed","firstsequence":"${first}","lastsequence":"${last}","count":${count},"data":${data}}`
  );
}

// The batch of docs/architecture.md.
const docBatch = `[{"sequence":"41","receivedat":"2026-12-06T10:00:00.000001Z","data":{"px":1.5}},
           {"sequence":"42","receivedat":"2026-12-06T10:00:00.000002Z","data":"hello"},
           {"sequence":"43","receivedat":"2026-12-06T10:00:00.000003Z","data_base64":"AAEC"}]`;

const at = (us: number) => `2026-12-06T10:00:00.00000${us}Z`;
const base = (seq: bigint, us = 1) => ({ connectionId: "feed-1", sequence: seq, receivedAt: at(us) });
const docFrames: Frame[] = [
  { ...base(41n, 1), kind: "json", data: { px: 1.5 }, raw: `{"px":1.5}` },
  { ...base(42n, 2), kind: "text", data: "hello" },
  { ...base(43n, 3), kind: "binary", data: new Uint8Array([0, 1, 2]) },
];
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");

const ok: { name: string; event: unknown; want: Frame[] }[] = [
  {
    name: "JSON frame: keys, order and whitespace kept byte for byte in raw",
    event: single("7", "application/json", `"data":{ "b" : 1,  "a":[1, 2.50], "c":"<&>", "n":12345678901234567890 }`),
    want: [
      {
        ...base(7n),
        kind: "json",
        data: { b: 1, a: [1, 2.5], c: "<&>", n: 12345678901234567890 },
        raw: `{ "b" : 1,  "a":[1, 2.50], "c":"<&>", "n":12345678901234567890 }`,
      },
    ],
  },
  {
    name: "JSON frame that is a JSON string",
    event: single("7", "application/json", `"data":"quoted"`),
    want: [{ ...base(7n), kind: "json", data: "quoted", raw: `"quoted"` }],
  },
  {
    name: "text frame",
    event: single("8", "text/plain", `"data":"hello \\"you\\" <&> \\u00e9\\n"`),
    want: [{ ...base(8n), kind: "text", data: 'hello "you" <&> é\n' }],
  },
  {
    name: "binary frame",
    event: single("9", "application/octet-stream", `"data_base64":"AAEC/w=="`),
    want: [{ ...base(9n), kind: "binary", data: new Uint8Array([0, 1, 2, 255]) }],
  },
  {
    name: "text that is not UTF-8 travels as data_base64",
    event: single("10", "application/octet-stream", `"data_base64":"${b64(new Uint8Array([0x63, 0x61, 0x66, 0xe9]))}"`),
    want: [{ ...base(10n), kind: "binary", data: new Uint8Array([0x63, 0x61, 0x66, 0xe9]) }],
  },
  {
    name: "empty binary frame without data_base64 (older services)",
    event: single("11", "application/octet-stream", `"x":1`),
    want: [{ ...base(11n), kind: "binary", data: new Uint8Array() }],
  },
  {
    name: "sequence past 2^53",
    event: single("18446744073709551615", "text/plain", `"data":"x"`),
    want: [{ ...base(18446744073709551615n), kind: "text", data: "x" }],
  },
  { name: "batch of mixed frames", event: batchEvent("41", "43", "3", docBatch), want: docFrames },
  { name: "batch as bytes", event: new TextEncoder().encode(batchEvent("41", "43", "3", docBatch)), want: docFrames },
  {
    name: "batch as a parsed object: raw is re-serialised",
    event: JSON.parse(batchEvent("41", "43", "3", docBatch.replace(`{"px":1.5}`, `{ "px" : 1.5 }`))),
    want: docFrames,
  },
  {
    name: "batch with a gap between first and last",
    event: batchEvent(
      "1",
      "5",
      "2",
      `[{"sequence":"1","receivedat":"${at(1)}","data":null},{"sequence":"5","receivedat":"${at(2)}","data":12}]`,
    ),
    want: [
      { ...base(1n, 1), kind: "json", data: null, raw: "null" },
      { ...base(5n, 2), kind: "json", data: 12, raw: "12" },
    ],
  },
  {
    name: "reply frame (include_replies): marked, with the sequence of the frame before it",
    event: single("8", "text/plain", `"reply":true,"data":"pong"`),
    want: [{ ...base(8n), reply: true, kind: "text", data: "pong" }],
  },
  {
    name: "reply false is no reply",
    event: single("8", "text/plain", `"reply":false,"data":"x"`),
    want: [{ ...base(8n), kind: "text", data: "x" }],
  },
  {
    name: "batch with replies repeating the previous sequence, also as its first element",
    event: batchEvent(
      "4",
      "6",
      "5",
      `[{"sequence":"4","receivedat":"${at(1)}","reply":true,"data":"r0"},{"sequence":"5","receivedat":"${at(2)}","data":1},` +
        `{"sequence":"5","receivedat":"${at(3)}","reply":true,"data":"r1"},{"sequence":"5","receivedat":"${at(4)}","reply":true,"data_base64":"AA=="},` +
        `{"sequence":"6","receivedat":"${at(5)}","data":2}]`,
    ),
    want: [
      { ...base(4n, 1), reply: true, kind: "text", data: "r0" },
      { ...base(5n, 2), kind: "json", data: 1, raw: "1" },
      { ...base(5n, 3), reply: true, kind: "text", data: "r1" },
      { ...base(5n, 4), reply: true, kind: "binary", data: new Uint8Array([0]) },
      { ...base(6n, 5), kind: "json", data: 2, raw: "2" },
    ],
  },
  {
    name: "rawPayload subscription: daprd's envelope is taken off",
    event:
      `{"id":"x","specversion":"1.0","datacontenttype":"application/octet-stream","source":"Dapr","type":"com.dapr.event.sent",` +
      `"topic":"frames","pubsubname":"pubsub","data_base64":"${b64(batchEvent("41", "43", "3", docBatch))}"}`,
    want: docFrames,
  },
  {
    name: "event serialised once more as a JSON string",
    event: JSON.stringify(single("7", "text/plain", `"data":"hi"`)),
    want: [{ ...base(7n), kind: "text", data: "hi" }],
  },
  {
    name: "batch data serialised once more as a JSON string",
    event: batchEvent("41", "43", "3", JSON.stringify(docBatch)),
    want: docFrames,
  },
  {
    name: "re-serialised by daprd: keys sorted, attributes added, numbers for count and a sequence",
    event:
      `{"connectionid":"feed-1","count":3,"data":[{"data":{"px":1.5},"receivedat":"${at(1)}","sequence":41},` +
      `{"data":"hello","receivedat":"${at(2)}","sequence":"42"},{"data_base64":"AAEC","receivedat":"${at(3)}","sequence":"43"}],` +
      `"datacontenttype":"application/json","firstsequence":"41","id":"x","lastsequence":"43","pubsubname":"pubsub",` +
      `"source":"websocketmanager","specversion":"1.0","topic":"frames","traceid":"","type":"websocketmanager.frame.batch"}`,
    want: docFrames,
  },
];

for (const tt of ok) {
  test(`framesFromEvent: ${tt.name}`, () => {
    assert.deepEqual(framesFromEvent(tt.event), tt.want);
  });
}

const el = (seq: string, rest = `"data":1`) => `{"sequence":"${seq}","receivedat":"${at(1)}",${rest}}`;

const bad: { name: string; event: unknown; err: RegExp }[] = [
  { name: "another event type", event: `{"type":"websocketmanager.connection.connected","data":{}}`, err: /"websocketmanager.connection.connected" is not a frame event/ },
  { name: "no type", event: `{"data":1}`, err: /no type/ },
  { name: "not JSON", event: `{"type":`, err: /JSON/ },
  { name: "not an object", event: `[1]`, err: /not a JSON object/ },
  { name: "null", event: null, err: /not a JSON object/ },
  { name: "bytes that are not UTF-8", event: new Uint8Array([0x7b, 0xff]), err: /framesFromEvent/ },
  { name: "nested too deep", event: `"\\"{}\\""`, err: /nested too deep/ },
  { name: "bad count", event: batchEvent("41", "43", "2", docBatch), err: /count 2, but 3 frames/ },
  { name: "count not a number", event: batchEvent("41", "43", `"three"`, docBatch), err: /count "three"/ },
  { name: "empty batch", event: batchEvent("1", "1", "0", `[]`), err: /count 0, but 0 frames/ },
  { name: "batch data not an array", event: batchEvent("1", "1", "1", `{"sequence":"1"}`), err: /not an array/ },
  { name: "null element", event: batchEvent("1", "1", "1", `[null]`), err: /frame 0 is not an object/ },
  { name: "sequences not ascending", event: batchEvent("2", "1", "2", `[${el("2")},${el("1")}]`), err: /do not ascend: 1 after 2/ },
  { name: "repeated sequence", event: batchEvent("1", "1", "2", `[${el("1")},${el("1")}]`), err: /do not ascend/ },
  { name: "a reply's sequence going back", event: batchEvent("2", "1", "2", `[${el("2")},${el("1", `"reply":true,"data":1`)}]`), err: /do not ascend: 1 after 2/ },
  { name: "repeated sequence marked reply false", event: batchEvent("1", "1", "2", `[${el("1")},${el("1", `"reply":false,"data":1`)}]`), err: /do not ascend/ },
  { name: "reply not a boolean", event: single("1", "text/plain", `"reply":"yes","data":"a"`), err: /reply "yes" is not a boolean/ },
  { name: "reply not a boolean in a batch", event: batchEvent("1", "1", "1", `[${el("1", `"reply":1,"data":1`)}]`), err: /batch frame 0: reply 1 is not a boolean/ },
  { name: "firstsequence does not match", event: batchEvent("40", "43", "3", docBatch), err: /40\/43, but its frames are 41..43/ },
  { name: "lastsequence does not match", event: batchEvent("41", "44", "3", docBatch), err: /41\/44/ },
  { name: "bad base64 in a batch", event: batchEvent("1", "1", "1", `[${el("1", `"data_base64":"AA=A"`)}]`), err: /batch frame 0: data_base64/ },
  { name: "bad base64", event: single("1", "application/octet-stream", `"data_base64":"not base64!"`), err: /data_base64 is not standard base64/ },
  { name: "base64 without padding", event: single("1", "application/octet-stream", `"data_base64":"AAE"`), err: /base64/ },
  { name: "base64 with bits past the data", event: single("1", "application/octet-stream", `"data_base64":"AB=="`), err: /base64/ },
  { name: "both data and data_base64", event: single("1", "text/plain", `"data":"a","data_base64":"AA=="`), err: /both data and data_base64/ },
  { name: "no data", event: single("1", "text/plain", `"x":1`), err: /neither data nor data_base64/ },
  { name: "batch element without data", event: batchEvent("1", "1", "1", `[{"sequence":"1","receivedat":"${at(1)}"}]`), err: /frame 0: needs one of/ },
  { name: "sequence not a number", event: single("x1", "text/plain", `"data":"a"`), err: /sequence "x1" is not an unsigned integer/ },
  { name: "negative sequence", event: single("-1", "text/plain", `"data":"a"`), err: /sequence/ },
  { name: "sequence past 2^64", event: single("18446744073709551616", "text/plain", `"data":"a"`), err: /sequence/ },
  { name: "fractional sequence", event: `{"type":"websocketmanager.frame","sequence":1.5,"receivedat":"${at(1)}","data":1}`, err: /sequence 1.5/ },
  { name: "bad receivedat", event: `{"type":"websocketmanager.frame","sequence":"1","receivedat":"yesterday","data":1}`, err: /receivedat "yesterday"/ },
  { name: "no receivedat", event: `{"type":"websocketmanager.frame","sequence":"1","data":1}`, err: /no receivedat/ },
];

for (const tt of bad) {
  test(`framesFromEvent rejects: ${tt.name}`, () => {
    assert.throws(() => framesFromEvent(tt.event), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /^framesFromEvent: /);
      assert.match(e.message, tt.err);
      return true;
    });
  });
}

// Untrusted input: whatever a mangled event holds, framesFromEvent returns frames in ascending
// order or throws an Error, nothing else.
test("framesFromEvent on mangled events never fails otherwise", () => {
  const seeds = [
    batchEvent("41", "43", "3", docBatch),
    single("7", "application/json", `"data":{ "b" : [1, "x"] }`),
    batchEvent("5", "6", "3", `[${el("5")},${el("5", `"reply":true,"data":"r"`)},${el("6")}]`),
  ];
  let seed = 1;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const alphabet = `{}[]",:\\ 0123456789abcdefAZ=+/-.`;
  for (let i = 0; i < 5000; i++) {
    let s = seeds[i % seeds.length]!;
    for (let k = 0, n = 1 + rand(4); k < n; k++) {
      const p = rand(s.length);
      const op = rand(3);
      if (op === 0) s = s.slice(0, p) + s.slice(p + 1);
      else if (op === 1) s = s.slice(0, p) + alphabet[rand(alphabet.length)] + s.slice(p);
      else s = s.slice(0, p) + alphabet[rand(alphabet.length)] + s.slice(p + 1);
    }
    let frames: Frame[];
    try {
      frames = framesFromEvent(s);
    } catch (e) {
      assert.ok(e instanceof Error && e.message.startsWith("framesFromEvent: "), `${s}: ${e}`);
      continue;
    }
    assert.ok(frames.length > 0, s);
    for (let j = 1; j < frames.length; j++) {
      const [prev, cur] = [frames[j - 1]!, frames[j]!];
      assert.ok(cur.sequence > prev.sequence || (cur.sequence === prev.sequence && cur.reply === true), s);
    }
    for (const f of frames) if (f.kind === "json") assert.deepEqual(JSON.parse(f.raw), f.data, s);
  }
});
