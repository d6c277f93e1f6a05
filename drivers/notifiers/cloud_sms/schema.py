"""Config of the Aliyun and Tencent Cloud SMS notifiers: credentials, sign name, one template per alarm kind."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.ports.durations import Duration
from daemon.ports.notify import NotifierBase
from daemon.ports.secrets import SecretRef

Kind = Literal[
    "alert.temp_high", "alert.temp_low", "alert.freeze", "alert.rh_high", "alert.rh_low",
    "alert.no_data", "alert.sensor_fault", "resolve",
]

PARAMS = frozenset({"site", "zone", "commodity", "value", "limit", "minutes", "id", "sensor", "detail", "what", "text"})
"""What a template may use: the alarm texts' placeholders (Message.params) and `text`, the rendered message."""


def _check_names(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in PARAMS]
    if unknown:
        raise ValueError(f"unknown message parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(PARAMS))}")
    return names


class CloudSmsBase(NotifierBase):
    """What both clouds need: the approved sign name, where to send, how long to wait."""

    sign_name: str = Field(min_length=1, description="approved SMS signature (签名), e.g. 冷库监控")
    timeout: float = Field(default=10.0, gt=0, le=120, description="seconds to wait for the answer")
    connect_timeout: float = Field(default=5.0, gt=0, le=60, description="seconds to wait for the connection")


class AliyunTemplate(BaseModel):
    """An approved Aliyun template and which message parameter fills each of its ${variables}."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="approved template code, e.g. SMS_154950909")
    params: dict[str, str] | list[str] | None = Field(
        default=None,
        description="template variable -> message parameter; a list when the names are the same; "
        "None sends every message parameter under its own name",
    )

    @field_validator("params")
    @classmethod
    def _known(cls, v: dict[str, str] | list[str] | None) -> dict[str, str] | list[str] | None:
        if v is not None:
            _check_names(list(v.values()) if isinstance(v, dict) else v)
        return v

    def mapping(self, available: list[str]) -> dict[str, str]:
        """Template variable -> message parameter."""
        if self.params is None:
            return {n: n for n in available if n != "text"}
        return dict(self.params) if isinstance(self.params, dict) else {n: n for n in self.params}


class AliyunFallback(BaseModel):
    """A generic template whose one variable is the whole rendered text."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="approved template code")
    param: str = Field(default="text", description="name of its single ${variable}")


class AliyunSmsConfig(CloudSmsBase):
    """Aliyun Dysmsapi 2017-05-25 SendSms."""

    type: Literal["aliyun_sms"]
    access_key_id: str | SecretRef = Field(description="AccessKey ID (or {env: ...} / {file: ...})")
    access_key_secret: SecretRef = Field(description="AccessKey secret: {file: ...} or {env: ...}")
    region: str = Field(default="cn-hangzhou", description="RegionId parameter")
    endpoint: str = Field(default="https://dysmsapi.aliyuncs.com/", pattern=r"^https?://",
                          description="API URL; another region's host, or a local server in tests")
    templates: dict[Kind, AliyunTemplate] = Field(default_factory=dict, description="one per alarm text kind")
    fallback: AliyunFallback | None = Field(default=None, description="for kinds without a template")
    receipts_every: Duration | None = Field(
        default=60.0, gt=0, description="ask QuerySendDetails for the carrier receipt of each sent SMS this often; "
        "None = never"
    )
    receipts_give_up: Duration = Field(default=86400.0, gt=0, description="stop asking about an SMS this long after")

    @model_validator(mode="after")
    def _some(self) -> AliyunSmsConfig:
        if not self.templates and self.fallback is None:
            raise ValueError("give templates, a fallback template, or both")
        return self


class TencentTemplate(BaseModel):
    """An approved Tencent template and the message parameters for its {1}, {2} ... in order."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[0-9]+$", description="approved template id (digits)")
    params: list[str] = Field(default_factory=list, description="message parameters for {1}, {2} ...")

    @field_validator("params")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _check_names(v)


class TencentFallback(BaseModel):
    """A generic template whose {1} is the whole rendered text."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[0-9]+$", description="approved template id (digits)")


class TencentSmsConfig(CloudSmsBase):
    """Tencent Cloud SMS API 3.0 (2021-01-11) SendSms."""

    type: Literal["tencent_sms"]
    secret_id: str | SecretRef = Field(description="SecretId (or {env: ...} / {file: ...})")
    secret_key: SecretRef = Field(description="SecretKey: {file: ...} or {env: ...}")
    sdk_app_id: str = Field(pattern=r"^[0-9]+$", description="SmsSdkAppId, e.g. 1400006666")
    region: str = Field(default="ap-guangzhou", description="X-TC-Region: ap-guangzhou, ap-beijing or ap-nanjing")
    endpoint: str = Field(default="https://sms.tencentcloudapi.com/", pattern=r"^https?://",
                          description="API URL; a regional host, or a local server in tests")
    country_code: str = Field(default="86", pattern=r"^[0-9]{1,4}$",
                              description="prefix for numbers given without one (11-digit mainland mobiles)")
    templates: dict[Kind, TencentTemplate] = Field(default_factory=dict, description="one per alarm text kind")
    fallback: TencentFallback | None = Field(default=None, description="for kinds without a template")
    receipts_every: Duration | None = Field(
        default=None, gt=0, description="pull carrier receipts (PullSmsSendStatus) this often; needs pull mode "
        "enabled for the app in the console, since pulled receipts are gone for any other reader; None = never"
    )

    @model_validator(mode="after")
    def _some(self) -> TencentSmsConfig:
        if not self.templates and self.fallback is None:
            raise ValueError("give templates, a fallback template, or both")
        return self
