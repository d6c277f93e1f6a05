"""Real Mosquitto brokers for the MQTT driver tests: anonymous, username/password and TLS.

Each is started once per test session on a free loopback port with a generated config in a
temp dir, and stopped at the end. Test certificates are made with the `openssl` CLI.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USER, PASSWORD = "coldchain", "冷库-secret"


@dataclass
class Broker:
    """A running mosquitto: where it listens and what a client needs to log in."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    username: str | None = None
    password: str | None = None
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    extra_ports: dict[str, int] = field(default_factory=dict)

    def publish(self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False,
                port: int | None = None) -> None:
        """Publish with the real `mosquitto_pub` client, as an installer would."""
        args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port or self.port), "-t", topic, "-q", str(qos),
                "-i", f"test-pub-{os.getpid()}"]
        if retain:
            args.append("-r")
        if self.username:
            args += ["-u", self.username, "-P", self.password or ""]
        if self.ca:
            args += ["--cafile", str(self.ca)]
        if isinstance(payload, bytes):
            subprocess.run([*args, "-s"], input=payload, check=True, timeout=10)
        else:
            subprocess.run([*args, "-m", payload], check=True, timeout=10)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {port}: {log.read_text(errors='replace')}")


def _start(tmp: Path, body: str, ports: list[int]) -> tuple[subprocess.Popen[bytes], Path]:
    conf, log = tmp / "mosquitto.conf", tmp / "mosquitto.log"
    head = "persistence false\nlog_dest stderr\nlog_type all\n"
    if os.geteuid() == 0:
        head += f"user {getpass.getuser()}\n"  # root would drop to `mosquitto`, who cannot read the temp dir
    conf.write_text(head + body, encoding="utf-8")
    with log.open("wb") as out:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    for p in ports:
        _wait_listening(p, proc, log)
    return proc, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Anonymous broker."""
    tmp = tmp_path_factory.mktemp("mosquitto-anon")
    port = free_port()
    proc, log = _start(tmp, f"listener {port} 127.0.0.1\nallow_anonymous true\n", [port])
    yield Broker(port, proc, log)
    _stop(proc)


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Broker that needs a username and password (made with `mosquitto_passwd -b`)."""
    tmp = tmp_path_factory.mktemp("mosquitto-auth")
    pw = tmp / "passwd"
    pw.touch(mode=0o600)
    subprocess.run(["mosquitto_passwd", "-b", str(pw), USER, PASSWORD], check=True, timeout=10)
    port = free_port()
    proc, log = _start(tmp, f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n", [port])
    yield Broker(port, proc, log, username=USER, password=PASSWORD)
    _stop(proc)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60, capture_output=True)


def make_certs(d: Path) -> None:
    """A test CA, a server cert for 127.0.0.1/localhost and a client cert, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=coldchain test CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={'localhost' if name == 'server' else 'coldchain-client'}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *ext, cwd=d)


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """TLS broker: `port` checks the server cert only; extra_ports['mtls'] also wants a client cert."""
    tmp = tmp_path_factory.mktemp("mosquitto-tls")
    make_certs(tmp)
    port, mtls = free_port(), free_port()
    body = (
        "per_listener_settings true\n"
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {tmp / 'ca.crt'}\ncertfile {tmp / 'server.crt'}\nkeyfile {tmp / 'server.key'}\n"
        f"listener {mtls} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {tmp / 'ca.crt'}\ncertfile {tmp / 'server.crt'}\nkeyfile {tmp / 'server.key'}\n"
        "require_certificate true\n"
    )
    proc, log = _start(tmp, body, [port, mtls])
    yield Broker(port, proc, log, ca=tmp / "ca.crt", client_cert=tmp / "client.crt", client_key=tmp / "client.key",
                 extra_ports={"mtls": mtls})
    _stop(proc)


class RestartableBroker(Broker):
    """An anonymous broker of one test that the test may stop and start again on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        port = free_port()
        proc, log = _start(tmp, self._body(port), [port])
        super().__init__(port, proc, log)

    @staticmethod
    def _body(port: int) -> str:
        return f"listener {port} 127.0.0.1\nallow_anonymous true\n"

    def stop(self) -> None:
        _stop(self.proc)

    def start(self) -> None:
        self.proc, self.log = _start(self.tmp, self._body(self.port), [self.port])


class PersistentBroker(RestartableBroker):
    """A restartable broker with persistence on: a restart keeps each session and its in-flight messages."""

    def _body(self, port: int) -> str:  # type: ignore[override]
        return super()._body(port) + f"persistence true\npersistence_location {self.tmp}/\n"


@pytest.fixture
def persistent_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersistentBroker]:
    b = PersistentBroker(tmp_path_factory.mktemp("mosquitto-persist"))
    yield b
    if b.proc.poll() is None:
        _stop(b.proc)


@pytest.fixture
def restartable_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableBroker]:
    b = RestartableBroker(tmp_path_factory.mktemp("mosquitto-restart"))
    yield b
    if b.proc.poll() is None:
        _stop(b.proc)
