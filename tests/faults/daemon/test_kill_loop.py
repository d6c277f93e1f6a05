"""Exactly once, across kill -9 (issue 13): MQTT sensors publish in bursts at QoS 1 while the daemon is SIGKILLed
at random moments, some right after a journal commit (in the window before its PUBACKs leave), and restarted;
InfluxDB is stopped for a while in the middle. After the last start has drained: every message the broker
acknowledged to the publisher is in the journal exactly once, no two rows of a series share a timestamp,
InfluxDB holds as many points as the journal has rows, and no value changed on the way.

Two variants: readings stamped with the receive time (the payload has no device time) and with a device time.
The run is seeded: `COLDCHAIN_SEED=<n>` replays its schedule of kills, pauses and bursts (the seed is printed and
named in a failure; the moments on the machine's clock differ from run to run).
`COLDCHAIN_LONG=1` kills 50 times.
"""

from __future__ import annotations

import bisect
import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.faults.daemon.proof import (
    DaemonProcess,
    JournalProbe,
    Publisher,
    QueueingBroker,
    daemon_config,
    open_session,
    sensor_ids,
    settle,
    tally,
    topic,
)
from tests.peers import InfluxD

pytestmark = pytest.mark.peer
KILLS = 50 if os.environ.get("COLDCHAIN_LONG") == "1" else 10
SENSORS = 20
BURST = 4  # messages per sensor in one burst: a burst lands in one or two journal commits


def seed() -> int:
    given = os.environ.get("COLDCHAIN_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**32)


class Bursts(threading.Thread):
    """Publishes a burst of `BURST` messages for every sensor, then pauses a random moment, until stopped."""

    def __init__(self, pub: Publisher, sensors: list[str], rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.pub, self.sensors, self.rng = pub, sensors, rng
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for _ in range(BURST):
                for s in self.sensors:
                    self.pub.publish(s)
            self.halt.wait(self.rng.uniform(0.05, 0.3))


def kill_after_commit(d: DaemonProcess, probe: JournalProbe, rng: random.Random) -> None:
    """SIGKILL as soon as the journal has grown by 1-3 commits since the start: the ack of the last one may
    still be on its way."""
    commits, top = rng.randint(1, 3), probe.max_id()
    end = time.monotonic() + 30
    while commits and time.monotonic() < end and d.running():
        now = probe.max_id()
        if now > top:
            commits, top = commits - 1, now
        else:
            time.sleep(0.001)
    time.sleep(rng.uniform(0, 0.004))
    d.kill()


def kill_loop(d: DaemonProcess, probe: JournalProbe, influxd: InfluxD, rng: random.Random) -> list[int]:
    """K starts and SIGKILLs; InfluxDB is down from the third of the kills to two kills later.
    Returns the journal's last id before each start (which run wrote a row)."""
    down, up = KILLS // 3, KILLS // 3 + 2
    starts = []
    for i in range(KILLS):
        starts.append(probe.max_id())
        d.start()
        if i == down:
            influxd.stop()
        if i == up:
            influxd.start()
        if rng.random() < 0.6:
            kill_after_commit(d, probe, rng)
        else:
            time.sleep(rng.uniform(0.3, 2.5))  # anywhere: start-up, replay, steady flow, forwarding
            d.kill()
        time.sleep(rng.uniform(0, 0.6))  # down a moment: the broker queues a backlog for the session
    return starts


def kills_with_copies(starts: list[int], copies: list[int]) -> int:
    """How many kills were followed by a restart that stored a message again (run i+1 wrote the copy)."""
    return len({bisect.bisect_left(starts, c) - 1 for c in copies} - {0})


@pytest.mark.parametrize("device_time", [False, True], ids=["receive_time", "device_time"])
def test_kill_loop_keeps_every_acknowledged_reading_once(influxd: InfluxD, influx_db: str, tmp_path: Path,
                                                         device_time: bool) -> None:
    s = seed()
    print(f"seed {s} (COLDCHAIN_SEED={s} replays it)")
    rng = random.Random(s)
    broker = QueueingBroker(tmp_path / "mosquitto")
    broker.start()
    sensors = sensor_ids(SENSORS)
    config = daemon_config(tmp_path, broker.port, influxd, influx_db, sensors, device_time=device_time)
    open_session(broker.port, "coldchain-proof", [topic(x) for x in sensors])
    d, probe = DaemonProcess(config), JournalProbe(tmp_path / "journal.db")
    pub = Publisher(broker.port, "proof-publisher", device_time)
    bursts = Bursts(pub, sensors, random.Random(rng.random()))
    try:
        bursts.start()
        starts = kill_loop(d, probe, influxd, rng)
        bursts.halt.set()
        bursts.join()
        pub.wait_all_acked()
        starts.append(probe.max_id())
        d.start()
        settle(probe, len(pub.sent))
        d.stop()
        t = tally(tmp_path / "journal.db", influxd, influx_db, pub)
    finally:
        bursts.halt.set()
        d.stop()
        pub.close()
        broker.stop()
        if influxd.proc is None:
            influxd.start()
    figures = f"seed {s}: {t.line()}; {kills_with_copies(starts, t.copies)} of {KILLS} kills left copies"
    print(figures)
    assert t.acked == t.published > 0
    assert t.faults() == dict.fromkeys(t.faults(), 0), f"{figures}; e.g. {t.examples[:5]}"
    assert t.journal_rows == t.influx_points == t.acked, f"seed {s}: {t.line()}"
