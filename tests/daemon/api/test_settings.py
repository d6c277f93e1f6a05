"""The settings view blanks every secret, wherever it sits in the config."""

from __future__ import annotations

from daemon.api.settings import redact


def test_redact_nested_secrets_keeps_references() -> None:
    conf = {"mqtt": {"host": "h", "password": "p@ss", "password_file": "/etc/x"},
            "sinks": [{"id": "c", "token": "**********", "token_file": None}],
            "api": {"tokens": [{"name": "zhang", "token": {"file": None, "env": "CC", "value": None}}]},
            "notifiers": [{"secret": {"value": "abc"}}]}
    out = redact(conf)
    assert out["mqtt"] == {"host": "h", "password": "***", "password_file": "/etc/x"}
    assert out["sinks"][0]["token"] == "***" and out["api"]["tokens"][0]["token"]["env"] == "CC"
    assert out["notifiers"][0]["secret"] == {"value": "***"}
    assert "p@ss" not in repr(out) and "abc" not in repr(out)
