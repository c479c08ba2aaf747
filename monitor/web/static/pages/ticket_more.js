// The ticket view's later panels (used by pages/ticket.js): suggested reply scripts (标准话术) with the filled
// text editable before it is recorded as sent; the follow-up (回访) with satisfaction and NPS; compensation; the
// outcome (withdrawn or not); and the complainant's public progress link. Forms are built once (a 10-second poll
// must not wipe what is being typed); update(ticket) redraws only the read-only parts. Everything is text.

import { get, post, canAct } from "../api.js";
import { h, fill, section, fmtTime, notice } from "../dom.js";
import { t } from "../i18n.js";
import { table } from "./common.js";
import { ticketProfile } from "./ticket_profile.js";

export const COMPENSATION_KINDS = ["refund", "voucher", "replacement", "apology", "other"];

/** A script stage in words. */
export function stageText(stage) {
  const key = `sc_stage_${stage}`;
  return t(key) === key ? String(stage ?? "") : t(key);
}

/**
 * The panels for the ticket at `base` (/api/tickets/{ref}). `show(ticket)` redraws the whole ticket view with an
 * answer (the actions return the ticket). Returns {elements, update(ticket)}.
 */
export function ticketExtras(base, show) {
  const acting = canAct();
  let ticket = null;
  let suggestedFor = "";
  let chosen = null; // {key, version} of the script whose text is in the box

  const run = async (button, fn) => {
    button.disabled = true;
    try { await fn(); } catch { /* the API helper shows the error */ } finally { button.disabled = false; }
  };
  const form = (id, fields, label, submit) => {
    const button = h("button", { type: "submit", class: "btn btn-primary", id: `${id}-submit` }, label);
    return h("form", { class: "action-form", id, onsubmit: (e) => { e.preventDefault(); run(button, submit); } },
      fields, button);
  };
  const options = (values, labelOf) => values.map((v) => h("option", { value: String(v) }, labelOf(v)));

  // -- suggested scripts ---------------------------------------------------------------------------------------
  const scripts = section(t("sc_suggested"), "scripts");
  scripts.el.id = "ticket-scripts";
  const list = h("ul", { class: "script-list", id: "script-list" });
  const replyText = h("textarea", { id: "reply-text", rows: "5", maxlength: "8000", placeholder: t("sc_reply_placeholder") });
  const chosenLabel = h("p", { class: "muted", id: "reply-script" }, t("sc_none_chosen"));
  const replyForm = form("reply", [h("h3", {}, t("sc_reply")), chosenLabel, replyText], t("sc_send"), async () => {
    const text = replyText.value.trim();
    if (!text) { notice(t("sc_reply_empty")); replyText.focus(); return; }
    const body = { text };
    if (chosen) { body.script_key = chosen.key; body.version = chosen.version; }
    show(await post(`${base}/reply`, body), true);
    replyText.value = "";
    chosen = null;
    fill(chosenLabel, t("sc_none_chosen"));
    notice(t("sc_sent"), "ok");
    await loadSuggestions(true);
  });
  fill(scripts.body, list, acting ? replyForm : null);

  async function loadSuggestions(force = false) {
    if (!ticket) return;
    const key = `${ticket.state}|${ticket.category}`;
    if (!force && key === suggestedFor) return;
    suggestedFor = key;
    const data = await get(`${base}/scripts`);
    fill(list, (data.items || []).length ? data.items.map((s) => {
      const use = acting ? h("button", { type: "button", class: "btn script-use", "data-key": s.key }, t("sc_use")) : null;
      if (use) use.addEventListener("click", () => {
        replyText.value = s.text;
        chosen = { key: s.key, version: s.version };
        fill(chosenLabel, t("sc_chosen", { title: s.title, v: s.version }));
        replyText.focus();
      });
      return h("li", { class: "script", "data-key": s.key },
        h("div", { class: "script-head" }, h("strong", { class: "script-title" }, s.title), " ",
          h("span", { class: "chip" }, stageText(s.stage)), " ",
          h("span", { class: "muted" }, t("sc_uses", { n: s.uses })), " ", use),
        h("p", { class: "script-text pre" }, s.text));
    }) : h("li", { class: "muted" }, t("sc_no_suggestions")));
  }

  // -- follow-up (回访) ------------------------------------------------------------------------------------------
  const followup = section(t("fu_title"), "followup");
  followup.el.id = "ticket-followup";
  const fuShown = h("dl", { class: "facts", id: "followup-result" });
  const fuSatisfaction = h("select", { id: "fu-satisfaction", "aria-label": t("tk_satisfaction") },
    h("option", { value: "" }, "—"), options([5, 4, 3, 2, 1], String));
  const fuNps = h("select", { id: "fu-nps", "aria-label": t("fu_nps") },
    h("option", { value: "" }, "—"), options([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0], String));
  const fuNote = h("textarea", { id: "fu-note", rows: "2", maxlength: "4000", placeholder: t("act_note_placeholder") });
  const fuForm = form("followup-form", [
    h("label", { class: "inline" }, t("tk_satisfaction"), " ", fuSatisfaction), " ",
    h("label", { class: "inline" }, t("fu_nps"), " ", fuNps), fuNote], t("fu_submit"), async () => {
    if (!fuSatisfaction.value) { notice(t("tk_satisfaction_required")); fuSatisfaction.focus(); return; }
    const body = { satisfaction: Number(fuSatisfaction.value), note: fuNote.value };
    if (fuNps.value !== "") body.nps = Number(fuNps.value);
    show(await post(`${base}/followup`, body), true);
    fuSatisfaction.value = ""; fuNps.value = ""; fuNote.value = "";
    notice(t("fu_done"), "ok");
  });
  const fuHint = h("p", { class: "muted", id: "followup-hint" }, t("fu_only_in_followup"));
  fill(followup.body, fuShown, acting ? [fuHint, fuForm] : null);

  // -- compensation ----------------------------------------------------------------------------------------------
  const comp = section(t("cp_title"), "compensation");
  comp.el.id = "ticket-compensation";
  const compList = h("div", { id: "compensation-list" });
  const compKind = h("select", { id: "comp-kind", "aria-label": t("cp_kind") }, options(COMPENSATION_KINDS, (k) => t(`cp_${k}`)));
  const compAmount = h("input", { type: "text", id: "comp-amount", inputmode: "decimal", maxlength: "16", placeholder: t("cp_amount") });
  const compNote = h("input", { type: "text", id: "comp-note", maxlength: "2000", placeholder: t("act_note_placeholder") });
  const compForm = form("comp-form", [compKind, compAmount, compNote], t("cp_add"), async () => {
    const body = { kind: compKind.value, note: compNote.value };
    if (compAmount.value.trim()) body.amount = compAmount.value.trim();
    show(await post(`${base}/compensation`, body), true);
    compAmount.value = ""; compNote.value = "";
    notice(t("cp_done"), "ok");
  });
  fill(comp.body, compList, acting ? compForm : null);

  // -- outcome -----------------------------------------------------------------------------------------------------
  const outcome = section(t("oc_title"), "outcome");
  outcome.el.id = "ticket-outcome";
  const ocShown = h("dl", { class: "facts", id: "outcome-result" });
  const ocWithdrawn = h("select", { id: "oc-withdrawn", "aria-label": t("oc_withdrawn") },
    h("option", { value: "" }, "—"), h("option", { value: "yes" }, t("oc_yes")), h("option", { value: "no" }, t("oc_no")));
  const ocNote = h("textarea", { id: "oc-note", rows: "2", maxlength: "4000", placeholder: t("oc_note") });
  const ocForm = form("outcome-form", [h("label", { class: "inline" }, t("oc_withdrawn"), " ", ocWithdrawn), ocNote],
    t("oc_submit"), async () => {
      const body = {};
      if (ocWithdrawn.value) body.withdrawn = ocWithdrawn.value === "yes";
      if (ocNote.value.trim()) body.note = ocNote.value.trim();
      if (!Object.keys(body).length) { notice(t("oc_empty")); return; }
      show(await post(`${base}/outcome`, body), true);
      ocWithdrawn.value = ""; ocNote.value = "";
      notice(t("oc_done"), "ok");
    });
  fill(outcome.body, ocShown, acting ? ocForm : null);

  // -- the complainant's progress link ----------------------------------------------------------------------------
  const progress = section(t("pg_title"), "progress-link");
  progress.el.id = "ticket-progress";
  const linkBox = h("input", { type: "text", id: "progress-link", readonly: true, class: "link-box", "aria-label": t("pg_title") });
  const copy = h("button", { type: "button", class: "btn", id: "progress-link-copy", hidden: true }, t("pg_copy"));
  const getLink = h("button", { type: "button", class: "btn btn-primary", id: "progress-link-get" }, t("pg_get"));
  getLink.addEventListener("click", () => run(getLink, async () => {
    const data = await get(`${base}/progress-link`);
    linkBox.value = data.url;
    copy.hidden = false;
  }));
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(linkBox.value);
    } catch {
      // No clipboard permission (plain http, old browser): select the text so Ctrl+C copies it.
      linkBox.select();
      try { document.execCommand("copy"); } catch { /* the text stays selected */ }
    }
    notice(t("pg_copied"), "ok");
  });
  fill(progress.body, h("p", { class: "muted" }, t("pg_hint")), h("div", { class: "action-row" }, getLink, linkBox, copy));

  const profile = ticketProfile(base); // the complainant's profile (ticket_profile.js)

  function update(data) {
    ticket = data;
    profile.load();
    const nps = data.nps === null || data.nps === undefined ? "—" : `${data.nps} / 10`;
    fill(fuShown,
      h("dt", {}, t("tk_satisfaction")), h("dd", { id: "followup-satisfaction" }, data.satisfaction ? `${data.satisfaction} / 5` : "—"),
      h("dt", {}, t("fu_nps")), h("dd", { id: "followup-nps" }, nps),
      h("dt", {}, t("fu_at")), h("dd", {}, fmtTime(data.followup_at)),
      data.followup_note ? [h("dt", {}, t("col_note")), h("dd", { class: "pre" }, data.followup_note)] : null,
      data.incomplete ? [h("dt", {}, t("fu_state")), h("dd", { class: "warn" }, t("fu_incomplete"))] : null);
    const inFollowup = data.state === "follow_up";
    fuForm.hidden = !inFollowup;
    fuHint.hidden = inFollowup;
    fill(compList, table([
      [t("col_time"), (c) => fmtTime(c.at)], [t("cp_kind"), (c) => t(`cp_${c.kind}`)],
      [t("cp_amount"), (c) => (c.amount ? `${c.amount} ${c.currency === "CNY" ? t("cp_yuan") : c.currency || ""}` : "—"), "num"],
      [t("col_note"), (c) => c.note || ""], [t("col_actor"), (c) => c.by || "—"],
    ], data.compensation || [], { empty: t("cp_none") }));
    const withdrawn = data.withdrawn === true ? t("oc_yes") : data.withdrawn === false ? t("oc_no") : "—";
    fill(ocShown, h("dt", {}, t("oc_withdrawn")), h("dd", { id: "outcome-withdrawn" }, withdrawn),
      h("dt", {}, t("oc_note")), h("dd", { class: "pre", id: "outcome-note" }, data.outcome_note || "—"));
    loadSuggestions().catch(() => { /* shown by the API helper */ });
  }

  return { elements: [scripts.el, followup.el, comp.el, outcome.el, acting ? progress.el : null, profile.el], update };
}
