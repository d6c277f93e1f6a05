"""`type: tencent_sms`: Tencent Cloud (腾讯云) SMS API 3.0 SendSms, signed with TC3-HMAC-SHA256."""

from __future__ import annotations

import json
from typing import Any, cast
from urllib.parse import urlsplit

from daemon.ports.notify import Message, NotifierBase, NotifierContext
from drivers.notifiers.cloud_sms.channel import CloudSmsError, CloudSmsNotifier
from drivers.notifiers.cloud_sms.schema import TencentSmsConfig, TencentTemplate
from drivers.notifiers.cloud_sms.signing import tc3_authorization
from drivers.registry import notifier

VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
PULL_LIMIT = 100

RETRYABLE_PREFIXES = (
    "LimitExceeded.PhoneNumberThirtySecondLimit",  # per-number frequency limits that lift within the hour
    "LimitExceeded.PhoneNumberOneHourLimit",
    "RequestLimitExceeded",
    "InternalError",
)
"""Codes after which the same request may succeed later. Daily limits, bad numbers, unapproved
templates or signs, auth failures and an empty SMS package need a person or another channel."""


def retryable(code: str) -> bool:
    """Whether a later retry of the same request may succeed."""
    return code.startswith(RETRYABLE_PREFIXES)


def e164(address: str, country_code: str) -> str:
    """`+<country><number>`: Tencent wants E.164; 11-digit mainland mobiles get `country_code`."""
    raw = address.strip()
    digits = "".join(c for c in raw if c.isdigit())
    if raw.startswith("+"):
        return f"+{digits}"
    if digits.startswith("00"):
        return f"+{digits[2:]}"
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{country_code}{digits}"
    return f"+{digits}"


@notifier("tencent_sms")
class TencentSmsNotifier(CloudSmsNotifier):
    """One SendSms POST per message; returns Tencent's SerialNo, with SessionContext = the outbox id."""

    Config = TencentSmsConfig
    provider = "Tencent"

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, TencentSmsConfig)
        self.cfg: TencentSmsConfig = config

    @property
    def endpoint(self) -> str:
        return self.cfg.endpoint

    def check_credentials(self) -> None:
        self.credential(self.cfg.secret_id, "secret_id")
        self.credential(self.cfg.secret_key, "secret_key")

    def template(self, message: Message) -> tuple[str, list[str]]:
        """Template id and TemplateParamSet: the kind's template, else the fallback with the whole text."""
        tpl = cast("dict[str, TencentTemplate]", self.cfg.templates).get(message.key)
        if tpl is not None:
            values = self.param_values(tpl.params, message)
            if values is not None:
                return tpl.id, values
        if self.cfg.fallback is not None:
            return self.cfg.fallback.id, [message.text]
        raise self.missing(message, tpl.params if tpl else [])

    def payload(self, message: Message) -> bytes:
        """The JSON body of SendSms for one number."""
        template_id, values = self.template(message)
        body = {
            "PhoneNumberSet": [e164(message.address, self.cfg.country_code)],
            "SmsSdkAppId": self.cfg.sdk_app_id,
            "SignName": self.cfg.sign_name,
            "TemplateId": template_id,
            "TemplateParamSet": values,
            "SessionContext": str(message.outbox_id),
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def headers(self, payload: bytes, action: str = "SendSms") -> dict[str, str]:
        """Signed headers for POSTing `payload` now; Host is the endpoint's, as signed."""
        host = urlsplit(self.cfg.endpoint).netloc.rsplit("@", 1)[-1]
        ts = int(self.now())
        auth = tc3_authorization(self.credential(self.cfg.secret_id, "secret_id"),
                                 self.credential(self.cfg.secret_key, "secret_key"),
                                 host=host, service=SERVICE, content_type=CONTENT_TYPE, payload=payload, timestamp=ts)
        return {"Authorization": auth, "Content-Type": CONTENT_TYPE, "Host": host, "X-TC-Action": action,
                "X-TC-Timestamp": str(ts), "X-TC-Version": VERSION, "X-TC-Region": self.cfg.region}

    async def call(self, action: str, payload: bytes) -> tuple[dict[str, Any], int]:
        """POST one signed call; the unwrapped `Response` and the HTTP status, or CloudSmsError on `Error`."""
        resp = await self.post(payload, self.headers(payload, action))
        data = self.json_body(resp)
        body = data.get("Response", data)
        if not isinstance(body, dict):
            raise self.fail(f"Tencent answered HTTP {resp.status_code} with an unexpected shape", retryable=False)
        error = body.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code", ""))
            raise self.refused(code, error.get("Message", ""), body.get("RequestId"), retryable(code))
        return body, resp.status_code

    async def send(self, message: Message) -> str | None:
        """SendSms; the call can succeed while the number failed, so the per-number Code decides."""
        body, status_code = await self.call("SendSms", self.payload(message))
        rid = body.get("RequestId")
        statuses = body.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise self.fail(f"Tencent answered HTTP {status_code} without a SendStatusSet (RequestId {rid})",
                            retryable=True, maybe_sent=True)
        status = statuses[0]
        code = str(status.get("Code", ""))
        if code == "Ok":
            self.last_ref = str(status.get("SerialNo", ""))
            return self.last_ref
        raise self.refused(code, status.get("Message", ""), rid, retryable(code))

    # -- receipts

    def receipts_every(self) -> float | None:
        return self.cfg.receipts_every

    async def poll_receipts(self) -> int:
        """PullSmsSendStatus until the queue is empty (at most 10 rounds of 100); each receipt to the core."""
        count = 0
        for _ in range(10):
            payload = json.dumps({"Limit": PULL_LIMIT, "SmsSdkAppId": self.cfg.sdk_app_id}).encode()
            body, _status = await self.call("PullSmsSendStatus", payload)
            receipts = body.get("PullSmsSendStatusSet") or []
            for r in receipts if isinstance(receipts, list) else []:
                if isinstance(r, dict) and r.get("SerialNo"):
                    report = str(r.get("ReportStatus", ""))
                    self.deliver(str(r["SerialNo"]), report == "SUCCESS", str(r.get("Description") or report))
                    count += 1
            if not isinstance(receipts, list) or len(receipts) < PULL_LIMIT:
                break
        return count


__all__ = ["RETRYABLE_PREFIXES", "CloudSmsError", "TencentSmsNotifier", "e164", "retryable"]
