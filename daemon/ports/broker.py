"""The MQTT broker connection (config section `mqtt:`), shared by the MQTT sensor driver and the core schema."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.ports.durations import Duration
from daemon.ports.secrets import InlineSecret, SecretRef
from daemon.ports.tls import TlsConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    client_id: str | None = Field(None, description="stable id of the persistent session; default coldchain-<site>")
    username: str | None = None
    password: InlineSecret | None = Field(None, description="prefer password_file: this file is often shared")
    password_file: Path | None = Field(None, description="file holding the password; wins over password")
    keepalive: int = Field(60, ge=5, le=3600)
    tls: TlsConfig | None = Field(None, description="TLS to the broker; omit for plain TCP")
    protocol: Literal["3.1.1", "5"] = Field(
        "5",
        description="MQTT protocol version. \"5\" (default) announces receive_maximum, so a commit window of "
        "messages waits for its acknowledgements without a broker setting; a broker that refuses MQTT 5 "
        "(CONNACK 'unacceptable protocol version') gets MQTT 3.1.1 from then on, logged, and its window is "
        "broker_inflight. \"3.1.1\": never try 5",
    )
    qos: Literal[0, 1] = Field(1, description="QoS of the sensor subscriptions; 1 = acknowledged after journaling")
    persistent_session: bool = Field(
        True, description="keep the session (and QoS 1 messages) while the daemon is down"
    )
    receive_maximum: int | None = Field(
        1000, ge=1, le=65535,
        description="MQTT 5: how many QoS 1 messages the broker may send before the daemon acknowledges any "
        "(CONNECT Receive Maximum); it must hold a commit window's messages (storage.flush_interval x readings "
        "per second). mosquitto 2.0 then ignores its max_inflight_messages for this client (measured, "
        "docs/robustness.md). None = not sent; with MQTT 3.1.1 only the broker's setting applies",
    )
    broker_inflight: int = Field(
        20, ge=1, le=65535,
        description="the broker's in-flight window for the daemon when no Receive Maximum is sent (MQTT 3.1.1, or "
        "receive_maximum null): mosquitto's max_inflight_messages, 20 unless its config says otherwise. Once 3/4 "
        "of the window (of receive_maximum on MQTT 5) awaits acknowledgement, the daemon commits and acknowledges "
        "at once, so a long storage.flush_interval never stalls the broker; a bigger window = fewer SD card writes",
    )
    session_expiry: Duration = Field(
        7 * 86400.0, gt=0, description="MQTT 5: how long the broker keeps the session after a disconnect"
    )
    reconnect_min: Duration = Field(1.0, ge=1, description="first reconnect delay; doubles up to reconnect_max")
    reconnect_max: Duration = Field(120.0, ge=1)
    discover: list[str] | None = Field(
        None, description="extra topic filters whose unmapped topics `doctor` lists; None = derived, [] = off"
    )

    def password_ref(self) -> SecretRef | None:
        """The broker password's source (password_file first), or None for no password."""
        return SecretRef.from_keys("password", self.password, self.password_file)
