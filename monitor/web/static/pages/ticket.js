// One ticket (/tickets/{id}): registration (who / what / where / when / demand / evidence / category / tags),
// the SLA milestones, history, and the handler's actions: move along 受理 → 核实 → 处理 → 回访 → 关闭 (only the
// moves the lifecycle allows are buttons), assign, add a note, record the first response. Polled every 10 s.

import { get, post, canAct } from "../api.js";
import { h, fill, section, sevBadge, fmtTime, fmtSpan, extLink, notice, navLink } from "../dom.js";
import { t, actionText } from "../i18n.js";
import { same, table } from "./common.js";
import { stateText, slaCell, STATES } from "./tickets.js";
import { ticketExtras } from "./ticket_more.js";

// The lifecycle's transition table (alerts/tickets.py TRANSITIONS), used only when an answer lacks
// allowed_states; note: the move needs a note; satisfaction: it needs a 1-5 score.
const TRANSITIONS = {
  accepted: { verifying: {}, closed: { note: true } },
  verifying: { handling: {}, closed: { note: true } },
  handling: { follow_up: {}, verifying: {} },
  follow_up: { closed: { satisfaction: true }, handling: {} },
  closed: { handling: {} },
};
const MILESTONES = ["acknowledge", "respond", "verify", "resolve"];

export function mount(root, [ref]) {
  const base = `/api/tickets/${encodeURIComponent(ref)}`;
  let last = "";
  let ticket = null;
  const header = h("section", { class: "card ticket-header", id: "ticket-header" });
  const reg = section(t("tk_registration"), "registration");
  const sla = section(t("tk_sla"), "sla");
  sla.el.id = "ticket-sla";
  const actions = section(t("inc_actions"), "actions");
  actions.el.id = "ticket-actions";
  const history = section(t("tk_events"), "events");
  history.el.id = "ticket-events";
  // Replies from the script library, follow-up, compensation, outcome, the public progress link (ticket_more.js).
  const extras = ticketExtras(base, (data, force) => draw(data, force));
  fill(root, header, canAct() ? actions.el : null, h("div", { class: "two-col" }, reg.el, sla.el), extras.elements,
    history.el);

  // -- actions (built once: a poll must not wipe what is being typed) -------------------------------------------
  const moveNote = h("textarea", { id: "move-note", rows: "2", maxlength: "4000", placeholder: t("act_note_placeholder") });
  const satisfaction = h("select", { id: "move-satisfaction", "aria-label": t("tk_satisfaction") },
    h("option", { value: "" }, "—"), [1, 2, 3, 4, 5].map((n) => h("option", { value: String(n) }, String(n))));
  const satisfactionRow = h("label", { class: "inline", hidden: true }, t("tk_satisfaction"), " ", satisfaction);
  const moveButtons = h("div", { class: "action-row buttons", id: "move-buttons" });
  const assignee = h("input", { type: "text", id: "assign-name", maxlength: "64", placeholder: t("tk_assignee_placeholder") });
  const noteText = h("textarea", { id: "note-text", rows: "2", maxlength: "8000", placeholder: t("tk_text_placeholder") });
  const respondText = h("textarea", { id: "respond-text", rows: "2", maxlength: "8000", placeholder: t("tk_text_placeholder") });

  const run = async (button, fn) => {
    button.disabled = true;
    try { await fn(); } catch { /* shown by the API helper */ } finally { button.disabled = false; }
  };
  const form = (id, label, fields, submit, heading) => {
    const button = h("button", { type: "submit", class: "btn" }, label);
    return h("form", { class: "action-form", id, onsubmit: (e) => { e.preventDefault(); run(button, submit); } },
      heading ? h("h3", {}, heading) : null, fields, button);
  };
  fill(actions.body,
    h("div", { class: "move" }, h("h3", {}, t("tk_move")), moveNote, satisfactionRow, moveButtons),
    form("assign-form", t("tk_assign"), [assignee], async () => {
      const name = assignee.value.trim();
      if (!name) return;
      draw(await post(`${base}/assign`, { assignee: name }), true);
      notice(t("tk_assign_done", { who: name }), "ok");
    }, t("tk_assign")),
    form("note-form", t("tk_note"), [noteText], async () => {
      if (!noteText.value.trim()) return;
      draw(await post(`${base}/note`, { text: noteText.value }), true);
      noteText.value = "";
      notice(t("tk_note_done"), "ok");
    }, t("tk_note_label")),
    form("respond-form", t("tk_respond"), [respondText], async () => {
      if (!respondText.value.trim()) return;
      draw(await post(`${base}/respond`, { text: respondText.value }), true);
      respondText.value = "";
      notice(t("tk_respond_done"), "ok");
    }, t("tk_respond_label")));

  async function move(target, button) {
    const rule = (TRANSITIONS[ticket.state] || {})[target] || {};
    const needsSatisfaction = rule.satisfaction || (ticket.state === "follow_up" && target === "closed");
    if (rule.note && !moveNote.value.trim()) { notice(t("tk_note_required")); moveNote.focus(); return; }
    if (needsSatisfaction && !satisfaction.value) { notice(t("tk_satisfaction_required")); satisfaction.focus(); return; }
    const body = { state: target, note: moveNote.value };
    if (needsSatisfaction) body.satisfaction = Number(satisfaction.value);
    await run(button, async () => {
      try {
        draw(await post(`${base}/move`, body), true);
      } catch (err) {
        // Refused (409: someone else moved it meanwhile): the notice says why; show the ticket as it is now.
        if (err.status === 409) draw(await get(base), true);
        throw err;
      }
      moveNote.value = "";
      satisfaction.value = "";
      notice(t("tk_move_done", { s: stateText(target) }), "ok");
    });
  }

  function draw(data, force = false) {
    const [unchanged, text] = same(last, data);
    last = text;
    if (unchanged && !force) return;
    ticket = data;
    document.title = `${data.number || ref} · ${t("app_title")}`;
    // Lifecycle bar: every state, the current one marked.
    const steps = h("ol", { class: "lifecycle" }, STATES.map((s) => h("li", {
      class: s === data.state ? "current" : null, "aria-current": s === data.state ? "step" : null }, stateText(s))));
    fill(header,
      h("div", { class: "title-row" }, sevBadge(data.severity), h("h1", { id: "ticket-title" },
        `${t("tk_title", { n: data.number || `#${data.id}` })} · `, data.title || "")),
      steps,
      h("p", { class: "flags" },
        h("span", { class: `chip state-${data.state}`, id: "ticket-state" }, stateText(data)), " ", slaCell(data), " ",
        h("span", {}, `${t("tq_assignee")}: `, data.assignee || t("tq_unassigned")),
        data.reopened ? h("span", { class: "chip" }, t("tk_reopened", { n: data.reopened })) : null,
        data.satisfaction ? h("span", { class: "chip" }, `${t("tk_satisfaction")}: ${data.satisfaction}`) : null,
        data.incomplete ? h("span", { class: "chip chip-warn", id: "ticket-incomplete" }, t("fu_incomplete")) : null));
    extras.update(data);
    const evidence = (data.evidence || []).length
      ? h("ul", { class: "evidence" }, data.evidence.map((u) => h("li", {}, extLink(u)))) : "—";
    const rows = [
      [t("tk_who"), data.complainant || "—"],
      [t("tk_what"), h("span", { class: "pre" }, data.content || "—")],
      [t("tk_where"), data.platform || "—"],
      [t("tk_when"), fmtTime(data.occurred_at)],
      [t("tk_demand"), data.demand || "—"],
      [t("tk_evidence"), evidence],
      [t("tk_category"), data.category || "—"],
      [t("tk_tags"), (data.tags || []).join("、") || "—"],
      [t("tk_incident"), data.incident_id ? navLink(`/incidents/${encodeURIComponent(data.incident_id)}`, `#${data.incident_id}`) : "—"],
      [t("tk_created"), fmtTime(data.created_at)],
    ];
    fill(reg.body, h("dl", { class: "facts wide" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
    fill(sla.body, h("ul", { class: "milestones" }, MILESTONES.filter((m) => data.sla && data.sla[m]).map((m) => milestone(m, data.sla[m]))));
    fill(history.body, table([
      [t("col_time"), (e) => fmtTime(e.at)], [t("col_actor"), (e) => e.actor || "—"],
      [t("col_action"), (e) => (e.to_state ? `${actionText(e.action)} → ${stateText(e.to_state)}` : actionText(e.action))],
      [t("col_note"), (e) => h("span", { class: "pre" }, e.note || "")],
    ], [...(data.events || [])].reverse(), { empty: t("none") }));
    // Only the moves the lifecycle allows from here.
    const allowed = Array.isArray(data.allowed_states) ? data.allowed_states : Object.keys(TRANSITIONS[data.state] || {});
    satisfactionRow.hidden = !(data.state === "follow_up" && allowed.includes("closed"));
    fill(moveButtons, allowed.map((s) => {
      const b = h("button", { type: "button", class: "btn btn-primary", "data-state": s, id: `move-${s}` }, `→ ${stateText(s)}`);
      b.addEventListener("click", () => move(s, b));
      return b;
    }));
  }

  return {
    poll: true,
    async refresh() { draw(await get(base)); },
  };
}

/** One SLA milestone: deadline, when met, late by how much, or waived. */
function milestone(name, m) {
  let state = "pending", detail = t("ms_deadline", { t: fmtTime(m.deadline) });
  if (m.waived) { state = "waived"; detail = t("ms_waived"); }
  else if (m.met_at) {
    state = m.overdue_seconds > 0 ? "late" : "met";
    detail = t("ms_met", { t: fmtTime(m.met_at) }) + (m.overdue_seconds > 0 ? ` · ${t("ms_late", { d: fmtSpan(m.overdue_seconds) })}` : "");
  } else if (m.overdue || m.overdue_seconds > 0) {
    state = "overdue";
    detail = `${t("ms_late", { d: fmtSpan(m.overdue_seconds) })} · ${t("ms_deadline", { t: fmtTime(m.deadline) })}`;
  } else {
    const left = (new Date(m.deadline).getTime() - Date.now()) / 1000;
    if (left > 0) detail += ` · ${t("ms_due_in", { d: fmtSpan(left) })}`;
  }
  return h("li", { class: `milestone ms-${state}`, "data-milestone": name },
    h("span", { class: "ms-name" }, t(`ms_${name}`)), h("span", { class: "ms-detail" }, detail));
}
