"""The fleet dashboard's InfluxQL runs on a real InfluxDB 1.6.7 against the points our sink writes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.peers import InfluxD, influx_db, influxd

__all__ = ["influx_db", "influxd"]
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "coldchain-fleet.json"


def grafana_to_influxql(q: str) -> str:
    """What Grafana sends: macros and multi-value variables expanded."""
    return (q.replace("$timeFilter", "time > now() - 2d").replace("$__interval", "1h")
            .replace("/^$site$/", "/^(caotang|fengjie)$/").replace("/^$zone$/", "/^(z1|z2)$/"))


def queries() -> list[tuple[str, str, str]]:
    d = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(p["title"], t["refId"], t["query"]) for p in d["panels"] for t in p["targets"]]


def test_dashboard_shape() -> None:
    d = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource", "site", "zone"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for title, _, q in queries():
        assert re.search(r'FROM "(readings|sensor_faults)"', q), title
        assert "$timeFilter" in q, title


@pytest.mark.peer
def test_every_panel_query_answers(influxd: InfluxD, influx_db: str) -> None:
    now = int(time.time() * 1000) // 60000 * 60000
    lines = []
    for i in range(24 * 60):  # the USP worked example at center caotang, room z1
        t = now - (24 * 60 - i) * 60000
        v = 5.0 if i < 23 * 60 else 25.0
        lines.append(f"readings,commodity=mandarin,sensor=s1,site=caotang,zone=z1 temperature={v},humidity=91 {t}")
        lines.append(f"readings,commodity=kiwifruit,sensor=k1,site=fengjie,zone=z2 temperature=0.3 {t}")
    lines.append(f'sensor_faults,commodity=mandarin,quantity=temperature,sensor=s1,site=caotang,zone=z1 '
                 f'note="known error value 85",value=85 {now - 60000}')
    lines.append(f"readings,sensor=x,site=other,zone=z1 temperature=30 {now - 60000}")  # not selected
    influxd.write(influx_db, "\n".join(lines))
    results = {}
    for title, ref, q in queries():
        series = influxd.query(grafana_to_influxql(q), influx_db)
        assert series, f"{title} ({ref}) returned nothing"
        assert all(s.get("tags", {}).get("site") != "other" for s in series), title
        results[(title, ref)] = series
    mkt = {s["tags"]["zone"]: s["values"][0][1] for s in results[("Rooms over the range: min, mean, max, MKT", "B")]}
    assert round(mkt["z1"], 2) == 7.76 and round(mkt["z2"], 2) == 0.3
    faults = results[("Sensor faults", "A")]
    assert faults[0]["tags"]["sensor"] == "s1" and faults[0]["values"][0][1] == 1
