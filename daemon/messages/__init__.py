"""User-facing text as data, in zh-CN and en; code names only the key."""

from __future__ import annotations

import functools
import json
import string
from importlib.resources import files

LANGS = ("zh-CN", "en")


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """All texts of one language (falls back to zh-CN for an unknown language)."""
    name = lang if lang in LANGS else "zh-CN"
    data: dict[str, str] = json.loads(files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
    return data


def render(key: str, lang: str = "zh-CN", **params: object) -> str:
    """The text for `key` in `lang` with its placeholders filled."""
    return catalog(lang)[key].format(**params)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
