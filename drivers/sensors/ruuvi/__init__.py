"""`format: ruuvi` for `type: mqtt`: RuuviTag / Ruuvi Air advertisements relayed by a Ruuvi Gateway
(topic `ruuvi/<gateway mac>/<tag mac>`, the raw advertisement in `data`) or another BLE gateway.

The MQTT driver owns the connection; this folder only registers a payload format with it
(`daemon.ports.payloads`), so it imports no other driver.
"""

from __future__ import annotations

from importlib import resources

from daemon.ports.model import Sample
from daemon.ports.payloads import Message, PayloadError
from drivers.sensors.ble import Advert, BleOptions, BleState, climate_samples, device_samples, pick, register_ble
from drivers.sensors.ruuvi.decode import COMPANY_ID, RuuviData, decode

__all__ = ["FORMAT", "SAMPLE_YAML", "RuuviOptions", "decode", "decode_message"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")


class RuuviOptions(BleOptions):
    """`options:` of a `format: ruuvi` sensor: the shared BLE ones (mac, relays, min_interval)."""


def _ruuvi_data(adv: Advert) -> bytes | None:
    if COMPANY_ID in adv.manufacturer:
        return adv.manufacturer[COMPANY_ID]
    if adv.bare is not None:  # plain hex: the manufacturer data, with or without the company id
        return adv.bare[2:] if adv.bare[:2] == b"\x99\x04" else adv.bare
    return None


def _check_mac(data: RuuviData, options: RuuviOptions) -> None:
    """A tag's advertisement names its own address: another tag's must not land on this sensor."""
    if options.mac is None or data.mac is None:
        return
    if not options.mac.endswith(data.mac):  # format 6 carries only the lowest 3 bytes
        raise PayloadError(f"advertisement of tag {data.mac}, not {options.mac}")


def decode_message(msg: Message, options: RuuviOptions, state: BleState) -> list[Sample]:
    """Samples of one relayed advertisement; [] for a copy of a measurement already kept, or one not yet due."""
    adv, raw = pick(msg, options, _ruuvi_data)
    data = decode(raw)
    _check_mac(data, options)
    state.facts = {"format": data.format, "rssi": adv.rssi, "battery_mv": data.battery_mv,
                   "tx_power": data.tx_power, "sequence": data.sequence}
    if not state.fresh(data.dedup_key, msg.now) or not state.due(msg, options):
        return []
    tag = data.mac or adv.mac or "?"
    climate = climate_samples(msg, {"temperature": data.temperature, "humidity": data.humidity},
                              f"Ruuvi tag {tag} (format {data.format}) on {msg.topic}")
    # millivolts as measured: Ruuvi documents no state-of-charge curve, and a CR2477's voltage hardly moves
    # until it is nearly empty, so no % is made up here
    return climate + device_samples(msg, {"battery_voltage": (data.battery_mv, "mV"), "signal": (adv.rssi, "dBm")})


FORMAT = register_ble("ruuvi", decode_message, RuuviOptions, BleState,
                      "RuuviTag / Ruuvi Air via a Ruuvi Gateway (ruuvi/<gw>/<tag>, raw advertisement in `data`)")
