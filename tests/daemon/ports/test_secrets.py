"""Every secret is a SecretRef: the flat spellings of before (`password` + `password_file`, `token`, `token_file`,
`token_env`) still load, resolve as they did, and are masked and kept out of reprs like the nested ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.ports.broker import MqttConfig
from daemon.ports.errors import SinkError
from daemon.ports.secrets import MASK, SecretRef, masked
from drivers.sinks.influxdb.schema import InfluxDB1Config, InfluxDB2Config
from drivers.sinks.mqtt_uplink.schema import MqttUplinkConfig


def influx2(**keys: Any) -> InfluxDB2Config:
    return InfluxDB2Config.model_validate({"id": "c", "type": "influxdb2", "url": "http://x", "org": "o",
                                           "bucket": "b", **keys})


def influx1(**keys: Any) -> InfluxDB1Config:
    return InfluxDB1Config.model_validate({"id": "c", "type": "influxdb1", "url": "http://x", "database": "d",
                                           **keys})


def uplink(**keys: Any) -> MqttUplinkConfig:
    return MqttUplinkConfig.model_validate({"id": "u", "type": "mqtt_uplink", "host": "h", **keys})


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    p = tmp_path / "pw"
    p.write_text(" first-line \nsecond line\n", encoding="utf-8")
    return p


def test_mqtt_password_inline_file_and_both(pw: Path) -> None:
    inline = MqttConfig.model_validate({"username": "u", "password": "hunter2"})
    assert isinstance(inline.password, SecretRef) and inline.password_ref() is inline.password
    assert inline.password.resolve() == "hunter2"
    from_file = MqttConfig.model_validate({"username": "u", "password_file": str(pw)})
    ref = from_file.password_ref()
    assert ref is not None and ref.resolve() == "first-line \nsecond line"  # the whole file, as before
    both = MqttConfig.model_validate({"username": "u", "password": "hunter2", "password_file": str(pw)})
    ref = both.password_ref()
    assert ref is not None and ref.file == pw and ref.resolve() == "first-line \nsecond line"  # the file wins
    assert MqttConfig().password_ref() is None


def test_mqtt_password_takes_the_nested_spelling_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TEST_MQTT_PW", "from-env")
    cfg = MqttConfig.model_validate({"username": "u", "password": {"env": "CC_TEST_MQTT_PW"}})
    ref = cfg.password_ref()
    assert ref is not None and ref.resolve() == "from-env"


def test_influx2_token_inline_file_env(pw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TEST_TOKEN", " tok-env ")
    assert influx2(token="tok-inline").secret("s") == "tok-inline"
    assert influx2(token_file=str(pw)).secret("s") == "first-line"  # the first line, as before
    assert influx2(token_env="CC_TEST_TOKEN").secret("s") == "tok-env"
    assert influx2(token={"file": str(pw)}).secret("s") == "first-line \nsecond line"


def test_influx2_token_errors_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC_TEST_UNSET", raising=False)
    with pytest.raises(SinkError, match=r"^s: cannot read token_file .*absent: ") as err:
        influx2(token_file=str(tmp_path / "absent")).secret("s")
    assert err.value.retryable
    (tmp_path / "blank").write_text("\nsecond\n", encoding="utf-8")
    with pytest.raises(SinkError, match=r"token_file .*blank is empty"):
        influx2(token_file=str(tmp_path / "blank")).secret("s")
    with pytest.raises(SinkError, match=r"environment variable CC_TEST_UNSET \(token_env\) is empty or unset"):
        influx2(token_env="CC_TEST_UNSET").secret("s")
    with pytest.raises(ValidationError, match="give exactly one of token, token_file, token_env"):
        influx2(token="a", token_file="b")


def test_influx1_and_uplink_password_inline_and_file(pw: Path) -> None:
    assert influx1(username="u", password="p1").secret("s") == "p1"
    assert influx1(username="u", password_file=str(pw)).secret("s") == "first-line"
    assert influx1().secret("s") is None
    assert uplink(username="u", password="p2").secret("s") == "p2"
    assert uplink(username="u", password_file=str(pw)).secret("s") == "first-line"
    assert uplink().secret("s") is None
    for make in (influx1, uplink):
        with pytest.raises(ValidationError, match="give password or password_file, not both"):
            make(username="u", password="p", password_file=str(pw))
    with pytest.raises(ValidationError, match="a password needs a username"):
        influx1(password="p")


def test_flat_spellings_are_masked_and_stay_out_of_reprs(pw: Path) -> None:
    cfgs = [MqttConfig.model_validate({"username": "u", "password": "s3cret-a", "password_file": str(pw)}),
            influx2(token="s3cret-b"), influx1(username="u", password="s3cret-c"),
            uplink(username="u", password="s3cret-d")]
    for cfg in cfgs:
        shown = masked(cfg)
        assert MASK in (shown.get("password"), shown.get("token")) and "s3cret" not in str(shown)
        assert "s3cret" not in repr(cfg) and "s3cret" not in str(cfg.model_dump(mode="json"))
    assert masked(cfgs[0])["password_file"] == str(pw)  # where a secret is, is not secret
    # a dump keeps the shape of before: the inline secret as one (masked) string, not a nested reference
    assert cfgs[1].model_dump(mode="json")["token"] == "**********"
