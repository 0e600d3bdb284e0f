// 今日队列: on every frame of /ws/console/ the queue is fetched again and re-rendered (simple and correct).
import { $, API, LiveSocket, api, el, formatTime, formatWait, labels, showError, wsUrl } from "./common.js";

const root = $("#queue-page");
const L = labels();
const POLL_WHEN_OFFLINE_MS = 20000;
let items = [];
let loading = null;
let again = false;

function visitUrl(id) {
  return `${root.dataset.visitBase}${id}/`;
}

function badges(item) {
  return [
    item.is_pool ? el("span", { class: "badge badge-pool" }, "科室号") : null,
    item.eligibility_status === "pending_doctor" ? el("span", { class: "badge badge-warn" }, "待确认复诊资格") : null,
  ];
}

function row(item) {
  const waiting = item.status === "waiting";
  return el("tr", { dataset: { id: item.id, status: item.status }, class: "queue-row" },
    el("td", { class: "patient" }, el("a", { href: visitUrl(item.id) }, item.patient_name), " ", badges(item)),
    el("td", {}, item.patient_sex),
    el("td", {}, `${item.patient_age}岁`),
    el("td", {}, el("span", { class: `kind kind-${item.kind}` }, L.kind_short[item.kind] || item.kind)),
    el("td", { class: "diagnosis" }, item.prior_diagnosis),
    el("td", { class: "wait", dataset: { since: (waiting ? item.paid_at : item.accepted_at) || "" } },
      waiting ? formatWait(item.paid_at) : `${formatTime(item.accepted_at)} 接诊`),
    el("td", {}, el("a", { class: "button-link", href: visitUrl(item.id) }, waiting ? "查看并接诊" : "继续问诊")));
}

function renderTable(selector, list, emptyText) {
  const body = $(`${selector} tbody`);
  body.replaceChildren(...(list.length ? list.map(row) : [el("tr", { class: "empty" }, el("td", { colspan: 7 }, emptyText))]));
  $(`${selector}-count`).textContent = String(list.length);
}

function render() {
  renderTable("#queue-waiting", items.filter((i) => i.status === "waiting"), "暂无待接诊的患者");
  renderTable("#queue-in-progress", items.filter((i) => i.status === "in_progress"), "暂无进行中的问诊");
  $("#queue-updated").textContent = `更新于 ${formatTime(new Date().toISOString())}`;
}

async function refresh() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = api("GET", `${API}/consultations`)
    .then((data) => {
      items = data;
      render();
    })
    .catch(showError)
    .finally(() => {
      loading = null;
      if (again) {
        again = false;
        refresh();
      }
    });
  return loading;
}

function tickWaits() {
  for (const cell of document.querySelectorAll("#queue-waiting td.wait")) {
    cell.textContent = formatWait(cell.dataset.since);
  }
}

const socket = new LiveSocket({
  url: () => wsUrl("/ws/console/"),
  onFrame: (frame) => {
    if (frame.type === "queue") refresh();
  },
  onOpen: refresh, // anything may have changed while we were away
  stateEl: $("#ws-state"),
});

refresh();
setInterval(tickWaits, 30000);
setInterval(() => {
  if (!socket.isOpen) refresh();
}, POLL_WHEN_OFFLINE_MS);
