"""BTHome v2 test vectors from Bluetooth-Devices/bthome-ble, tests/test_parser_v2.py at commit d55bd3a
(the reference parser Home Assistant uses): service data after the UUID 0xFCD2, the device's address,
the bindkey where encrypted, and the values that parser reads from it."""

from __future__ import annotations

KEY = "231d39c1d7cc1ab1aee224cd096db932"
SHELLY_MAC, ATC_MAC = "54:48:E6:8F:80:A5", "A4:C1:38:8D:18:B2"

# name: (service data hex, address, bindkey or None, {value name: value})
VECTORS: dict[str, tuple[str, str, str | None, dict[str, float]]] = {
    # test_bindkey_correct: a Shelly BLU H&T (SBHT-003C), encrypted
    "encrypted": ("41a47266c95f730011223378237214", SHELLY_MAC, KEY, {"temperature": 25.06, "humidity": 50.55}),
    # test_bthome_with_mac_encrypted: the address inside the packet too (device-info bit 1)
    "encrypted, address in packet": ("43a5808fe64854f196c06ffb4900112233f08ecbde", SHELLY_MAC, KEY,
                                     {"temperature": 25.06, "humidity": 50.55}),
    # test_shelly_blu_ht_display_zb
    "Shelly BLU H&T Display": ("40002e0164 1e012e344516 01".replace(" ", ""), SHELLY_MAC, None,
                               {"packet_id": 46, "battery": 100, "humidity": 52, "temperature": 27.8}),
    # test_bthome_packet_id_temperature_humidity_battery: LYWSD03MMC with ATC/pvvx firmware
    "ATC packet id, battery": ("4000090 15d025d0903b718".replace(" ", ""), ATC_MAC, None,
                               {"packet_id": 9, "battery": 93, "temperature": 23.97, "humidity": 63.27}),
    # test_bthome_temperature_humidity
    "ATC temperature humidity": ("4002ca0903bf13", ATC_MAC, None, {"temperature": 25.06, "humidity": 50.55}),
    # test_bthome_temperature_2 (object 0x45, 0.1 °C)
    "temperature 0x45": ("40451101", ATC_MAC, None, {"temperature": 27.3}),
}
# test_bindkey_wrong: this packet does not decrypt with this key
WRONG_KEY = ("41d2fcefe52eb212d600112233bc38c966", ATC_MAC, "814aac74c4f17b6c1581e1ab87816b99")
