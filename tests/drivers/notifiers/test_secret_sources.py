"""Apprise URL sources and cloud SMS credentials are `SecretRef`s: the YAML keys of before (`{file: ...}`,
`{env: ...}`, `{value: ...}`, a plain ID) still load, `config show` masks them, and a relative `file:` is
read from the config file's folder, not from the directory the daemon was started in."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.app.plugins import load_config
from daemon.ports.secrets import SecretRef, masked
from drivers.notifiers.apprise import AppriseNotifier
from drivers.notifiers.cloud_sms import AliyunSmsNotifier, TencentSmsNotifier

CONFIG = """
site: {id: t1, name: 测试冷库}
storage: {journal: data/journal.db}
mqtt: {host: 127.0.0.1, username: coldchain, password_file: secrets/mqtt-pw}
zones:
  - {id: z1, name: 1号库, commodity: mandarin}
sensors:
  - {id: s1, zone: z1, type: simulated, setpoint: 6.5}
notifiers:
  - id: hook
    type: apprise
    urls:
      - {file: secrets/apprise.urls}
      - {env: COLDCHAIN_TEST_HOOK}
  - id: aliyun
    type: aliyun_sms
    sign_name: 冷库监控
    access_key_id: {env: COLDCHAIN_TEST_ALIYUN_ID}
    access_key_secret: {file: secrets/aliyun.secret}
    fallback: {code: SMS_100000009}
  - id: tencent
    type: tencent_sms
    sign_name: 冷库监控
    secret_id: AKIDplainIdIsNotASecret
    secret_key: {value: tencent-trial-key}
    sdk_app_id: "1400006666"
    fallback: {id: "1234"}
contacts:
  - {id: zhang, name: 张师傅, phone: "+8613800138000"}
api:
  enabled: false
  tokens: [{name: 张师傅, role: staff, token: {file: secrets/token-zhang}}]
"""


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder with its secrets beside it, and a working directory elsewhere (systemd uses `/`)."""
    etc = tmp_path / "etc"
    (etc / "secrets").mkdir(parents=True)
    (etc / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (etc / "secrets" / "mqtt-pw").write_text("mqtt-pass\n", encoding="utf-8")
    (etc / "secrets" / "apprise.urls").write_text("# staff group\njson://127.0.0.1:9/a\n\n", encoding="utf-8")
    (etc / "secrets" / "aliyun.secret").write_text("  aliyun-secret \n", encoding="utf-8")
    (etc / "secrets" / "token-zhang").write_text("tok-zhang\n", encoding="utf-8")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("COLDCHAIN_TEST_HOOK", "json://127.0.0.1:9/b  json://127.0.0.1:9/c")
    monkeypatch.setenv("COLDCHAIN_TEST_ALIYUN_ID", "LTAI5tTestKeyId0000")
    return etc


def test_relative_secret_files_are_read_from_the_config_folder(etc: Path) -> None:
    cfg = load_config(etc / "config.yaml")
    assert cfg.storage.journal == etc / "data" / "journal.db"
    assert cfg.mqtt is not None and cfg.mqtt.password_file == etc / "secrets" / "mqtt-pw"
    assert cfg.api.tokens[0].token.resolve() == "tok-zhang"
    hook, aliyun, tencent = (n for n in cfg.notifiers)
    assert AppriseNotifier(hook).urls() == ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b", "json://127.0.0.1:9/c"]
    sms = AliyunSmsNotifier(aliyun)
    assert sms.credential(sms.cfg.access_key_secret, "access_key_secret") == "aliyun-secret"
    assert sms.credential(sms.cfg.access_key_id, "access_key_id") == "LTAI5tTestKeyId0000"
    tc = TencentSmsNotifier(tencent)
    assert tc.credential(tc.cfg.secret_id, "secret_id") == "AKIDplainIdIsNotASecret"
    assert tc.credential(tc.cfg.secret_key, "secret_key") == "tencent-trial-key"


def test_the_old_keys_load_as_secret_refs_and_are_masked(etc: Path) -> None:
    cfg = load_config(etc / "config.yaml")
    hook, aliyun, tencent = (n for n in cfg.notifiers)
    assert all(isinstance(u, SecretRef) for u in hook.urls)
    assert isinstance(aliyun.access_key_secret, SecretRef) and isinstance(tencent.secret_key, SecretRef)
    shown = masked(cfg)
    assert shown["notifiers"][0]["urls"][0] == f"*** (file {etc / 'secrets' / 'apprise.urls'})"
    assert shown["notifiers"][1]["access_key_secret"] == f"*** (file {etc / 'secrets' / 'aliyun.secret'})"
    assert shown["notifiers"][2]["secret_key"] == "***"
    assert "tencent-trial-key" not in repr(cfg) and "tencent-trial-key" not in str(shown)


def test_an_empty_secret_is_refused(etc: Path) -> None:
    """An empty token file would have let `Authorization: Bearer ` (nothing after it) in."""
    (etc / "secrets" / "token-zhang").write_text("\n", encoding="utf-8")
    (etc / "secrets" / "aliyun.secret").write_text("", encoding="utf-8")
    cfg = load_config(etc / "config.yaml")
    with pytest.raises(ValueError, match=r"secret file .*token-zhang is empty"):
        cfg.api.tokens[0].token.resolve()
    sms = AliyunSmsNotifier(cfg.notifiers[1])
    with pytest.raises(Exception, match=r"access_key_secret: secret file .*aliyun.secret is empty"):
        sms.credential(sms.cfg.access_key_secret, "access_key_secret")
