// The complaint queue (/tickets): filters (state, severity, assignee, overdue first / only overdue) kept in the
// URL so a reload or a shared link shows the same list, and each ticket's SLA status (overdue in red, by how long).
// Polled every 10 s.

import { get, qs } from "../api.js";
import { h, fill, navLink, sevBadge, fmtAgo, fmtTime, fmtSpan } from "../dom.js";
import { t } from "../i18n.js";
import { table, same } from "./common.js";

export const STATES = ["accepted", "verifying", "handling", "follow_up", "closed"];

/** A ticket state in the UI language (受理 / accepted ...). */
export function stateText(ticket) {
  const state = typeof ticket === "string" ? ticket : ticket.state;
  const key = `state_${state}`;
  return t(key) === key ? String((ticket && ticket.state_label) || state) : t(key);
}

/** The SLA cell: overdue (red, by how long), on time, or done. */
export function slaCell(ticket) {
  if (ticket.overdue) {
    return h("span", { class: "sla sla-overdue" }, t("tq_overdue_by", { d: fmtSpan(ticket.overdue_seconds || 0) }));
  }
  if (ticket.state === "follow_up" || ticket.state === "closed") return h("span", { class: "sla sla-done" }, t("tq_sla_done"));
  return h("span", { class: "sla sla-ok" }, t("tq_sla_ok"));
}

export function mount(root) {
  const params = new URLSearchParams(location.search);
  let last = "";
  const onChange = () => { last = ""; syncUrl(); page.refresh(); };
  const state = h("select", { id: "filter-state", onchange: onChange },
    h("option", { value: "" }, `${stateText("accepted")}–${stateText("handling")}`),
    STATES.map((s) => h("option", { value: s }, stateText(s))), h("option", { value: "all" }, t("all")));
  const severity = h("select", { id: "filter-severity", onchange: onChange }, h("option", { value: "" }, t("all")),
    ["red", "orange", "yellow", "blue"].map((s) => h("option", { value: s }, t(`sev_${s}`))));
  const assignee = h("input", { type: "search", id: "filter-assignee", placeholder: t("tk_assignee_placeholder"),
    list: "assignees", onchange: onChange });
  const overdueFirst = h("input", { type: "checkbox", id: "filter-overdue-first", onchange: onChange });
  const onlyOverdue = h("input", { type: "checkbox", id: "filter-only-overdue", onchange: onChange });
  state.value = params.get("state") || "";
  severity.value = params.get("severity") || "";
  assignee.value = params.get("assignee") || "";
  overdueFirst.checked = params.get("sort") !== "new";
  onlyOverdue.checked = params.get("overdue") === "1";
  const names = h("datalist", { id: "assignees" });
  const body = h("div", { class: "section-body", id: "ticket-list" });
  fill(root, h("section", { class: "card" }, h("h1", {}, t("tq_title")),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); onChange(); } },
      h("label", {}, t("tq_state"), " ", state), h("label", {}, t("tq_severity"), " ", severity),
      h("label", {}, t("tq_assignee"), " ", assignee, names),
      h("label", { class: "check" }, overdueFirst, " ", t("tq_overdue_first")),
      h("label", { class: "check" }, onlyOverdue, " ", t("tq_only_overdue"))),
    body));

  function syncUrl() {
    const query = qs({ state: state.value, severity: severity.value, assignee: assignee.value.trim(),
      overdue: onlyOverdue.checked ? "1" : "", sort: overdueFirst.checked ? "" : "new" });
    history.replaceState(null, "", `/tickets${query}`);
  }

  const page = {
    poll: true,
    async refresh() {
      const data = await get(`/api/tickets${qs({ state: state.value, severity: severity.value,
        assignee: assignee.value.trim(), overdue: onlyOverdue.checked ? "1" : "" })}`);
      const [unchanged, text] = same(last, data);
      last = text;
      if (unchanged) return;
      let items = data.items || [];
      // The server lists overdue first; "newest first" is the other reading order people ask for.
      if (!overdueFirst.checked) items = [...items].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
      fill(names, [...new Set(items.map((x) => x.assignee).filter(Boolean))].map((n) => h("option", { value: n })));
      fill(body, table([
        ["#", (x) => navLink(`/tickets/${encodeURIComponent(x.id)}`, x.number || `#${x.id}`), "col-num"],
        [t("tq_severity"), (x) => sevBadge(x.severity)],
        [t("col_title"), (x) => navLink(`/tickets/${encodeURIComponent(x.id)}`, x.title || "—"), "col-title"],
        [t("tq_state"), (x) => h("span", { class: `chip state-${x.state}` }, stateText(x))],
        [t("tq_assignee"), (x) => x.assignee || h("span", { class: "muted" }, t("tq_unassigned"))],
        [t("tk_sla"), slaCell],
        [t("tk_created"), (x) => h("time", { datetime: x.created_at, title: fmtTime(x.created_at) }, fmtAgo(x.created_at))],
      ], items, { empty: t("tq_none"), rowClass: (x) => (x.overdue ? "overdue" : "") }));
    },
  };
  return page;
}
