"""`coldchain run` as systemd sees it: READY, watchdog pings, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from daemon.journal import Journal
from tests.conftest import MINIMAL

ROOT = Path(__file__).resolve().parents[1]


def test_run_notifies_systemd_and_stops_cleanly(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(MINIMAL.replace("setpoint: 6.5}", "setpoint: 6.5, interval: 1s}"), encoding="utf-8")
    sock_path = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(sock_path))
    srv.settimeout(30)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    p = subprocess.Popen([sys.executable, "-m", "daemon", "run", "--config", str(cfg)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got: list[str] = []
        while "WATCHDOG=1" not in got:
            got.append(srv.recv(200).decode())
        assert got[0].startswith("READY=1")
        p.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in got:
            got.append(srv.recv(200).decode())
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        srv.close()
    err = p.stderr.read() if p.stderr else ""
    assert "journal closed cleanly" in err and "Traceback" not in err
    j = Journal(tmp_path / "journal.db")
    assert j.quick_check() == "ok" and j.count() >= 1
