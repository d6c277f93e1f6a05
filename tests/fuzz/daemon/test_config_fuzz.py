"""The config loader against mutated configs and raw text: an AppConfig, or a ConfigError whose every
problem starts with `file:line:`, never a traceback for the installer."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from daemon.app.plugins import parse_config
from daemon.config.schema import AppConfig
from daemon.ports.errors import ConfigError
from tests.conftest import MINIMAL
from tests.fuzz.budget import CONFIG_FUZZ

ROOT = Path(__file__).resolve().parents[3]
FNAME = "site.yaml"
PROBLEM = re.compile(rf"^{re.escape(FNAME)}:\d+: \S")
EXAMPLE = (ROOT / "config" / "example.yaml").read_text(encoding="utf-8")
BASES = {"minimal": MINIMAL, "example": EXAMPLE}
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
                    st.sampled_from(["5m", "-1s", "1e9h", "z1", "s1", "simulated", "mqtt", "modbus_rtu", "/dev/ttyUSB0",
                                     "Asia/Shanghai", "Mars/Olympus", "zh-CN", "kiwifruit", "nope", "~", "0x10"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)


def check(text: str) -> None:
    try:
        cfg = parse_config(text, FNAME)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError with no problem"
        for p in exc.problems:
            assert PROBLEM.match(p), f"problem does not name file:line: {p!r}"
        return
    assert isinstance(cfg, AppConfig)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    """The base config with a few keys replaced by random values, deleted, or joined by an unknown key."""
    doc = yaml.safe_load(base)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(doc)))
        parent = doc
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
        else:
            parent.append(copy.deepcopy(draw(VALUES)))
        if not paths(doc):
            break
    return yaml.safe_dump(doc, allow_unicode=True)


@st.composite
def garbled(draw: st.DrawFn, base: str) -> str:
    """Raw text edits: a slice deleted, a random run of characters inserted."""
    text = base
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        text = text[:i] + draw(st.text(max_size=6)) + text[j:]
    return text


@pytest.mark.parametrize("base", sorted(BASES))
def test_mutated_configs_load_or_name_file_and_line(base: str) -> None:
    text = BASES[base]
    check(text)  # the base itself is valid

    @CONFIG_FUZZ
    @given(st.one_of(mutated(text), garbled(text)))
    def run(t: str) -> None:
        check(t)

    run()


@CONFIG_FUZZ
@given(st.text(max_size=200))
def test_any_text_loads_or_names_file_and_line(text: str) -> None:
    check(text)
