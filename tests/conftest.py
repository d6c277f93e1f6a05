"""Shared fixtures: temp journals, configs built from text, free ports."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

from daemon.app.plugins import parse_config
from daemon.config.schema import AppConfig

# No per-example deadline anywhere: `make test` runs the suite in parallel workers on a small CI machine,
# where a stall says nothing about the code (budgets stay in each test's own @settings).
settings.register_profile("coldchain", deadline=None)
settings.load_profile("coldchain")

MINIMAL = """
site: {id: t1, name: 测试冷库}
storage: {journal: journal.db}
zones:
  - {id: z1, name: 1号库, name_en: Room 1, commodity: mandarin}
sensors:
  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}
notifiers:
  - {id: out, type: console}
contacts:
  - {id: zhang, name: 张师傅, phone: "+8613800138000"}
api: {enabled: false}
"""


def make_config(tmp_path: Path, text: str = MINIMAL) -> AppConfig:
    return parse_config(textwrap.dedent(text), "config.yaml", base_dir=tmp_path)


@pytest.fixture
def config(tmp_path: Path) -> AppConfig:
    return make_config(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
