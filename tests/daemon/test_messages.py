"""Both text catalogues agree, and every zh-CN alarm fits one SMS (70 UCS-2 characters)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.texts import TEXT_KEY
from daemon.config.catalog import load_catalog
from daemon.messages import LANGS, catalog, placeholders, render
from daemon.ports.clock import ManualClock
from daemon.ports.stats import Stats
from daemon.storage.alerts import AlertRow
from daemon.storage.journal import Journal
from tests.conftest import make_config


def test_catalogs_have_same_keys_and_placeholders() -> None:
    zh, en = catalog("zh-CN"), catalog("en")
    assert zh.keys() == en.keys()
    for k in zh:
        assert placeholders(zh[k]) == placeholders(en[k]), k


def test_every_kind_has_text_and_name() -> None:
    for lang in LANGS:
        for kind, key in TEXT_KEY.items():
            assert key in catalog(lang) and f"kind.{kind}" in catalog(lang)


def ucs2_len(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


@pytest.mark.parametrize("kind", sorted(TEXT_KEY))
def test_zh_alarm_fits_one_sms_for_every_commodity(kind: str, tmp_path: Path) -> None:
    """Worst case over the catalog with a 6-character site and a 4-character room name."""
    cfg = make_config(tmp_path)
    cfg.site.name = "草堂镇冷库站"
    cfg.zones[0].name = "12号库"
    am = AlertManager(cfg, Journal(tmp_path / "m.db"), ManualClock(1e9), Stats())
    longest = 0
    for key in load_catalog():
        cfg.zones[0].commodity = key
        row = AlertRow(9999, "k", "z1", "s1-door", kind, "warning", "firing", 1e9 - 5940, 1e9, None, None, None,
                       -18.5, -20.0, -18.5, "fault.values|count=3|note=known error value 85")
        longest = max(longest, ucs2_len(am.texts.text(row, "zh-CN")))
    assert longest <= 70, f"{kind}: {longest} characters"


def test_render_fills_placeholders() -> None:
    assert render("kind.no_data", "en") == "no data"
    assert "{" not in render("fault.stuck", "zh-CN", minutes=30)
