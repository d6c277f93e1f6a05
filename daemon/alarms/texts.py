"""What an alarm's messages say: the text key of each alarm kind and every placeholder a text may use.

Texts come from the catalogs in `daemon/messages` in the recipient's language; details are stored
language-neutral (`key|name=value|...`) and rendered when shown.
"""

from __future__ import annotations

from daemon.config.schema import AppConfig
from daemon.messages import render
from daemon.ports.clock import Clock
from daemon.storage.alerts import AlertRow

SITE_ZONE = "_site"  # alarms about the box itself (disk, clock, uplink)
TEXT_KEY = {
    "temp_high": "alert.temp_high",
    "temp_low": "alert.temp_low",
    "freeze": "alert.freeze",
    "rh_high": "alert.rh_high",
    "rh_low": "alert.rh_low",
    "no_data": "alert.no_data",
    "sensor_fault": "alert.sensor_fault",
    "exposure": "alert.exposure",
    "rate": "alert.rate",
    "band": "alert.band",
    "box_health": "alert.box_health",
    "battery_low": "alert.battery_low",
    "controller_alarm": "alert.controller_alarm",
    "precool_slow": "alert.precool_slow",
}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_detail(detail: str, lang: str) -> str:
    """Details are stored as `key|name=value|...` so they can be shown in any language."""
    if not detail:
        return ""
    key, *params = detail.split("|")
    kw = dict(p.split("=", 1) for p in params if "=" in p)
    try:
        return render(key, lang, **kw)
    except (KeyError, IndexError):
        return detail


class AlarmTexts:
    """An alarm's placeholders and texts for this site's config."""

    def __init__(self, cfg: AppConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock

    def params(self, row: AlertRow, lang: str, **extra: object) -> dict[str, str]:
        """Every placeholder a text or a cloud-SMS template may use, as strings."""
        site_zone = row.zone == SITE_ZONE
        zone = None if site_zone else self.cfg.zone(row.zone)
        com = None if site_zone else self.cfg.commodity(row.zone)
        end = row.resolved or row.fired or self.clock.now()
        p: dict[str, object] = {
            "site": self.cfg.site.name,
            "zone": zone.display_name(lang) if zone else "",
            "commodity": com.name(lang) if com else "",
            "value": _fmt(row.value),
            "limit": _fmt(row.limit_value),
            "minutes": max(round((end - row.started) / 60), 0),
            "id": row.id,
            "sensor": row.sensor or "",
            "detail": render_detail(row.detail or "", lang),
            "what": render(f"kind.{row.kind}", lang),
            "whose": self.whose(row, lang),
            **extra,
        }
        return {k: str(v) for k, v in p.items()}

    def whose(self, row: AlertRow, lang: str) -> str:
        """Whose limit a temperature alarm crossed: the room's own setting, or the commodity's. "below Sweet
        orange min 2.0 C" was wrong when 2.0 was the room's override (the orange's minimum is 3)."""
        side = {"temp_high": "high", "temp_low": "low"}.get(row.kind)
        if side is None or row.zone == SITE_ZONE:
            return ""
        t = self.cfg.zone(row.zone).alarms.temperature
        com = self.cfg.commodity(row.zone)
        if com is None or (t.high if side == "high" else t.low) is not None:
            return render(f"limit.room_{side}", lang)
        return render(f"limit.commodity_{side}", lang, commodity=com.name(lang))

    def text(self, row: AlertRow, lang: str, resolved: bool = False) -> str:
        key = "resolve" if resolved else TEXT_KEY[row.kind]
        return render(key, lang, **self.params(row, lang))
