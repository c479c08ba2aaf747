// The incident view (/incidents/{id}): what happened, why it was raised, the timeline, representative posts
// with their keywords marked, history and notifications, and the actions a handler takes. Polled every 10 s;
// an action's answer (the incident detail) is drawn at once, without waiting for the next poll.

import { get, post, canAct } from "../api.js";
import { h, fill, section, sevBadge, fmtTime, fmtAgo, extLink, highlight, notice } from "../dom.js";
import { t, lang, actionText } from "../i18n.js";
import { timelineChart } from "../charts.js";
import { same, statusText, table } from "./common.js";

const POSTS_SHOWN = 12;
const SILENCE_CHOICES = ["1h", "2h", "6h", "12h", "1d", "3d", "7d"];

export function mount(root, [id]) {
  const base = `/api/incidents/${encodeURIComponent(id)}`;
  let last = "";
  const header = h("section", { class: "card incident-header", id: "incident-header" });
  const actions = section(t("inc_actions"), "actions");
  actions.el.id = "incident-actions";
  const reasons = section(t("inc_reasons"), "reasons");
  const timeline = section(t("inc_timeline"), "timeline");
  const posts = section(t("inc_posts"), "posts-card");
  let showAll = false; // a big incident has hundreds of posts: the first few, then all on request
  posts.el.id = "incident-posts";
  const events = section(t("inc_events"), "events");
  events.el.id = "incident-events";
  const notes = section(t("inc_notifications"), "notifications");
  fill(root, header, canAct() ? actions.el : null, h("div", { class: "two-col" }, reasons.el, timeline.el), posts.el,
    h("div", { class: "two-col" }, events.el, notes.el));

  // -- actions: built once so a poll never wipes a note being typed -------------------------------------------
  const note = h("input", { type: "text", id: "action-note", placeholder: t("act_note_placeholder"), maxlength: "4000" });
  const silenceFor = h("select", { id: "silence-duration", "aria-label": t("silence_for") },
    SILENCE_CHOICES.map((d) => h("option", { value: d, selected: d === "2h" ? true : null }, d)));
  const ticketSlot = h("span", { class: "ticket-slot" });
  const busyButtons = [];
  const act = (label, cls, idAttr, run) => {
    const b = h("button", { type: "button", class: `btn ${cls}`, id: idAttr, onclick: async () => {
      busyButtons.forEach((x) => { x.disabled = true; });
      try { await run(); } catch { /* the API helper showed the error */ } finally { busyButtons.forEach((x) => { x.disabled = false; }); }
    } }, label);
    busyButtons.push(b);
    return b;
  };
  const send = async (path, body, done) => {
    const data = await post(`${base}/${path}`, body);
    note.value = "";
    notice(done, "ok");
    draw(data, true);
  };
  fill(actions.body,
    h("div", { class: "action-row" }, note),
    h("div", { class: "action-row buttons" },
      act(t("act_ack"), "btn-primary", "act-ack", () => send("ack", { note: note.value }, t("ack_done"))),
      act(t("act_real"), "", "act-real", () => send("feedback", { verdict: "real", note: note.value }, t("feedback_done"))),
      act(t("act_noise"), "", "act-noise", () => send("feedback", { verdict: "noise", note: note.value }, t("feedback_done"))),
      act(t("act_resolve"), "", "act-resolve", () => send("resolve", { note: note.value }, t("resolve_done"))),
      ticketSlot),
    h("div", { class: "action-row buttons" },
      h("label", { class: "inline" }, t("silence_for"), " ", silenceFor),
      act(t("act_silence"), "", "act-silence", () => send("silence", { duration: silenceFor.value, comment: note.value }, t("silence_done")))));
  const openTicket = act(t("act_open_ticket"), "", "act-open-ticket", () => send("ticket", {}, t("ticket_done")));

  function draw(data, force = false) {
    const [unchanged, text] = same(last, data);
    last = text;
    if (unchanged && !force) return;
    const inc = data.incident;
    document.title = `#${inc.id} ${inc.title} · ${t("app_title")}`;
    const facts = [
      [t("col_status"), statusText(inc.status)],
      [t("col_opened"), `${fmtTime(inc.opened_at)} (${fmtAgo(inc.opened_at)})`],
      [t("col_posts"), String(inc.posts)],
      [t("inc_authors"), String(inc.authors)],
      [t("inc_sources"), (inc.sources || []).join("、") || "—"],
      [t("inc_keywords"), (inc.keywords || []).join("、") || "—"],
      [t("inc_watches"), (inc.watches || []).join("、") || "—"],
      [t("inc_category"), inc.category || "—"],
      [t("inc_score"), typeof inc.score === "number" ? inc.score.toFixed(1) : "—"],
    ];
    fill(header,
      h("div", { class: "title-row" }, sevBadge(inc.severity), h("h1", { id: "incident-title" }, inc.title || t("inc_title", { id: inc.id }))),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("p", { class: "flags" },
        inc.acked_by ? h("span", { class: "chip chip-ok", id: "acked-by" }, t("inc_acked_by", { who: inc.acked_by })) : null,
        inc.feedback ? h("span", { class: "chip" }, t("inc_feedback", { v: t(`fb_${inc.feedback}`) })) : null));
    // The ticket: open one, or go to the existing one.
    const ticketId = (data.ticket && data.ticket.id) ?? inc.ticket_id;
    if (ticketId !== null && ticketId !== undefined) {
      const label = t("act_go_ticket", { n: (data.ticket && data.ticket.number) || `#${ticketId}` });
      fill(ticketSlot, h("a", { href: `/tickets/${encodeURIComponent(ticketId)}`, "data-nav": "", class: "btn", id: "go-ticket" }, label));
    } else {
      fill(ticketSlot, openTicket);
    }
    const why = lang() === "en" && (inc.reasons_en || []).length ? inc.reasons_en : inc.reasons || [];
    fill(reasons.body, why.length ? h("ul", { class: "reasons" }, why.map((r) => h("li", {}, r))) : h("p", { class: "muted" }, t("none")));
    fill(timeline.body, timelineChart(data.timeline, { label: t("inc_timeline") }));
    // Marked words: the incident's keywords, and the watch names (a watch's incident may have no keywords).
    const marks = [...(inc.keywords || []), ...(inc.watches || []).filter((w) => w !== "*")];
    const list = data.posts || [];
    const shown = showAll ? list : list.slice(0, POSTS_SHOWN);
    fill(posts.body, list.length ? h("ol", { class: "posts" }, shown.map((p) => postItem(p, marks))) : h("p", { class: "muted" }, t("none")),
      shown.length < list.length ? h("button", { type: "button", class: "btn", id: "show-all-posts", onclick: () => {
        showAll = true;
        draw(data, true);
      } }, t("show_all", { n: list.length })) : null);
    fill(events.body, table([
      [t("col_time"), (e) => fmtTime(e.at)], [t("col_actor"), (e) => e.actor || "—"], [t("col_action"), (e) => actionText(e.action)],
      [t("col_note"), (e) => h("span", { class: "pre" }, e.note || "")],
    ], data.events || [], { empty: t("none") }));
    fill(notes.body, table([
      [t("col_channel"), (n) => n.channel], [t("col_status"), (n) => { const k = `ch_status_${n.status}`; return t(k) === k ? n.status : t(k); }],
      [t("col_kind"), (n) => n.kind || ""], [t("col_attempts"), (n) => t("attempts", { n: n.attempts })],
      [t("col_time"), (n) => fmtTime(n.sent_at)],
    ], data.notifications || [], { empty: t("none") }));
  }

  return {
    poll: true,
    async refresh() { draw(await get(base)); },
  };
}

/** One post: source, author, time, title and text with the incident's keywords marked, a link to the original. */
function postItem(p, keywords) {
  const negative = p.sentiment === "negative";
  return h("li", { class: negative ? "post negative" : "post", "data-uid": p.uid },
    h("div", { class: "post-meta" },
      h("span", { class: "chip" }, p.source), " ", h("span", { class: "author" }, p.author || "—"), " ",
      h("time", { datetime: p.published_at || "" }, fmtTime(p.published_at)),
      negative ? h("span", { class: "chip chip-bad" }, t("negative")) : null,
      p.reposts ? h("span", { class: "muted small" }, ` ${t("reposts", { n: p.reposts })}`) : null,
      p.comments ? h("span", { class: "muted small" }, ` ${t("comments", { n: p.comments })}`) : null),
    p.title ? h("p", { class: "post-title" }, highlight(p.title, keywords)) : null,
    h("p", { class: "post-text" }, highlight(p.text, keywords)),
    p.url ? h("p", { class: "post-link" }, extLink(p.url, t("open_link"))) : null);
}
