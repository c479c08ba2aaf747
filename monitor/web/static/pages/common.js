// Pieces more than one page draws: the incident list, status chips, responsive tables.

import { h, navLink, sevBadge, fmtAgo, fmtTime, severityRank } from "../dom.js";
import { t } from "../i18n.js";

/**
 * A table that becomes a stack of cards on a phone: each cell carries its column name in data-label, which the
 * narrow-screen CSS shows in front of the value (app.css, "tables become cards").
 * columns = [[label, (row) => node|string, className?]]
 */
export function table(columns, rows, { empty = "", rowClass = () => "" } = {}) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map(([label, , cls]) => h("th", { class: cls || null, scope: "col" }, label)))),
    h("tbody", {}, rows.map((row) => h("tr", { class: rowClass(row) || null },
      columns.map(([label, cell, cls]) => h("td", { "data-label": label, class: cls || null }, cell(row)))))));
}

/** Incident status in words. */
export function statusText(status) {
  const key = `st_${status}`;
  const text = t(key);
  return text === key ? String(status ?? "") : text;
}

/** Open incidents, most severe first, then newest. */
export function sortIncidents(items) {
  return [...items].sort((a, b) => severityRank(a.severity) - severityRank(b.severity) ||
    String(b.opened_at).localeCompare(String(a.opened_at)));
}

/** The list of incidents used by the dashboard and /incidents; titles link to the incident view. */
export function incidentTable(items, { empty } = {}) {
  return table([
    [t("col_severity"), (i) => sevBadge(i.severity), "col-sev"],
    [t("col_title"), (i) => navLink(`/incidents/${encodeURIComponent(i.id)}`, i.title || `#${i.id}`), "col-title"],
    [t("col_posts"), (i) => String(i.posts), "num"],
    [t("col_authors"), (i) => String(i.authors), "num"],
    [t("col_sources"), (i) => (i.sources || []).join("、")],
    [t("col_status"), (i) => statusText(i.status)],
    [t("col_age"), (i) => h("time", { datetime: i.opened_at, title: fmtTime(i.opened_at) }, fmtAgo(i.opened_at))],
  ], sortIncidents(items), { empty: empty ?? t("dash_no_incidents"), rowClass: (i) => `sev-row-${i.severity}` });
}

/** A source's health as a coloured chip (ok / failing / blocked / layout / other). */
export function healthChip(status) {
  const known = ["ok", "failing", "blocked", "layout"].includes(status);
  const key = `src_${status}`;
  const label = t(key) === key ? String(status ?? t("unknown")) : t(key);
  return h("span", { class: `chip health-${known ? status : "other"}` }, label);
}

/** The JSON text of an answer, to skip redrawing when a poll brings nothing new (keeps scroll and selection). */
export function same(previous, data) {
  const text = JSON.stringify(data);
  return [previous === text, text];
}
