"""Options of the InfluxDB sinks: `type: influxdb2` (v2 write API) and `type: influxdb1` (1.x `/write`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from daemon.ports.errors import SinkError
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
    token: SecretStr | None = Field(None, description="API token; prefer token_file or token_env")
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
        return _secret(source, "token", self.token, self.token_file, self.token_env)


class InfluxDB1Config(SinkBase):
    """InfluxDB 1.x HTTP API: POST /write with database, retention policy and basic auth."""

    type: Literal["influxdb1"]
    url: str = Field(pattern=r"^https?://", description="server base URL, e.g. http://127.0.0.1:8086")
    database: str = Field(min_length=1, description="database to write to (must exist)")
    retention_policy: str | None = Field(None, description="retention policy; default: the database's default")
    username: str | None = Field(None, description="user for basic auth; omit when auth is disabled")
    password: SecretStr | None = Field(None, description="password; prefer password_file")
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
        if self.password is None and self.password_file is None:
            return None
        return _secret(source, "password", self.password, self.password_file, None)


def _secret(source: str, what: str, value: SecretStr | None, file: Path | None, env: str | None) -> str:
    """Resolve a secret at connect time: a missing file is an uplink error to retry, not a crash."""
    if value is not None:
        return value.get_secret_value()
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise SinkError(source, f"cannot read {what}_file {file}: {exc.strerror or exc}") from None
        if not text or not text[0].strip():
            raise SinkError(source, f"{what}_file {file} is empty")
        return text[0].strip()
    assert env is not None
    got = os.environ.get(env, "").strip()
    if not got:
        raise SinkError(source, f"environment variable {env} ({what}) is not set")
    return got
