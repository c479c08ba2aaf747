"""html kind: parse throughput on a 200 KB forum list page with 50 items, and the cost of a 200-source poll cycle.

1. **Parse**: a Discuz!-style board page (GBK, like the old forums it mirrors), 50 threads padded with realistic
   markup (per-thread icons, author cells, counters, a sidebar and a long footer) to ``--page-kb`` KB, parsed by the
   ``discuz`` preset through ``HtmlSource.parse`` (decode + lxml + cssselect selectors + transforms). Reports
   pages/s and items/s over ``--repeat`` parses, and beside it what BeautifulSoup(lxml) tree building alone costs on
   the same page (the parser the design card named, replaced because of this figure).
2. **Poll cycle**: ``--sources`` html sources (discuz preset) on a loopback server, each its own host (127.1.x.y,
   so per-host politeness does not serialise them), polled once each through the real runner (fetch -> parse ->
   store on SQLite) with the default http settings: wall time of the whole cycle and CPU seconds of this process.

Nothing is asserted. Run:  python bench/html_parse.py [--repeat 50] [--sources 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORDS = ("鲸帆手机", "充电发烫", "客服", "退款", "售后", "屏幕", "电池", "系统更新", "拍照", "信号", "续航",
         "维修", "快递", "发票", "保修", "官方", "论坛", "求助", "吐槽", "体验")


def board_page(seed: int, items: int = 50, target_kb: int = 200) -> bytes:
    """A Discuz!-style thread list, GBK-encoded, about ``target_kb`` KB."""
    rnd = random.Random(seed)
    rows = []
    for i in range(items):
        tid = 900000 + seed * 100 + i
        title = "".join(rnd.choice(WORDS) for _ in range(4))
        rows.append(f"""<tbody id="normalthread_{tid}"><tr>
<td class="icn"><a href="forum.php?mod=viewthread&amp;tid={tid}" title="新窗口打开" target="_blank">
<img src="static/image/common/folder_common.gif" /></a></td>
<th class="common"><em>[<a href="forum.php?mod=forumdisplay&amp;fid=2&amp;filter=typeid&amp;typeid=1">求助</a>]</em>
 <a href="forum.php?mod=viewthread&amp;tid={tid}&amp;extra=page%3D1" onclick="atarget(this)" class="s xst">{title}</a>
 <img src="static/image/filetype/image_s.gif" alt="attach_img" title="图片附件" align="absmiddle" />
 <span class="tps">&nbsp;...<a href="forum.php?mod=viewthread&amp;tid={tid}&amp;page=2">2</a></span></th>
<td class="by"><cite><a href="home.php?mod=space&amp;uid={5000 + i}" c="1">机友{rnd.randrange(9999)}</a></cite>
<em><span title="2026-11-2{i % 3} 1{i % 10}:0{i % 6}">{i % 59 + 1} 分钟前</span></em></td>
<td class="num"><a href="forum.php?mod=viewthread&amp;tid={tid}" class="xi2">{rnd.randrange(300)}</a>
<em>{rnd.randrange(30000)}</em></td>
<td class="by"><cite><a href="home.php?mod=space&amp;username=x" c="1">回复者{i}</a></cite>
<em><a href="forum.php?mod=redirect&amp;tid={tid}&amp;goto=lastpost#lastpost">{i % 59 + 1} 分钟前</a></em></td>
</tr></tbody>""")
    head = ('<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk" />'
            "<title>鲸帆专区 - 机友论坛 - Powered by Discuz!</title></head><body><div id=\"wp\">"
            '<div class="bm_c"><table summary="forum_2" cellspacing="0" cellpadding="0" id="threadlisttableid">')
    side = "".join(f'<li><a href="forum.php?mod=forumdisplay&amp;fid={k}">版块{k} 今日 {k * 7}</a></li>'
                   for k in range(60))
    html = head + "".join(rows) + "</table></div>"
    pad: list[str] = []
    while len((html + "".join(pad)).encode("gbk", "replace")) < target_kb * 1024:
        pad.append(f'<div class="footer-links"><ul>{side}</ul><p>您需要登录后才可以回帖 登录 | 立即注册 '
                   f'{"广告位招租 " * 20}</p></div>')
    return (html + "".join(pad) + "</div></body></html>").encode("gbk", "replace")


def parse_bench(repeat: int, page_kb: int) -> None:
    from bs4 import BeautifulSoup

    from monitor.config import parse_config
    from monitor.registry import get_kind
    from monitor.source import Page

    config = parse_config("sources:\n  - name: board\n    type: html\n    preset: discuz\n"
                          "    url: https://bbs.example.com/forum.php?mod=forumdisplay&fid=2&page={page}\n")
    source = get_kind("html")(config.sources[0])
    body = board_page(1, target_kb=page_kb)
    page = Page(url="https://bbs.example.com/forum.php?mod=forumdisplay&fid=2&page=1", status=200,
                headers={"content-type": "text/html; charset=gbk"}, content=body, fetched_at=datetime.now(UTC))
    result = source.parse(page)
    assert len(result.posts) == 50, f"the preset read {len(result.posts)} items"  # a sanity check of the bench
    t = time.perf_counter()
    for _ in range(repeat):
        source.parse(page)
    per_page = (time.perf_counter() - t) / repeat
    text = body.decode("gbk")
    t = time.perf_counter()
    for _ in range(repeat):
        BeautifulSoup(text, "lxml")
    tree = (time.perf_counter() - t) / repeat
    print(f"html parse: {len(body) / 1024:.0f} KB GBK page, 50 items, discuz preset, {repeat} parses")
    print(f"  {1 / per_page:,.1f} pages/s = {50 / per_page:,.0f} items/s ({per_page * 1000:.1f} ms a page, all of "
          f"parse); for comparison BeautifulSoup(lxml) only building the tree: {tree * 1000:.1f} ms")


class _Handler(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            self.send_response(404)
            self.end_headers()
            return
        host = self.headers.get("Host", "").split(":")[0]
        body = self.pages.get(host, b"")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=gbk")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def cycle_bench(n: int, page_kb: int) -> None:
    from monitor.clock import SystemClock
    from monitor.config import parse_config, source_digest
    from monitor.db import Store, make_engine, upgrade
    from monitor.http import HttpClient
    from monitor.registry import get_kind
    from monitor.runner import SourceRunner

    hosts = [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(n)]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _Handler.pages = {h: board_page(i, target_kb=page_kb) for i, h in enumerate(hosts)}
    servers = []
    for h in hosts:
        srv = ThreadingHTTPServer((h, port), _Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    lines = ["sources:"] + [f"  - name: s{i}\n    type: html\n    preset: discuz\n"
                            f"    url: http://{h}:{port}/forum.php?mod=forumdisplay&fid=2&page={{page}}"
                            for i, h in enumerate(hosts)]
    config = parse_config("\n".join(lines) + "\n")
    os.environ.pop("HTTP_PROXY", None)
    os.environ.pop("http_proxy", None)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/b.db")
        upgrade(engine)
        store = Store(engine)
        sources = [get_kind("html")(s) for s in config.sources]
        clock = SystemClock()
        store.sync_sources([(s.name, s.kind, source_digest(s.config)) for s in sources], clock.now())

        async def go() -> list[object]:
            async with HttpClient(config.http, clock=clock) as http:
                with ThreadPoolExecutor(max_workers=1) as worker:
                    runner = SourceRunner(store, http, clock, config.timezone, worker)
                    return list(await asyncio.gather(*(runner.run(s, force=True) for s in sources)))

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        outcomes = asyncio.run(go())
        wall = time.perf_counter() - t
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        ok = sum(1 for o in outcomes if getattr(o, "status", "") == "ok")
        posts = store.count_posts()
        engine.dispose()
    for srv in servers:
        srv.shutdown()
    print(f"poll cycle: {n} html sources (discuz preset, {page_kb} KB GBK pages of 50 items, one page each) on "
          f"loopback, fetch -> parse -> store on SQLite")
    print(f"  {ok}/{n} ok, {posts:,} posts stored; wall {wall:.1f} s, CPU {cpu:.1f} s in this process "
          f"(server threads included) = {cpu / n * 1000:.0f} ms CPU a source")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--page-kb", type=int, default=200)
    args = parser.parse_args()
    parse_bench(args.repeat, args.page_kb)
    cycle_bench(args.sources, args.page_kb)


if __name__ == "__main__":
    main()
