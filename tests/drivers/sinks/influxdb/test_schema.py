"""Sink options: samples stay valid, errors name file, line and key, secrets stay hidden."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from daemon.ports.errors import ConfigError
from drivers.registry import SINKS
from drivers.sinks.influxdb import v1, v2
from tests.conftest import MINIMAL, make_config


@pytest.mark.parametrize("module", [v1, v2])
def test_samples_validate(module: object) -> None:
    for entry in yaml.safe_load(module.SAMPLE_YAML):  # type: ignore[attr-defined]
        SINKS[entry["type"]].Config.model_validate(entry)


def config_with(sinks: str) -> str:
    return textwrap.dedent(MINIMAL) + textwrap.dedent(sinks)


def errors(tmp_path: Path, sinks: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, config_with(sinks))
    return err.value.problems


def test_good_config_builds_both_sinks(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, config_with("""
        sinks:
          - {id: central, type: influxdb2, url: "https://influx.example.cn", org: o, bucket: b, token_env: TOK}
          - {id: local, type: influxdb1, url: "http://127.0.0.1:8086", database: cc, username: u, password: pw}
    """))
    assert [s.type for s in cfg.sinks] == ["influxdb2", "influxdb1"]
    assert "pw" not in repr(cfg.sinks[1])


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    problems = errors(tmp_path, """
        sinks:
          - id: local
            type: influxdb1
            url: http://127.0.0.1:8086
            databse: cc
    """)
    assert any(p.startswith("config.yaml:") and "sinks[0].databse" in p and "'database'" in p for p in problems)
    assert any("sinks[0].database: required key is missing" in p for p in problems)


def test_token_must_be_given_once(tmp_path: Path) -> None:
    none = errors(tmp_path, """
        sinks:
          - {id: c, type: influxdb2, url: "http://x", org: o, bucket: b}
    """)
    assert any("sinks[0]" in p and "exactly one of token, token_file, token_env" in p for p in none)
    two = errors(tmp_path, """
        sinks:
          - {id: c, type: influxdb2, url: "http://x", org: o, bucket: b, token: abc, token_env: T}
    """)
    assert any("got token, token_env" in p for p in two)
    assert not any("abc" in p for p in two)


def test_bad_url_and_batch_size_are_named(tmp_path: Path) -> None:
    problems = errors(tmp_path, """
        sinks:
          - {id: c, type: influxdb1, url: "127.0.0.1:8086", database: cc, batch_size: 0}
    """)
    assert any("sinks[0].url" in p for p in problems) and any("sinks[0].batch_size" in p for p in problems)


def test_unknown_type_lists_known(tmp_path: Path) -> None:
    problems = errors(tmp_path, """
        sinks:
          - {id: c, type: influxdb, url: "http://x"}
    """)
    assert any("influxdb1" in p and "influxdb2" in p for p in problems)
