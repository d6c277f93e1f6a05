"""The aliyun_sms notifier against a local HTTP server answering with Aliyun's real response bodies."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml

from daemon.ports.notify import Message
from drivers.notifiers.cloud_sms import ALIYUN_SAMPLE_YAML, AliyunSmsConfig, AliyunSmsNotifier, CloudSmsError
from drivers.notifiers.cloud_sms.aliyun import aliyun_number
from drivers.notifiers.cloud_sms.signing import aliyun_signature
from tests.conftest import free_port
from tests.drivers.notifiers.cloud_sms.conftest import NONCE, NOW, TEXT, alarm
from tests.drivers.notifiers.conftest import RecordingServer

KEY_ID = "LTAI5tTestKeyId0000"
SECRET = "TestSecretKey0123456789abcdefXYZ"
# VERBATIM (Alibaba Cloud SDK sample READMEs, PROTOCOLS.md 3.4)
OK = '{"Code": "OK", "Message": "OK", "BizId": "9006197469364984****", "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990"}'
# Error bodies: the documented codes in the same envelope (Code, Message, RequestId)
LIMIT = '{"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1", "RequestId": "A1B2C3D4-0000-4000-8000-000000000001"}'
ILLEGAL = '{"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": "A1B2C3D4-0000-4000-8000-000000000002"}'


def make(endpoint: str, **over: object) -> AliyunSmsNotifier:
    cfg = {
        "id": "aliyun", "type": "aliyun_sms", "access_key_id": KEY_ID, "access_key_secret": {"value": SECRET},
        "sign_name": "冷库监控", "endpoint": endpoint, "timeout": 2, "connect_timeout": 2,
        "templates": {
            "alert.temp_high": {"code": "SMS_100000001", "params": ["site", "zone", "value", "limit", "minutes", "id"]},
            "alert.freeze": {"code": "SMS_100000003", "params": {"room": "zone", "temp": "value", "id": "id"}},
        },
        "fallback": {"code": "SMS_100000009"},
        **over,
    }
    n = AliyunSmsNotifier(AliyunSmsConfig.model_validate(cfg))
    n.now, n.nonce = (lambda: NOW), (lambda: NONCE)
    return n


def form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))


async def send(server: RecordingServer, message: Message | None = None, **over: object) -> str | None:
    n = make(f"http://{server.base}/", **over)
    try:
        return await n.send(message or alarm())
    finally:
        await n.close()


@pytest.mark.asyncio
async def test_success_returns_bizid_and_request_is_signed(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    assert await send(http_server) == "9006197469364984****"
    [req] = http_server.requests
    assert req.method == "POST" and req.path == "/"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    got = form(req.body)
    signature = got.pop("Signature")
    assert got == {
        "AccessKeyId": KEY_ID, "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": NONCE, "SignatureVersion": "1.0",
        "Timestamp": "2025-11-22T12:00:00Z", "Version": "2017-05-25", "PhoneNumbers": "8613800138000",
        "SignName": "冷库监控", "TemplateCode": "SMS_100000001", "OutId": "41",
        "TemplateParam": got["TemplateParam"],
    }
    # the server's check: the signature of what arrived, with the shared secret
    assert signature == aliyun_signature(SECRET, "POST", got)
    params = json.loads(got["TemplateParam"])
    assert params == {"site": "测试冷库", "zone": "1号库", "value": "9.2", "limit": "8.0", "minutes": "12", "id": "17"}
    assert all(isinstance(v, str) for v in params.values())  # isv.INVALID_JSON_PARAM otherwise


@pytest.mark.asyncio
async def test_same_clock_and_nonce_give_the_same_request(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    await send(http_server)
    await send(http_server)
    assert http_server.requests[0].body == http_server.requests[1].body


@pytest.mark.asyncio
async def test_template_variables_can_be_renamed(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    await send(http_server, alarm(key="alert.freeze"))
    got = form(http_server.requests[0].body)
    assert got["TemplateCode"] == "SMS_100000003"
    assert json.loads(got["TemplateParam"]) == {"room": "1号库", "temp": "9.2", "id": "17"}


@pytest.mark.asyncio
async def test_kind_without_template_or_params_uses_the_fallback(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    await send(http_server, alarm(key="alert.no_data"))
    await send(http_server, alarm(key="", params={}))  # a core that does not fill key/params yet
    for req in http_server.requests:
        got = form(req.body)
        assert got["TemplateCode"] == "SMS_100000009"
        assert json.loads(got["TemplateParam"]) == {"text": TEXT}


@pytest.mark.asyncio
async def test_no_template_and_no_fallback_fails_before_sending(http_server: RecordingServer) -> None:
    with pytest.raises(CloudSmsError, match=r"has no parameter\(s\) limit, value") as err:
        await send(http_server, alarm(params={"site": "s", "zone": "z", "minutes": "1", "id": "1"}), fallback=None)
    assert err.value.retryable is False
    assert http_server.requests == []


@pytest.mark.asyncio
async def test_rate_limit_is_retryable(http_server: RecordingServer) -> None:
    http_server.answer(200, LIMIT)
    with pytest.raises(CloudSmsError, match=r"Aliyun refused: isv\.BUSINESS_LIMIT_CONTROL") as err:
        await send(http_server)
    assert (err.value.code, err.value.retryable, err.value.maybe_sent) == ("isv.BUSINESS_LIMIT_CONTROL", True, False)
    assert "A1B2C3D4-0000-4000-8000-000000000001" in str(err.value)
    assert len(http_server.requests) == 1  # no retry inside the notifier


@pytest.mark.asyncio
async def test_illegal_number_is_not_retryable(http_server: RecordingServer) -> None:
    http_server.answer(200, ILLEGAL)
    with pytest.raises(CloudSmsError) as err:
        await send(http_server, alarm(address="12345"))
    assert (err.value.code, err.value.retryable) == ("isv.MOBILE_NUMBER_ILLEGAL", False)


@pytest.mark.asyncio
async def test_signature_error_hides_key_id_and_secret(http_server: RecordingServer) -> None:
    http_server.answer(400, json.dumps({
        "Code": "SignatureDoesNotMatch", "RequestId": "R-1",
        "Message": f"Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3D{KEY_ID}",
    }))
    with pytest.raises(CloudSmsError) as err:
        await send(http_server)
    assert err.value.retryable is False
    assert KEY_ID not in str(err.value) and SECRET not in str(err.value)


@pytest.mark.asyncio
async def test_non_json_gateway_error(http_server: RecordingServer) -> None:
    http_server.answer(502, "<html>Bad Gateway</html>", "text/html")
    with pytest.raises(CloudSmsError, match="HTTP 502 without a JSON object") as err:
        await send(http_server)
    assert err.value.retryable and err.value.maybe_sent


@pytest.mark.asyncio
async def test_server_down_is_retryable_and_surely_not_sent() -> None:
    n = make(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(CloudSmsError, match=r"cannot connect to http://127\.0\.0\.1:") as err:
        await n.send(alarm())
    assert err.value.retryable and not err.value.maybe_sent


@pytest.mark.asyncio
async def test_no_answer_may_have_been_sent(silent_port: int) -> None:
    """A read timeout after the request went out: the outbox must know a retry may send twice."""
    n = make(f"http://127.0.0.1:{silent_port}/", timeout=0.3)
    with pytest.raises(CloudSmsError, match="may have been sent") as err:
        await n.send(alarm())
    await n.close()
    assert err.value.retryable and err.value.maybe_sent


@pytest.mark.asyncio
async def test_secret_from_file_and_env(http_server: RecordingServer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.answer(200, OK)
    (tmp_path / "aliyun.secret").write_text(SECRET + "\n", encoding="utf-8")
    monkeypatch.setenv("ALIYUN_ID", KEY_ID)
    await send(http_server, access_key_id={"env": "ALIYUN_ID"},
               access_key_secret={"file": str(tmp_path / "aliyun.secret")})
    got = form(http_server.requests[0].body)
    assert got.pop("Signature") == aliyun_signature(SECRET, "POST", got)


@pytest.mark.asyncio
async def test_missing_secret_names_its_source(tmp_path: Path) -> None:
    n = make("http://127.0.0.1:9/", access_key_secret={"file": str(tmp_path / "nope")})
    with pytest.raises(CloudSmsError, match=r"access_key_secret: cannot read secret file .*nope") as err:
        await n.send(alarm())
    assert err.value.retryable is False
    health = await n.health()
    assert "nope" in str(health["credentials"])


@pytest.mark.asyncio
async def test_health_never_shows_the_secret(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    n = make(f"http://{http_server.base}/")
    await n.send(alarm())
    health = await n.health()
    await n.close()
    assert health["credentials"] == "ok" and health["last_ref"] == "9006197469364984****"
    assert SECRET not in repr(health) and SECRET not in repr(n.cfg)


def test_numbers_lose_plus_and_00() -> None:
    assert aliyun_number("+86 138-0013-8000") == "8613800138000"
    assert aliyun_number("008613800138000") == "8613800138000"
    assert aliyun_number("13800138000") == "13800138000"


def test_config_errors() -> None:
    base = {"id": "a", "type": "aliyun_sms", "access_key_id": "x", "access_key_secret": {"env": "X"}, "sign_name": "s"}
    with pytest.raises(ValueError, match="give templates, a fallback template, or both"):
        AliyunSmsConfig.model_validate(base)
    with pytest.raises(ValueError, match="unknown message parameter"):
        AliyunSmsConfig.model_validate({**base, "templates": {"alert.temp_high": {"code": "SMS_1", "params": ["temp"]}}})
    with pytest.raises(ValueError, match=r"alert\.temp_hgh"):
        AliyunSmsConfig.model_validate({**base, "templates": {"alert.temp_hgh": {"code": "SMS_1"}}})
    with pytest.raises(ValueError, match="exactly one of file, env or value"):
        AliyunSmsConfig.model_validate({**base, "access_key_secret": {"env": "X", "file": "/y"}, "fallback": {"code": "S"}})


def test_sample_yaml_is_a_valid_config() -> None:
    [entry] = yaml.safe_load(ALIYUN_SAMPLE_YAML)
    cfg = AliyunSmsConfig.model_validate(entry)
    assert cfg.fallback is not None and "alert.temp_high" in cfg.templates
