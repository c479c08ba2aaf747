// /incidents: every incident with a status filter (the dashboard shows only the active ones).

import { get, qs } from "../api.js";
import { h, fill } from "../dom.js";
import { t } from "../i18n.js";
import { incidentTable, same, statusText } from "./common.js";

export function mount(root) {
  let last = "";
  const status = h("select", { id: "incident-status", onchange: () => { last = ""; page.refresh(); } },
    ["active", "open", "quiet", "resolved", "all"].map((s) => h("option", { value: s }, s === "all" ? t("all") : statusText(s))));
  const body = h("div", { class: "section-body" });
  fill(root, h("section", { class: "card" }, h("h1", {}, t("dash_open")),
    h("div", { class: "filters" }, h("label", {}, t("col_status"), " ", status)), body));
  const page = {
    poll: true,
    async refresh() {
      const data = await get(`/api/incidents${qs({ status: status.value })}`);
      const [unchanged, text] = same(last, data);
      last = text;
      if (!unchanged) fill(body, incidentTable(data.items || [], { empty: t("none") }));
    },
  };
  return page;
}
