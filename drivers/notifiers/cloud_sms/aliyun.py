"""`type: aliyun_sms`: Aliyun (阿里云) Dysmsapi 2017-05-25 SendSms with an approved sign name and templates."""

from __future__ import annotations

import json
from typing import cast

from daemon.notify import Message, NotifierBase, NotifierContext
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


def aliyun_number(address: str) -> str:
    """Digits with country code and no `+` (`+8613800138000` -> `8613800138000`); Aliyun takes both forms."""
    digits = "".join(c for c in address if c.isdigit())
    return digits[2:] if digits.startswith("00") else digits


@notifier("aliyun_sms")
class AliyunSmsNotifier(CloudSmsNotifier):
    """One SendSms POST per message; returns Aliyun's BizId, with OutId = the outbox id for receipts."""

    Config = AliyunSmsConfig
    provider = "Aliyun"

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, AliyunSmsConfig)
        self.cfg: AliyunSmsConfig = config

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

    def request_params(self, message: Message) -> dict[str, str]:
        """Every parameter of the call, signed: common ones, then SendSms's, then `Signature`."""
        code, values = self.template(message)
        key_id = self.credential(self.cfg.access_key_id, "access_key_id")
        secret = self.credential(self.cfg.access_key_secret, "access_key_secret")
        params = {
            "AccessKeyId": key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.cfg.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self.nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": aliyun_timestamp(self.now()),
            "Version": "2017-05-25",
            "PhoneNumbers": aliyun_number(message.address),
            "SignName": self.cfg.sign_name,
            "TemplateCode": code,
            "TemplateParam": json.dumps(values, ensure_ascii=False, separators=(",", ":")),
            "OutId": str(message.outbox_id),
        }
        params["Signature"] = aliyun_signature(secret, "POST", params)
        return params

    async def send(self, message: Message) -> str | None:
        """POST the signed form; `Code: OK` gives the BizId, any other code a CloudSmsError."""
        params = self.request_params(message)
        signature = params.pop("Signature")
        body = f"{aliyun_canonical_query(params)}&Signature={aliyun_encode(signature)}".encode()
        form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        resp = await self.post(body, form)
        data = self.json_body(resp)
        code = str(data.get("Code", ""))
        if code == "OK" and data.get("BizId"):
            self.last_ref = str(data["BizId"])
            return self.last_ref
        if not code:
            raise self.fail(f"Aliyun answered HTTP {resp.status_code} without a Code", retryable=False)
        detail = str(data.get("Message", "")).replace(params["AccessKeyId"], "***")  # echoed in signature errors
        raise self.refused(code, detail, data.get("RequestId"), code in RETRYABLE)


__all__ = ["RETRYABLE", "AliyunSmsNotifier", "CloudSmsError", "aliyun_number"]
