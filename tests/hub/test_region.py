"""The box and the hub together, real peers all the way: two box daemons (the demo center's simulated rooms, each
with an `mqtt_uplink` sink) publish to one Mosquitto, a hub worker stores into PostgreSQL. A lot checked in at A,
shipped to B and received there under the same code is one chain at the hub; an alarm raised at A is open in the
region and then acknowledged with who; B killed with SIGKILL is offline by its Last Will; the hub's EPCIS query
output validates against GS1's schema. Also `coldchain demo --centers 3`, run briefly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hub import region_demo
from hub.region_demo import Region, call, hub_view, move_lot, wait
from tests.conftest import free_port
from tests.peers import Mosquitto

pytestmark = pytest.mark.peer
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.yaml"
SCHEMA = json.loads((ROOT / "tests" / "data" / "epcis" / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def alarms(dsn: str) -> list[dict[str, Any]]:
    import psycopg

    from hub import queries

    with psycopg.connect(dsn) as conn:
        return [a for a in queries.open_alarms(conn) if a["site"] == "center-1"]


def get(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
        out: dict[str, Any] = json.loads(resp.read())
    return out


def test_two_boxes_and_a_hub(dsn: str, broker: Mosquitto, tmp_path: Path) -> None:
    region = Region(tmp_path, DEMO, speed=120)
    region.broker_port, region.dsn = broker.port, dsn
    hub_port = free_port()
    try:
        region.start_hub(hub_port)
        a_box, b_box = region.start_box(0, free_port()), region.start_box(1, free_port())
        region.wait_boxes()
        (a, a_port), (b, _) = region.boxes
        move_lot(region, "RG-7", 2.0, lambda *_a, **_k: None)
        wait(lambda: [leg["site"] for leg in hub_view(dsn, "RG-7")[1]] == [a, b], 60, "both stays at the hub")
        centers, (at_a, at_b) = hub_view(dsn, "RG-7")
        assert (at_a["zone"], at_b["zone"]) == ("mandarin", "mandarin")
        # each time is its box's clock: at 120x a few ms between the two processes is seconds, so B may receive
        # "before" A shipped; the hub keeps the causal order (hub.queries.causal, tests/hub/test_chain_order.py)
        assert abs(at_b["since"] - at_a["until"]) < 60_000, (at_a, at_b)
        fig = at_a["temperature"]  # the stay at A, its report carried by A's shipping event
        # the stay is 2 s at 120x, shorter than the demo's 1 s commit window under load: the checkout commits the
        # pending readings first (tests/daemon/api/test_pending_readings.py), so the figure is always there
        assert fig is not None and set(fig) == {"min", "max", "mean"}, json.dumps([at_a, call(a_port, "GET", "/api/v1/lots/RG-7")])
        assert fig["min"] <= fig["mean"] <= fig["max"], at_a
        assert at_b["until"] is None  # still stored at B
        assert {c["site"]: c["state"] for c in centers if c["site"] in (a, b)} == {a: "online", b: "online"}
        check_alarm(region, a_port)
        b_box.send_signal(signal.SIGKILL)
        b_box.wait(10)
        wait(lambda: {c["site"]: c["state"] for c in hub_view(dsn, "RG-7")[0]}.get(b) == "offline", 60,
             "B offline by its Last Will")
        assert {c["site"]: c["state"] for c in hub_view(dsn, "RG-7")[0]}[a] == "online"
        doc = get(hub_port, "/epcis/events?MATCH_epc=RG-7")
        assert [f"{e.path}: {e.message[:200]}" for e in VALIDATOR.iter_errors(doc)] == []
        found = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        # the query answers in eventTime order, each box's own clock: B's receiving may sort before A's shipping
        assert sorted((e["bizStep"].rsplit("-", 1)[-1].rsplit(":", 1)[-1], e["cc:site"]) for e in found) == [
            ("commissioning", a), ("receiving", b), ("shipping", a)]
        times = [datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00")) for e in found]
        assert times == sorted(times)
        assert a_box.poll() is None
    finally:
        region.stop()
        forget(broker, ["center-1", "center-2"])


def forget(broker: Mosquitto, sites: list[str]) -> None:
    """Clear the boxes' retained status and site on the session's broker, so later tests' hubs never see them."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="region-test-cleanup")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    infos = [client.publish(f"coldchain/{site}/{rest}", b"", qos=1, retain=True)
             for site in sites for rest in ("status", "site")]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


def check_alarm(region: Region, a_port: int) -> None:
    """A's mandarin room loses its compressor (config/demo.yaml): the alarm is open in the region, then
    acknowledged at the box, and the hub shows who."""
    wait(lambda: any(x["zone"] == "mandarin" for x in alarms(region.dsn)), 90, "A's alarm at the hub")
    (hub_alarm,) = [x for x in alarms(region.dsn) if x["zone"] == "mandarin"]
    assert hub_alarm["state"] == "open" and hub_alarm["acked_by"] is None
    (local,) = [x for x in call(a_port, "GET", "/api/v1/alerts?open=true")["alerts"] if x["zone"] == "mandarin"]
    call(a_port, "POST", f"/api/v1/alerts/{local['id']}/ack", {"comment": "门已关好，压缩机报修"})
    wait(lambda: any(x["id"] == hub_alarm["id"] and x["state"] == "acknowledged" for x in alarms(region.dsn)), 60,
         "the acknowledgement at the hub")
    (acked,) = [x for x in alarms(region.dsn) if x["id"] == hub_alarm["id"]]
    assert acked["acked_by"] and "zhang" in acked["acked_by"], acked


def test_coldchain_demo_with_three_centers(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "daemon", "demo", "--centers", "3", "--port", "0", "--duration", "1",
                          "--data-dir", str(tmp_path), "--lang", "en"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(x.startswith("Regional hub: http://127.0.0.1:") for x in lines), out.stdout
    assert [x.split(":")[0] for x in lines if x.startswith("Center center-")] == [
        "Center center-1", "Center center-2", "Center center-3"]
    assert ("The hub's chain of RG-0001: center-1/mandarin -> center-2/mandarin -> center-3/mandarin"
            in out.stdout), out.stdout
    assert "Centers: center-1 online, center-2 online, center-3 online" in out.stdout


def test_coldchain_demo_with_a_vehicle(tmp_path: Path) -> None:
    """`--vehicle`: a reefer truck box (hub.region_demo.vehicle_config) carries the lot from center-1 to center-2."""
    out = subprocess.run([sys.executable, "-m", "daemon", "demo", "--centers", "2", "--vehicle", "--port", "0",
                          "--duration", "1", "--data-dir", str(tmp_path), "--lang", "en"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert any(x.startswith("Vehicle truck-1: http://127.0.0.1:") for x in out.stdout.splitlines()), out.stdout
    assert "Lot RG-0001 shipped from center-1, received at truck-1" in out.stdout
    assert "Lot RG-0001 shipped from truck-1, received at center-2" in out.stdout
    assert ("The hub's chain of RG-0001: center-1/mandarin -> truck-1/reefer -> center-2/mandarin"
            in out.stdout), out.stdout
    assert "Centers: center-1 online, center-2 online, truck-1 online" in out.stdout


def test_the_region_demo_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    monkeypatch.setattr(region_demo, "missing", lambda: ["mosquitto", "postgresql"])
    assert region_demo.main(["--base-config", str(DEMO), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "mosquitto, postgresql" in err and "apt-get install -y mosquitto postgresql" in err


def test_the_single_center_demo_is_unchanged_without_the_region(tmp_path: Path) -> None:
    env = os.environ | {"PATH": "/nonexistent"}  # no mosquitto, no anything on PATH
    out = subprocess.run([sys.executable, "-m", "daemon", "demo", "--port", "0", "--duration", "1", "--data-dir",
                          str(tmp_path), "--lang", "en"], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
