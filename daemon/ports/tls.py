"""TLS to a server (`tls:` of the MQTT broker, the MQTT uplink and the InfluxDB sinks), and its SSL context."""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class TlsConfig(BaseModel):
    """Certificate checks and an optional client certificate. For MQTT a `tls:` section turns TLS on; for
    InfluxDB an https:// URL does, and the section only tunes the checks."""

    model_config = ConfigDict(extra="forbid")

    verify: bool = Field(True, description="check the server certificate; false only for a lab")
    insecure: bool = Field(False, description="check the certificate but not the host name in it (a lab broker)")
    ca_file: Path | None = Field(None, description="PEM file of the CA that signed the server; default: system CAs")
    cert_file: Path | None = Field(None, description="client certificate (PEM), if the server wants one")
    key_file: Path | None = Field(None, description="key of the client certificate, if not in cert_file")

    @property
    def check_hostname(self) -> bool:
        return self.verify and not self.insecure

    def context(self) -> ssl.SSLContext:
        """A client context built as paho's `tls_set` builds one; raises OSError (ssl.SSLError included) for
        a CA, certificate or key file that is missing or unusable."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.cert_file is not None:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.check_hostname = self.check_hostname  # before verify_mode: CERT_NONE refuses check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED if self.verify else ssl.CERT_NONE
        if self.ca_file is not None:
            ctx.load_verify_locations(self.ca_file)
        else:
            ctx.load_default_certs()
        return ctx
