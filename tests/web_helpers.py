"""Helpers for the browser test of the web console: a replayed database with a complaint surge (and one hostile
post), a config with a handler who can log in, and the real app served by uvicorn on 127.0.0.1 in a thread.

Run this file directly to browse the same console by hand: ``python -m tests.web_helpers [port]``.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

from monitor.config import Config, parse_config
from monitor.replay import replay

PASSWORD = "测试 password 42"
HANDLER = "wang.handler"
#: A post whose text tries to run script in the console; it must show as these literal characters.
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
WATCH = "鲸帆"
GRIEVANCE = ["鲸帆手机充电发烫还自动关机，申请退款被客服拒绝了，太坑了",
             "鲸帆手机充电发烫自动关机，客服拒绝退款，气死了",
             "我的鲸帆手机也是充电发烫关机！客服就是不给退款，建了维权群一起去12315投诉",
             "鲸帆手机充电发烫关机，退款被拒，这售后太恶心了"]
EVERYDAY = ["今天天气不错，出去走走", "周末去看了电影，还挺好看的", "地铁又晚点了，烦", "晚饭吃了火锅，开心",
            "下雨了记得带伞", "新买的书到了，准备开始读", "楼下的猫又来要吃的了", "加班到十点，好累啊",
            "鲸帆新机拍照不错，发布会挺精彩"]


def surge_stream(now: datetime | None = None, seed: int = 7) -> list[dict[str, Any]]:
    """Two days of everyday posts on two platforms, then in the last hour a clear negative surge about the watched
    brand: 36 buyers on weibo and tieba repeating one grievance, one of them with a script-injection payload."""
    now = now or datetime.now(UTC)
    # Pinned to half past an hour: where the hour boundaries fall in the wave decides the watch's hourly baseline
    # slots and so the signals' timing and the posts the incident holds by the end; unpinned, the tests' incident
    # changed with the minute they ran at.
    now = now.replace(minute=30, second=0, microsecond=0) - timedelta(hours=1 if now.minute < 30 else 0)
    rnd = random.Random(seed)
    start = now - timedelta(days=2)
    rows: list[dict[str, Any]] = []
    for i in range(280):
        rows.append({"id": f"bg{i}", "source": rnd.choice(["weibo", "tieba"]), "author": f"路人{rnd.randrange(150)}",
                     "text": rnd.choice(EVERYDAY), "published_at": (start + timedelta(minutes=10 * i)).isoformat()})
    wave = now - timedelta(minutes=55)
    for i in range(36):
        source = ["weibo", "tieba"][i % 2]
        text = f"{rnd.choice(GRIEVANCE)} #{i}"
        if i == 30:
            # Escaped the way a page or feed carries it: the normalizer strips real tags, decodes entities.
            text = f"鲸帆手机充电发烫自动关机，客服拒绝退款 {html.escape(XSS)}"
        rows.append({"id": f"w{i}", "source": source, "author": f"买家{i}", "text": text,
                     "title": "鲸帆退款" if source == "tieba" else "",
                     "url": f"https://{source}.example.com/p/{i}", "reposts": i % 5, "comments": i % 7,
                     "published_at": (wave + timedelta(seconds=80 * i)).isoformat()})
    return rows


def make_config(db_url: str, password_hash: str) -> Config:
    """Two sources (never fetched), the watched brand, and one handler."""
    return parse_config(
        f"database: {{url: '{db_url}'}}\ntimezone: Asia/Shanghai\n"
        "sources:\n"
        "  - {name: weibo, type: rss, url: 'http://127.0.0.1:9/weibo.xml'}\n"
        "  - {name: tieba, type: rss, url: 'http://127.0.0.1:9/tieba.xml'}\n"
        f"watches:\n  - name: {WATCH}\n    keywords: [{WATCH}]\n"
        f"web: {{language: zh, users: [{{name: {HANDLER}, role: handler, password_hash: '{password_hash}'}}]}}\n")


def build_database(tmp_path: Path, db_url: str, config: Config) -> list[dict[str, Any]]:
    """Replay the surge stream through the real pipeline into ``db_url``; the incidents it raised."""
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in surge_stream()), encoding="utf-8")
    out = tmp_path / "incidents.jsonl"
    replay(config, path, out, db_url=db_url, progress=io.StringIO())
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


if __name__ == "__main__":  # a console to look at by hand
    import sys
    import tempfile

    from monitor.db import make_engine, upgrade
    from monitor.web.app import create_app
    from monitor.web.auth import hash_password

    tmp = Path(tempfile.mkdtemp(prefix="monitor-web-"))
    url = f"sqlite:///{tmp / 'console.db'}"
    cfg = make_config(url, hash_password(PASSWORD))
    print(build_database(tmp, url, cfg), file=sys.stderr)
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(cfg, engine)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    print(f"http://127.0.0.1:{port}/  user {HANDLER!r} password {PASSWORD!r}", file=sys.stderr)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
