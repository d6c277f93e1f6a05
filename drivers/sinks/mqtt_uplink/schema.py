"""Options of `type: mqtt_uplink`: republish readings to a central MQTT broker."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from daemon.ports.errors import SinkError
from daemon.ports.secrets import InlineSecret, SecretRef
from daemon.ports.sinks import SinkBase
from daemon.ports.tls import TlsConfig


class MqttUplinkConfig(SinkBase):
    """A central broker (EMQX, HiveMQ, Mosquitto) that regional dashboards subscribe to."""

    type: Literal["mqtt_uplink"]
    host: str = Field(description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="1883, or 8883 for TLS")
    client_id: str | None = Field(None, description="default coldchain-<site>-<sink id>")
    username: str | None = None
    password: InlineSecret | None = Field(None, description="prefer password_file; never logged")
    password_file: Path | None = Field(None, description="file holding the password (first line)")
    keepalive: int = Field(60, ge=5, le=3600, description="seconds; the broker declares the box dead after 1.5x")
    topic_prefix: str = Field("coldchain/{site}", description="topics start here; {site} is the site id")
    max_inflight: int = Field(100, ge=1, le=65535, description="QoS 1 messages awaiting PUBACK at once")
    tls: TlsConfig | None = Field(None, description="TLS settings; omit for plain TCP")

    @model_validator(mode="after")
    def _check(self) -> MqttUplinkConfig:
        if any(c in self.topic_prefix for c in "+#") or self.topic_prefix.endswith("/"):
            raise ValueError("topic_prefix must not contain + or # nor end with /")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self

    def secret(self, source: str) -> str | None:
        """The password, read now (a rotated file is picked up on reconnect); never logged."""
        ref = SecretRef.from_keys("password", self.password, self.password_file, first_line=True)
        try:
            return None if ref is None else ref.resolve()
        except ValueError as exc:
            raise SinkError(source, str(exc)) from None
