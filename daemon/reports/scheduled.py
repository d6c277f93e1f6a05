"""Scheduled compliance reports: made on the box after each day, week or month, kept there, sent on by the outbox.

A run is done when its audit row (`report.scheduled`, target `report:SCHEDULE:YYYYMMDD`) is in the journal;
the row and the outbox messages are written in one transaction after the files are on disk, so a stop in
between makes the run again (same files, same names) and nothing is sent twice or lost. Only the newest
whole period is due: a box switched off for a week sends last week's report, not each missed day's. E-mail
(Apprise mailto://) gets the files attached (`attach` in the message's params); the other channels get the
download links (`/api/v1/reports/kept/NAME`, manager sign-in)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import zoneinfo
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path

from daemon.config.schema import AppConfig, ReportSchedule
from daemon.messages import render
from daemon.ports.clock import Clock
from daemon.reports.compliance import Report, ReportError, compliance, period_bounds, to_csv
from daemon.reports.pdf import PdfError, html_to_pdf
from daemon.reports.pdf_doc import signed_html
from daemon.storage.audit import AuditLog
from daemon.storage.journal import Journal
from daemon.storage.outbox import Outbox

log = logging.getLogger("coldchain.reports")
KEPT_NAME = re.compile(r"^(?P<schedule>[A-Za-z0-9_.-]+?)_(?P<zone>[A-Za-z0-9_.-]+)_(?P<day>\d{8})\.(?P<fmt>pdf|csv)$")
TICK = 60.0  # clock seconds between looks at the schedules


def kept_dir(cfg: AppConfig) -> Path:
    return cfg.storage.journal.parent / "reports"


def due_period(sch: ReportSchedule, tz: zoneinfo.ZoneInfo, now: float) -> tuple[float, float] | None:
    """[start, end) of the newest whole period once its report is due (`at` on the day after it), else None."""
    current_start, _ = period_bounds(sch.period, tz, now)
    before = datetime.fromtimestamp(current_start, tz).date() - timedelta(days=1)
    lo, hi = period_bounds(sch.period, tz, now, day=before.isoformat())
    hh, mm = (int(x) for x in sch.at.split(":"))
    due = datetime.combine(datetime.fromtimestamp(hi, tz).date(), time(hh, mm), tz).timestamp()
    return (lo, hi) if now >= due else None


def base_url(cfg: AppConfig) -> str:
    return (cfg.api.public_url or f"http://{cfg.api.host}:{cfg.api.port}").rstrip("/")


class ScheduledReports:
    """Makes the due reports, keeps them under `kept_dir`, queues their messages; blocking parts run in threads."""

    def __init__(self, journal: Journal, cfg: AppConfig, clock: Clock, wake: Callable[[], None] = lambda: None) -> None:
        self.journal, self.cfg, self.clock, self._wake = journal, cfg, clock, wake
        self.dir = kept_dir(cfg)
        self.tz = zoneinfo.ZoneInfo(cfg.site.timezone)

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.run_due)
            await asyncio.to_thread(self.prune)
            await self.clock.sleep(TICK)

    def run_due(self) -> list[str]:
        """The targets of the runs made now."""
        made: list[str] = []
        now = self.clock.now()
        for sch in self.cfg.reports.schedules:
            period = due_period(sch, self.tz, now)
            if period is None:
                continue
            target = f"report:{sch.id}:{datetime.fromtimestamp(period[0], self.tz):%Y%m%d}"
            if self.journal.audit.entries(target, limit=1):
                continue
            self._make(sch, period, target, now)
            made.append(target)
        return made

    def _make(self, sch: ReportSchedule, period: tuple[float, float], target: str, now: float) -> None:
        lang = sch.language or self.cfg.site.language
        day = f"{datetime.fromtimestamp(period[0], self.tz):%Y%m%d}"
        files: list[Path] = []
        lines: list[str] = []
        for zone in sch.zones or [z.id for z in self.cfg.zones]:
            try:
                rep = compliance(self.journal, self.cfg, zone, period[0], period[1], float(int(now)), sch.period)
            except ReportError as exc:
                log.error("scheduled report %s, zone %s: %s", sch.id, zone, exc)
                continue
            for fmt in sch.formats:
                path = self.dir / f"{sch.id}_{zone}_{day}.{fmt}"
                try:
                    self._write(path, fmt, rep, lang)
                except PdfError as exc:  # no chromium, or it failed: the CSV and the others still go
                    log.error("scheduled report %s: %s: %s", sch.id, path.name, exc)
                    continue
                files.append(path)
                lines.append(f"{self.cfg.zone(zone).display_name(lang)} {fmt.upper()}: "
                             f"{base_url(self.cfg)}/api/v1/reports/kept/{path.name}")
        every = render(f"report.every_{sch.period}", lang)
        text = render("report.scheduled", lang, site=self.cfg.site.name, period=every,
                      start=f"{datetime.fromtimestamp(period[0], self.tz):%Y-%m-%d}") + "\n" + "\n".join(lines)
        params = json.dumps({"attach": "\n".join(str(p) for p in files)}, ensure_ascii=False)
        with self.journal.transaction() as tx:
            AuditLog.add(tx, now, "coldchain", "system", "report.scheduled", target,
                         {"files": [p.name for p in files], "notifiers": sch.notifiers})
            for n in sch.notifiers:
                Outbox.enqueue(tx, None, now, f"report:{sch.id}", "", n, lang, text, None, "report.scheduled", params)
        if sch.notifiers:
            self._wake()  # the dispatcher sends now, not at its next 10 s look

    def _write(self, path: Path, fmt: str, rep: Report, lang: str) -> None:
        """The file in place in one rename: a reader (or a download) never sees half of it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        if fmt == "csv":
            tmp.write_text(to_csv(rep, lang), encoding="utf-8")
        else:
            html_to_pdf(signed_html(rep, self.cfg, lang), tmp)
        os.replace(tmp, path)

    def kept(self) -> list[dict[str, object]]:
        """The kept files, newest period first."""
        out: list[dict[str, object]] = []
        for p in self.dir.glob("*_*_*.*") if self.dir.is_dir() else []:
            m = KEPT_NAME.match(p.name)
            if m:
                out.append({"name": p.name, "schedule": m["schedule"], "zone": m["zone"], "format": m["fmt"],
                            "start": f"{m['day'][:4]}-{m['day'][4:6]}-{m['day'][6:]}", "bytes": p.stat().st_size,
                            "url": f"/api/v1/reports/kept/{p.name}"})
        return sorted(out, key=lambda r: (str(r["start"]), str(r["name"])), reverse=True)

    def prune(self) -> int:
        """Delete kept files whose period started more than `reports.keep` ago (by the clock, not file times)."""
        limit = datetime.fromtimestamp(self.clock.now() - self.cfg.reports.keep, self.tz).strftime("%Y%m%d")
        gone = 0
        for r in self.kept():
            if str(r["start"]).replace("-", "") < limit:
                (self.dir / str(r["name"])).unlink(missing_ok=True)
                gone += 1
        return gone
