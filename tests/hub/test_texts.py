"""The hub's two text catalogues agree, and every key the hub's code names is in them."""

from __future__ import annotations

import re
import string
from pathlib import Path

from hub.texts import LANGS, pick, table

HUB = Path(__file__).resolve().parents[2] / "hub"


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = table("zh-CN"), table("en")
    assert zh.keys() == en.keys()
    for key in zh:
        assert fields(zh[key]) == fields(en[key]), key


def test_every_key_named_in_the_code_exists() -> None:
    named = set()
    for path in HUB.glob("*.py"):
        named |= set(re.findall(r'"((?:region|trace|epcis|common)\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    named |= {f"region.{s}" for s in ("open", "acknowledged")}  # built as f"region.{state}"
    assert len(named) > 20
    for lang in LANGS:
        assert named <= table(lang).keys(), named - table(lang).keys()


def test_language_choice() -> None:
    assert pick(None) == "zh-CN" and pick("en") == "en" and pick("en-GB") == "en" and pick("fr") == "zh-CN"
    assert pick(None, "en-US,en;q=0.9") == "en" and pick(None, "zh-CN,zh;q=0.9") == "zh-CN"
