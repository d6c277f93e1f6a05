"""`coldchain doctor`: the installer's check of everything a running daemon needs.

Each check prints one line a person understands (zh-CN or en, texts from the message
catalogue) and the command exits non-zero when something the daemon needs is broken.
Sensor drivers that define `probe(seconds)` are asked to poll or listen; others are run
for the probe time and whatever they emitted is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.app import plugins
from daemon.config.schema import AppConfig
from daemon.ingest.validate import to_si
from daemon.messages import render
from daemon.ports.clock import Clock, clock_synchronised
from daemon.ports.model import Quantity, Sample
from daemon.ports.notify import Message, NotifierContext
from daemon.ports.sources import DriverContext, SensorBase, SensorDriver
from daemon.storage import disk as health
from daemon.storage.db import PAGE_SIZE
from daemon.storage.journal import Journal

log = logging.getLogger("coldchain.doctor")


@dataclass
class Report:
    lang: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (level, text)

    def add(self, level: str, key: str, **params: object) -> None:
        self.lines.append((level, render(key, self.lang, **params)))

    @property
    def problems(self) -> int:
        return sum(1 for lvl, _ in self.lines if lvl == "fail")

    def render(self) -> str:
        mark = {"ok": "✓", "warn": "!", "fail": "✗"}
        return "\n".join(f"{mark[lvl]} {text}" for lvl, text in self.lines)


def check_journal(cfg: AppConfig, rep: Report) -> None:
    path = cfg.storage.journal
    free = health.free_mb(path)
    try:
        if path.exists():
            j = Journal(path)
            ok, pages = j.quick_check(), j.page_size()
            j.close()
            if ok != "ok":
                raise OSError(ok)
            if pages > PAGE_SIZE:  # made before the smaller pages: an installer may compact it (docs/robustness.md)
                rep.add("warn", "doctor.journal_pages", path=path, size=pages, new=PAGE_SIZE)
        else:  # do not create it here: the daemon will, as its own user
            folder = next(p for p in [path.parent, *path.parent.parents] if p.exists())
            with tempfile.TemporaryFile(dir=folder):
                pass  # a real write: os.access() says yes to root even where writing fails
    except Exception as exc:  # noqa: BLE001 - any reason the daemon could not store readings
        rep.add("fail", "doctor.journal_bad", path=path, error=exc)
        return
    rep.add("ok", "doctor.journal", path=path, free=f"{free:.0f}")
    if free < cfg.storage.min_free_mb:
        rep.add("fail", "doctor.disk_low", free=f"{free:.0f}", min=cfg.storage.min_free_mb)


def check_clock(rep: Report) -> None:
    synced = clock_synchronised()
    if synced is None:
        rep.add("warn", "doctor.clock_unknown")
    else:
        rep.add("ok" if synced else "warn", "doctor.clock_ok" if synced else "doctor.clock_bad")


def check_ports(cfg: AppConfig, rep: Report) -> None:
    ports = sorted({str(p) for s in cfg.sensors if (p := getattr(s, "port", None))})
    for port in ports:
        if not os.path.exists(port):
            rep.add("fail", "doctor.port_missing", port=port)
        elif not os.access(port, os.R_OK | os.W_OK):  # run doctor as the service's user for this to mean something
            rep.add("fail", "doctor.port_denied", port=port, user=getpass.getuser())
        else:
            rep.add("ok", "doctor.port_ok", port=port)


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{q} {round(v, 2) if isinstance(v, float) else v}" for q, v in values.items()) or "-"


async def _probe_driver(driver: SensorDriver, got: list[Sample], seconds: float) -> dict[str, Any]:
    probe = getattr(driver, "probe", None)
    if probe is not None:
        result: dict[str, Any] = await probe(seconds)
        return result
    task = asyncio.create_task(driver.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    out: dict[str, Any] = {"sensors": {}}
    for s in driver.sensors:
        mine = [x for x in got if x.sensor == s.id and x.value is not None]
        out["sensors"][s.id] = {"answered": bool(mine), "values": {x.quantity: x.value for x in mine},
                                "detail": "" if mine else "no sample"}
    return out


def check_battery(sensor: SensorBase, info: dict[str, Any], zone: str, rep: Report) -> None:
    """A battery the sensor reported below its `battery_low` limit: the installer changes it while on site."""
    units = info.get("units", {})
    for q, limit in ((Quantity.BATTERY, sensor.battery_low.percent), (Quantity.BATTERY_VOLTAGE,
                                                                        sensor.battery_low.volts)):
        raw = info.get("values", {}).get(q.value)
        if limit is None or not isinstance(raw, int | float):
            continue
        try:
            value = to_si(q, float(raw), units.get(q.value, ""))
        except ValueError:
            continue
        if value < limit:
            detail = render(f"device.{q.value}", rep.lang, value=f"{value:g}", limit=f"{limit:g}")
            rep.add("warn", "doctor.battery_low", sensor=sensor.id, zone=zone, detail=detail)


async def check_sensors(cfg: AppConfig, rep: Report, seconds: float) -> None:
    sensor_types = plugins.registry().sensors
    by_type: dict[str, list[SensorBase]] = {}
    for s in cfg.sensors:
        by_type.setdefault(s.type, []).append(s)
    jobs = []
    for kind, sensors in by_type.items():
        for group in sensor_types[kind].group(sensors):
            got: list[Sample] = []

            async def emit(samples: Sequence[Sample], got: list[Sample] = got) -> None:
                got.extend(samples)

            ctx = DriverContext(Clock(), emit, lambda *_: None, logging.getLogger(f"coldchain.doctor.{kind}"), cfg)
            driver = sensor_types[kind](group, ctx)
            jobs.append((driver, _probe_driver(driver, got, seconds)))
    results = await asyncio.gather(*(j for _, j in jobs), return_exceptions=True)
    zones = {z.id: z.display_name(rep.lang) for z in cfg.zones}
    for (driver, _), res in zip(jobs, results, strict=True):
        with contextlib.suppress(Exception):
            await driver.close()
        if isinstance(res, BaseException):
            for s in driver.sensors:
                rep.add("fail", "doctor.sensor_silent", sensor=s.id, zone=zones[s.zone],
                        detail=f"{driver.source}: {res}")
            continue
        for s in driver.sensors:
            info = res.get("sensors", {}).get(s.id, {})
            if info.get("answered"):
                rep.add("ok", "doctor.sensor_ok", sensor=s.id, zone=zones[s.zone],
                        values=_values(info.get("values", {})))
                check_battery(s, info, zones[s.zone], rep)
            else:
                rep.add("fail", "doctor.sensor_silent", sensor=s.id, zone=zones[s.zone],
                        detail=info.get("detail") or "-")
        for topic, payload in (res.get("unmapped") or {}).items():
            rep.add("warn", "doctor.unmapped", topic=topic, payload=str(payload)[:80])


async def scan_buses(cfg: AppConfig, rep: Report, timeout: float) -> None:
    """For drivers that can list the addresses answering on a bus (Modbus): every configured port."""
    sensor_types = plugins.registry().sensors
    done: set[str] = set()
    for s in cfg.sensors:
        scan = getattr(sensor_types[s.type], "scan", None)
        port = getattr(s, "port", None)
        # a stat of a local device node: no wait worth a thread
        if scan is None or port is None or str(port) in done or not os.path.exists(str(port)):  # noqa: ASYNC240
            continue
        done.add(str(port))
        settings = {k: getattr(s, k) for k in ("baudrate", "bytesize", "parity", "stopbits") if hasattr(s, k)}
        found = await asyncio.to_thread(scan, str(port), timeout=timeout, **settings)
        if found:
            rep.add("ok", "doctor.scan_found", port=port, addresses=", ".join(map(str, found)))
        else:
            rep.add("fail", "doctor.scan_none", port=port)


async def check_notifiers(cfg: AppConfig, rep: Report, test_number: str | None, via: str | None) -> None:
    notifier_types = plugins.registry().notifiers
    for n in cfg.notifiers:
        notifier = notifier_types[n.type](n, NotifierContext())
        try:
            info = await notifier.health()
            detail = ", ".join(f"{k} {v}" for k, v in info.items() if k != "source") or "ok"
            bad = bool(info.get("error"))
            rep.add("fail" if bad else "ok", "doctor.notifier_bad" if bad else "doctor.notifier", id=n.id,
                    detail=detail)
            if test_number and (via is None or via == n.id):
                text = render("doctor.test_sms_text", rep.lang, site=cfg.site.name)
                try:
                    ref = await notifier.send(Message(0, None, "doctor", test_number, text, rep.lang, "doctor.test"))
                    rep.add("ok", "doctor.test_sms_ok", id=n.id, number=test_number, ref=ref)
                except Exception as exc:  # noqa: BLE001 - whatever the channel raised is the installer's answer
                    rep.add("fail", "doctor.test_sms_bad", id=n.id, error=exc)
                test_number = None
        except Exception as exc:  # noqa: BLE001 - a channel that cannot even start is one failed line, not a crash
            rep.add("fail", "doctor.notifier_bad", id=n.id, detail=exc)
        finally:
            with contextlib.suppress(Exception):
                await notifier.close()


async def run_doctor(cfg: AppConfig, config_file: str, *, lang: str, seconds: float = 10.0,
                     test_number: str | None = None, via: str | None = None, scan: bool = False) -> Report:
    rep = Report(lang)
    rep.add("ok", "doctor.config", file=config_file, zones=len(cfg.zones), sensors=len(cfg.sensors))
    await asyncio.to_thread(check_journal, cfg, rep)
    check_clock(rep)
    check_ports(cfg, rep)
    t0 = time.monotonic()
    await check_sensors(cfg, rep, seconds)
    if scan:
        await scan_buses(cfg, rep, timeout=0.1)
    log.debug("sensor probes took %.1f s", time.monotonic() - t0)
    await check_notifiers(cfg, rep, test_number, via)
    return rep


