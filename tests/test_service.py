"""`coldchain run` as systemd sees it: READY, watchdog pings, clean stop on SIGTERM, resume after SIGKILL,
and no secret from the config in anything it prints."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from daemon.storage.journal import Journal
from tests.conftest import MINIMAL

ROOT = Path(__file__).resolve().parents[1]
# polled readings commit every storage.commit_interval (60 s by default): 1 s here, so the journal shows them
FAST = MINIMAL.replace("setpoint: 6.5}", "setpoint: 6.5, interval: 1s}").replace(
    "{journal: journal.db}", "{journal: journal.db, commit_interval: 1s}")


class Service:
    """One `python -m daemon run` under a fake NOTIFY_SOCKET, as systemd would start it."""

    def __init__(self, cfg: Path, sock_dir: Path, *extra: str) -> None:
        self.sock_path = sock_dir / f"notify-{time.monotonic_ns()}.sock"
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.srv.bind(str(self.sock_path))
        self.srv.settimeout(30)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(self.sock_path),
               "WATCHDOG_USEC": "400000"}
        env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "daemon", *extra, "run", "--config", str(cfg)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.got: list[str] = []

    def wait_for(self, message: str) -> None:
        """Receive notifications until one starts with `message` (READY=1 comes with a STATUS= line)."""
        deadline = time.monotonic() + 60
        while not any(m.startswith(message) for m in self.got):
            assert time.monotonic() < deadline, f"no {message} from the daemon in 60 s; got {self.got[-3:]}"
            self.got.append(self.srv.recv(200).decode())

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self.srv.close()


@contextmanager
def service(cfg: Path, sock_dir: Path, *extra: str) -> Iterator[Service]:
    s = Service(cfg, sock_dir, *extra)
    try:
        yield s
    finally:
        s.close()


def wait_for_readings(db: Path, n: int, proc: subprocess.Popen[str]) -> int:
    """Poll the journal (WAL: readers never block the daemon) until it holds `n` readings."""
    deadline = time.monotonic() + 30
    while True:
        if db.exists():
            j = Journal(db)
            count = j.readings.count()
            j.close()
            if count >= n:
                return count
        assert proc.poll() is None, "the daemon exited"
        assert time.monotonic() < deadline, f"fewer than {n} readings in the journal after 30 s"
        time.sleep(0.1)


def test_run_notifies_systemd_and_stops_cleanly(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(FAST, encoding="utf-8")
    with service(cfg, tmp_path) as s:
        s.wait_for("WATCHDOG=1")
        assert s.got[0].startswith("READY=1")
        s.proc.send_signal(signal.SIGTERM)
        s.wait_for("STOPPING=1")
        rc, _, err = s.stop()
    assert rc == 0
    assert "journal closed cleanly" in err and "Traceback" not in err
    assert "did not stop cleanly" not in err
    j = Journal(tmp_path / "journal.db")
    assert j.quick_check() == "ok" and j.readings.count() >= 1
    assert not j.run_mark.exists()  # a clean stop leaves no mark: the next start skips the check


def test_resumes_after_sigkill_with_a_quick_check(tmp_path: Path) -> None:
    """A power cut (here SIGKILL): the next start checks the journal, says so, keeps every committed reading."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(FAST, encoding="utf-8")
    db = tmp_path / "journal.db"
    with service(cfg, tmp_path) as s:
        s.wait_for("READY=1")
        before = wait_for_readings(db, 2, s.proc)
        rc, _, err = s.stop(signal.SIGKILL)
    assert rc == -signal.SIGKILL and "journal closed cleanly" not in err
    assert (tmp_path / "journal.db.running").exists()
    with service(cfg, tmp_path) as s:
        s.wait_for("READY=1")
        wait_for_readings(db, before + 1, s.proc)  # and it goes on storing
        rc, _, err = s.stop()
    assert rc == 0, err
    assert "the previous run did not stop cleanly (power cut, kill or crash); journal PRAGMA quick_check: ok" in err
    j = Journal(db)
    assert j.quick_check() == "ok" and j.readings.count() > before and not j.run_mark.exists()


SECRETS = ("hunter2-mqtt-Pa55", "tok-zhang-9f8e7d", "tok-wang-from-env-5c4b")


def test_secrets_never_reach_the_logs(tmp_path: Path) -> None:
    """Secrets in the config (inline, environment, file) are used but never printed, even at debug level."""
    (tmp_path / "token-li").write_text("tok-li-from-file-3a2b\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(FAST.replace("api: {enabled: false}", f"""
mqtt: {{host: 127.0.0.1, username: coldchain, password: {SECRETS[0]}}}
api:
  enabled: true
  port: 0
  tokens:
    - {{name: zhang, role: staff, token: {{value: {SECRETS[1]}}}}}
    - {{name: wang, role: manager, token: {{env: COLDCHAIN_TOKEN_WANG}}}}
    - {{name: li, role: installer, token: {{file: {tmp_path / "token-li"}}}}}
"""), encoding="utf-8")
    secrets = (*SECRETS, "tok-li-from-file-3a2b")
    os.environ["COLDCHAIN_TOKEN_WANG"] = SECRETS[2]
    try:
        with service(cfg, tmp_path, "--log-level", "debug") as s:
            s.wait_for("WATCHDOG=1")
            rc, out, err = s.stop()
    finally:
        del os.environ["COLDCHAIN_TOKEN_WANG"]
    assert rc == 0, err
    assert "coldchain running" in err  # the log was written, at debug level
    printed = out + err
    for other in (["check-config", str(cfg)], ["config", "show", "--config", str(cfg)],
                  ["doctor", "--config", str(cfg), "--seconds", "1.5"]):
        p = subprocess.run([sys.executable, "-m", "daemon", "--log-level", "debug", *other], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        printed += p.stdout + p.stderr
    # A mistyped key next to a secret is reported by its name only.
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("password:", "pasword:"), encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "daemon", "check-config", str(bad)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert p.returncode == 2 and "unknown key 'pasword'" in p.stderr
    printed += p.stdout + p.stderr
    for secret in secrets:
        assert secret not in printed, f"secret {secret!r} was printed"
