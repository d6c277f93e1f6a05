"""One TLS model for the broker, the uplink and InfluxDB: each old spelling loads, and its SSL context is the
one paho's `tls_set` made from the same options before."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from daemon.ports.broker import MqttConfig
from daemon.ports.tls import TlsConfig
from drivers.sinks.influxdb.schema import InfluxDB2Config, InfluxTls
from drivers.sinks.mqtt_uplink.schema import MqttUplinkConfig


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (cert.pem) and its key (key.pem), made with the openssl CLI."""
    d = tmp_path_factory.mktemp("pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=coldchain-test"], cwd=d, check=True, timeout=60,
                   capture_output=True)
    return d


def test_defaults_check_everything() -> None:
    t = TlsConfig()
    assert (t.verify, t.insecure, t.ca_file, t.cert_file, t.key_file) == (True, False, None, None, None)
    assert t.check_hostname


def test_each_old_spelling_loads() -> None:
    broker = MqttConfig.model_validate({"tls": {"ca_file": "ca.crt", "cert_file": "c.crt", "key_file": "c.key",
                                                "insecure": True}})
    assert broker.tls is not None and broker.tls.insecure and broker.tls.key_file == Path("c.key")
    uplink = MqttUplinkConfig.model_validate({"id": "u", "type": "mqtt_uplink", "host": "h", "tls": {
        "verify": False, "ca_file": "ca.crt", "cert_file": "c.crt", "key_file": "c.key"}})
    assert uplink.tls is not None and not uplink.tls.verify and uplink.tls.cert_file == Path("c.crt")
    influx = InfluxDB2Config.model_validate({"id": "i", "type": "influxdb2", "url": "https://x", "org": "o",
                                             "bucket": "b", "token": "t", "tls": {"verify": False, "ca_file": "c"}})
    assert isinstance(influx.tls, InfluxTls) and not influx.tls.verify
    assert InfluxDB2Config.model_validate({"id": "i", "type": "influxdb2", "url": "http://x", "org": "o",
                                           "bucket": "b", "token": "t"}).tls == InfluxTls()


def test_unknown_keys_and_influx_insecure_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TlsConfig.model_validate({"ca_flie": "x"})
    with pytest.raises(ValidationError, match="insecure is not supported by the InfluxDB sinks"):
        InfluxTls.model_validate({"insecure": True})


@pytest.mark.parametrize(("options", "tls_set", "insecure"), [
    ({}, {}, False),
    ({"insecure": True}, {}, True),  # the broker's old `insecure: true`: tls_set(), tls_insecure_set(True)
    ({"verify": False}, {"cert_reqs": ssl.CERT_NONE}, True),  # the uplink's old `verify: false`
])
def test_context_matches_what_paho_built(options: dict[str, Any], tls_set: dict[str, Any], insecure: bool) -> None:
    ours = TlsConfig.model_validate(options).context()
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.tls_set(**tls_set)
    client.tls_insecure_set(insecure)
    theirs, theirs_insecure = client._ssl_context, client._tls_insecure
    assert theirs is not None
    assert (ours.verify_mode, ours.check_hostname) == (theirs.verify_mode, theirs.check_hostname)
    assert (not ours.check_hostname) == theirs_insecure == insecure
    assert ours.protocol == theirs.protocol == ssl.PROTOCOL_TLS_CLIENT


def test_context_loads_the_ca_and_client_certificate(pem: Path) -> None:
    ctx = TlsConfig(ca_file=pem / "cert.pem", cert_file=pem / "cert.pem", key_file=pem / "key.pem").context()
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "coldchain-test"),),)]


def test_missing_or_bad_files_raise_oserror(tmp_path: Path, pem: Path) -> None:
    with pytest.raises(FileNotFoundError):
        TlsConfig(ca_file=tmp_path / "absent.pem").context()
    (tmp_path / "junk.pem").write_text("not a certificate\n", encoding="utf-8")
    with pytest.raises(ssl.SSLError):
        TlsConfig(cert_file=tmp_path / "junk.pem").context()
    with pytest.raises(FileNotFoundError):
        TlsConfig(cert_file=pem / "cert.pem", key_file=tmp_path / "absent.key").context()
