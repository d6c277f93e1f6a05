"""Scheduled reports on the daemon's accelerated clock: the daily CSV is made on the box after midnight, kept
(listed and downloadable by a manager over HTTP), and mailed with the file attached to a real SMTP server
(aiosmtpd on 127.0.0.1) through Apprise, by way of the outbox; a restart does not send it twice."""

from __future__ import annotations

import email
import zoneinfo
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from daemon.app.runtime import Daemon
from daemon.ports.clock import Clock
from daemon.reports.scheduled import ScheduledReports, due_period
from tests.conftest import MINIMAL, free_port, make_config
from tests.peers import until

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 9, 23, 50, tzinfo=TZ).timestamp()  # ten minutes before the day's end, site time


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def config_text(smtp_port: int) -> str:
    return MINIMAL.replace("api: {enabled: false}", """api:
  enabled: true
  host: 127.0.0.1
  port: 0
  tokens: [{name: wang, role: manager, token: {value: boss-secret}}]
reports:
  schedules:
    - {id: daily, period: day, at: "00:05", formats: [csv], language: en, notifiers: [mail]}
""").replace("  - {id: out, type: console}", f"""  - {{id: out, type: console}}
  - id: mail
    type: apprise
    urls: ["mailto://127.0.0.1:{smtp_port}?from=box@example.cn&to=wang@example.cn&mode=insecure"]""")


def test_due_period_waits_for_at() -> None:
    from daemon.config.schema import ReportSchedule

    sch = ReportSchedule(id="w", period="week", at="07:30")
    monday = datetime(2026, 3, 9, 7, 29, tzinfo=TZ).timestamp()
    assert due_period(sch, TZ, monday) is None
    lo, hi = due_period(sch, TZ, monday + 60) or (0, 0)
    assert datetime.fromtimestamp(lo, TZ) == datetime(2026, 3, 2, tzinfo=TZ)
    assert datetime.fromtimestamp(hi, TZ) == datetime(2026, 3, 9, tzinfo=TZ)


@pytest.mark.asyncio
async def test_daily_report_is_kept_and_mailed_once(tmp_path: Path) -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        cfg = make_config(tmp_path, config_text(smtp.port))
        d = Daemon(cfg, clock=Clock(speed=120.0, start=START))  # 15 simulated minutes in 7.5 s
        await d.start()
        try:
            # at start, the newest whole day (the 8th) is past its 00:05: made at once; the 9th after midnight
            await until(lambda: len(inbox.mails) >= 2, "the scheduled reports' e-mails", timeout=90)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=20) as http:
                assert (await http.get("/api/v1/reports/kept")).status_code == 401
                boss = {"Authorization": "Bearer boss-secret"}
                kept, older = (await http.get("/api/v1/reports/kept", headers=boss)).json()["reports"]
                assert older["name"] == "daily_z1_20260308.csv"
                assert kept["name"] == "daily_z1_20260309.csv" and kept["start"] == "2026-03-09"
                got = await http.get(kept["url"], headers=boss)
                assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
                assert (await http.get("/api/v1/reports/kept/..%2Fjournal.db", headers=boss)).status_code == 404
        finally:
            await d.stop()
        first, mail = inbox.mails
        assert "daily_z1_20260308.csv" in first.as_string()
        parts = {p.get_filename(): p for p in mail.walk() if p.get_filename()}
        assert set(parts) == {"daily_z1_20260309.csv"}
        attached = parts["daily_z1_20260309.csv"].get_payload(decode=True)
        assert isinstance(attached, bytes) and attached == got.content
        body = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
        assert isinstance(body, bytes) and b"daily report from 2026-03-09" in body
        assert b"/api/v1/reports/kept/daily_z1_20260309.csv" in body
        sent = [o for o in d.journal.outbox.find() if o.msg_key == "report.scheduled"]
        assert [(o.notifier, o.state) for o in sent] == [("mail", "sent")] * 2
        # a second start after the run: the audit row says it was done, nothing is made or sent again
        again = ScheduledReports(d.journal, cfg, Clock(start=START + 3600))
        assert again.run_due() == []
        assert [e["action"] for e in d.journal.audit.entries("report:daily:20260309")] == ["report.scheduled"]
        # retention counts from the period, on the daemon's clock
        assert ScheduledReports(d.journal, cfg, Clock(start=START + cfg.reports.keep - 86400)).prune() == 0
        assert ScheduledReports(d.journal, cfg, Clock(start=START + cfg.reports.keep)).prune() == 1  # the 8th
        assert ScheduledReports(d.journal, cfg, Clock(start=START + cfg.reports.keep + 86400)).prune() == 1
        d.journal.close()
    finally:
        smtp.stop()


def test_schedule_names_rooms_and_channels_that_exist(tmp_path: Path) -> None:
    from daemon.ports.errors import ConfigError

    bad = config_text(25).replace("notifiers: [mail]}", "zones: [z9], notifiers: [mial]}")
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, bad)
    text = "\n".join(err.value.problems)
    assert "config.yaml:" in text and "reports.schedules[0].zones[0]: unknown zone 'z9'" in text
    assert "unknown notifier 'mial'" in text and "mail" in text
