// The connection: one WebSocket to the page's own host, the wait for `welcome`, reconnects with
// exponential backoff, the holds that keep it offline, and the token in the connect URL
// (fetched from the local runtime, renewed when the server says it expired). It knows nothing of
// rooms or frames: the wiring (app.js) passes hooks into the session and the view.

import { checkEndpoint } from "./endpoint.js";
import { renewalDecision } from "./errors.js";

const WELCOME_WAIT_MS = 5000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

function parseExpiry(value) {
  if (typeof value === "number") return value > 1e12 ? value : value * 1000;
  if (typeof value === "string") return Date.parse(value) || 0;
  return 0;
}

export class Connection {
  /**
   * hooks: user() (null once signed out), rooms() (for the connect URL), receive(data),
   * welcomed() (the session is online), online() / missedWelcome() / closed() (tell the session),
   * status(conn, detail, canRetryNow), toast(text, kind, code).
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.endpoint = null;
    this.manualToken = "";
    this.devToken = null; // {token, expiresAtMs}
    this.auth = "unknown"; // "token" | "none" once the local token endpoint has answered
    this.ws = null;
    this.attempt = 0;
    this.everOnline = false;
    this.retryTimer = null;
    this.retryAt = 0;
    this.welcomeTimer = null;
    this.holds = new Set(); // reasons not to (re)connect: "network", "debug", "token", "endpoint"
    this.renewing = false; // the server said token_expired: reconnect at once with a fresh token
    this.lastRenewal = 0;
    /** The socket as the session sees it. */
    this.link = {
      isOpen: () => Boolean(this.ws) && this.ws.readyState === WebSocket.OPEN,
      send: (frame) => this.ws.send(JSON.stringify(frame)),
    };
  }

  status(conn, detail = "") {
    this.hooks.status(conn, detail, conn === "reconnecting" && Boolean(this.retryTimer));
  }

  /**
   * A token for the connect URL: the one given in settings, or a dev token from the local runtime
   * (POST /_local/token, same origin). Only ever called for an endpoint checkEndpoint() accepted,
   * i.e. on the page's own host.
   */
  async token() {
    if (this.manualToken) return this.manualToken;
    if (this.auth === "none") return null;
    if (this.devToken && this.devToken.expiresAtMs - Date.now() > 60_000) return this.devToken.token;
    const response = await fetch("/_local/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user_id: this.hooks.user() }),
    });
    if (response.status === 404 || response.status === 405) {
      this.auth = "none"; // the local runtime runs without authentication
      return null;
    }
    if (!response.ok) throw new Error(`the token endpoint answered ${response.status}`);
    const body = await response.json();
    this.auth = "token";
    this.devToken = { token: body.token, expiresAtMs: parseExpiry(body.expires_at) };
    return body.token;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.hooks.user() || this.ws) return;
    if (this.holds.size) {
      this.status("offline");
      return;
    }
    // The one place a connect URL (and so a token) is built: never for another host (endpoint.js).
    const verdict = checkEndpoint(this.endpoint);
    if (!verdict.ok) {
      this.holds.add("endpoint");
      this.status("offline", "endpoint refused");
      this.hooks.toast(verdict.reason);
      return;
    }
    this.status(this.everOnline || this.attempt > 0 ? "reconnecting" : "connecting", this.renewing ? "renewing the token" : "");
    let url;
    try {
      url = new URL(verdict.url);
      const params = new URLSearchParams(url.search);
      const rooms = this.hooks.rooms();
      if (rooms.length) params.set("rooms", rooms.join(","));
      params.set("user_id", this.hooks.user());
      const jwt = await this.token();
      if (jwt) params.set("token", jwt);
      url.search = params.toString();
    } catch (error) {
      this.renewing = false;
      this.scheduleReconnect(error instanceof TypeError && !url ? "invalid endpoint" : "server unreachable");
      return;
    }
    if (!this.hooks.user() || this.ws || this.holds.size) return; // signed out or held while fetching
    this.renewing = false;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.welcomeTimer = setTimeout(() => {
        if (this.ws !== ws || this.hooks.welcomed()) return;
        this.hooks.missedWelcome(); // joined through the connect URL
        this.goOnline();
      }, WELCOME_WAIT_MS);
    });
    ws.addEventListener("message", (event) => this.ws === ws && this.hooks.receive(event.data));
    ws.addEventListener("close", (event) => this.ws === ws && this.onClosed(event));
  }

  /** Welcomed (or the wait for it is over): online, the backoff starts again from the start. */
  goOnline() {
    clearTimeout(this.welcomeTimer);
    this.everOnline = true;
    this.attempt = 0;
    this.status("online");
    this.hooks.online();
  }

  onClosed(event) {
    clearTimeout(this.welcomeTimer);
    this.ws = null;
    this.hooks.closed();
    if (!this.hooks.user()) return;
    if (this.holds.size) this.status("offline", this.holds.has("token") ? "token expired" : "");
    else if (this.renewing) {
      // token_expired: fetch a fresh token and reconnect now; recovery fills any gap as usual.
      this.attempt = 0;
      this.connect();
    } else this.scheduleReconnect(event.code === 1000 || event.code === 4000 ? "" : "connection lost");
  }

  scheduleReconnect(reason) {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // exponential backoff, "equal jitter"
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this.connect(), delay);
    const tick = () => {
      if (!this.retryTimer || this.ws) return;
      const seconds = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      this.status("reconnecting", `${reason ? `${reason}; ` : ""}retrying in ${seconds} s`);
      setTimeout(tick, 1000);
    };
    tick();
  }

  /** The server said the token expired (and closes the connection): renew it and reconnect. */
  renewToken() {
    const decision = renewalDecision(this, Date.now());
    if (!decision) return;
    this.devToken = null;
    if (decision === "hold") {
      this.holds.add("token");
      this.hooks.toast("Your token has expired: sign out and sign in with a new one.", "error", "token_expired");
    } else if (decision === "wait") {
      return;
    } else {
      this.renewing = true;
      this.lastRenewal = Date.now();
    }
    this.close(4001, "token expired");
  }

  close(code, reason) {
    this.ws?.close(code, reason);
  }

  /** Stay offline for `reason` (closing the socket with `code` and `why`) until release(reason). */
  hold(reason, code, why) {
    this.holds.add(reason);
    this.close(code, why);
  }

  /** Lift a hold and connect at once. */
  release(reason) {
    this.holds.delete(reason);
    this.attempt = 0;
    this.connect();
  }
}
