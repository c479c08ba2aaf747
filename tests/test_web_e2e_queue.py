"""The complaint-handling panels of the ticket view in a real headless Chromium, against the real app over a
replayed complaint surge: pick a suggested reply script, record it as sent, move the ticket to 回访, record the
follow-up with satisfaction and NPS, get the complainant's progress link — then open that link in a fresh browser
session with no login and see the stage and no internal notes or names.

Needs /usr/bin/chromium and /usr/bin/chromedriver like tests/test_web_e2e.py (skips without them unless
MONITOR_REQUIRE_BROWSER is set).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from alerts.queue import TicketQueue
from monitor.db import make_engine, upgrade
from monitor.db.schema import incidents, script_uses, tickets
from monitor.web.app import create_app
from monitor.web.auth import hash_password
from tests.test_web_e2e import WAIT, _browser_or_skip, _severe, chromium
from tests.web_helpers import HANDLER, PASSWORD, build_database, make_config, serve


def log_in(driver: Any, wait: Any, name: str) -> None:
    """Fill in the login page the console sent us to, as ``name`` with the test password."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    # The console redirects to the login page itself: wait for that navigation first, since looking for the form
    # while it happens fails with "aborted by navigation".
    wait.until(ec.url_contains("/login?next="))
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#login-name"))).send_keys(name)
    driver.find_element(By.CSS_SELECTOR, "#login-password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#login-submit").click()


INTERNAL_NOTE = "内部备注：投诉人情绪激动 <b>勿外传</b>"


def test_reply_script_followup_and_public_progress(tmp_path: Path) -> None:
    _browser_or_skip()
    import pytest

    pytest.importorskip("selenium")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    base_config = make_config(db_url, hash_password(PASSWORD))
    build_database(tmp_path, db_url, base_config)
    config = base_config.model_copy(update={"queue": base_config.queue.model_copy(update={"public_progress": True})})
    engine = make_engine(db_url)
    upgrade(engine)
    queue = TicketQueue(engine, config)
    with engine.begin() as conn:
        incident = conn.execute(select(incidents).order_by(incidents.c.id)).first()
        assert incident is not None
        tid = queue.open_for_incident(conn, incident, datetime.now(UTC))
    assert tid is not None
    queue.note(tid, INTERNAL_NOTE, actor=HANDLER)
    ticket = queue.get(tid)
    assert ticket is not None and ticket.complainant
    css = By.CSS_SELECTOR

    with serve(create_app(config, engine)) as base, chromium() as driver:
        wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])

        def text_of(selector: str) -> str:
            return str(driver.find_element(css, selector).text)

        driver.get(f"{base}/tickets/{tid}")
        log_in(driver, wait, HANDLER)
        wait.until(lambda d: text_of("#ticket-state") == "受理")
        expected = [m for m in _severe(driver) if not ("401" in m and "/api/me " in m)]
        assert expected == []

        # The complainant's profile panel: counts from the posts, flags (or "none") as chips, all as text.
        wait.until(lambda d: d.find_elements(css, "#ticket-profile #profile-counts"))
        posts_dd = driver.find_elements(css, "#ticket-profile #profile-counts dd")[0].text
        assert int(posts_dd.split("（")[0].replace(",", "")) >= 1  # the complainant's own posts were found
        assert driver.find_elements(css, "#ticket-profile #profile-flags")

        # Suggested scripts for a ticket in 受理, filled in; choosing one puts its text in the editable box.
        use = wait.until(ec.element_to_be_clickable((css, "#script-list li.script .script-use")))
        key = use.get_attribute("data-key")
        use.click()
        reply = driver.find_element(css, "#reply-text")
        text = str(reply.get_attribute("value"))
        assert ticket.number in text and "{" not in text
        reply.send_keys("（已电话联系）")
        driver.find_element(css, "#reply-submit").click()
        wait.until(lambda d: "已回复：" in text_of("#ticket-events"))
        wait.until(lambda d: "已选用 1 次" in text_of(f'#script-list li[data-key="{key}"]'))

        # Through the lifecycle to 回访, then the follow-up form: satisfaction 4, NPS 9.
        for state, label in (("verifying", "核实"), ("handling", "处理"), ("follow_up", "回访")):
            wait.until(ec.element_to_be_clickable((css, f"#move-{state}"))).click()
            wait.until(lambda d, label=label: text_of("#ticket-state") == label)
        wait.until(ec.visibility_of_element_located((css, "#fu-satisfaction")))
        Select(driver.find_element(css, "#fu-satisfaction")).select_by_value("4")
        Select(driver.find_element(css, "#fu-nps")).select_by_value("9")
        driver.find_element(css, "#fu-note").send_keys("用户认可处理结果")
        driver.find_element(css, "#followup-form-submit").click()
        wait.until(lambda d: text_of("#ticket-state") == "关闭")
        wait.until(lambda d: text_of("#followup-satisfaction") == "4 / 5" and text_of("#followup-nps") == "9 / 10")
        assert not driver.find_elements(css, "#ticket-incomplete")

        # The progress link for the complainant.
        driver.find_element(css, "#progress-link-get").click()
        wait.until(lambda d: "/p/" in str(d.find_element(css, "#progress-link").get_attribute("value")))
        link = str(driver.find_element(css, "#progress-link").get_attribute("value"))
        token = link.rsplit("/p/", 1)[1]
        # The script library: a handler reads it; editing is for admins.
        driver.find_element(css, '#nav a[href="/scripts"]').click()
        wait.until(lambda d: "产品质量 · 受理" in text_of("#script-library"))
        assert not driver.find_elements(css, "#script-form")
        assert _severe(driver) == []

    # A fresh browser, never logged in, opens the link (on the console the test served).
    with serve(create_app(config, engine)) as base, chromium() as public:
        wait = WebDriverWait(public, WAIT, ignored_exceptions=[StaleElementReferenceException])
        public.get(f"{base}/p/{token}")
        wait.until(lambda d: d.find_elements(css, "#progress-stage"))
        assert public.find_element(css, "#progress-stage").text == "关闭 / closed"
        assert public.find_element(css, "#progress-number").text == ticket.number
        assert public.find_element(css, "#progress-stages li.current").text.startswith("关闭")
        assert len(public.find_elements(css, "#progress-promises li.promise")) == 4
        page = str(public.find_element(css, "body").text)
        for secret in ("内部备注", "勿外传", HANDLER, "用户认可处理结果", "已电话联系"):
            assert secret not in page, secret
        for name in ticket.complainant.replace(" 等", "、").split("、"):
            if name and not name.endswith("人"):
                assert name not in page, name
        assert "/login" not in public.current_url
        assert _severe(public) == []
        # A made-up token shows the "not valid" message.
        public.get(f"{base}/p/{'A' * 32}")
        wait.until(lambda d: "链接无效" in d.find_element(css, "#progress-status").text)

    with engine.connect() as conn:
        row = conn.execute(select(tickets).where(tickets.c.id == tid)).one()
        assert (row.state, row.satisfaction, row.nps) == ("closed", 4, 9)
        assert row.followup_at is not None and row.public_token == token
        use_row = conn.execute(select(script_uses).where(script_uses.c.ticket_id == tid)).one()
        assert use_row.script_key == key and use_row.actor == HANDLER and use_row.text.endswith("（已电话联系）")
    engine.dispose()


ADMIN = "li.admin"
HOSTILE_BODY = '您好 {name}，<img src=x onerror="window.__xss=1">已收到 {ticket}'


def test_admin_edits_adds_and_retires_reply_scripts(tmp_path: Path) -> None:
    """An admin edits a script (a new version; the old one stays), writes a new one with a hostile-looking body
    (shown as text) and retires one; a wrong placeholder is refused with the reason on the page."""
    _browser_or_skip()
    import pytest

    pytest.importorskip("selenium")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from alerts.scripts import ScriptLibrary
    from monitor.config import parse_config
    from monitor.db.schema import reply_scripts

    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    hashed = hash_password(PASSWORD)
    config = parse_config(
        f"database: {{url: '{db_url}'}}\nsources:\n  - {{name: weibo, type: rss, url: 'http://127.0.0.1:9/w.xml'}}\n"
        f"web: {{language: zh, users: [{{name: {ADMIN}, role: admin, password_hash: '{hashed}'}}]}}\n")
    engine = make_engine(db_url)
    upgrade(engine)
    library = ScriptLibrary(engine, config)
    first = library.scripts()[0]
    css = By.CSS_SELECTOR

    with serve(create_app(config, engine)) as base, chromium() as driver:
        wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])

        def text_of(selector: str) -> str:
            return str(driver.find_element(css, selector).text)

        driver.get(f"{base}/scripts")
        log_in(driver, wait, ADMIN)
        wait.until(lambda d: first.key in text_of("#script-library"))

        # Edit: the form fills with the script, its key locked; saving makes version 2.
        driver.find_element(css, f'#script-library .script-edit[data-key="{first.key}"]').click()
        assert driver.find_element(css, "#script-key").get_attribute("readonly") is not None
        body = driver.find_element(css, "#script-body")
        assert body.get_attribute("value") == first.body
        body.send_keys("（如有疑问请回复本消息）")
        driver.find_element(css, "#script-save").click()
        wait.until(lambda d: f"已保存 {first.key} 第 2 版" in d.find_element(css, "body").text)

        # A placeholder the library does not know is refused, and the reason is shown.
        driver.find_element(css, "#script-new").click()
        driver.find_element(css, "#script-title").send_keys("错误占位符")
        driver.find_element(css, "#script-body").send_keys("您好 {nmae}")
        driver.find_element(css, "#script-save").click()
        wait.until(lambda d: "nmae" in d.find_element(css, "body").text)

        # A new script: empty key = a fresh one; the markup in its body stays text.
        driver.find_element(css, "#script-new").click()
        Select(driver.find_element(css, "#script-category")).select_by_value("service_experience")
        Select(driver.find_element(css, "#script-stage")).select_by_value("apology")
        driver.find_element(css, "#script-title").send_keys("延误致歉")
        driver.find_element(css, "#script-body").send_keys(HOSTILE_BODY)
        driver.find_element(css, "#script-save").click()
        wait.until(lambda d: "延误致歉" in text_of("#script-library"))
        assert HOSTILE_BODY in text_of("#script-library")
        assert driver.execute_script("return window.__xss") is None

        # Retire the first one: it leaves the list unless retired ones are asked for.
        driver.find_element(css, f'#script-library .script-deactivate[data-key="{first.key}"]').click()
        wait.until(lambda d: f"已停用 {first.key}" in d.find_element(css, "body").text)
        wait.until(lambda d: not d.find_elements(css, f'#script-library .script-edit[data-key="{first.key}"]'))
        driver.find_element(css, "#scripts-inactive").click()
        wait.until(lambda d: d.find_elements(css, f'#script-library .script-edit[data-key="{first.key}"]'))
        # Only the refused placeholder (and the login probe) may show in the console log.
        assert [m for m in _severe(driver) if not any(code in m for code in ("400", "401", "422"))] == []

    with engine.connect() as conn:
        rows = conn.execute(select(reply_scripts).where(reply_scripts.c.key == first.key)
                            .order_by(reply_scripts.c.version)).all()
        new = conn.execute(select(reply_scripts).where(reply_scripts.c.title == "延误致歉")).one()
    assert [r.version for r in rows] == [1, 2]
    assert rows[0].body == first.body and rows[1].body == first.body + "（如有疑问请回复本消息）"
    assert rows[1].created_by == ADMIN and not rows[-1].active
    assert new.body == HOSTILE_BODY and new.category == "service_experience" and new.stage == "apology"
    assert new.created_by == ADMIN and new.version == 1
