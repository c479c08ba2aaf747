// Reports (/reports): the daily or weekly report, rendered by the server as HTML and shown in a sandboxed
// iframe loaded from its URL (same origin). The sandbox has no allow-scripts, so nothing in the report can run;
// allow-same-origin only lets this page measure the report's height so printing shows all of it.

import { h, fill, notice } from "../dom.js";
import { t } from "../i18n.js";
import { qs } from "../api.js";

function isoDate(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export function mount(root) {
  const params = new URLSearchParams(location.search);
  const kind = h("select", { id: "report-kind" },
    h("option", { value: "daily" }, t("rp_daily")), h("option", { value: "weekly" }, t("rp_weekly")));
  kind.value = params.get("kind") === "weekly" ? "weekly" : "daily";
  const yesterday = new Date(Date.now() - 86400000);
  const date = h("input", { type: "date", id: "report-date", value: params.get("date") || isoDate(yesterday) });
  const frame = h("iframe", { id: "report-frame", class: "report-frame", sandbox: "allow-same-origin",
    title: t("rp_title"), referrerpolicy: "same-origin" });
  frame.addEventListener("load", () => {
    // Same origin (no scripts run inside): size the frame to its content, and show an API error as a notice.
    try {
      const doc = frame.contentDocument;
      if (!doc) return;
      if (doc.contentType && doc.contentType.includes("json")) {
        let message = doc.body ? doc.body.textContent : "";
        try { message = JSON.parse(message).error || message; } catch { /* plain text */ }
        notice(message);
      }
      frame.setAttribute("height", String(Math.max(400, doc.documentElement.scrollHeight + 20)));
    } catch { /* not readable: keep the default height */ }
  });
  const show = () => {
    const query = qs({ kind: kind.value, date: date.value });
    history.replaceState(null, "", `/reports${query}`);
    frame.setAttribute("src", `/api/reports/${kind.value}${qs({ date: date.value, format: "html" })}`);
  };
  fill(root, h("section", { class: "card report" },
    h("h1", { class: "no-print" }, t("rp_title")),
    h("form", { class: "filters no-print", onsubmit: (e) => { e.preventDefault(); show(); } },
      h("label", {}, t("rp_title"), " ", kind), h("label", {}, t("rp_date"), " ", date),
      h("button", { type: "submit", class: "btn btn-primary" }, t("rp_show")),
      h("button", { type: "button", class: "btn", id: "report-print", onclick: () => window.print() }, t("rp_print"))),
    frame));
  show();
  return {};
}
