// One visit: the patient summary and the visit's actions (接诊, 结束问诊, 转线下就诊, 不符合复诊条件),
// with the chat (chat.js) and the clinical record (record.js) beside it.
import { $, API, api, el, formatTime, labels, notify, showError } from "./common.js";
import { Chat } from "./chat.js";
import { Record } from "./record.js";

const root = $("#visit-page");
const id = root.dataset.id;
const base = `${API}/consultations/${id}`;
const L = labels();
let visit = null;

function text(selector, value) {
  $(selector).textContent = value === undefined || value === null || value === "" ? "—" : String(value);
}

function renderPatient(p) {
  text("#p-name", p.name);
  text("#p-sex-age", `${p.sex} · ${p.age}岁`);
  text("#p-allergies", p.allergies || "无");
  const child = Boolean(p.guardian_name);
  for (const node of document.querySelectorAll(".guardian")) node.hidden = !child;
  text("#p-guardian", p.guardian_name);
  text("#p-accompanying", p.accompanying_doctor);
}

function renderPrior(v) {
  const prior = $("#c-prior");
  if (v.prior_visit) {
    const pv = v.prior_visit;
    prior.replaceChildren(el("p", { class: "prewrap" }, `本院 ${pv.visit_date} ${pv.department_name}`,
      pv.doctor_name ? ` · ${pv.doctor_name}` : "", el("br"), `诊断：${pv.diagnosis || v.prior_diagnosis}`));
  } else {
    prior.replaceChildren(el("p", { class: "prewrap" }, `${L.proof_kind[v.proof_kind] || "上传的证明"}：${v.prior_diagnosis}`));
  }
  $("#c-proofs").replaceChildren(...(v.proofs || []).map((m) =>
    el("a", { href: m.url, target: "_blank", rel: "noopener" }, el("img", { src: m.url, alt: "既往诊断证明" }))));
}

function renderActions(v) {
  const waiting = v.status === "waiting";
  const open = v.status === "in_progress";
  const needPrior = waiting && v.eligibility_status === "pending_doctor";
  const needCompanions = waiting && Boolean(v.patient.guardian_name);
  $("#confirm-prior").hidden = !needPrior;
  $("#confirm-companions").hidden = !needCompanions;
  $("#confirmations").hidden = !(needPrior || needCompanions);
  $("#btn-accept").hidden = !waiting;
  $("#btn-reject").hidden = !needPrior;
  $("#btn-end").hidden = !open;
  $("#btn-terminate").hidden = !open;
  const endNote = $("#c-end");
  endNote.hidden = !v.ended_at;
  endNote.textContent = v.ended_at ? `${formatTime(v.ended_at)} ${v.end_reason}` : "";
}

function render(v) {
  visit = v;
  root.dataset.status = v.status;
  renderPatient(v.patient);
  text("#c-kind", L.kind[v.kind] || v.kind);
  text("#c-status", L.status[v.status] || v.status);
  text("#c-eligibility", L.eligibility[v.eligibility_status] || v.eligibility_status);
  text("#c-complaint", v.complaint);
  renderPrior(v);
  renderActions(v);
  const followUp = v.status === "ended" && v.follow_up_until && new Date(v.follow_up_until) > new Date();
  chat.setOpen(v.status === "in_progress" || followUp);
  chat.visitChanged(v);
  record.visitChanged(v.status);
}

let loads = 0;

async function load() {
  const mine = ++loads;
  try {
    const v = await api("GET", base);
    if (mine === loads) render(v); // an older answer never overwrites a newer one
  } catch (err) {
    showError(err);
  }
}

async function act(button, path, body, done) {
  button.disabled = true;
  try {
    const v = await api("POST", `${base}/${path}`, body);
    loads += 1;
    render(v);
    if (done) notify(done, "ok");
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

function askReason(question) {
  const reason = window.prompt(question);
  return reason && reason.trim() ? reason.trim().slice(0, 200) : null;
}

$("#btn-accept").addEventListener("click", (event) => act(event.currentTarget, "accept", {
  prior_confirmed: $("#prior-confirmed").checked,
  companions_confirmed: $("#companions-confirmed").checked,
}, "已接诊"));

$("#btn-end").addEventListener("click", (event) => {
  if (window.confirm("确定结束本次问诊？结束后患者仍可在追问期内留言。")) act(event.currentTarget, "end", {}, "问诊已结束");
});

$("#btn-terminate").addEventListener("click", (event) => {
  const reason = askReason("请填写需转线下就诊的原因（将告知患者）");
  if (reason) act(event.currentTarget, "terminate", { reason }, "已终止问诊，患者将被引导线下就诊");
});

$("#btn-reject").addEventListener("click", (event) => {
  const reason = askReason("请填写不符合复诊条件的原因（将全额退款并告知患者）");
  if (reason) act(event.currentTarget, "reject-eligibility", { reason }, "已退回，费用将全额退还");
});

const chat = new Chat({ consultationId: id, onStatus: load });
const record = new Record({ consultationId: id });
load().then(() => chat.start());
window.qhConsole = { chat, record, get visit() { return visit; } };
