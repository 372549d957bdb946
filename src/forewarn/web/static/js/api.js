// The page's only way to the service: same-origin calls to the /v1 API with the party's bearer token.
// The token lives in this tab's sessionStorage; nothing else is stored.

const TOKEN_KEY = "forewarn.token";

export class ApiError extends Error {
  constructor(status, body) {
    const err = body && body.error ? body.error : null;
    super(err ? `${err.code}: ${err.message}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Decode a JWT's claims (no verification: the service verifies; the page only reads sub, scope, exp). */
export function claims(token) {
  const part = token.split(".")[1] || "";
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  return JSON.parse(atob(b64));
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Exchange client credentials for a token (OAuth2 client credentials grant). */
export async function signIn(clientId, clientSecret) {
  const body = new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret });
  const r = await fetch("/v1/token", { method: "POST", body });
  const doc = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, doc);
  return doc.access_token;
}

/** Call the API with the session's token; JSON in and out. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const doc = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401) window.dispatchEvent(new CustomEvent("forewarn:unauthenticated", { detail: doc }));
  if (!r.ok) throw new ApiError(r.status, doc);
  return doc;
}

/** All deliveries of the inbox, paging with ``after`` (oldest first). */
export async function fullInbox() {
  const out = [];
  let after = 0;
  for (;;) {
    const batch = await api(`/v1/inbox?after=${after}&limit=1000`);
    out.push(...batch);
    if (batch.length < 1000) return out;
    after = batch[batch.length - 1].seq;
  }
}

/**
 * Read a server-sent event stream (by default the deliveries of one channel; ``path`` picks another, e.g. the
 * moving tracks at /v1/tracks/stream) with the bearer token (EventSource cannot send headers, so
 * this parses text/event-stream from fetch). Calls onEvent({id, event, data}) per event; reconnects with
 * Last-Event-ID after a drop. Returns a function that stops it.
 */
export function openStream(channel, onEvent, onState, path = `/v1/stream?channel=${channel}`) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;

  async function run() {
    while (!stopped) {
      try {
        const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const r = await fetch(path, { headers, signal: controller.signal });
        if (!r.ok || !r.body) throw new ApiError(r.status, null);
        onState(true);
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const ev = { id: null, event: "message", data: "" };
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const i = line.indexOf(":");
              const field = i < 0 ? line : line.slice(0, i);
              const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
              if (field === "id") ev.id = val;
              else if (field === "event") ev.event = val;
              else if (field === "data") ev.data += (ev.data ? "\n" : "") + val;
            }
            if (ev.id) lastId = ev.id;
            if (ev.data) {
              try { onEvent({ ...ev, data: JSON.parse(ev.data) }); } catch (e) { console.warn("bad event", e); }
            }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState(false);
      if (!stopped) await new Promise((res) => setTimeout(res, 3000));
    }
  }
  run();
  return () => { stopped = true; controller.abort(); onState(false); };
}
