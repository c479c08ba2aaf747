"""`monitor replay`: a recorded stream through the real pipeline on a simulated clock, into SQLite or PostgreSQL."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from monitor.config import parse_config
from monitor.db import make_engine
from monitor.replay import ReplayInputError, replay

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=CST)
# Written for these tests: a crowd of buyers repeating one grievance, and unrelated everyday posts.
GRIEVANCE = ["鲸帆手机充电发烫还自动关机，申请退款被客服拒绝了，太坑了",
             "鲸帆手机充电发烫自动关机，客服拒绝退款，气死了",
             "我的鲸帆手机也是充电发烫关机！客服就是不给退款，建了维权群一起去12315投诉",
             "鲸帆手机充电发烫关机，退款被拒，这售后太恶心了"]
PRAISE = ["鲸帆新品发布会太精彩了，拍照效果真棒，已经下单了", "鲸帆新机拍照真棒，发布会很精彩，果断下单"]
EVERYDAY = ["今天天气不错，出去走走", "周末去看了电影，还挺好看的", "地铁又晚点了，烦", "晚饭吃了火锅，开心",
            "下雨了记得带伞", "新买的书到了，准备开始读", "楼下的猫又来要吃的了", "加班到十点，好累啊"]


def post(i: int, when: datetime, text_: str, author: str, source: str = "weibo") -> dict[str, Any]:
    """One input line."""
    return {"id": str(i), "source": source, "author": author, "text": text_, "published_at": when.isoformat(),
            "reposts": 1, "comments": 2}


def stream(seed: int = 1) -> list[dict[str, Any]]:
    """Two days of everyday posts, then a complaint wave (30 people, 3 platforms, 40 min) and a praise wave."""
    rnd = random.Random(seed)
    out = [post(i, T0 + timedelta(minutes=10 * i), rnd.choice(EVERYDAY), f"bg{rnd.randrange(200)}",
                rnd.choice(["weibo", "tieba"])) for i in range(300)]
    wave = T0 + timedelta(days=2)
    out += [post(1000 + i, wave + timedelta(seconds=80 * i), f"{rnd.choice(GRIEVANCE)} #{i}", f"buyer{i}",
                 ["weibo", "tieba", "heimao"][i % 3]) for i in range(30)]
    praise = T0 + timedelta(days=2, hours=8)
    out += [post(2000 + i, praise + timedelta(seconds=60 * i), rnd.choice(PRAISE), f"fan{i}") for i in range(40)]
    return out


def write(path: Path, rows: list[Any]) -> Path:
    """A JSON-lines file (strings are written as they are: bad lines for the error tests)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_a_complaint_wave_is_one_incident_and_praise_is_none(tmp_path: Path, db_url: str) -> None:
    rows = stream()
    random.Random(2).shuffle(rows)  # replay orders by time itself
    out = tmp_path / "incidents.jsonl"
    result = replay(parse_config("sources: []\n"), write(tmp_path / "in.jsonl", rows), out, db_url=db_url,
                    progress=io.StringIO())
    incidents = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert result.posts == len(rows) and result.incidents == len(incidents) == 1
    [inc] = incidents
    assert set(inc) >= {"id", "opened_at", "severity", "title", "keywords", "post_ids", "sources", "authors",
                        "reasons"}
    wave = T0 + timedelta(days=2)
    opened = datetime.fromisoformat(inc["opened_at"])
    assert wave < opened <= wave + timedelta(minutes=40), "raised on the simulated clock, during the wave"
    members = {p.split(":", 1)[1] for p in inc["post_ids"]}
    assert len(members & {str(1000 + i) for i in range(30)}) >= 10
    assert not members & {str(2000 + i) for i in range(40)}
    assert inc["sources"] == ["heimao", "tieba", "weibo"] and inc["authors"] >= 10
    assert inc["severity"] in ("blue", "yellow", "orange", "red")
    assert any("authors" in r for r in inc["reasons"]) and any("12315" in r for r in inc["reasons"])
    # The database holds what was replayed: annotated posts and the incident with its timeline.
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM posts WHERE analysed_at IS NULL")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM posts WHERE sentiment = 'negative'")).scalar() >= 25
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM incident_points")).scalar() >= 1
        cats = {r[0] for r in conn.execute(text("SELECT category FROM posts WHERE id IN "
                                                "(SELECT id FROM posts WHERE sentiment = 'negative')"))}
        assert cats - {None}, "negative posts get a complaint category"
    engine.dispose()


def test_same_stream_same_incidents(tmp_path: Path) -> None:
    rows = stream(seed=5)
    outs = []
    for n in range(2):
        out = tmp_path / f"out{n}.jsonl"
        replay(parse_config("sources: []\n"), write(tmp_path / f"in{n}.jsonl", rows), out, progress=io.StringIO())
        outs.append([{k: v for k, v in json.loads(line).items()} for line in out.read_text().splitlines()])
    assert outs[0] == outs[1] and outs[0]


def test_watches_limit_what_counts(tmp_path: Path) -> None:
    """Alerts are per watch: a watch on another brand sees no surge here, and neither do topics none of whose posts
    name a watch, unless ``detection.unwatched_topics`` asks for them."""
    config = parse_config("sources: []\nwatches:\n  - name: other\n    keywords: [某某汽车]\n")
    out = tmp_path / "out.jsonl"
    replay(config, write(tmp_path / "in.jsonl", stream()), out, progress=io.StringIO())
    assert out.read_text() == ""
    config = parse_config("sources: []\nwatches:\n  - name: other\n    keywords: [某某汽车]\n"
                          "detection: {unwatched_topics: true}\n")
    replay(config, write(tmp_path / "in.jsonl", stream()), out, progress=io.StringIO())
    incidents = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(incidents) == 1 and incidents[0]["watches"] == []
    config = parse_config("sources: []\nwatches:\n  - name: 鲸帆\n    keywords: [鲸帆]\n")
    replay(config, write(tmp_path / "in.jsonl", stream()), out, progress=io.StringIO())
    [inc] = [json.loads(line) for line in out.read_text().splitlines()]
    assert inc["title"].startswith("鲸帆")


def test_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    rows: list[Any] = stream()[:50]
    rows[3] = "{not json"
    rows[7] = {"id": "x", "source": "weibo", "text": "无时区", "published_at": "2026-11-02 09:00:00"}
    rows[9] = {"id": "y", "source": "bad name!", "text": "t", "published_at": "2026-11-02T09:00:00+08:00"}
    rows[11] = ["a list"]
    result = replay(parse_config("sources: []\n"), write(tmp_path / "in.jsonl", rows), tmp_path / "o.jsonl",
                    progress=io.StringIO())
    assert result.posts == 46 and result.skipped == 4
    joined = "\n".join(result.problems)
    assert "in.jsonl:4:" in joined and "has no UTC offset" in joined and "not a valid name" in joined
    with pytest.raises(ReplayInputError, match="no post could be read"):
        replay(parse_config("sources: []\n"), write(tmp_path / "bad.jsonl", ["nope"]), tmp_path / "o.jsonl",
               progress=io.StringIO())


def test_cli_replay_prints_progress_and_summary(tmp_path: Path) -> None:
    src = write(tmp_path / "in.jsonl", stream())
    cfg = tmp_path / "config.yaml"
    cfg.write_text("sources: []\n", encoding="utf-8")
    out = tmp_path / "incidents.jsonl"
    done = subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "--config", str(cfg), "--input", str(src),
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "replay 100%" in done.stderr and "1 incident(s) written" in done.stderr
    assert len(out.read_text().splitlines()) == 1
    missing = subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "--config", str(cfg), "--input",
                              str(tmp_path / "nope.jsonl"), "--output", str(out)], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_a_topic_alerts_when_some_of_its_posts_name_the_watch(tmp_path: Path) -> None:
    """An emerging issue: only every third buyer names the brand; the topic's surge is the watch's incident, with
    the posts that do not name it attached too."""
    rows = stream()
    for r in rows:
        if 1000 <= int(r["id"]) < 2000 and int(r["id"]) % 3:
            r["text"] = r["text"].replace("鲸帆", "这家")
    config = parse_config("sources: []\nwatches:\n  - name: 鲸帆\n    keywords: [鲸帆]\n")
    out = tmp_path / "out.jsonl"
    replay(config, write(tmp_path / "in.jsonl", rows), out, progress=io.StringIO())
    incidents = [json.loads(line) for line in out.read_text().splitlines()]
    assert incidents and all(i["title"].startswith("鲸帆") for i in incidents)
    attached = {p.split(":", 1)[1] for i in incidents for p in i["post_ids"]}
    assert any(int(p) % 3 for p in attached), "posts without the brand name come along"


def test_every_negative_post_of_the_wave_after_it_opened_is_attached(tmp_path: Path) -> None:
    """The detector speaks at a start, an escalation and every few minutes; the wave's posts in between (and after
    its last signal) are the incident's too. Checked against what the database says each post is."""
    rows = stream()
    wave = T0 + timedelta(days=2)
    # The wave goes on for another 75 minutes, a post every 3 minutes: more posts than signals.
    rows += [post(3000 + i, wave + timedelta(minutes=41 + 3 * i), f"{GRIEVANCE[i % 4]} +{i}", f"late{i}",
                  ["weibo", "tieba"][i % 2]) for i in range(25)]
    db = tmp_path / "replay.db"
    out = tmp_path / "out.jsonl"
    replay(parse_config("sources: []\n"), write(tmp_path / "in.jsonl", rows), out, db_url=f"sqlite:///{db}",
           progress=io.StringIO())
    [inc] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    opened = datetime.fromisoformat(inc["opened_at"])
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        negative = {r[0] for r in conn.execute(text(
            "SELECT native_id FROM posts WHERE sentiment = 'negative' AND CAST(native_id AS INTEGER) >= 1000 "
            "AND CAST(native_id AS INTEGER) < 4000 AND CAST(native_id AS INTEGER) NOT BETWEEN 2000 AND 2999"))}
        stored = {r[0] for r in conn.execute(text("SELECT post_uid FROM incident_posts"))}
    engine.dispose()
    published = {str(r["id"]): datetime.fromisoformat(r["published_at"]) for r in rows}
    after = {n for n in negative if published[n] >= opened}
    members = {p.split(":", 1)[1] for p in inc["post_ids"]}
    assert len(after) >= 40 and after <= members, sorted(after - members)
    assert {p.split(":", 1)[1] for p in stored} == members


# Written for this test: different people upset about different things, all saying 太可怕.
FRIGHTS = ["昨晚的雷声太可怕了，一夜没睡好", "看了个恐怖片，太可怕了不敢关灯", "高速上那个车祸现场太可怕了",
           "体检报告出来了，数字太可怕", "楼下装修的电钻声太可怕了", "期末考试的题目太可怕了",
           "今天的台风太可怕了，树都倒了", "信用卡账单太可怕了，这个月白干", "蟑螂会飞，太可怕了"]


def test_a_shared_phrase_of_feeling_is_not_a_topic(tmp_path: Path) -> None:
    """Nine people each frightened by something else share only 太可怕: no topic incident is raised for it. The
    same stream with the coherence gate off does raise one, so the gate is what holds it back."""
    rnd = random.Random(3)
    rows = [post(i, T0 + timedelta(minutes=10 * i), rnd.choice(EVERYDAY), f"bg{rnd.randrange(200)}",
                 rnd.choice(["weibo", "tieba"])) for i in range(300)]
    wave = T0 + timedelta(days=2)
    rows += [post(1000 + i, wave + timedelta(minutes=4 * i), text_, f"scared{i}", ["weibo", "tieba"][i % 2])
             for i, text_ in enumerate(FRIGHTS)]

    def topics(extra: str) -> list[dict[str, Any]]:
        out = tmp_path / f"out{len(extra)}.jsonl"
        replay(parse_config(f"sources: []\n{extra}"), write(tmp_path / "in.jsonl", rows), out,
               progress=io.StringIO())
        incidents = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        return [i for i in incidents if "太可怕" in i["title"] or any("可怕" in k for k in i["keywords"])]

    assert topics("") == []
    assert topics("detection:\n  topic_shared_words: 0\n"), "without the gate the phrase makes a topic incident"
