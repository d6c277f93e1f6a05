"""An alarm SMS says whose limit was crossed: the room's own setting or the commodity's."""

from __future__ import annotations

from pathlib import Path

from daemon.alarms.texts import AlarmTexts
from daemon.ports.clock import ManualClock
from daemon.storage.alerts import AlertRow
from tests.conftest import MINIMAL, make_config


def row(kind: str, value: float, limit: float) -> AlertRow:
    return AlertRow(7, "k", "z1", "s1", kind, "warning", "firing", 1e9 - 600, 1e9, None, None, None, value, limit,
                    value, None)


def test_room_override_is_called_the_rooms_limit(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL.replace(
        "commodity: mandarin}", "commodity: orange_sweet, alarms: {temperature: {low: 2.0}}}"))
    texts = AlarmTexts(cfg, ManualClock(1e9))
    low = texts.text(row("temp_low", 1.5, 2.0), "en")
    assert "below the room's min 2.0 C" in low and "Sweet orange min" not in low
    assert "低于本库设定下限2.0℃" in texts.text(row("temp_low", 1.5, 2.0), "zh-CN")
    high = texts.text(row("temp_high", 9.0, 8.0), "en")  # the high limit is still the orange's
    assert "above Sweet orange max 8.0 C" in high
    assert "高于甜橙上限8.0℃" in texts.text(row("temp_high", 9.0, 8.0), "zh-CN")
