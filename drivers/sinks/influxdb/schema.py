"""Options of the InfluxDB sinks: `type: influxdb2` (v2 write API) and `type: influxdb1` (1.x `/write`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from daemon.ports.errors import SinkError
from daemon.ports.secrets import InlineSecret, SecretRef
from daemon.ports.sinks import SinkBase
from daemon.ports.tls import TlsConfig


class InfluxTls(TlsConfig):
    """TLS of https:// URLs. Neither HTTP client can skip only the host name check, so no `insecure`."""

    @model_validator(mode="after")
    def _no_insecure(self) -> InfluxTls:
        if self.insecure:
            raise ValueError("insecure is not supported by the InfluxDB sinks; verify: false turns off all checks")
        return self


class InfluxDB2Config(SinkBase):
    """InfluxDB 2.x / 3.x / Cloud (or 1.8+ via its compatibility endpoint) through influxdb-client."""

    type: Literal["influxdb2"]
    url: str = Field(pattern=r"^https?://", description="server base URL, e.g. https://influx.example.cn:8086")
    org: str = Field(description="organization name (ignored by 1.8 compatibility and VictoriaMetrics)")
    bucket: str = Field(description="bucket; for 1.8+ compatibility write `database/retention_policy`")
    token: InlineSecret | None = Field(None, description="API token; prefer token_file or token_env")
    token_file: Path | None = Field(None, description="file holding the API token (first line)")
    token_env: str | None = Field(None, description="environment variable holding the API token")
    gzip: bool = Field(True, description="compress request bodies (saves 4G data)")
    tls: InfluxTls = Field(default_factory=InfluxTls)

    @model_validator(mode="after")
    def _one_token(self) -> InfluxDB2Config:
        given = [k for k in ("token", "token_file", "token_env") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of token, token_file, token_env" + (f" (got {', '.join(given)})"
                                                                                   if given else ""))
        return self

    def secret(self, source: str) -> str:
        """The token, read now (a rotated file is picked up on reconnect); never logged."""
        token = _resolved(source, SecretRef.from_keys("token", self.token, self.token_file, self.token_env,
                                                      first_line=True))
        assert token is not None  # the validator wants one of the three
        return token


class InfluxDB1Config(SinkBase):
    """InfluxDB 1.x HTTP API: POST /write with database, retention policy and basic auth."""

    type: Literal["influxdb1"]
    url: str = Field(pattern=r"^https?://", description="server base URL, e.g. http://127.0.0.1:8086")
    database: str = Field(min_length=1, description="database to write to (must exist)")
    retention_policy: str | None = Field(None, description="retention policy; default: the database's default")
    username: str | None = Field(None, description="user for basic auth; omit when auth is disabled")
    password: InlineSecret | None = Field(None, description="password; prefer password_file")
    password_file: Path | None = Field(None, description="file holding the password (first line)")
    gzip: bool = Field(True, description="compress request bodies (saves 4G data)")
    tls: InfluxTls = Field(default_factory=InfluxTls)

    @model_validator(mode="after")
    def _password(self) -> InfluxDB1Config:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.username is None and (self.password is not None or self.password_file is not None):
            raise ValueError("a password needs a username")
        return self

    def secret(self, source: str) -> str | None:
        return _resolved(source, SecretRef.from_keys("password", self.password, self.password_file, first_line=True))


def _resolved(source: str, ref: SecretRef | None) -> str | None:
    """Read a secret at connect time: a missing file is an uplink error to retry, not a crash."""
    try:
        return None if ref is None else ref.resolve()
    except ValueError as exc:
        raise SinkError(source, str(exc)) from None
