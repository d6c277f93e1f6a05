"""A journal and config for the signed report: one day of readings, an alarm acknowledged, acted on and closed."""

from __future__ import annotations

from pathlib import Path

from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import RuleEvent
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL

DAY0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai
CONFIG = MINIMAL.replace(
    "  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}\n",
    "  - id: s1\n    zone: z1\n    type: simulated\n    setpoint: 6.5\n    name: 门口\n"
    "    instrument: {model: Testo 184 T3, serial: SN-40917, calibrated: 2025-03-01, "
    "calibration_due: 2026-03-01, accuracy: ±0.5 °C, certificate: CNAS-L1234-25}\n"
    "  - {id: s2, zone: z1, type: simulated, setpoint: 6.5, interval: 5m}\n",
).replace("{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}",
          "{id: z1, name: 1号库, name_en: Room 1, commodity: mandarin, alarms: {temperature: {high: 9.0}}}")


def fill(path: Path, cfg: object) -> int:
    """s1 and s2 every minute / 5 min: 6 °C, 10 °C 10:00-10:40; alarm 1 handled in full. Returns its id."""
    j = Journal(path)
    rows = [Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 10.0 if 600 <= i < 640 else 6.0, DAY0 + i * 60)
            for i in range(1440)]
    rows += [Reading("t1", "z1", "s2", Quantity.TEMPERATURE, 6.2, DAY0 + i * 300) for i in range(288)]
    j.readings.append(rows)
    clock = ManualClock(DAY0 + 610 * 60)
    am = AlertManager(cfg, j, clock, Stats())  # type: ignore[arg-type]

    def ev(action: str, minute: int, value: float) -> RuleEvent:
        return RuleEvent(action, "z1/s1/temp_high", "z1", "s1", "temp_high", "warning",  # type: ignore[arg-type]
                         DAY0 + minute * 60, DAY0 + 600 * 60, value, 9.0, 10.0)

    am.apply([ev("pending", 600, 10.0), ev("fire", 610, 10.0)])
    aid = j.alerts.find()[0].id
    clock.advance(300)
    am.acknowledge(aid, "zhang", "门没关好，已关门")
    clock.advance(600)
    am.record_action(aid, "zhang", "moved", "移到2号库，抽检3箱果温正常")
    am.apply([ev("clear", 645, 6.0)])
    clock.advance(3600)
    am.close(aid, "wang", "复核无误")
    j.close()
    return aid
