"""A precooling run end to end: a pulp probe and a supply-air sensor on real Mosquitto (JSON with the device's own
time), a strawberry lot checked into the precooling room over the API, the daemon's evaluation of the run from the
journal, the too-slow alarm with its SMS in the outbox, and the figures on the lot's record and its trace page."""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from daemon.app.runtime import Daemon
from tests.conftest import make_config
from tests.drivers.sensors.mqtt.conftest import Broker, broker  # noqa: F401  (the session fixture)
from tests.peers import until

CONFIG = """
site: {{id: t1, name: 测试冷库}}
storage: {{journal: journal.db, flush_interval: 1s}}  # the check reads the journal: not a 60 s wait
mqtt: {{host: 127.0.0.1, port: {port}}}
zones:
  - {{id: pre, name: 预冷间, name_en: Precooling room, precool: {{pulp: [pulp1], supply_air: [air1]}}}}
sensors:
  - {{id: pulp1, zone: pre, type: mqtt, format: json, topic: pre/pulp1, values: {{temperature: t}},
     timestamp: {{path: ts, format: epoch_s}}, trust_device_time: true, interval: 60s}}
  - {{id: air1, zone: pre, type: mqtt, format: json, topic: pre/air1, values: {{temperature: t}},
     timestamp: {{path: ts, format: epoch_s}}, trust_device_time: true, interval: 60s}}
notifiers:
  - {{id: out, type: console, stream: log}}
contacts:
  - {{id: zhang, name: 张师傅, phone: "+8613800138000"}}
escalation: {{steps: [{{contacts: [zhang], notifiers: [out]}}]}}
api:
  enabled: true
  host: 127.0.0.1
  port: 0
  tokens:
    - {{name: zhang, role: staff, token: {{value: staff-secret}}}}
"""
STAFF = {"Authorization": "Bearer staff-secret"}
Z = 3600.0  # half-cooling 1 h: 7/8 after 3 h, the strawberry target is 2 h
MINUTES = 75  # past the half-cooling time (the running median needs a few readings beyond it)


def publish_curve(broker: Broker, start: float) -> None:  # noqa: F811
    """75 minutes of Newton's law at a reading a minute, each topic in one mosquitto_pub (-l: a message a line)."""
    k = math.log(2) / Z
    for topic, value in (("pre/pulp1", lambda s: 0.5 + 21.5 * math.exp(-k * s)), ("pre/air1", lambda s: 0.5)):
        lines = "".join(json.dumps({"t": round(value(i * 60.0), 3), "ts": start + i * 60}) + "\n"
                        for i in range(MINUTES + 1))
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", topic, "-l"],
                       input=lines.encode(), check=True, timeout=20)


@pytest.mark.peer
@pytest.mark.asyncio
async def test_a_slow_precooling_run_alarms_and_lands_on_the_lot(broker: Broker, tmp_path: Path) -> None:  # noqa: F811
    d = Daemon(make_config(tmp_path, CONFIG.format(port=broker.port)))
    await d.start()
    start = float(int(time.time())) - MINUTES * 60 - 30
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=10) as c:
            r = await c.post("/api/v1/lots", headers=STAFF, json={
                "code": "SB-2025-001", "commodity": "strawberry", "zone": "pre",
                "at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start))})
            assert r.status_code == 201, r.text
            publish_curve(broker, start)
            n = 2 * (MINUTES + 1)
            await until(lambda: len(d.journal.readings.query(zone="pre")) >= n, "the curve in the journal")
            await d.precool_once()  # the daemon's minute, now rather than in up to 60 s
            alarms = d.journal.alerts.find(open_only=True)
            (alarm,) = [a for a in alarms if a.kind == "precool_slow"]
            assert alarm.zone == "pre" and alarm.limit_value == 2.0
            assert alarm.value == pytest.approx(3.0, rel=0.05)  # predicted 7/8 after 3 h, from 75 min of curve
            (sms,) = d.journal.outbox.find(alert_id=alarm.id)
            assert sms.address == "+8613800138000" and "预冷慢" in sms.text and "目标2.0小时" in sms.text

            (run,) = (await c.get("/api/v1/precool", headers=STAFF)).json()["runs"]
            f = run["figures"]
            assert (run["lot"], run["how"], f["state"], f["too_slow"]) == ("SB-2025-001", "check_in", "predicting",
                                                                          True)
            assert f["half_s"] == pytest.approx(Z, abs=120)
            assert f["half_fit_s"] == pytest.approx(Z, rel=0.03)
            rec = (await c.get("/api/v1/lots/SB-2025-001", headers=STAFF)).json()
            assert rec["precooling"][0]["figures"]["predicted_seven_eighths_s"] == pytest.approx(3 * Z, rel=0.05)
            page = (await c.get("/trace/SB-2025-001?lang=en")).text
            assert 'id="precool"' in page and "slower than the target" in page and "predicted 3.0 h" in page
            zh = (await c.get("/trace/SB-2025-001?lang=zh-CN")).text
            assert "半冷却时间" in zh and "慢于目标" in zh

            r = await c.post(f"/api/v1/precool/{run['id']}/stop", headers=STAFF)
            assert r.status_code == 200 and r.json()["end_reason"] == "stopped"
            assert (await c.post(f"/api/v1/precool/{run['id']}/stop", headers=STAFF)).status_code == 409
            await d.precool_once()  # a stopped run's alarm ends with it
            assert d.journal.alerts.find(open_only=True) == []
            assert (await c.post("/api/v1/precool", json={"zone": "pre"})).status_code == 401
    finally:
        await d.stop()
