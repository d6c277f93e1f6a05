"""Secrets are masked wherever the config is shown: SecretRef, and any field named like a password or token."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from daemon.app.cli import main
from daemon.ports.secrets import MASK, SecretRef, is_secret_name, masked
from tests.conftest import MINIMAL

CONFIG = MINIMAL.replace("api: {enabled: false}", """
mqtt: {host: 10.0.0.5, username: coldchain, password: hunter2-mqtt, password_file: /etc/coldchain/mqtt-pw}
api:
  enabled: false
  tokens:
    - {name: zhang, role: staff, token: {value: tok-zhang-123}}
    - {name: wang, role: manager, token: {file: /etc/coldchain/token-wang}}
    - {name: li, role: installer, token: {env: COLDCHAIN_TOKEN_LI}}
""")


@pytest.mark.parametrize(("name", "secret"), [
    ("password", True), ("auth_token", True), ("api_key", True), ("secret_key", True), ("apikey", True),
    ("sms_pin", True), ("password_file", False), ("key_file", False), ("token_env", False), ("tokens", False),
    ("keepalive", False), ("key", False), ("username", False), ("host", False),
])
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_masked_replaces_values_and_keeps_where_they_are() -> None:
    assert masked(SecretRef.model_validate({"value": "abc"})) == MASK
    assert masked(SecretRef.model_validate({"env": "TOKEN_A"})) == "*** (env TOKEN_A)"
    assert masked({"password": "x", "user": "u", "nested": [{"api_key": "k", "port": 1}], "token": None}) == {
        "password": MASK, "user": "u", "nested": [{"api_key": MASK, "port": 1}], "token": None}


def test_config_show_prints_defaults_and_masks_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert main(["config", "show", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "hunter2-mqtt" not in out and "tok-zhang-123" not in out
    shown = yaml.safe_load(out)
    assert out.startswith(f"# effective config of {cfg}: defaults filled in")
    assert shown["mqtt"]["password"] == MASK and shown["mqtt"]["username"] == "coldchain"
    assert shown["mqtt"]["password_file"] == "/etc/coldchain/mqtt-pw"  # where a secret is, is not secret
    assert [t["token"] for t in shown["api"]["tokens"]] == [
        MASK, "*** (file /etc/coldchain/token-wang)", "*** (env COLDCHAIN_TOKEN_LI)"]
    # defaults filled in, relative paths resolved against the config's folder
    assert shown["storage"]["journal"] == str(tmp_path / "journal.db")
    assert shown["storage"]["min_free_mb"] == 200 and shown["mqtt"]["port"] == 1883
    assert shown["zones"][0]["alarms"]["temperature"]["delay"] == 600.0
    assert shown["sensors"][0]["type"] == "simulated" and shown["sensors"][0]["interval"] == 60.0


def test_config_show_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIG.replace("password:", "pasword:"), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["config", "show", "--config", str(cfg)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "mqtt.pasword: unknown key 'pasword'; did you mean 'password'?" in err and "hunter2" not in err


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    """A config printed by accident (a debug line, a traceback's locals) still does not show them."""
    from tests.conftest import make_config

    cfg = make_config(tmp_path, CONFIG)
    assert "hunter2-mqtt" not in repr(cfg) and "tok-zhang-123" not in repr(cfg)
    assert "tok-zhang-123" not in str(cfg.api.tokens[0].token)
