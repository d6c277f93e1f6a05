"""The tencent_sms notifier against a local HTTP server answering with Tencent's real response bodies."""

from __future__ import annotations

import json

import pytest
import yaml

from daemon.ports.notify import Message
from drivers.notifiers.cloud_sms import TENCENT_SAMPLE_YAML, CloudSmsError, TencentSmsConfig, TencentSmsNotifier
from drivers.notifiers.cloud_sms.signing import tc3_authorization
from drivers.notifiers.cloud_sms.tencent import e164, retryable
from tests.conftest import free_port
from tests.drivers.notifiers.cloud_sms.conftest import NOW, TEXT, alarm
from tests.drivers.notifiers.conftest import RecordingServer

SECRET_ID = "AKIDtestSecretId000000000000000000"
SECRET_KEY = "TestSecretKey0123456789abcdefXYZ"


def wrap(inner: str) -> str:
    """The raw API wraps what the SDK returns in {"Response": ...}."""
    return '{"Response": ' + inner + "}"


# VERBATIM SendStatusSet entries (public code comments, PROTOCOLS.md 3.4); RequestId added where the capture had none
OK = wrap('{"SendStatusSet": [{"SerialNo": "2640:262727967816586500757778766", "PhoneNumber": "+8618630087660", "Fee": 1, "SessionContext": "", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}], "RequestId": "5528d8e4-31c3-41e3-9e6b-ef8006f365cd"}')
THIRTY_S = wrap('{"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "+8618630087660", "Fee": 0, "SessionContext": "", "Code": "LimitExceeded.PhoneNumberThirtySecondLimit", "Message": "the number of SMS messages sent from a single mobile number within 30 seconds exceeds the upper limit", "IsoCode": "CN"}], "RequestId": "r-30s"}')
DAILY = wrap('{"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "+8615296376320", "Fee": 0, "SessionContext": "", "Code": "LimitExceeded.PhoneNumberDailyLimit", "Message": "the number of sms messages sent from a single mobile number every day exceeds the upper limit", "IsoCode": "CN"}], "RequestId": "r-day"}')
# the documented per-number code for a malformed number, in the same envelope
ILLEGAL = wrap('{"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "+8612345", "Fee": 0, "SessionContext": "", "Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "incorrect phone number", "IsoCode": "CN"}], "RequestId": "r-num"}')
AUTH = wrap('{"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "The provided credentials could not be validated."}, "RequestId": "r-auth"}')


def make(endpoint: str, **over: object) -> TencentSmsNotifier:
    cfg = {
        "id": "tencent", "type": "tencent_sms", "secret_id": SECRET_ID, "secret_key": {"value": SECRET_KEY},
        "sdk_app_id": "1400006666", "sign_name": "冷库监控", "endpoint": endpoint, "timeout": 2,
        "templates": {"alert.temp_high": {"id": "1000001", "params": ["site", "zone", "value", "limit", "minutes", "id"]},
                      "alert.sensor_fault": {"id": "1000007", "params": ["site", "zone", "sensor", "detail", "id"]}},
        "fallback": {"id": "1000009"},
        **over,
    }
    n = TencentSmsNotifier(TencentSmsConfig.model_validate(cfg))
    n.now = lambda: NOW
    return n


async def send(server: RecordingServer, message: Message | None = None, **over: object) -> str | None:
    n = make(f"http://{server.base}/", **over)
    try:
        return await n.send(message or alarm())
    finally:
        await n.close()


@pytest.mark.asyncio
async def test_success_returns_serial_and_request_is_signed(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    assert await send(http_server) == "2640:262727967816586500757778766"
    [req] = http_server.requests
    h = req.headers
    assert (req.method, req.path) == ("POST", "/")
    assert (h["x-tc-action"], h["x-tc-version"], h["x-tc-region"], h["x-tc-timestamp"]) == (
        "SendSms", "2021-01-11", "ap-guangzhou", str(int(NOW)))
    assert h["content-type"] == "application/json; charset=utf-8"
    # the server's check: recompute from what arrived (its Host header and body bytes) with the shared key
    assert h["authorization"] == tc3_authorization(SECRET_ID, SECRET_KEY, host=h["host"], service="sms",
                                                   content_type=h["content-type"], payload=req.body,
                                                   timestamp=int(NOW))
    assert h["authorization"].startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/2025-11-22/sms/tc3_request, ")
    body = json.loads(req.body)
    assert body == {"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666", "SignName": "冷库监控",
                    "TemplateId": "1000001", "TemplateParamSet": ["测试冷库", "1号库", "9.2", "8.0", "12", "17"],
                    "SessionContext": "41"}


@pytest.mark.asyncio
async def test_same_clock_gives_the_same_request(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    await send(http_server)
    await send(http_server)
    a, b = http_server.requests
    assert (a.body, a.headers["authorization"]) == (b.body, b.headers["authorization"])


@pytest.mark.asyncio
async def test_empty_params_become_dash_and_missing_ones_use_the_fallback(http_server: RecordingServer) -> None:
    http_server.answer(200, OK)
    await send(http_server, alarm(key="alert.sensor_fault"))  # sensor and detail are "" in PARAMS
    await send(http_server, alarm(key="resolve"))  # no template for resolve
    first, second = (json.loads(r.body) for r in http_server.requests)
    assert first["TemplateParamSet"] == ["测试冷库", "1号库", "-", "-", "17"]
    assert (second["TemplateId"], second["TemplateParamSet"]) == ("1000009", [TEXT])


@pytest.mark.asyncio
async def test_per_number_limit_inside_a_200_is_retryable(http_server: RecordingServer) -> None:
    http_server.answer(200, THIRTY_S)
    with pytest.raises(CloudSmsError, match=r"Tencent refused: LimitExceeded\.PhoneNumberThirtySecondLimit") as err:
        await send(http_server)
    assert (err.value.retryable, err.value.maybe_sent) == (True, False)
    assert len(http_server.requests) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "code"), [
    (DAILY, "LimitExceeded.PhoneNumberDailyLimit"),
    (ILLEGAL, "InvalidParameterValue.IncorrectPhoneNumber"),
    (AUTH, "AuthFailure.SignatureFailure"),
])
async def test_errors_a_retry_cannot_fix(http_server: RecordingServer, body: str, code: str) -> None:
    http_server.answer(200, body)
    with pytest.raises(CloudSmsError) as err:
        await send(http_server)
    assert (err.value.code, err.value.retryable) == (code, False)
    assert SECRET_KEY not in str(err.value)


@pytest.mark.asyncio
async def test_unexpected_shape_may_have_been_sent(http_server: RecordingServer) -> None:
    http_server.answer(200, wrap('{"RequestId": "r-x"}'))
    with pytest.raises(CloudSmsError, match="without a SendStatusSet") as err:
        await send(http_server)
    assert err.value.maybe_sent


@pytest.mark.asyncio
async def test_server_down_and_silent_server(silent_port: int) -> None:
    down = make(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(CloudSmsError, match="cannot connect") as err:
        await down.send(alarm())
    assert not err.value.maybe_sent
    silent = make(f"http://127.0.0.1:{silent_port}/", timeout=0.3)
    with pytest.raises(CloudSmsError, match="may have been sent") as err:
        await silent.send(alarm())
    await silent.close()
    assert err.value.maybe_sent


def test_numbers_become_e164() -> None:
    assert e164("13800138000", "86") == "+8613800138000"
    assert e164("+86 138 0013 8000", "86") == "+8613800138000"
    assert e164("008613800138000", "86") == "+8613800138000"
    assert e164("8613800138000", "86") == "+8613800138000"


def test_retryable_codes() -> None:
    assert retryable("LimitExceeded.PhoneNumberOneHourLimit") and retryable("InternalError.Timeout")
    assert not retryable("LimitExceeded.PhoneNumberDailyLimit")
    assert not retryable("FailedOperation.TemplateIncorrectOrUnapproved")


def test_sample_yaml_is_a_valid_config() -> None:
    [entry] = yaml.safe_load(TENCENT_SAMPLE_YAML)
    cfg = TencentSmsConfig.model_validate(entry)
    assert cfg.fallback is not None and cfg.templates["alert.temp_high"].params[0] == "site"
