// The dashboard (/): open incidents by severity, the open incident list, per-watch volume and negative share,
// source health, outbox and ticket counts. Polled every 10 s; each section is redrawn only from new data.

import { get } from "../api.js";
import { h, fill, section, navLink, fmtAgo } from "../dom.js";
import { t } from "../i18n.js";
import { trendChart } from "../charts.js";
import { incidentTable, healthChip, same } from "./common.js";

const RANGE_KEY = "monitor.range";

export function mount(root) {
  let range = localStorage.getItem(RANGE_KEY) === "7d" ? "7d" : "24h";
  let last = "";

  const counts = h("div", { class: "tiles", id: "severity-counts" });
  const open = section(t("dash_open"), "open-incidents");
  open.el.id = "open-incidents";
  const rangeButtons = ["24h", "7d"].map((r) => h("button", {
    type: "button", class: "seg", "data-range": r, "aria-pressed": String(r === range),
    onclick: () => { range = r; localStorage.setItem(RANGE_KEY, r); syncRange(); last = ""; page.refresh(); },
  }, t(`dash_range_${r}`)));
  const trend = section(t("dash_trend"), "trend");
  trend.el.querySelector("h2").after(h("div", { class: "segmented", role: "group" }, rangeButtons));
  const health = section(t("dash_sources"), "health");
  const ops = h("div", { class: "tiles ops", id: "ops" });
  fill(root, h("h1", { class: "sr-only" }, t("nav_dashboard")), counts, open.el, h("div", { class: "two-col" }, trend.el,
    h("div", { class: "stack" }, health.el, ops)));

  function syncRange() {
    for (const b of rangeButtons) b.setAttribute("aria-pressed", String(b.dataset.range === range));
  }

  const page = {
    poll: true,
    async refresh() {
      const data = await get(`/api/dashboard?range=${range}`);
      const [unchanged, text] = same(last, data);
      last = text;
      if (unchanged) return;
      const sev = data.incidents_by_severity || {};
      fill(counts, ["red", "orange", "yellow", "blue"].map((s) => h("div", { class: `tile sev-tile-${s}`, "data-severity": s },
        h("span", { class: "tile-num" }, String(sev[s] ?? 0)), h("span", { class: "tile-label" }, t(`sev_${s}`)))));
      fill(open.body, incidentTable(data.open_incidents || []));
      const long = data.range === "7d";
      fill(trend.body, (data.watches || []).length ? data.watches.map((w) => h("figure", { class: "watch" },
        h("figcaption", {}, w.name === "*" ? t("all") : w.name),
        trendChart(w.series, { long, label: `${w.name}` }))) : h("p", { class: "muted" }, t("no_data")));
      fill(health.body, (data.sources || []).length ? h("ul", { class: "chips" }, data.sources.map((s) => h("li", {
        class: "source-chip", title: s.last_error || "",
      }, healthChip(s.status), " ", navLink("/sources", s.name), h("span", { class: "muted small" }, ` ${fmtAgo(s.last_success_at)}`))))
        : h("p", { class: "muted" }, t("none")));
      const ob = data.outbox || {}, tk = data.tickets || {};
      fill(ops,
        h("div", { class: "tile" }, h("span", { class: "tile-label" }, t("dash_outbox")),
          h("span", { class: "tile-pair" }, `${t("outbox_pending")} ${ob.pending ?? 0}`),
          h("span", { class: ob.failed ? "tile-pair bad" : "tile-pair" }, `${t("outbox_failed")} ${ob.failed ?? 0}`)),
        h("a", { class: "tile", href: "/tickets", "data-nav": "" }, h("span", { class: "tile-label" }, t("dash_tickets")),
          h("span", { class: "tile-pair" }, `${t("tickets_open")} ${tk.open ?? 0}`),
          h("span", { class: tk.overdue ? "tile-pair bad" : "tile-pair" }, `${t("tickets_overdue")} ${tk.overdue ?? 0}`)));
    },
  };
  return page;
}
