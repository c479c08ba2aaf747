// The complainant's profile on the ticket page (GET /api/tickets/{ref}/profile, alerts/profiles.py): flags as chips
// (重复投诉 / 大V / 多次事件), counts and reach, and the person's other accounts with the evidence for each link.
// Loaded once per page, not on every 10-second poll: a profile scans posts, and each unmasked view is audited.
// Everything goes in as text (dom.js h/fill): handles and evidence come from posts.

import { get } from "../api.js";
import { h, fill, section, fmtNum } from "../dom.js";
import { t } from "../i18n.js";

/** A flag code in words (falls back to the API's Chinese label). */
export function flagText(flag) {
  const key = `pf_flag_${flag.code}`;
  return t(key) === key ? String(flag.label ?? flag.code ?? "") : t(key);
}

/** The profile's body: chips, counts, linked accounts. `data` is the API's profile JSON. */
export function renderProfile(data) {
  const flags = data.flags || [];
  const chips = h("div", { class: "action-row", id: "profile-flags" },
    flags.length ? flags.map((f) => h("span", { class: "chip chip-warn", dataset: { flag: String(f.code) } }, flagText(f)))
      : h("span", { class: "muted" }, t("pf_no_flags")));
  const counts = data.counts || {};
  const reach = data.reach || {};
  const facts = h("dl", { class: "facts", id: "profile-counts" },
    h("dt", {}, t("pf_posts")), h("dd", {}, `${fmtNum(counts.posts ?? 0)}（${t("pf_negative")} ${fmtNum(counts.negative_posts ?? 0)}）`),
    h("dt", {}, t("pf_incidents")), h("dd", {}, fmtNum(counts.incidents ?? 0)),
    h("dt", {}, t("pf_tickets")), h("dd", {}, fmtNum(counts.tickets ?? 0)),
    h("dt", {}, t("pf_followers")), h("dd", {}, reach.max_followers === null || reach.max_followers === undefined ? "—" : fmtNum(reach.max_followers)),
    h("dt", {}, t("pf_engagement")), h("dd", {}, fmtNum(reach.engagement ?? 0)));
  const linked = (data.accounts || []).filter((a) => !a.seed);
  const accounts = h("ul", { class: "script-list", id: "profile-accounts" },
    linked.length ? linked.map((a) => h("li", {},
      h("strong", {}, `${a.source} · ${a.handle}`),
      h("ul", {}, (a.links || []).map((l) => h("li", {}, h("span", { class: "chip" }, t(`pf_link_${l.kind}`) === `pf_link_${l.kind}` ? l.label : t(`pf_link_${l.kind}`)), " ", l.evidence)))))
      : h("li", { class: "muted" }, t("pf_no_accounts")));
  return [chips, facts, h("h3", {}, t("pf_accounts")), accounts,
    h("p", { class: "muted" }, t("pf_window", { n: data.window_days ?? 90 }))];
}

/** The profile panel of the ticket at `base` (/api/tickets/{ref}): {el, load()}; load() fetches once. */
export function ticketProfile(base) {
  const panel = section(t("pf_title"), "profile");
  panel.el.id = "ticket-profile";
  fill(panel.body, h("p", { class: "muted" }, t("loading")));
  let loaded = false;
  async function load() {
    if (loaded) return;
    loaded = true;
    try {
      fill(panel.body, renderProfile(await get(`${base}/profile`, { quiet: true })));
    } catch {
      fill(panel.body, h("p", { class: "muted" }, t("pf_unavailable")));
    }
  }
  return { el: panel.el, load };
}
