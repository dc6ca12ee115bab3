// A page that follows one connection's frames live with the Connect protocol (connect-web) on
// the service's HTTP port, and lists each frame as it arrives. Parameters, from the query
// string or the fragment (the fragment, which the browser never sends to the page's server,
// is the place for the token):
//   url     the service's HTTP port, e.g. http://127.0.0.1:5001 (its --cors-allowed-origins
//           must list this page's origin)
//   id      the connection id
//   token   the API token, when the service needs one
//   from    optional: start with the retained frames from this sequence on
//   replies optional: "1" to list the frames that answered a Send too
// It imports only the browser-safe entry points of the package (the main entry also carries
// the Node transport).
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { WebSocketManager } from "@websocketmanager/client/generated/websocketmanager_pb.js";
import { watch, type WatchedFrame } from "@websocketmanager/client/watch";

// The list keeps the newest frames only, so that a busy connection does not grow the page forever.
const MAX_ITEMS = 1000;

function params(): URLSearchParams {
  const p = new URLSearchParams(location.search);
  for (const [k, v] of new URLSearchParams(location.hash.slice(1))) p.set(k, v);
  return p;
}

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

// The item of a frame. Frames are untrusted text: set as text, never as HTML.
function item(f: WatchedFrame): HTMLLIElement {
  const li = document.createElement("li");
  switch (f.payload.case) {
    case "text":
      li.dataset.sequence = String(f.sequence);
      li.textContent = `${f.sequence}: ${f.payload.value}`;
      break;
    case "binary":
      li.dataset.sequence = String(f.sequence);
      li.textContent = `${f.sequence}: ${f.payload.value.length} bytes (binary)`;
      break;
    case "missing": {
      const g = f.payload.value;
      li.className = "gap";
      li.textContent = `frames ${g.fromSequence}–${g.toSequence} missing (${g.reason})`;
      break;
    }
    default:
      li.textContent = `${f.sequence}: (a frame this page does not know)`;
  }
  if (f.reply) li.classList.add("reply");
  return li;
}

async function main(): Promise<void> {
  const p = params();
  const status = document.getElementById("status")!;
  const list = document.getElementById("frames")!;
  const setStatus = (state: string, text: string) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  const url = p.get("url");
  const id = p.get("id");
  if (!url || !id) {
    setStatus("error", "Give the service URL and the connection id: ?url=http://127.0.0.1:5001&id=<connection id>#token=<token>");
    return;
  }
  const from = p.get("from");
  const transport = createConnectTransport({ baseUrl: url, interceptors: [bearer(p.get("token") ?? "")] });
  const client = createClient(WebSocketManager, transport);
  setStatus("watching", `Watching ${id}`);
  try {
    const frames = watch(client, id, {
      fromSequence: from ? BigInt(from) : undefined,
      includeReplies: p.get("replies") === "1",
      onRetry: (r) => setStatus("retrying", `Watching ${id} again from ${r.fromSequence ?? "now"} (${r.error?.message ?? "stream ended"})`),
    });
    for await (const f of frames) {
      if (status.dataset.state !== "watching") setStatus("watching", `Watching ${id}`);
      list.append(item(f));
      while (list.childElementCount > MAX_ITEMS) list.firstElementChild!.remove();
    }
  } catch (e) {
    setStatus("error", `The watch ended: ${e instanceof Error ? e.message : String(e)}`);
  }
}

void main();
