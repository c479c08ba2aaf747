// The complainant's progress page (/p/{token}): no login, no console chrome. It asks the public API for what it
// may show — ticket number, current stage, the stage bar, registration date, promised times and whether they were
// kept — and draws it in Chinese and English. Everything goes in as text (dom.js h/fill), never as HTML.

import { h, fill } from "./dom.js";

const root = document.getElementById("progress");

/** "2026-11-23T11:00+08:00" -> "2026-11-23 11:00" as the server wrote it (its display timezone). */
function when(iso) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(String(iso || ""));
  return m ? `${m[1]} ${m[2]}` : String(iso || "—");
}

function promise(p) {
  let state = "pending", zh = "进行中", en = "in progress";
  if (p.waived) { state = "waived"; zh = "不适用"; en = "not needed"; }
  else if (p.met && p.on_time) { state = "met"; zh = "已按时完成"; en = "done on time"; }
  else if (p.met) { state = "late"; zh = "已完成（晚于承诺）"; en = "done, later than promised"; }
  return h("li", { class: `promise promise-${state}`, "data-milestone": p.milestone },
    h("span", { class: "promise-name" }, `${p.zh} / ${p.en}`),
    h("span", { class: "promise-deadline" }, `承诺时间 / promised by ${when(p.deadline)}`),
    h("span", { class: "promise-state" }, `${zh} / ${en}`));
}

function draw(data) {
  document.title = `${data.number} · 投诉处理进度`;
  fill(root,
    h("h1", {}, "投诉处理进度 ", h("span", { class: "muted" }, "Complaint progress")),
    h("p", { class: "progress-number" }, "工单号 / Ticket ", h("strong", { id: "progress-number" }, data.number)),
    h("p", { class: "progress-stage" }, "当前阶段 / Current stage: ",
      h("strong", { id: "progress-stage" }, `${data.stage_zh} / ${data.stage_en}`)),
    h("ol", { class: "lifecycle", id: "progress-stages" }, (data.stages || []).map((s) => h("li", {
      class: s.status === "current" ? "current" : s.status === "done" ? "done" : null,
      "aria-current": s.status === "current" ? "step" : null }, `${s.zh} ${s.en}`))),
    h("p", {}, "登记日期 / Registered: ", h("span", { id: "progress-registered" }, data.registered)),
    h("h2", {}, "我们的承诺 / Our promises"),
    h("ul", { class: "promises", id: "progress-promises" }, (data.promises || []).map(promise)),
    h("p", { class: "muted" }, data.closed ? "您的投诉已处理完毕，感谢您的耐心。/ Your complaint has been closed. Thank you for your patience."
      : "我们正在处理您的投诉，本页会随进度更新。/ We are working on your complaint; this page shows the latest progress."));
}

function fail(status) {
  const text = status === 429 ? ["访问过于频繁，请稍后再试。", "Too many requests; please try again later."]
    : status === 404 ? ["链接无效或已失效。", "This link is not valid."]
    : ["暂时无法显示进度，请稍后再试。", "The progress cannot be shown right now; please try again later."];
  fill(root, h("h1", {}, "投诉处理进度 ", h("span", { class: "muted" }, "Complaint progress")),
    h("p", { id: "progress-status", class: "progress-error" }, `${text[0]} / ${text[1]}`));
}

async function start() {
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  try {
    const response = await fetch(`/api/public/progress/${encodeURIComponent(token)}`,
      { headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
    if (!response.ok) { fail(response.status); return; }
    draw(await response.json());
  } catch {
    fail(0);
  }
}

start();
