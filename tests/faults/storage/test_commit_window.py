"""A power cut (SIGKILL) inside a commit window loses what the window promises and nothing more
(docs/robustness.md, "What the SD card is written"): polled readings at most `commit_interval` of them;
acknowledged (MQTT) readings none, because they are acknowledged only once committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from daemon.storage.journal import Journal

ROOT = Path(__file__).resolve().parents[3]
PERIOD = 0.05  # s between two samples in the child
WINDOW = 1.0


def _run_and_kill(tmp_path: Path, kind: str) -> tuple[list[int], set[int]]:
    child = subprocess.Popen([sys.executable, "-m", "tests.faults.storage.commit_window_child", str(tmp_path), kind,
                              str(WINDOW)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    handed: list[int] = []

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            handed.append(int(line.split()[1]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while len(handed) < 2.5 * WINDOW / PERIOD and time.monotonic() < deadline:  # a few windows in, mid-window
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    reader.join(5)
    j = Journal(tmp_path / "journal.db")
    stored = {int(r.value or 0) for r in j.readings.read_after(0, 10_000)}
    j.close()
    return handed, stored


def test_polled_readings_lost_in_a_power_cut_are_at_most_one_commit_window(tmp_path: Path) -> None:
    handed, stored = _run_and_kill(tmp_path, "polled")
    assert len(handed) >= 2 * WINDOW / PERIOD and stored, "the child ran windows and committed some"
    lost = [k for k in handed if k not in stored]
    # what was lost is the newest handed-over readings only, and no more than one window's worth of them
    # (+3 for a commit that was being written when the kill came and the sleep's jitter)
    assert lost == handed[len(handed) - len(lost):]
    assert len(lost) <= WINDOW / PERIOD + 3


@pytest.mark.parametrize("kind", ["acked"])
def test_acknowledged_readings_survive_a_power_cut_inside_the_window(tmp_path: Path, kind: str) -> None:
    handed, stored = _run_and_kill(tmp_path, kind)
    assert len(handed) >= 2 * WINDOW / PERIOD
    assert [k for k in handed if k not in stored] == []  # acked means committed: the broker resends the rest


POLLED_CONFIG = """
site: {id: cut, name: 断电测试}
storage: {journal: journal.db, flush_interval: 0.05, commit_interval: %(window)s}
zones:
  - {id: z1, name: 1号库, commodity: mandarin, alarms: {no_data: false}}
sensors:
%(sensors)s
api: {enabled: false}
"""
POLLED_SENSORS, POLLED_INTERVAL = 3, 0.1  # s of daemon time between two readings of one sensor


def test_a_polled_driver_in_the_daemon_loses_at_most_its_commit_window_in_a_power_cut(tmp_path: Path) -> None:
    """The shipped path (simulated driver -> ctx.hand_over -> Pipeline.run at commit_interval) under SIGKILL:
    the live view had every reading at once; the journal misses only each sensor's newest ones, at most a
    commit window of them."""
    sensors = "\n".join(f"  - {{id: s{i}, zone: z1, type: simulated, setpoint: 6.5, interval: {POLLED_INTERVAL},"
                        f" seed: {i}}}" for i in range(POLLED_SENSORS))
    config = tmp_path / "config.yaml"
    config.write_text(POLLED_CONFIG % {"window": WINDOW, "sensors": sensors}, encoding="utf-8")
    child = subprocess.Popen([sys.executable, "-m", "tests.faults.storage.polled_power_cut_child", str(config)],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    shown: list[tuple[str, int]] = []

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("accepted") and line.split()[3] == "temperature":
                shown.append((line.split()[1], int(line.split()[2])))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    per_window = WINDOW / POLLED_INTERVAL
    while len(shown) < 3.5 * per_window * POLLED_SENSORS and time.monotonic() < deadline:  # some windows in
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    reader.join(5)
    j = Journal(tmp_path / "journal.db")
    stored = {(r.sensor, round(r.ts * 1000)) for r in j.readings.read_after(0, 100_000)}
    j.close()
    assert len(shown) >= 3 * per_window * POLLED_SENSORS and stored, "the daemon ran windows and committed some"
    for i in range(POLLED_SENSORS):
        seen = [ts for s, ts in shown if s == f"s{i}"]
        lost = [ts for ts in seen if (f"s{i}", ts) not in stored]
        assert lost == seen[len(seen) - len(lost):], f"s{i}: only the newest readings may be missing"
        # one window of readings, +3 for a commit being written at the kill and the loop's jitter
        assert len(lost) <= per_window + 3, f"s{i}: {len(lost)} readings lost, more than one commit window"
