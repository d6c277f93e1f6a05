"""The apprise notifier against a real HTTP server on loopback (json:// and form:// webhooks)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, unquote

import pytest
import yaml

from daemon.ports.errors import NotifierError
from daemon.ports.notify import Message
from drivers.notifiers.apprise import SAMPLE_YAML, AppriseConfig, AppriseNotifier, service_label
from tests.conftest import free_port
from tests.drivers.notifiers.conftest import RecordingServer

TEXT = "【冷库告警】测试冷库1号库温度9.2℃，高于砂糖橘上限8.0℃已12分钟。回复ACK 17确认"
SECRET = "s3cr3t-T0ken"


def msg(outbox_id: int = 1, key: str = "alert.temp_high") -> Message:
    return Message(outbox_id, 17, "zhang", "+8613800138000", TEXT, "zh-CN", key=key)


def make(*urls: object, title: object = "") -> AppriseNotifier:
    return AppriseNotifier(AppriseConfig.model_validate({"id": "hook", "type": "apprise", "urls": list(urls),
                                                         "title": title}))


@pytest.mark.asyncio
async def test_json_webhook_gets_text_title_and_address(http_server: RecordingServer) -> None:
    n = make(f"json://{http_server.base}/coldchain/{{address}}", title={"zh-CN": "冷库告警", "en": "Alarm"})
    ref = await n.send(msg())
    assert ref == "apprise-1"
    [req] = http_server.requests
    assert req.method == "POST"
    assert unquote(req.path) == "/coldchain/+8613800138000"
    body = json.loads(req.body)
    assert body["message"] == TEXT
    assert body["title"] == "冷库告警"
    assert body["type"] == "failure"  # alarms show as failures in services that colour them


@pytest.mark.asyncio
async def test_form_webhook_and_resolve_kind(http_server: RecordingServer) -> None:
    n = make(f"form://{http_server.base}/hook?:phone={{address}}")
    await n.send(msg(key="resolve"))
    [req] = http_server.requests
    form = parse_qs(req.body.decode())
    assert form["message"] == [TEXT]
    assert form["type"] == ["success"]
    assert form["phone"] == ["+8613800138000"]  # `:key=` adds a form field; `+` must survive the query


@pytest.mark.asyncio
async def test_server_error_raises_without_secret(http_server: RecordingServer) -> None:
    http_server.answer(500, "boom")
    n = make(f"json://admin:{SECRET}@{http_server.base}/hook/{SECRET}")
    with pytest.raises(NotifierError) as err:
        await n.send(msg())
    text = str(err.value)
    assert text.startswith("apprise:hook: JSON json://127.0.0.1:")
    assert SECRET not in text and "admin" not in text and "/hook" not in text
    assert len(http_server.requests) == 1  # no retry inside the notifier
    health = await n.health()
    assert SECRET not in repr(health)
    assert health["services"] == [f"JSON json://{http_server.base}"]


@pytest.mark.asyncio
async def test_server_down_raises() -> None:
    n = make(f"json://127.0.0.1:{free_port()}/hook")
    with pytest.raises(NotifierError, match=r"apprise:hook: JSON json://127\.0\.0\.1:\d+: service did not accept"):
        await n.send(msg())


@pytest.mark.asyncio
async def test_retry_skips_services_that_already_took_the_message(http_server: RecordingServer) -> None:
    """At most once per service: a retry after a partial failure resends only to the failed URL."""
    down = free_port()
    n = make(f"json://{http_server.base}/a", f"json://127.0.0.1:{down}/b")
    with pytest.raises(NotifierError, match="1 of 2 services took it"):
        await n.send(msg(outbox_id=5))
    assert [r.path for r in http_server.requests] == ["/a"]
    with pytest.raises(NotifierError):
        await n.send(msg(outbox_id=5))
    assert [r.path for r in http_server.requests] == ["/a"]
    with pytest.raises(NotifierError):
        await n.send(msg(outbox_id=6))  # a new message goes to the working service again
    assert [r.path for r in http_server.requests] == ["/a", "/a"]


@pytest.mark.asyncio
async def test_urls_from_env_and_file(http_server: RecordingServer, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_URL", f"json://{http_server.base}/env")
    urls = tmp_path / "apprise.urls"
    urls.write_text(f"# the file-based one\n\njson://{http_server.base}/file/{{address}}\n", encoding="utf-8")
    n = make({"env": "HOOK_URL"}, {"file": str(urls)})
    await n.send(msg())
    assert sorted(unquote(r.path) for r in http_server.requests) == ["/env", "/file/+8613800138000"]


@pytest.mark.asyncio
async def test_missing_secret_sources_name_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_URL", raising=False)
    with pytest.raises(NotifierError, match="environment variable NO_SUCH_URL is empty or unset"):
        await make({"env": "NO_SUCH_URL"}).send(msg())
    with pytest.raises(NotifierError, match="URLs: cannot read secret file"):
        await make({"file": str(tmp_path / "missing")}).send(msg())
    health = await make({"env": "NO_SUCH_URL"}).health()
    assert "NO_SUCH_URL" in str(health["error"])


def test_service_label_hides_tokens() -> None:
    sid, token = "AC" + "0123456789abcdef" * 2, "fedcba9876543210" * 2
    assert service_label(f"twilio://{sid}:{token}@+15005550006/{{address}}") == "Twilio twilio://***"
    assert service_label(f"tgram://123456:{SECRET}/1234") == "Telegram tgram://***"
    assert service_label(f"mailto://alarm:{SECRET}@smtp.qq.com") == "E-Mail mailto://smtp.qq.com"


def test_config_rejects_unknown_scheme_and_bad_source() -> None:
    with pytest.raises(ValueError, match=r"urls\[0\]: Apprise does not understand this bogus:// URL"):
        AppriseConfig.model_validate({"id": "a", "type": "apprise", "urls": ["bogus://x"]})
    with pytest.raises(ValueError, match="exactly one of file, env or value"):
        AppriseConfig.model_validate({"id": "a", "type": "apprise", "urls": [{"file": "/x", "env": "Y"}]})


def test_sample_yaml_is_a_valid_config() -> None:
    [entry] = yaml.safe_load(SAMPLE_YAML)
    cfg = AppriseConfig.model_validate(entry)
    assert cfg.type == "apprise" and len(cfg.urls) == 3


@pytest.mark.asyncio
async def test_apprise_log_lines_do_not_carry_tokens(caplog: pytest.LogCaptureFixture) -> None:
    """Apprise itself warns with the token in the text when a Twilio token is malformed."""
    n = make(f"json://127.0.0.1:{free_port()}/x")
    n.cfg.urls = [f"twilio://AC123:{SECRET}@+15005550006/{{address}}"]  # as if read from a secret file
    with caplog.at_level("DEBUG", logger="apprise"), pytest.raises(NotifierError, match="not understood"):
        await n.send(msg())
    assert caplog.records, "apprise should have complained about the token"
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_redactor_keeps_case_and_tokens_in_the_port_position(caplog: pytest.LogCaptureFixture) -> None:
    """`urlsplit` lowercases hosts; a Telegram bot token sits where a port would be."""
    import logging

    make(f"tgram://123456:{SECRET}/1234567", f"json://127.0.0.1:{free_port()}/x").urls()
    with caplog.at_level("WARNING", logger="apprise"):
        logging.getLogger("apprise").warning("bad bot %s and %s", f"123456:{SECRET}", "127.0.0.1")
    assert caplog.records[-1].getMessage() == "bad bot ***:*** and 127.0.0.1"
