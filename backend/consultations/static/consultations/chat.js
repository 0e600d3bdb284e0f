// The consultation's chat over /ws/consultations/<id>/?last_seq=N.
// Each seq is shown once; unacknowledged outgoing messages are kept and resent (same client_msg_id) after a
// reconnect. While the socket is down, the same operations go over HTTP (the server is idempotent on
// client_msg_id), so nothing is lost either way.
import { $, API, LiveSocket, api, el, formatTime, newId, showError, wsUrl } from "./common.js";

const ROLE = { patient: "患者", doctor: "医生", system: "系统" };
const VIEW = { surface: "舌面", underside: "舌下" };
const RECALL_MS = 2 * 60 * 1000;
const OFFLINE_TICK_MS = 5000;
const REFUSED_POLL_EVERY = 3; // ticks: a pool visit (socket refused until accepted) is read every 15 s
const TYPING_EVERY_MS = 3000;
const TYPING_SHOW_MS = 4000;

export class Chat {
  constructor({ consultationId, onStatus }) {
    this.base = `${API}/consultations/${consultationId}`;
    this.id = consultationId;
    this.onStatus = onStatus;
    this.list = $("#messages");
    this.input = $("#chat-input");
    this.typingEl = $("#typing");
    this.bySeq = new Map(); // seq → <li>
    this.pending = new Map(); // client_msg_id → {frame, node, posting}
    this.lastSeq = 0; // every seq up to this one is on the page
    this.lastTypingSent = 0;
    this.ticks = 0;
    this.live = false; // past the history: a new system message means the visit's state changed
    this.bindForm();
  }

  async start() {
    await this.poll();
    this.live = true;
    this.socket = new LiveSocket({
      url: () => wsUrl(`/ws/consultations/${this.id}/?last_seq=${this.lastSeq}`),
      onFrame: (frame) => this.onFrame(frame),
      onOpen: () => this.flush(),
      stateEl: $("#ws-state"),
    });
    setInterval(() => this.offlineTick(), OFFLINE_TICK_MS);
  }

  /** A pool visit's chat refuses the socket until this doctor has accepted it (HTTP polling meanwhile). */
  visitChanged(visit) {
    if (this.socket && this.socket.state === "refused" && !visit.is_pool) this.socket.reconnectNow();
  }

  setOpen(open) {
    for (const node of [this.input, $("#btn-send"), $("#btn-tongue")]) node.disabled = !open;
    this.input.placeholder = open ? "输入消息，Enter 发送，Shift+Enter 换行" : "当前状态不能发送消息";
  }

  bindForm() {
    $("#chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = this.input.value.trim();
      if (!body) return;
      this.send({ kind: "text", body });
      this.input.value = "";
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("#chat-form").requestSubmit();
      }
    });
    this.input.addEventListener("input", () => {
      if (Date.now() - this.lastTypingSent < TYPING_EVERY_MS || !this.socket) return;
      this.lastTypingSent = Date.now();
      this.socket.send({ type: "typing" });
    });
    $("#btn-tongue").addEventListener("click", () =>
      this.send({ kind: "tongue_request", body: "请拍摄舌面及舌下照片", payload: { views: ["surface", "underside"] } }));
  }

  // ---- incoming -------------------------------------------------------------------------------
  onFrame(frame) {
    if (frame.type === "message") this.show(frame.data);
    else if (frame.type === "ack") this.acked(frame.client_msg_id, frame.seq);
    else if (frame.type === "typing" && frame.role !== "doctor") this.showTyping();
    else if (frame.type === "status" && this.onStatus) this.onStatus(frame.data);
    else if (frame.type === "error") this.failed(frame);
  }

  show(m) {
    const known = this.bySeq.get(m.seq);
    if (known) {
      if (known.dataset.provisional) {
        delete known.dataset.provisional; // acknowledged earlier: now the stored message itself
        this.fill(known, m);
      } else if (m.recalled) this.markRecalled(m.seq);
      return;
    }
    const mine = m.client_msg_id && this.pending.get(m.client_msg_id);
    const node = mine ? mine.node : el("li");
    if (mine) this.pending.delete(m.client_msg_id);
    this.fill(node, m);
    this.place(node, m.seq);
    if (m.kind === "recall" && m.payload) this.markRecalled(m.payload.seq);
    if (m.kind === "system" && this.live && this.onStatus) this.onStatus();
    if (m.sender_role === "patient") this.typingEl.hidden = true;
  }

  fill(node, m) {
    node.className = `msg msg-${m.sender_role === "system" || m.kind === "recall" ? "system" : m.sender_role}`;
    node.dataset.seq = m.seq;
    node.dataset.kind = m.kind;
    const who = m.sender_role === "system" ? "" : `${ROLE[m.sender_role] || m.sender_role} · `;
    const meta = el("span", { class: "meta" }, `${who}${formatTime(m.created_at)}`);
    const left = RECALL_MS - (Date.now() - new Date(m.created_at).getTime());
    if (m.sender_role === "doctor" && ["text", "image"].includes(m.kind) && !m.recalled && left > 0) {
      const button = el("button", { type: "button", class: "recall", onclick: () => this.recall(m.seq) }, "撤回");
      meta.append(button);
      setTimeout(() => button.remove(), left);
    }
    node.replaceChildren(el("div", { class: "bubble" }, this.content(m)), meta);
    if (m.recalled) this.markRecalled(m.seq, node);
  }

  content(m) {
    const p = m.payload || {};
    if (m.kind === "image") return p.url ? el("img", { src: p.url, alt: "图片", loading: "lazy" }) : "[图片]";
    if (m.kind === "tongue_request") {
      return `已请患者拍摄舌象：${(p.views || []).map((v) => VIEW[v] || v).join("、")}`;
    }
    if (m.kind === "tongue_photos") {
      const urls = p.urls || {};
      return [el("span", {}, "舌象照片"), el("div", { class: "tongue" },
        Object.entries(urls).map(([view, url]) => el("figure", {}, el("img", { src: url, alt: VIEW[view] || view }),
          el("figcaption", {}, VIEW[view] || view))))];
    }
    return m.body;
  }

  place(node, seq) {
    const after = [...this.list.children].find((li) => !li.dataset.seq || Number(li.dataset.seq) > seq);
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 60;
    if (after && after !== node) this.list.insertBefore(node, after);
    else if (!after) this.list.append(node);
    this.bySeq.set(seq, node);
    while (this.bySeq.has(this.lastSeq + 1)) this.lastSeq += 1;
    if (atBottom || node.classList.contains("msg-doctor")) this.list.scrollTop = this.list.scrollHeight;
  }

  markRecalled(seq, node = this.bySeq.get(seq)) {
    if (!node || node.classList.contains("recalled")) return;
    node.classList.add("recalled");
    $(".bubble", node).replaceChildren("已撤回");
    const button = $("button.recall", node);
    if (button) button.remove();
  }

  acked(clientMsgId, seq) {
    const mine = this.pending.get(clientMsgId);
    if (!mine || this.bySeq.has(seq)) return;
    this.pending.delete(clientMsgId);
    const { kind, body, payload } = mine.frame;
    this.fill(mine.node, { seq, kind, body, payload, sender_role: "doctor", created_at: new Date().toISOString() });
    mine.node.dataset.provisional = "1";
    this.place(mine.node, seq);
  }

  failed(frame) {
    const mine = frame.client_msg_id && this.pending.get(frame.client_msg_id);
    if (mine) {
      this.pending.delete(frame.client_msg_id);
      mine.node.classList.replace("pending", "failed");
      $(".meta", mine.node).textContent = `发送失败：${frame.message || ""}`;
    }
    showError(frame);
  }

  showTyping() {
    this.typingEl.hidden = false;
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => { this.typingEl.hidden = true; }, TYPING_SHOW_MS);
  }

  // ---- outgoing -------------------------------------------------------------------------------
  send({ kind, body = "", payload = {} }) {
    const frame = { type: "message", client_msg_id: newId(), kind, body, payload };
    const node = el("li", { class: "msg msg-doctor pending", dataset: { kind, clientMsgId: frame.client_msg_id } },
      el("div", { class: "bubble" }, this.content({ kind, body, payload })), el("span", { class: "meta" }, "发送中…"));
    this.list.append(node);
    this.list.scrollTop = this.list.scrollHeight;
    this.pending.set(frame.client_msg_id, { frame, node, posting: false });
    if (this.socket) this.socket.send(frame);
  }

  flush() {
    for (const { frame } of this.pending.values()) this.socket.send(frame);
  }

  recall(seq) {
    if (this.socket && this.socket.send({ type: "recall", seq })) return;
    api("POST", `${this.base}/messages/${seq}/recall`).then(() => this.poll()).catch(showError);
  }

  // ---- without a socket: the same over HTTP -------------------------------------------------------
  async poll() {
    try {
      const messages = await api("GET", `${this.base}/messages?after_seq=${this.lastSeq}`);
      for (const m of messages) this.show(m);
      if (messages.length) this.lastSeq = Math.max(this.lastSeq, ...messages.map((m) => m.seq));
    } catch (err) {
      showError(err);
    }
  }

  offlineTick() {
    if (this.socket.isOpen || this.socket.state === "connecting") return;
    this.ticks += 1;
    if (this.socket.state !== "refused" || this.ticks % REFUSED_POLL_EVERY === 0) this.poll();
    for (const [id, item] of this.pending) {
      if (item.posting) continue;
      item.posting = true;
      const { kind, body, payload } = item.frame;
      api("POST", `${this.base}/messages`, { kind, body, payload, client_msg_id: id })
        .then((m) => this.show(m))
        .catch((err) => (err.status ? this.failed({ ...err, message: err.message, client_msg_id: id }) : null))
        .finally(() => { item.posting = false; });
    }
  }
}
