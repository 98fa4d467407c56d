// Where the client may connect, and therefore where its token may go.
//
// Security decision (issue 9): the token in the connect URL is a bearer credential, so this
// client connects ONLY to the host that served the page (ws:// or wss:// of location.host).
// An endpoint on any other host, whether typed in the sign-in form or passed as ?endpoint= to a
// signed-in tab, is refused outright: no token, no user name, no connection at all. We chose
// refusal over a window.confirm("send your token to X?") because
//   1. a crafted link with ?endpoint= is exactly how a phishing page gets a click-through, and a
//      dialog naming a host is something most people confirm without being able to judge it;
//   2. the page's Content-Security-Policy (connect-src 'self' in web/index.html) makes the
//      browser block a WebSocket to any other host anyway, so a confirmed connection could
//      never open: refusing says so plainly instead of failing later and obscurely.
// The endpoint setting still chooses the path (the stage, e.g. /prod or /dev) and ws/wss on the
// page's own host. To use the client with an API on another host, serve web/ from that host (or
// change this check and the CSP together, deliberately).

/** The page's own host ("127.0.0.1:3001"), or null when the page was not served over HTTP(S). */
export function pageHost() {
  return location.protocol === "http:" || location.protocol === "https:" ? location.host : null;
}

/** The WebSocket endpoint of the server that served this page (API Gateway's stage path). */
export function defaultEndpoint() {
  const host = pageHost();
  if (!host) return "";
  return `${location.protocol === "https:" ? "wss" : "ws"}://${host}/prod`;
}

/**
 * May the client connect (and send its token) to `raw`?
 * Returns {ok: true, url} (normalised) or {ok: false, reason} (a sentence to show the user).
 */
export function checkEndpoint(raw) {
  const host = pageHost();
  if (!host) {
    return { ok: false, reason: "Open the client from the server that serves it (e.g. http://127.0.0.1:3001/)." };
  }
  let url;
  try {
    url = new URL(String(raw ?? "").trim());
  } catch {
    return { ok: false, reason: "The endpoint is not a valid URL (expected ws://host/stage)." };
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    return { ok: false, reason: "The endpoint must start with ws:// or wss://." };
  }
  if (url.host !== host) {
    return {
      ok: false,
      reason: `Refused to connect to ${url.host}: this page only connects to its own host (${host}), so your token never goes anywhere else.`,
    };
  }
  if (location.protocol === "https:" && url.protocol !== "wss:") {
    return { ok: false, reason: "A page served over https connects with wss:// only." };
  }
  if (url.username || url.password) {
    return { ok: false, reason: "The endpoint must not contain credentials." };
  }
  url.hash = "";
  return { ok: true, url: url.toString() };
}
