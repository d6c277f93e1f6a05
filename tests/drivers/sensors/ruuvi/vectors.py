"""Ruuvi's published test vectors: ruuvi/docs (GitBook), communication/bluetooth-advertisements/
data-format-5-rawv2.md, data-format-c5-rawv2.md, data-format-6.md, data-format-e1.md at commit 150ebb4.

Reserved bytes written `XX` there are filled with FF. The C5 page's vectors start with `05` (a slip of
that page: their length and layout are C5's); they are used with the format byte C5.
(temperature °C, humidity %, pressure Pa, battery mV, sequence, mac) per case; None = not available.
"""

from __future__ import annotations

VECTORS: dict[str, tuple[str, tuple[float | None, float | None, float | None, int | None, int | None, str | None]]] = {
    "5 valid": ("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", (24.3, 53.49, 100044, 2977, 205, "CB:B8:33:4C:88:4F")),
    "5 maximum": ("057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F", (163.835, 163.835, 115534, 3646, 65534, "CB:B8:33:4C:88:4F")),
    "5 minimum": ("058001000000008001800180010000000000CBB8334C884F", (-163.835, 0.0, 50000, 1600, 0, "CB:B8:33:4C:88:4F")),
    "5 invalid": ("058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF", (None, None, None, None, None, None)),
    "C5 valid": ("C512FC5394C37CAC364200CDCBB8334C884F", (24.3, 53.49, 100044, 2977, 205, "CB:B8:33:4C:88:4F")),
    "C5 maximum": ("C57FFFFFFEFFFEFFDEFEFFFECBB8334C884F", (163.835, 163.835, 115534, 3646, 65534, "CB:B8:33:4C:88:4F")),
    "C5 minimum": ("C58001000000000000000000CBB8334C884F", (-163.835, 0.0, 50000, 1600, 0, "CB:B8:33:4C:88:4F")),
    "C5 invalid": ("C58000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", (None, None, None, None, None, None)),
    "6 valid": ("06170C5668C79E007000C90501D9FFCD004C884F", (29.5, 55.3, 101102, None, 205, "4C:88:4F")),
    "6 maximum": ("067FFF9C40FFFE27109C40FAFAFEFFFF074C8F4F", (163.835, 100.0, 115534, None, 255, "4C:8F:4F")),
    "6 minimum": ("0680010000000000000000000000FF00004C884F", (-163.835, 0.0, 50000, None, 0, "4C:88:4F")),
    "6 invalid": ("068000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", (None, None, None, None, 255, None)),
    "E1 valid": ("E1170C5668C79E0065007004BD11CA00C90A0213E0ACFFFFFFDECDEE01FFFFFFFFFFCBB8334C884F",
                 (29.5, 55.3, 101102, None, 14601710, "CB:B8:33:4C:88:4F")),
    "E1 maximum": ("E17FFF9C40FFFE27102710271027109C40FAFADC28F0FFFFFFFFFFFE3FFFFFFFFFFFCBB8334C884F",
                   (163.835, 100.0, 115534, None, 16777214, "CB:B8:33:4C:88:4F")),
    "E1 minimum": ("E1800100000000000000000000000000000000000000FFFFFF00000000FFFFFFFFFFCBB8334C884F",
                   (-163.835, 0.0, 50000, None, 0, "CB:B8:33:4C:88:4F")),
    "E1 invalid": ("E18000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFFFFFF",
                   (None, None, None, None, None, None)),
}

# The Ruuvi Gateway's own MQTT example (ruuvi-gateway-firmware/data-formats/
# mqtt-time-stamped-data-from-bluetooth-sensors.md): tag F4:1F:0C:28:CB:D6, format 5.
GATEWAY_EXAMPLE = ('{"gw_mac": "C8:25:2D:8E:9C:2C", "rssi": -26, "aoa": [], "gwts": "1653668027", "ts": "1653668027", '
                   '"data": "0201061BFF99040515AE4C6DC6D7000CFFF803F4ADB6AD697FF41F0C28CBD6", "coords": ""}')
