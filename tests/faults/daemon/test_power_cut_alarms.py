"""Power cut during alarm delivery: SIGKILL the daemon at random moments while alarms fire and an Apprise
`json://` webhook (a loopback HTTP server run by the test) takes the messages; restart it each time.

Afterwards: every message the server got belongs to an alarm stored in the journal (no alarm lost);
no message reached the server more often than the outbox allows (a row is marked `sending` before the
channel is called and `unknown` after a crash, never resent on that channel); nothing is left pending
or sending, and every message that is not `sent` is `unknown`/`failed` with a logged reason.

Default run: 8 kills (~40 s). `COLDCHAIN_LONG=1` runs 100.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from daemon.alarms.dispatcher import Dispatcher
from daemon.app.plugins import load_config
from daemon.ports.clock import Clock
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from drivers import load_all
from drivers.registry import NOTIFIERS
from tests.daemon.app.test_sigkill import run_once

pytestmark = [pytest.mark.peer]
KILLS = 100 if os.environ.get("COLDCHAIN_LONG") == "1" else 8
SPEED = 300  # one real second is five minutes in the cold room

# Times count from each start (the simulated failures restart with the driver), so every run fires,
# escalates and resolves alarms again: a compressor failure (temp_high), a DS18B20 power-on value
# (sensor_fault) and a silent sensor (no_data). `stale_after` is long next to the acceleration: on a loaded
# CI machine the loop may lag a tenth of a real second, which is half a minute of cold-room time.
CONFIG = """
site: {{id: cut, name: 断电告警}}
storage: {{journal: journal.db, flush_interval: 0.05, commit_interval: 0.05}}
zones:
  - id: z1
    name: 1号库
    commodity: mandarin
    alarms:
      temperature: {{high: 8.0, delay: 1m, clear_delay: 1m}}
      fault_after: 3
sensors:
  - {{id: s1, zone: z1, type: simulated, setpoint: 6.0, interval: 10, stale_after: 30m, tau: 20m, cooling_rate: 2.0,
     seed: 1, failures: [{{kind: compressor, at: 1m, until: 8m}}]}}
  - {{id: s2, zone: z1, type: simulated, setpoint: 6.0, interval: 10, stale_after: 30m, seed: 2,
     failures: [{{kind: fault_values, at: 30s, until: 3m}}]}}
  - {{id: s3, zone: z1, type: simulated, setpoint: 6.0, interval: 30, stale_after: 3m, seed: 3,
     failures: [{{kind: silent, at: 1m, until: 10m}}]}}
notifiers:
  - {{id: hook, type: apprise, urls: ["json://127.0.0.1:{port}/sms/{{address}}?cto=2&rto=5"]}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
  - {{id: li, name: 李师傅, phone: "+8613800138001"}}
  - {{id: wang, name: 王经理, phone: "+8613900139000"}}
escalation:
  steps:
    - {{after: 0m, contacts: [zhang, li], notifiers: [hook]}}
    - {{after: 3m, contacts: [wang], notifiers: [hook]}}
  repeat: 3m
api: {{enabled: false}}
"""
ALARM_ID = re.compile(r"(?:ACK |告警|alarm )(\d+)")


class Webhook:
    """A loopback HTTP server that records every message Apprise posts, answering after a random pause
    so that kills land while a request is in flight."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (address, text)
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    hook.received.append((self.path.split("/")[-1].split("?")[0], body["message"]))
                time.sleep(random.uniform(0, 0.05))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the daemon killed mid-request: a broken pipe here is the point of the test

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def final_delivery(config: Path, caplog: pytest.LogCaptureFixture) -> Journal:
    """The next start: recover what the last kill left `sending`, then send everything due (no sensors)."""
    load_all()
    cfg = load_config(config)
    journal = Journal(cfg.storage.journal)
    hook = NOTIFIERS["apprise"](cfg.notifiers[0])
    clock = Clock(start=time.time() + 365 * 86400)  # every retry time has come
    dispatcher = Dispatcher(journal, {"hook": hook}, Stats(), asyncio.Event(), clock)

    async def run() -> None:
        with caplog.at_level(logging.WARNING):
            await asyncio.to_thread(dispatcher.recover)
            while await dispatcher.drain():
                pass

    asyncio.run(run())
    return journal


def test_sigkill_during_alarm_delivery_loses_and_repeats_nothing(
        webhook: Webhook, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(port=webhook.port), encoding="utf-8")
    log = tmp_path / "daemon.log"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    ready = sum(run_once(config, log, rng, speed=SPEED, window=(0.2, 4.0), after_ready=True) for _ in range(KILLS))
    assert ready > 0, f"the daemon never got running; see {log}"
    assert webhook.received, f"no message reached the webhook between the kills; see {log}"

    journal = final_delivery(config, caplog)
    assert journal.quick_check() == "ok"
    rows = journal.outbox.find(limit=1_000_000)
    states = Counter(r.state for r in rows)
    assert states["pending"] == states["sending"] == 0, states

    # every message not sent says why, in the daemon's log or the last start's
    said = log.read_text(encoding="utf-8") + caplog.text
    for r in rows:
        if r.state != "sent":
            assert r.state in ("unknown", "failed"), r
            assert f"message {r.id} to " in said, f"no logged reason for {r.state} message {r.id}"

    # no message delivered more often than the outbox allows, none delivered that it does not hold
    got = Counter(webhook.received)
    may = Counter((r.address.lstrip("+"), r.text) for r in rows if r.state in ("sent", "unknown"))
    must = Counter((r.address.lstrip("+"), r.text) for r in rows if r.state == "sent")
    got = Counter({(a.lstrip("+").replace("%2B", ""), t): n for (a, t), n in got.items()})
    assert not got - may, f"delivered more often than sent/unknown rows allow: {got - may}"
    assert not must - got, f"marked sent but never received: {must - got}"

    # every alarm a message speaks of is in the journal, fired, with its audit trail
    alarms = {int(m.group(1)) for _, text in webhook.received if (m := ALARM_ID.search(text))}
    assert alarms
    for aid in alarms:
        row = journal.alerts.get(aid)
        assert row is not None and row.fired is not None, f"alarm {aid} was messaged but is not in the journal"
        assert journal.alerts.events(aid)
    fired = [a for a in journal.alerts.find(limit=100_000) if a.fired is not None]
    assert all(journal.outbox.find(alert_id=a.id, limit=1) for a in fired), "a fired alarm queued no message"
    print(f"{KILLS} kills: {len(fired)} alarms fired, {len(rows)} messages, states {dict(states)}")
