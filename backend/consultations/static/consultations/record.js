// The clinical record (中医门诊病历): a draft saved with PUT, signed, then read-only; a change after signing is an
// amendment with a reason (a new signed version). Diagnoses are picked from the code tables by search.
import { $, API, api, el, formatDateTime, notify, showError } from "./common.js";

const TEXT_FIELDS = ["chief_complaint", "present_illness", "past_history", "allergy_history", "tongue_body",
  "tongue_coating", "tongue_note", "pulse_note", "treatment_principle", "advice"];
const CODE_FIELDS = ["tcm_disease_id", "tcm_syndrome_id", "western_diagnosis_id"];
const SEARCH_DELAY_MS = 200;
const PROBLEMS = {
  version_digest_mismatch: "签名内容的摘要不符（内容被改动）",
  version_signature_invalid: "SM2 签名验证失败",
  version_metadata_mismatch: "版本信息与签名内容不符",
  version_sequence_broken: "签名版本不连续（有版本缺失）",
  record_state_mismatch: "病历状态与签名版本不符",
  record_differs_from_signed_version: "病历内容与最新签名版本不一致",
  record_not_signed: "病历尚未签名",
};
// The record is shown and written once the doctor has accepted the visit: in progress, ended, or terminated for
// offline care (IH-02 needs its record too); the server decides (RECORD_OPEN).
const SHOWN = ["in_progress", "ended", "terminated_for_offline_care"];
const WRITABLE = SHOWN;  // a visit terminated for offline care (IH-02) is recorded and signed too

export class Record {
  constructor({ consultationId }) {
    this.base = `${API}/consultations/${consultationId}/record`;
    this.form = $("#record-form");
    this.record = null;
    this.loading = null;
    this.searches = [...this.form.querySelectorAll(".code-search")].map((box) => new CodeSearch(box));
    this.bind();
  }

  /** Called with each state of the visit: the record is loaded once the visit has been accepted. */
  visitChanged(status) {
    const open = SHOWN.includes(status);
    const writable = WRITABLE.includes(status);
    if (this.record && writable !== this.writable) this.setMode(this.modeOf(this.record, writable));
    this.writable = writable;
    this.form.hidden = !open;
    $("#record-closed").hidden = open;
    if (status === "cancelled") $("#record-closed").textContent = "本次复诊已取消，无需书写病历。";
    if (open && !this.record && !this.loading) this.loading = this.load().finally(() => { this.loading = null; });
  }

  async load() {
    try {
      const [vocab, record] = await Promise.all([api("GET", `${API}/record-vocab`), api("GET", this.base)]);
      this.fillVocab(vocab);
      this.show(record);
    } catch (err) {
      showError(err);
    }
  }

  fillVocab(vocab) {
    for (const name of ["tongue_body", "tongue_coating"]) {
      const select = $(`#r-${name}`);
      select.replaceChildren(select.options[0], ...vocab[name].map((c) => el("option", { value: c.code }, c.label)));
    }
    $("#r-pulse").replaceChildren(...vocab.pulse.map((c) =>
      el("label", {}, el("input", { type: "checkbox", name: "pulse", value: c.code }), c.label)));
  }

  values() {
    const data = {};
    for (const name of TEXT_FIELDS) data[name] = this.form.elements[name].value.trim();
    data.pulse = [...this.form.querySelectorAll("input[name=pulse]:checked")].map((box) => box.value);
    for (const search of this.searches) data[search.field] = search.picked ? search.picked.id : null;
    return data;
  }

  show(record) {
    this.record = record;
    for (const name of TEXT_FIELDS) this.form.elements[name].value = record[name] || "";
    const pulse = new Set(record.pulse || []);
    for (const box of this.form.querySelectorAll("input[name=pulse]")) box.checked = pulse.has(box.value);
    for (const search of this.searches) search.set(record[search.field.replace(/_id$/, "")] || null);
    const signed = record.status === "signed";
    const latest = signed ? record.versions[record.versions.length - 1] : null;
    $("#record-state").textContent = signed ? `已签名 v${record.version}` : "草稿";
    $("#record-state").className = signed ? "badge badge-signed" : "badge";
    $("#signature").hidden = !latest;
    if (latest) {
      $("#sig-version").textContent = String(latest.version);
      $("#sig-time").textContent = `${latest.signed_by} · ${formatDateTime(latest.signed_at)}`;
      $("#sig-digest").textContent = latest.digest;
      $("#sig-reason").hidden = !latest.reason;
      $("#sig-reason").textContent = latest.reason ? `修改原因：${latest.reason}` : "";
    }
    this.setMode(this.modeOf(record, this.writable));
  }

  modeOf(record, writable) {
    if (record.status === "signed") return "signed";
    return writable ? "draft" : "locked";
  }

  showSigned(record) {
    this.show(record);
    $("#record").scrollTop = 0; // the signature block leads the form
  }

  setMode(mode) {
    this.form.dataset.mode = mode;
    const readonly = mode === "signed" || mode === "locked";
    this.form.classList.toggle("readonly", readonly);
    for (const field of this.form.querySelectorAll("input, textarea, select")) {
      if (field.id !== "r-amend-reason") field.disabled = readonly;
    }
    for (const search of this.searches) search.setReadonly(readonly);
    const show = { "btn-save": mode === "draft", "btn-sign": mode === "draft", "btn-verify": mode === "signed",
      "btn-amend": mode === "signed", "btn-amend-submit": mode === "amend", "btn-amend-cancel": mode === "amend" };
    for (const [id, visible] of Object.entries(show)) $(`#${id}`).hidden = !visible;
    $("#amend-box").hidden = mode !== "amend";
    if (mode !== "amend") $("#r-amend-reason").value = "";
    if (mode !== "signed") $("#sig-verify").hidden = true;
  }

  async run(button, method, path, body, done) {
    button.disabled = true;
    try {
      const result = await api(method, path, body);
      if (done) notify(done, "ok");
      return result;
    } catch (err) {
      showError(err);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  async save(button, done = "草稿已保存") {
    const record = await this.run(button, "PUT", this.base, this.values(), done);
    if (record) this.show(record);
    return record;
  }

  async sign(button) {
    if (!(await this.save(button, null))) return;
    const record = await this.run(button, "POST", `${this.base}/sign`, undefined, "病历已签名");
    if (record) this.showSigned(record);
  }

  async amend(button) {
    const reason = $("#r-amend-reason").value.trim();
    if (!reason) {
      notify("请填写修改原因");
      $("#r-amend-reason").focus();
      return;
    }
    const record = await this.run(button, "POST", `${this.base}/amend`, { reason, ...this.values() }, "修改已签名");
    if (record) this.showSigned(record);
  }

  async verify(button) {
    const result = await this.run(button, "GET", `${this.base}/verify`);
    if (!result) return;
    const out = $("#sig-verify");
    out.hidden = false;
    out.className = `verify ${result.valid ? "valid" : "invalid"}`;
    out.textContent = result.valid
      ? `签名有效：${result.versions.length} 个签名版本均验证通过，病历内容与最新版本一致`
      : `签名无效：${PROBLEMS[result.problem] || result.problem}`;
  }

  bind() {
    $("#btn-save").addEventListener("click", (e) => this.save(e.currentTarget));
    $("#btn-sign").addEventListener("click", (e) => this.sign(e.currentTarget));
    $("#btn-verify").addEventListener("click", (e) => this.verify(e.currentTarget));
    $("#btn-amend").addEventListener("click", () => {
      this.setMode("amend");
      $("#r-amend-reason").focus();
    });
    $("#btn-amend-cancel").addEventListener("click", () => this.show(this.record));
    $("#btn-amend-submit").addEventListener("click", (e) => this.amend(e.currentTarget));
  }
}

/** A search box over GET /api/staff/diagnosis-codes?system=…&q=… ; picking a result sets the field's id. */
class CodeSearch {
  constructor(box) {
    this.box = box;
    this.system = box.dataset.system;
    this.field = box.dataset.field;
    this.input = $("input", box);
    this.results = $(".code-results", box);
    this.pickedEl = $(".code-picked", box);
    this.picked = null;
    this.seq = 0;
    this.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(), SEARCH_DELAY_MS);
    });
    this.input.addEventListener("keydown", (event) => this.key(event));
    this.input.addEventListener("blur", () => setTimeout(() => { this.results.hidden = true; }, 150));
  }

  async search() {
    const q = this.input.value.trim();
    if (!q) {
      this.results.hidden = true;
      return;
    }
    const mine = ++this.seq;
    try {
      const params = new URLSearchParams({ system: this.system, q });
      const codes = await api("GET", `${API}/diagnosis-codes?${params}`);
      if (mine === this.seq) this.list(codes);
    } catch (err) {
      showError(err);
    }
  }

  list(codes) {
    this.results.replaceChildren(...(codes.length ? codes.map((c, i) => el("li", {
      role: "option", "aria-selected": i === 0 ? "true" : "false", dataset: { code: c.code },
      onmousedown: (event) => { event.preventDefault(); this.pick(c); },
    }, el("code", {}, c.code), c.name)) : [el("li", { class: "empty" }, "无匹配的诊断")]));
    this.codes = codes;
    this.results.hidden = false;
  }

  key(event) {
    const options = [...this.results.querySelectorAll("li[role=option]")];
    if (this.results.hidden || !options.length) return;
    const at = options.findIndex((o) => o.getAttribute("aria-selected") === "true");
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = (at + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      options.forEach((o, i) => o.setAttribute("aria-selected", i === next ? "true" : "false"));
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.pick(this.codes[Math.max(at, 0)]);
    } else if (event.key === "Escape") {
      this.results.hidden = true;
    }
  }

  pick(code) {
    this.set(code);
    this.results.hidden = true;
  }

  set(code) {
    this.picked = code;
    this.input.value = "";
    this.pickedEl.replaceChildren(...(code ? [`${code.code} ${code.name}`,
      el("button", { type: "button", class: "clear", onclick: () => this.set(null) }, "清除")] : []));
    this.box.dataset.picked = code ? code.code : "";
  }

  setReadonly(readonly) {
    this.input.hidden = readonly;
    const clear = $("button.clear", this.pickedEl);
    if (clear) clear.hidden = readonly;
  }
}
