"""Carrier receipts: Aliyun QuerySendDetails per sent SMS, Tencent PullSmsSendStatus, to ctx.on_delivery."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from daemon.ports.notify import NotifierContext
from drivers.notifiers.cloud_sms.signing import aliyun_signature, tc3_authorization
from tests.drivers.notifiers.cloud_sms import test_aliyun as ali
from tests.drivers.notifiers.cloud_sms import test_tencent as ten
from tests.drivers.notifiers.cloud_sms.conftest import alarm
from tests.drivers.notifiers.conftest import RecordingServer, Reply

LATE = 1763841600.0  # 2025-11-22T20:00:00Z = 2025-11-23 04:00 in Beijing: SendDate must be 20251123


def detail(status: int, err: str) -> str:
    """QuerySendDetails answer as in Aliyun's documented sample (public SDK comments), one DTO."""
    return json.dumps({
        "TotalCount": 1, "Message": "OK", "RequestId": "08440472-E581-5726-9CC8-B85E1828AABB", "Code": "OK",
        "SmsSendDetailDTOs": {"SmsSendDetailDTO": [{
            "ReceiveDate": "2025-11-23 04:00:08", "PhoneNum": "8613800138000", "Content": "【冷库监控】…",
            "SendStatus": status, "SendDate": "2025-11-23 04:00:01", "ErrCode": err, "TemplateCode": "SMS_100000001",
        }]},
    }, ensure_ascii=False)


# Tencent's PullSmsSendStatus example from its API reference (tccli output), verbatim
PULLED = ten.wrap("""{"PullSmsSendStatusSet": [
 {"Description": "DELIVRD", "CountryCode": "86", "SubscriberNumber": "18501234444", "ReportStatus": "SUCCESS",
  "PhoneNumber": "+8618501234444", "SerialNo": "5000:1045710669157053657849499619", "UserReceiveTime": 1620734188,
  "SessionContext": ""},
 {"Description": "DELIVRD", "CountryCode": "86", "SubscriberNumber": "18501234445", "ReportStatus": "SUCCESS",
  "PhoneNumber": "+8618501234445", "SerialNo": "5000:1045710669157053657849499718", "UserReceiveTime": 1620734188,
  "SessionContext": ""}], "RequestId": "b8a3d5e6-2c0c-4ccd-a1ec-5d0f2b1d7b0a"}""")


def recorder() -> tuple[NotifierContext, list[tuple[str, bool, str]]]:
    got: list[tuple[str, bool, str]] = []
    return NotifierContext(on_delivery=lambda ref, ok, d: got.append((ref, ok, d))), got


@pytest.mark.asyncio
async def test_aliyun_asks_until_the_receipt_is_final(http_server: RecordingServer) -> None:
    http_server.replies = [Reply(200, ali.OK.encode()), Reply(200, detail(1, "").encode()),
                           Reply(200, detail(3, "DELIVERED").encode())]
    n = ali.make(f"http://{http_server.base}/")
    n.now = lambda: LATE
    n.ctx, got = recorder()
    ref = await n.send(alarm())
    assert await n.poll_receipts() == 0 and got == []  # SendStatus 1: waiting for the carrier
    assert await n.poll_receipts() == 1
    await n.close()
    assert got == [(ref, True, "DELIVERED")]
    assert n.awaiting == {}
    query = dict(parse_qsl(http_server.requests[2].body.decode()))
    signature = query.pop("Signature")
    assert signature == aliyun_signature(ali.SECRET, "POST", query)
    assert {k: query[k] for k in ("Action", "PhoneNumber", "BizId", "SendDate")} == {
        "Action": "QuerySendDetails", "PhoneNumber": "8613800138000", "BizId": ref, "SendDate": "20251123"}


@pytest.mark.asyncio
async def test_aliyun_failed_receipt_and_giving_up(http_server: RecordingServer) -> None:
    http_server.replies = [Reply(200, ali.OK.encode()), Reply(200, detail(2, "MOBILE_NOT_ON_SERVICE").encode()),
                           Reply(200, ali.OK.encode())]
    n = ali.make(f"http://{http_server.base}/", receipts_give_up="1h")
    n.ctx, got = recorder()
    await n.send(alarm(outbox_id=1))
    assert await n.poll_receipts() == 1
    assert got == [("9006197469364984****", False, "MOBILE_NOT_ON_SERVICE")]
    await n.send(alarm(outbox_id=2))
    n.now = lambda: ali.NOW + 3601
    assert await n.poll_receipts() == 0 and n.awaiting == {}  # given up without asking
    await n.close()
    assert len(http_server.requests) == 3


@pytest.mark.asyncio
async def test_aliyun_receipts_off(http_server: RecordingServer) -> None:
    http_server.answer(200, ali.OK)
    n = ali.make(f"http://{http_server.base}/", receipts_every=None)
    await n.send(alarm())
    await n.run()  # returns at once: nothing to poll
    await n.close()
    assert n.awaiting == {}


@pytest.mark.asyncio
async def test_tencent_pulls_receipts(http_server: RecordingServer) -> None:
    http_server.answer(200, PULLED)
    n = ten.make(f"http://{http_server.base}/", receipts_every="1m")
    n.ctx, got = recorder()
    assert await n.poll_receipts() == 2
    await n.close()
    assert got == [("5000:1045710669157053657849499619", True, "DELIVRD"),
                   ("5000:1045710669157053657849499718", True, "DELIVRD")]
    [req] = http_server.requests  # fewer than 100: the queue is empty
    h = req.headers
    assert h["x-tc-action"] == "PullSmsSendStatus"
    assert json.loads(req.body) == {"Limit": 100, "SmsSdkAppId": "1400006666"}
    assert h["authorization"] == tc3_authorization(ten.SECRET_ID, ten.SECRET_KEY, host=h["host"], service="sms",
                                                   content_type=h["content-type"], payload=req.body,
                                                   timestamp=int(ten.NOW))


@pytest.mark.asyncio
async def test_tencent_receipts_are_off_by_default() -> None:
    n = ten.make("http://127.0.0.1:9/")
    assert n.receipts_every() is None
    await n.run()
