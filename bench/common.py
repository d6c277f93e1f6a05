"""Shared pieces of the benchmark: real peers (reused from tests/peers.py), results, machine facts."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from daemon.app.plugins import parse_config
from daemon.config.schema import AppConfig
from tests.peers import InfluxD, Mosquitto, wait_until

__all__ = ["BenchBroker", "InfluxD", "Result", "app_config", "machine", "wait_until"]

# The broker settings docs/benchmarks.md recommends for the box: deep queues so that a burst or an
# outage of the daemon costs memory on the broker, not readings; a wide QoS 1 window so that the
# daemon, which acknowledges only after its journal commit, gets more than 20 messages per commit.
BROKER_TUNING = "max_queued_messages 1000000\nmax_inflight_messages 1000\n"


class BenchBroker(Mosquitto):
    """tests.peers.Mosquitto with extra config lines (queue and in-flight limits)."""

    def __init__(self, root: Path, extra: str = BROKER_TUNING) -> None:
        super().__init__(root)
        self.extra = extra
        self.config.write_text(self.config.read_text(encoding="utf-8") + extra, encoding="utf-8")


@dataclass
class Result:
    """One figure: ours vs a baseline measured in the same run, or a value vs a target."""

    key: str
    title: str
    value: float  # the headline figure (a ratio, or a measured value when there is no baseline)
    unit: str
    target: str  # e.g. ">= 0.8"
    met: bool | None
    raw: dict[str, Any] = field(default_factory=dict)
    bound: str = ""  # what limits the figure
    notes: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        met = "n/a" if self.met is None else ("yes" if self.met else "**no**")
        return [self.title, f"{self.value:.3g} {self.unit}".strip(), self.target, met]


def check(value: float, target: str) -> bool:
    op, num = target.split()
    return value >= float(num) if op == ">=" else value <= float(num)


def app_config(tmp: Path, doc: dict[str, Any]) -> AppConfig:
    return parse_config(yaml.safe_dump(doc, allow_unicode=True), "bench.yaml", base_dir=tmp)


def _version(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


def _deb(pkg: str) -> str:
    if shutil.which("dpkg-query") is None:
        return "?"
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return out.stdout.strip() or "not installed"


def machine(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    import sqlite3

    import paho.mqtt

    facts = {
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "RAM": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "load average at start (1/5/15 min)": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "paho-mqtt": paho.mqtt.__version__,
        "mosquitto": _deb("mosquitto"),
        "influxdb": _deb("influxdb"),
    }
    facts.update(extra or {})
    return facts


def self_usage() -> tuple[float, int]:
    """CPU seconds (user + system) and peak RSS (KiB) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def proc_stat(pid: int) -> dict[str, int]:
    """VmRSS (KiB), CPU ticks and block I/O bytes of a process, from /proc."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1])
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    out["cpu_ticks"] = int(parts[11]) + int(parts[12])
    try:
        with open(f"/proc/{pid}/io", encoding="utf-8") as f:
            for line in f:
                k, v = line.split(":")
                out[k] = int(v)
    except OSError:
        pass
    return out


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, default=str)


def dedent(s: str) -> str:
    return textwrap.dedent(s).strip() + "\n"


PY = sys.executable
