"""BTHome v2 service data (UUID 0xFCD2): the device-info byte, optional AES-CCM encryption, and the
measurement objects (id byte, then a little-endian value of a length fixed by the id).

Pure functions, no I/O. Written from the BTHome v2 format description (bthome.io/format); the
object lengths below are that table's, so objects this driver does not use can be skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.ports.payloads import PayloadError

UUID = 0xFCD2
UUID_BYTES = UUID.to_bytes(2, "little")
ENCRYPTED, MAC_INCLUDED, TRIGGER_BASED = 0x01, 0x02, 0x04  # device-info bits; bits 5-7 are the version
VERSION = 2
TRAILER = 8  # encrypted: counter (4) + message integrity code (4) after the ciphertext

# id -> value length for every object id of the v2 table; 0x53 (text) and 0x54 (raw) carry their own length.
_LENGTHS: dict[int, int] = {
    **dict.fromkeys([0x00, 0x01, 0x09, *range(0x0F, 0x12), *range(0x15, 0x30), 0x3A, 0x46, 0x57, 0x58, 0x59,
                     0x60, 0x64], 1),
    **dict.fromkeys([0x02, 0x03, 0x06, 0x07, 0x08, 0x0C, 0x0D, 0x0E, 0x12, 0x13, 0x14, 0x3C, 0x3D, 0x3F, 0x40,
                     0x41, 0x43, 0x44, 0x45, 0x47, 0x48, 0x49, 0x4A, 0x51, 0x52, 0x56, 0x5A, 0x5D, 0x5E, 0x5F,
                     0x61, 0xF0], 2),
    **dict.fromkeys([0x04, 0x05, 0x0A, 0x0B, 0x42, 0x4B, 0xF2], 3),
    **dict.fromkeys([0x3E, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x55, 0x5B, 0x5C, 0x62, 0x63, 0xF1], 4),
}
_VARIABLE = (0x53, 0x54)

# The objects read: id -> (name, signed, factor). Several ids of one name: the first object in the packet wins.
_USED: dict[int, tuple[str, bool, float]] = {
    0x00: ("packet_id", False, 1),
    0x01: ("battery", False, 1),  # %
    0x02: ("temperature", True, 0.01),
    0x45: ("temperature", True, 0.1),
    0x57: ("temperature", True, 1),
    0x58: ("temperature", True, 0.35),
    0x03: ("humidity", False, 0.01),
    0x2E: ("humidity", False, 1),
    0x0C: ("voltage", False, 0.001),  # V
    0x4A: ("voltage", False, 0.1),
}


@dataclass
class BthomePacket:
    """One decoded packet: the values read, and the facts of its header."""

    values: dict[str, float] = field(default_factory=dict)
    encrypted: bool = False
    trigger_based: bool = False
    counter: int | None = None  # encryption counter
    mac: str | None = None  # the address the packet carries (device-info bit 1), else None
    unknown_object: int | None = None  # an id past which the packet could not be read


def _objects(body: bytes, into: BthomePacket) -> None:
    i = 0
    while i < len(body):
        oid = body[i]
        if oid in _VARIABLE:
            if i + 1 >= len(body):
                raise PayloadError("BTHome text/raw object cut short")
            i += 2 + body[i + 1]
            continue
        n = _LENGTHS.get(oid)
        if n is None:
            into.unknown_object = oid  # its length is unknown: what follows cannot be read
            return
        if i + 1 + n > len(body):
            raise PayloadError(f"BTHome object 0x{oid:02X} cut short")
        used = _USED.get(oid)
        if used is not None and used[0] not in into.values:
            name, signed, factor = used
            into.values[name] = round(int.from_bytes(body[i + 1:i + 1 + n], "little", signed=signed) * factor, 6)
        i += 1 + n


def nonce(mac: str, info: int, counter: bytes) -> bytes:
    """AES-CCM nonce: address (6 bytes as written), UUID (as sent), device-info byte, counter (4)."""
    return bytes.fromhex(mac.replace(":", "")) + UUID_BYTES + bytes([info]) + counter


def decrypt(info: int, data: bytes, key: bytes, mac: str) -> bytes:
    """The plain objects of an encrypted packet (`data`: what follows the header); PayloadError when the key
    or address does not fit."""
    if len(data) < TRAILER + 1:
        raise PayloadError("encrypted BTHome packet too short")
    from Crypto.Cipher import AES  # here: pycryptodome and cffi cost ~1.4 MB of RSS, and most devices send plain

    body, counter, mic = data[:-TRAILER], data[-TRAILER:-4], data[-4:]
    cipher = AES.new(key, AES.MODE_CCM, nonce=nonce(mac, info, counter), mac_len=4)
    try:
        return cipher.decrypt_and_verify(body, mic)
    except ValueError:
        raise PayloadError("BTHome decryption failed: wrong encryption_key or mac") from None


def decode(data: bytes, key: bytes | None = None, mac: str | None = None) -> BthomePacket:
    """Service data after the UUID. An encrypted packet needs `key` and `mac`; with a key, an unencrypted
    packet is refused (a device does not drop its encryption; someone sending in its name might)."""
    if not data:
        raise PayloadError("empty BTHome data")
    info = data[0]
    version = info >> 5
    if version != VERSION:
        raise PayloadError(f"BTHome version {version} is not decoded (only v2)")
    out = BthomePacket(encrypted=bool(info & ENCRYPTED), trigger_based=bool(info & TRIGGER_BASED))
    body = data[1:]
    if info & MAC_INCLUDED:
        if len(body) < 6:
            raise PayloadError("BTHome packet cut short in its address")
        out.mac = ":".join(f"{b:02X}" for b in reversed(body[:6]))  # sent least significant byte first
        body = body[6:]
    if out.encrypted:
        if key is None:
            raise PayloadError("encrypted BTHome packet: set options.encryption_key")
        address = out.mac or mac
        if address is None:
            raise PayloadError("encrypted BTHome packet: set options.mac (the nonce needs the address)")
        _objects(decrypt(info, body, key, address), out)
        out.counter = int.from_bytes(body[-TRAILER:-4], "little")
        return out
    if key is not None:
        raise PayloadError("unencrypted BTHome packet from a device with an encryption_key")
    _objects(body, out)
    return out
