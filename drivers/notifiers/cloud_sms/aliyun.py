"""`type: aliyun_sms`: Aliyun (阿里云) Dysmsapi 2017-05-25 SendSms with an approved sign name and templates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from daemon.ports.notify import Message, NotifierBase, NotifierContext
from drivers.notifiers.cloud_sms.channel import CloudSmsError, CloudSmsNotifier
from drivers.notifiers.cloud_sms.schema import AliyunSmsConfig, AliyunTemplate
from drivers.notifiers.cloud_sms.signing import (
    aliyun_canonical_query,
    aliyun_encode,
    aliyun_signature,
    aliyun_timestamp,
)
from drivers.registry import notifier

RETRYABLE = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL",  # per-number frequency limit (default 1/min, 5/h): later works
    "isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "InternalError", "ServiceUnavailable",
    "Throttling", "Throttling.User", "Throttling.Api", "Throttling.Concurrency",
})
"""Codes after which the same request may succeed later; everything else (illegal number, template or
sign not approved, bad JSON, no balance, blacklist ...) needs a person or another channel."""

BEIJING = timezone(timedelta(hours=8))  # QuerySendDetails' SendDate is the Beijing date of the send


def aliyun_number(address: str) -> str:
    """Digits with country code and no `+` (`+8613800138000` -> `8613800138000`); Aliyun takes both forms."""
    digits = "".join(c for c in address if c.isdigit())
    return digits[2:] if digits.startswith("00") else digits


@dataclass(frozen=True, slots=True)
class Sent:
    """An SMS Aliyun accepted and whose carrier receipt we still wait for."""

    biz_id: str
    phone: str
    ts: float


@notifier("aliyun_sms")
class AliyunSmsNotifier(CloudSmsNotifier):
    """One SendSms POST per message; returns Aliyun's BizId, with OutId = the outbox id for receipts."""

    Config = AliyunSmsConfig
    provider = "Aliyun"

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, AliyunSmsConfig)
        self.cfg: AliyunSmsConfig = config
        self.awaiting: dict[str, Sent] = {}  # BizId -> sent SMS without a final receipt (in memory only)

    @property
    def endpoint(self) -> str:
        return self.cfg.endpoint

    def check_credentials(self) -> None:
        self.credential(self.cfg.access_key_id, "access_key_id")
        self.credential(self.cfg.access_key_secret, "access_key_secret")

    def template(self, message: Message) -> tuple[str, dict[str, str]]:
        """Template code and TemplateParam for the message: its kind's template, else the fallback."""
        tpl = cast("dict[str, AliyunTemplate]", self.cfg.templates).get(message.key)
        mapping = tpl.mapping(sorted(message.params)) if tpl is not None else {}
        if tpl is not None:
            values = self.param_values(list(mapping.values()), message)
            if values is not None:
                return tpl.code, dict(zip(mapping, values, strict=True))
        if self.cfg.fallback is not None:
            return self.cfg.fallback.code, {self.cfg.fallback.param: message.text}
        raise self.missing(message, list(mapping.values()))

    def signed(self, action: str, params: dict[str, str]) -> dict[str, str]:
        """`params` plus the common parameters of `action`, and their `Signature`."""
        key_id = self.credential(self.cfg.access_key_id, "access_key_id")
        secret = self.credential(self.cfg.access_key_secret, "access_key_secret")
        full = {
            "AccessKeyId": key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.cfg.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self.nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": aliyun_timestamp(self.now()),
            "Version": "2017-05-25",
            **params,
        }
        full["Signature"] = aliyun_signature(secret, "POST", full)
        return full

    async def call(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        """POST one signed call; the answer if its Code is OK, else CloudSmsError."""
        full = self.signed(action, params)
        signature = full.pop("Signature")
        body = f"{aliyun_canonical_query(full)}&Signature={aliyun_encode(signature)}".encode()
        form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        resp = await self.post(body, form)
        data = self.json_body(resp)
        code = str(data.get("Code", ""))
        if code == "OK":
            return data
        if not code:
            raise self.fail(f"Aliyun answered HTTP {resp.status_code} without a Code", retryable=False)
        detail = str(data.get("Message", "")).replace(full["AccessKeyId"], "***")  # echoed in signature errors
        raise self.refused(code, detail, data.get("RequestId"), code in RETRYABLE)

    async def send(self, message: Message) -> str | None:
        """SendSms; `Code: OK` gives the BizId, any other code a CloudSmsError."""
        code, values = self.template(message)
        phone = aliyun_number(message.address)
        ts = self.now()
        data = await self.call("SendSms", {
            "PhoneNumbers": phone,
            "SignName": self.cfg.sign_name,
            "TemplateCode": code,
            "TemplateParam": json.dumps(values, ensure_ascii=False, separators=(",", ":")),
            "OutId": str(message.outbox_id),
        })
        biz_id = str(data.get("BizId") or "")
        if not biz_id:
            raise self.fail("Aliyun said OK without a BizId; the SMS may have been sent", retryable=True,
                            maybe_sent=True)
        self.last_ref = biz_id
        if self.cfg.receipts_every is not None:
            self.awaiting[biz_id] = Sent(biz_id, phone, ts)
        return biz_id

    # -- receipts

    def receipts_every(self) -> float | None:
        return self.cfg.receipts_every

    async def poll_receipts(self) -> int:
        """QuerySendDetails for each SMS still without a final receipt (SendStatus 1 = waiting)."""
        count = 0
        now = self.now()
        for sent in list(self.awaiting.values()):
            if now - sent.ts > self.cfg.receipts_give_up:
                del self.awaiting[sent.biz_id]
                self.ctx.log.info("%s: no receipt for %s after %.0f s; stopped asking", self.source, sent.biz_id,
                                  now - sent.ts)
                continue
            data = await self.call("QuerySendDetails", {
                "PhoneNumber": sent.phone,
                "BizId": sent.biz_id,
                "SendDate": datetime.fromtimestamp(sent.ts, BEIJING).strftime("%Y%m%d"),
                "PageSize": "10",
                "CurrentPage": "1",
            })
            dtos = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            dto = dtos[0] if isinstance(dtos, list) and dtos and isinstance(dtos[0], dict) else {}
            status = str(dto.get("SendStatus", "1"))  # 1 waiting, 2 failed, 3 delivered
            if status in ("2", "3"):
                del self.awaiting[sent.biz_id]
                self.deliver(sent.biz_id, status == "3", str(dto.get("ErrCode", "")))
                count += 1
        return count


__all__ = ["RETRYABLE", "AliyunSmsNotifier", "CloudSmsError", "Sent", "aliyun_number"]
