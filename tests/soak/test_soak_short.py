"""The soak's short variant (bench/soak.py, `short_plan()`): 40 MQTT sensors publishing every 1-2 s into
the real daemon (its own process), a real Mosquitto with persistence and InfluxDB 1.6.7, and every fault
of the long soak once in under a minute: a hot spell on one room with a broker restart inside it, a
silent sensor, InfluxDB stopped and started, the daemon stopped with SIGTERM and started again.

Exact counts only, no timing: each published reading once in the journal and once in InfluxDB, each
injected alarm fired and cleared with one SMS of each kind per contact, nothing else raised, and each
daemon process back to its level of threads and fds at its quiet end. Memory is reported
(`report.json`), not asserted: a minute says nothing about a slope. `make soak` runs the long one."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import not_back, run, short_plan, summary

pytestmark = pytest.mark.peer


def test_the_short_soak_counts_exactly(tmp_path: Path) -> None:
    plan = short_plan()
    r = run(tmp_path, plan)
    print(summary(r))
    rd, ix, al, sms = r["readings"], r["influx"], r["alarms"], r["sms"]
    assert {f["kind"] for f in r["faults"]} == {"hot", "broker", "silence", "influx", "restart"}
    assert all(r["settled"].values()), r["settled"]
    assert rd["published"] > 0 and rd["lost"] == 0, rd["lost_examples"]
    # a message the broker took from the publisher but whose PUBACK the restart lost is sent again by the
    # publisher: two messages, stored twice by design (QoS 1 is at least once upstream of the daemon)
    assert rd["duplicated"] == rd["duplicated_in_doubt_at_publisher"], rd["duplicated_examples"]
    assert rd["not_published_by_us"] == 0
    assert ix["exactly_once"], ix
    hot = sum(1 for f in r["faults"] if f["kind"] == "hot") * plan.sensors // plan.zones
    silences = sum(1 for f in r["faults"] if f["kind"] == "silence")
    assert al["expected"] == hot + silences
    assert al["fired_and_matched"] == al["resolved"] == al["expected"], (al["missing"], al["unresolved"])
    assert al["unexpected"] == []
    assert sms["sent_twice"] == [] and sms["missing"] == [] and sms["same_outbox_id_twice"] == 0
    assert set(sms["outbox_states"]) == {"sent"}
    assert [p["exit"] for p in r["processes"]] == [0, 0]
    assert not_back(r) == []
