// Every UI string in one dictionary, Chinese first (the team's working language), English for the rest.
// t("key", {n: 3}) fills {n}; a missing English string falls back to Chinese, a missing key shows the key
// itself so a gap is visible rather than silent.

const STRINGS = {
  zh: {
    app_title: "舆情监测", nav_dashboard: "总览", nav_tickets: "投诉工单", nav_sources: "数据源",
    nav_reports: "报告", logout: "退出", lang_toggle: "English", loading: "加载中…", close: "关闭",
    error_network: "网络错误，请稍后重试", error_generic: "请求失败（{status}）", saved: "已保存",
    not_found: "页面不存在", back: "返回", none: "无", all: "全部", unknown: "未知",
    // login
    login_title: "登录", login_name: "用户名", login_password: "密码", login_submit: "登录",
    login_failed: "用户名或密码错误", login_locked: "尝试次数过多，请 {n} 分钟后再试",
    // severity / status
    sev_blue: "蓝", sev_yellow: "黄", sev_orange: "橙", sev_red: "红",
    st_open: "进行中", st_quiet: "已平息", st_resolved: "已解决", st_active: "活跃",
    // dashboard
    dash_open: "未关闭事件", dash_no_incidents: "当前没有未关闭的事件", dash_trend: "关注对象走势",
    dash_range_24h: "24 小时", dash_range_7d: "7 天", dash_sources: "数据源状态", dash_outbox: "消息发送",
    dash_tickets: "工单", outbox_pending: "待发送", outbox_failed: "发送失败", tickets_open: "处理中",
    tickets_overdue: "已超时", legend_posts: "帖子数", legend_neg_share: "负面占比", no_data: "暂无数据",
    // incident columns
    col_severity: "级别", col_title: "标题", col_posts: "帖子", col_authors: "作者", col_sources: "平台",
    col_age: "持续", col_actor: "操作人", col_action: "操作", col_note: "备注", col_channel: "渠道", col_kind: "类型", col_time: "时间", col_attempts: "尝试", col_status: "状态", col_opened: "开始", col_ticket: "工单",
    // incident view
    inc_title: "事件 #{id}", inc_actions: "处理", inc_reasons: "判定依据", inc_timeline: "时间线", inc_posts: "代表性帖子",
    inc_events: "处理记录", inc_notifications: "通知", inc_sources: "平台", inc_authors: "作者数",
    inc_keywords: "关键词", inc_watches: "关注对象", inc_category: "类别", inc_score: "评分",
    inc_acked_by: "已确认：{who}", inc_feedback: "判定：{v}", fb_real: "真实事件", fb_noise: "误报",
    act_ack: "确认", act_resolve: "标记已解决", act_real: "标为真实", act_noise: "标为误报",
    act_silence: "静默", act_open_ticket: "建立工单", act_go_ticket: "查看工单 {n}",
    act_note_placeholder: "备注（可选）", silence_for: "静默时长", silence_done: "已静默",
    ack_done: "已确认", resolve_done: "已标记解决", feedback_done: "已记录判定", ticket_done: "已建立工单",
    negative: "负面", show_all: "显示全部 {n} 条", reposts: "转发 {n}", comments: "评论 {n}", open_link: "原文",
    legend_negatives: "负面帖", legend_expected: "预期", chart_severity: "级别",
    ch_status_sent: "已发送", ch_status_pending: "待发送", ch_status_failed: "失败",
    ch_status_sending: "发送中", ch_status_cancelled: "已取消", attempts: "尝试 {n} 次",
    // tickets
    tq_title: "投诉工单", tq_state: "状态", tq_severity: "级别", tq_assignee: "处理人",
    tq_overdue_first: "超时优先", tq_only_overdue: "只看超时", tq_none: "没有符合条件的工单", tq_overdue_by: "超时 {d}",
    tq_sla_ok: "时限内", tq_sla_done: "已完成", tq_unassigned: "未分配", tq_filter: "筛选",
    state_accepted: "受理", state_verifying: "核实", state_handling: "处理", state_follow_up: "回访",
    state_closed: "关闭",
    tk_title: "工单 {n}", tk_registration: "登记信息", tk_who: "投诉人", tk_what: "内容", tk_where: "平台",
    tk_when: "发生时间", tk_demand: "诉求", tk_evidence: "证据链接", tk_category: "类别", tk_tags: "标签",
    tk_incident: "关联事件", tk_sla: "时限", tk_events: "处理记录", tk_move: "流转到", tk_assign: "分配",
    tk_note: "添加备注", tk_respond: "记录首次回复", tk_satisfaction: "满意度（1–5）",
    tk_note_required: "关闭需要填写原因", tk_satisfaction_required: "回访后关闭需要选择满意度",
    tk_move_done: "已流转到 {s}", tk_assign_done: "已分配给 {who}", tk_note_done: "已添加备注",
    tk_respond_done: "已记录首次回复", tk_created: "登记时间", tk_reopened: "重开 {n} 次",
    tk_submit: "提交", tk_note_label: "备注（内部）", tk_respond_label: "给投诉人的首次回复", tk_assignee_placeholder: "处理人用户名", tk_text_placeholder: "内容",
    ev_create: "登记", ev_ack: "确认", ev_assign: "分配", ev_move: "流转", ev_reopen: "重开", ev_note: "备注",
    ev_respond: "首次回复", ev_followup: "回访", ev_severity: "级别变化", ev_remind: "提醒", ev_escalate: "升级",
    ev_resolve: "解决", ev_feedback: "判定", ev_silence: "静默", ev_ticket: "建立工单", ev_open: "开启", ev_escalated: "升级", ev_acknowledged: "确认", ev_resolved: "解决", ev_silenced: "静默", ev_marked_real: "判定为真实", ev_marked_noise: "判定为误报", ev_reflared: "再次升温",
    ms_acknowledge: "受理", ms_respond: "首次回复", ms_verify: "核实", ms_resolve: "解决",
    ms_deadline: "期限 {t}", ms_met: "完成于 {t}", ms_late: "超时 {d}", ms_waived: "不适用",
    ms_due_in: "剩余 {d}",
    // sources
    src_title: "数据源", src_status: "状态", src_last_success: "最近成功", src_last_error: "最近错误",
    src_per_day: "每日帖子", src_test: "立即测试", src_testing: "测试中…", src_test_ok: "测试成功：读到 {n} 条",
    src_test_fail: "测试失败", src_problems: "问题", src_disabled: "已停用", src_failures: "连续失败 {n} 次",
    src_ok: "正常", src_failing: "失败", src_blocked: "被拦截", src_layout: "页面结构变化", src_never: "从未",
    src_total: "共 {n} 条",
    // reports
    rp_title: "报告", rp_daily: "日报", rp_weekly: "周报", rp_date: "日期", rp_show: "查看", rp_print: "打印",
    // time
    ago_s: "刚刚", ago_m: "{n} 分钟前", ago_h: "{n} 小时前", ago_d: "{n} 天前",
    span_m: "{n}分钟", span_h: "{h}小时{m}分钟", span_hh: "{h}小时", span_d: "{d}天{h}小时", span_dd: "{d}天",
    // reply scripts (标准话术), follow-up, compensation, outcome, progress link
    nav_scripts: "话术库", sc_suggested: "推荐话术", sc_reply: "回复投诉人", sc_reply_placeholder: "选用上方话术，或直接填写回复内容",
    sc_none_chosen: "未选用话术（自行填写）", sc_chosen: "已选用：{title}（第 {v} 版），可修改后发送", sc_send: "记录已发送",
    sc_sent: "已记录回复", sc_reply_empty: "回复内容不能为空", sc_use: "选用", sc_uses: "已选用 {n} 次",
    sc_no_suggestions: "没有适用的话术", sc_stage_acknowledge: "受理", sc_stage_apology: "致歉", sc_stage_solution: "处理方案",
    sc_stage_followup: "回访", sc_library: "标准话术库", sc_editor: "编辑话术", sc_key: "编号", sc_version: "版本",
    sc_stage: "阶段", sc_body: "正文", sc_active: "使用中", sc_inactive: "已停用", sc_updated: "更新",
    sc_edit: "编辑", sc_deactivate: "停用", sc_deactivated: "已停用 {key}", sc_save: "保存（新版本）", sc_new: "新建",
    sc_saved: "已保存 {key} 第 {v} 版", sc_any: "通用", sc_show_inactive: "显示已停用", sc_key_placeholder: "编号（留空则新建）",
    sc_body_placeholder: "正文，可用占位符", sc_placeholders: "占位符：{name} 投诉人、{ticket} 工单号、{deadline} 下一个承诺时限、{brand} 品牌、{handler} 处理人",
    cat_product_quality: "产品质量", cat_service_experience: "服务体验", cat_contract_performance: "合同履约",
    cat_ethics_compliance: "道德合规",
    fu_title: "回访", fu_nps: "推荐意愿（NPS 0–10）", fu_at: "回访时间", fu_submit: "记录回访并关闭", fu_done: "已记录回访",
    fu_only_in_followup: "工单进入「回访」后可记录回访结果", fu_state: "状态", fu_incomplete: "未回访即关闭",
    cp_title: "补偿", cp_kind: "方式", cp_amount: "金额", cp_yuan: "元", cp_add: "记录补偿", cp_done: "已记录补偿",
    cp_none: "暂无补偿记录", cp_refund: "退款", cp_voucher: "代金券", cp_replacement: "换货", cp_apology: "致歉", cp_other: "其他",
    oc_title: "处理结果", oc_withdrawn: "投诉人是否撤诉", oc_yes: "已撤诉", oc_no: "未撤诉", oc_note: "结果说明",
    oc_submit: "记录结果", oc_done: "已记录结果", oc_empty: "请选择是否撤诉或填写说明",
    pg_title: "投诉人进度页", pg_hint: "发给投诉人的链接：无需登录即可查看当前阶段和承诺时限，不含备注和个人信息。",
    pg_get: "获取链接", pg_copy: "复制", pg_copied: "已复制链接",
    ev_nps: "回访 NPS", ev_compensation: "补偿", ev_outcome: "结果",
    pf_title: "投诉人画像", pf_no_flags: "无标记", pf_posts: "近期发帖", pf_negative: "负面", pf_incidents: "涉及事件",
    pf_tickets: "投诉工单", pf_followers: "最高粉丝数", pf_engagement: "转发+评论", pf_accounts: "关联账号",
    pf_no_accounts: "未发现关联账号", pf_window: "统计近 {n} 天", pf_unavailable: "暂无画像",
    pf_flag_repeat_complainant: "重复投诉", pf_flag_large_reach: "大V", pf_flag_multi_incident: "多次事件",
    pf_link_same_handle: "同名账号", pf_link_same_contact: "同一联系方式", pf_link_similar_text: "相似投诉",
  },
  en: {
    app_title: "Opinion monitor", nav_dashboard: "Dashboard", nav_tickets: "Complaints", nav_sources: "Sources",
    nav_reports: "Reports", logout: "Log out", lang_toggle: "中文", loading: "Loading…", close: "Close",
    error_network: "Network error, please retry", error_generic: "Request failed ({status})", saved: "Saved",
    not_found: "Page not found", back: "Back", none: "none", all: "All", unknown: "unknown",
    login_title: "Log in", login_name: "User name", login_password: "Password", login_submit: "Log in",
    login_failed: "Wrong user name or password", login_locked: "Too many attempts; try again in {n} min",
    sev_blue: "Blue", sev_yellow: "Yellow", sev_orange: "Orange", sev_red: "Red",
    st_open: "open", st_quiet: "quiet", st_resolved: "resolved", st_active: "active",
    dash_open: "Open incidents", dash_no_incidents: "No open incidents", dash_trend: "Watches",
    dash_range_24h: "24 h", dash_range_7d: "7 days", dash_sources: "Source health", dash_outbox: "Notifications",
    dash_tickets: "Tickets", outbox_pending: "pending", outbox_failed: "failed", tickets_open: "open",
    tickets_overdue: "overdue", legend_posts: "posts", legend_neg_share: "negative share", no_data: "No data yet",
    col_severity: "Severity", col_title: "Title", col_posts: "Posts", col_authors: "Authors", col_sources: "Sources",
    col_age: "Age", col_actor: "By", col_action: "Action", col_note: "Note", col_channel: "Channel", col_kind: "Kind", col_time: "Time", col_attempts: "Attempts", col_status: "Status", col_opened: "Opened", col_ticket: "Ticket",
    inc_title: "Incident #{id}", inc_actions: "Actions", inc_reasons: "Why", inc_timeline: "Timeline", inc_posts: "Representative posts",
    inc_events: "History", inc_notifications: "Notifications", inc_sources: "Sources", inc_authors: "Authors",
    inc_keywords: "Keywords", inc_watches: "Watches", inc_category: "Category", inc_score: "Score",
    inc_acked_by: "Acknowledged by {who}", inc_feedback: "Verdict: {v}", fb_real: "real", fb_noise: "noise",
    act_ack: "Acknowledge", act_resolve: "Resolve", act_real: "Mark real", act_noise: "Mark noise",
    act_silence: "Silence", act_open_ticket: "Open ticket", act_go_ticket: "Go to ticket {n}",
    act_note_placeholder: "Note (optional)", silence_for: "Silence for", silence_done: "Silenced",
    ack_done: "Acknowledged", resolve_done: "Resolved", feedback_done: "Verdict recorded", ticket_done: "Ticket opened",
    negative: "negative", show_all: "Show all {n}", reposts: "{n} reposts", comments: "{n} comments", open_link: "source",
    legend_negatives: "negative posts", legend_expected: "expected", chart_severity: "severity",
    ch_status_sent: "sent", ch_status_pending: "pending", ch_status_failed: "failed",
    ch_status_sending: "sending", ch_status_cancelled: "cancelled", attempts: "{n} attempt(s)",
    tq_title: "Complaint queue", tq_state: "State", tq_severity: "Severity", tq_assignee: "Assignee",
    tq_overdue_first: "Overdue first", tq_only_overdue: "Only overdue", tq_none: "No tickets match", tq_overdue_by: "overdue {d}",
    tq_sla_ok: "on time", tq_sla_done: "done", tq_unassigned: "unassigned", tq_filter: "Filter",
    state_accepted: "accepted", state_verifying: "verifying", state_handling: "handling",
    state_follow_up: "follow-up", state_closed: "closed",
    tk_title: "Ticket {n}", tk_registration: "Registration", tk_who: "Complainant", tk_what: "Content",
    tk_where: "Platform", tk_when: "Occurred", tk_demand: "Demand", tk_evidence: "Evidence", tk_category: "Category",
    tk_tags: "Tags", tk_incident: "Incident", tk_sla: "SLA", tk_events: "History", tk_move: "Move to",
    tk_assign: "Assign", tk_note: "Add note", tk_respond: "Record first response", tk_satisfaction: "Satisfaction (1–5)",
    tk_note_required: "Closing needs a note saying why", tk_satisfaction_required: "Closing after follow-up needs a satisfaction score",
    tk_move_done: "Moved to {s}", tk_assign_done: "Assigned to {who}", tk_note_done: "Note added",
    tk_respond_done: "First response recorded", tk_created: "Registered", tk_reopened: "reopened {n}×",
    tk_submit: "Submit", tk_note_label: "Internal note", tk_respond_label: "First reply to the complainant", tk_assignee_placeholder: "user name", tk_text_placeholder: "text",
    ev_create: "registered", ev_ack: "acknowledged", ev_assign: "assigned", ev_move: "moved", ev_reopen: "reopened",
    ev_note: "note", ev_respond: "first response", ev_followup: "follow-up", ev_severity: "severity", ev_remind: "reminder",
    ev_escalate: "escalation", ev_resolve: "resolved", ev_feedback: "verdict", ev_silence: "silenced", ev_ticket: "ticket opened",
    ev_open: "opened", ev_escalated: "escalated", ev_acknowledged: "acknowledged", ev_resolved: "resolved", ev_silenced: "silenced",
    ev_marked_real: "marked real", ev_marked_noise: "marked noise", ev_reflared: "flared up again",
    ms_acknowledge: "acknowledge", ms_respond: "first response", ms_verify: "verification", ms_resolve: "solution",
    ms_deadline: "due {t}", ms_met: "met {t}", ms_late: "late by {d}", ms_waived: "waived", ms_due_in: "{d} left",
    src_title: "Sources", src_status: "Status", src_last_success: "Last success", src_last_error: "Last error",
    src_per_day: "Posts per day", src_test: "Test now", src_testing: "Testing…", src_test_ok: "OK: read {n} post(s)",
    src_test_fail: "Test failed", src_problems: "Problems", src_disabled: "disabled", src_failures: "{n} failure(s) in a row",
    src_ok: "ok", src_failing: "failing", src_blocked: "blocked", src_layout: "layout changed", src_never: "never",
    src_total: "{n} in total",
    rp_title: "Reports", rp_daily: "Daily", rp_weekly: "Weekly", rp_date: "Date", rp_show: "Show", rp_print: "Print",
    ago_s: "just now", ago_m: "{n} min ago", ago_h: "{n} h ago", ago_d: "{n} d ago",
    span_m: "{n} min", span_h: "{h} h {m} min", span_hh: "{h} h", span_d: "{d} d {h} h", span_dd: "{d} d",
    nav_scripts: "Scripts", sc_suggested: "Suggested replies", sc_reply: "Reply to the complainant",
    sc_reply_placeholder: "Pick a script above, or write the reply", sc_none_chosen: "No script chosen (written by hand)",
    sc_chosen: "Using: {title} (v{v}); edit before sending if needed", sc_send: "Record as sent", sc_sent: "Reply recorded",
    sc_reply_empty: "The reply is empty", sc_use: "Use", sc_uses: "chosen {n}×", sc_no_suggestions: "No script fits",
    sc_stage_acknowledge: "acknowledge", sc_stage_apology: "apology", sc_stage_solution: "solution", sc_stage_followup: "follow-up",
    sc_library: "Reply scripts", sc_editor: "Edit script", sc_key: "Key", sc_version: "Version", sc_stage: "Stage",
    sc_body: "Text", sc_active: "active", sc_inactive: "retired", sc_updated: "Updated", sc_edit: "Edit",
    sc_deactivate: "Retire", sc_deactivated: "{key} retired", sc_save: "Save (new version)", sc_new: "New",
    sc_saved: "Saved {key} v{v}", sc_any: "any", sc_show_inactive: "Show retired", sc_key_placeholder: "key (empty: new script)",
    sc_body_placeholder: "text, with placeholders", sc_placeholders: "Placeholders: {name} complainant, {ticket} number, {deadline} next promised time, {brand}, {handler}",
    cat_product_quality: "product quality", cat_service_experience: "service", cat_contract_performance: "contract",
    cat_ethics_compliance: "ethics & compliance",
    fu_title: "Follow-up", fu_nps: "Would recommend (NPS 0–10)", fu_at: "Followed up", fu_submit: "Record follow-up and close",
    fu_done: "Follow-up recorded", fu_only_in_followup: "The follow-up is recorded once the ticket is in follow-up",
    fu_state: "Status", fu_incomplete: "closed without follow-up",
    cp_title: "Compensation", cp_kind: "Kind", cp_amount: "Amount", cp_yuan: "CNY", cp_add: "Record compensation",
    cp_done: "Compensation recorded", cp_none: "No compensation recorded", cp_refund: "refund", cp_voucher: "voucher",
    cp_replacement: "replacement", cp_apology: "apology", cp_other: "other",
    oc_title: "Outcome", oc_withdrawn: "Complaint withdrawn", oc_yes: "withdrawn", oc_no: "not withdrawn",
    oc_note: "Outcome note", oc_submit: "Record outcome", oc_done: "Outcome recorded", oc_empty: "Choose withdrawn or write a note",
    pg_title: "Complainant's progress page", pg_hint: "A link for the complainant: shows the stage and promised times without a login; no notes, no personal data.",
    pg_get: "Get link", pg_copy: "Copy", pg_copied: "Link copied",
    ev_nps: "follow-up NPS", ev_compensation: "compensation", ev_outcome: "outcome",
    pf_title: "Complainant profile", pf_no_flags: "No flags", pf_posts: "Recent posts", pf_negative: "negative", pf_incidents: "Incidents",
    pf_tickets: "Tickets", pf_followers: "Most followers", pf_engagement: "Reposts + comments", pf_accounts: "Linked accounts",
    pf_no_accounts: "No linked accounts found", pf_window: "Last {n} days", pf_unavailable: "No profile available",
    pf_flag_repeat_complainant: "Repeat complainant", pf_flag_large_reach: "Large reach", pf_flag_multi_incident: "Several incidents",
    pf_link_same_handle: "Same handle", pf_link_same_contact: "Same contact", pf_link_similar_text: "Near-identical complaint",
  },
};

const KEY = "monitor.lang";
let current = localStorage.getItem(KEY) || null;

/** The language in use: the user's stored choice, else the server's default, else Chinese. */
export function lang() {
  return current || "zh";
}

/** Apply the server default unless the user chose one on this browser. */
export function setDefault(language) {
  if (!localStorage.getItem(KEY) && (language === "zh" || language === "en")) current = language;
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
}

/** Switch and remember the choice. */
export function setLang(language) {
  current = language;
  localStorage.setItem(KEY, language);
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
}

/** An event's action in words ("move" -> 流转); unknown actions as they are. */
export function actionText(action) {
  const key = `ev_${action}`;
  const text = t(key);
  return text === key ? String(action ?? "") : text;
}

export function t(key, params = {}) {
  const text = STRINGS[lang()][key] ?? STRINGS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}
