// Shared helpers of the doctor console: API calls with CSRF, safe DOM building, a reconnecting WebSocket.
// Everything that comes from the server is put into the page with textContent, never innerHTML.

export const API = "/api/staff";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `请求失败（${status}）`);
    this.status = status;
    this.code = (body && body.code) || "http_" + status;
    this.detail = (body && body.detail) || {};
  }
}

export function csrfToken() {
  const match = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("csrftoken="));
  return match ? decodeURIComponent(match.slice("csrftoken=".length)) : "";
}

/** fetch() a staff API path with the session cookie and the CSRF token; the envelope's message on error. */
export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  } catch (err) {
    throw new ApiError(0, { code: "network", message: "网络连接失败，请稍后重试" });
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

/** el("li", {class: "x", dataset: {seq: 3}}, "text", child) — strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A short notice at the top of the page: errors from the API (their `message`), or confirmations. */
export function notify(text, kind = "error") {
  let box = $("#console-notice");
  if (!box) {
    box = el("div", { id: "console-notice", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = el("p", { class: `notice notice-${kind}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

export function showError(err) {
  notify(err && err.message ? err.message : "操作失败，请稍后重试", "error");
}

export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "Asia/Shanghai" });
}

export function formatDateTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("zh-CN", { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false, timeZone: "Asia/Shanghai" });
}

export function formatWait(sinceIso, now = Date.now()) {
  if (!sinceIso) return "—";
  const minutes = Math.max(0, Math.floor((now - new Date(sinceIso).getTime()) / 60000));
  if (minutes < 1) return "不到1分钟";
  if (minutes < 60) return `${minutes}分钟`;
  return `${Math.floor(minutes / 60)}小时${minutes % 60}分钟`;
}

export function wsUrl(path) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}

const CLOSE_NOT_AUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;
const STATE_TEXT = { open: "实时连接正常", connecting: "正在连接…", closed: "连接已断开，正在重连",
  refused: "未建立实时连接" };

/**
 * A WebSocket that reconnects with exponential backoff (0.5 s … 15 s, with jitter) and pings every 25 s.
 * `url` is a function so each attempt can carry fresh query parameters (e.g. last_seq).
 * A refusal by the server (4401 not signed in, 4403 not a party) is not retried: state "refused" until
 * reconnectNow() (e.g. after the doctor has accepted a pool visit).
 * The state ("connecting" | "open" | "closed" | "refused") is mirrored on `stateEl.dataset.ws` for people and tests.
 */
export class LiveSocket {
  constructor({ url, onFrame, onOpen, onState, stateEl }) {
    Object.assign(this, { url, onFrame, onOpen, onState, stateEl });
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.connect();
  }

  connect() {
    this.setState("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.opened = (this.opened || 0) + 1;
      this.setState("open");
      this.pinger = setInterval(() => this.send({ type: "ping" }), 25000);
      if (this.onOpen) this.onOpen();
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (frame && frame.type !== "pong") this.onFrame(frame);
    };
    ws.onclose = (event) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      if (event.code === CLOSE_NOT_AUTHENTICATED) notify("登录已过期，请重新登录");
      if (event.code === CLOSE_NOT_AUTHENTICATED || event.code === CLOSE_FORBIDDEN) {
        this.setState("refused");
        return;
      }
      this.setState("closed");
      if (!this.stopped) this.retry();
    };
  }

  retry() {
    const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    clearTimeout(this.timer);
    this.attempt = 0;
    if (this.ws.readyState === WebSocket.CLOSED) this.connect();
  }

  get isOpen() {
    return this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  setState(state) {
    this.state = state;
    if (this.stateEl) {
      this.stateEl.dataset.ws = state;
      this.stateEl.textContent = STATE_TEXT[state];
    }
    if (this.onState) this.onState(state);
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }
}

export function labels() {
  const node = document.getElementById("console-labels");
  return node ? JSON.parse(node.textContent) : {};
}
