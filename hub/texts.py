"""The hub's words, zh-CN first and en, kept as data in `hub/messages/*.json` (the box's own live in daemon/)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGS = ("zh-CN", "en")


@cache
def table(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads(resources.files(__package__).joinpath(f"messages/{lang}.json").read_text("utf-8"))
    return data


def pick(lang: str | None, accept: str | None = None) -> str:
    """`?lang=` if it names one we have, else English for a browser asking for it first, else zh-CN."""
    if lang in LANGS:
        return lang
    if lang and lang.lower().startswith("en"):
        return "en"
    return "en" if (accept or "").lower().startswith("en") else "zh-CN"


def t(lang: str, key: str, /, **values: object) -> str:
    return table(lang)[key].format(**values)
